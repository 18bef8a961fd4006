//! End-to-end rig for cosmogate.
//!
//! Starts, as child processes bound to 127.0.0.1 port 0, the pieces a real deployment talks
//! to: a real OpenID provider (oidc-provider 9, [`Idp`], which can rotate its keys while it
//! serves), a second, independent one (glewlwyd 2.7, [`Glewlwyd`], on a free port), a
//! Cosmos-compatible HTTPS server (@vercel/cosmosdb-server, [`CosmosServer`]) and a stand-in
//! for Azure's managed-identity token endpoints ([`TokenEndpoint`]); generates the test CA and
//! server certificate ([`Certs`]); and runs the sample apps on the real Cosmos SDKs
//! ([`run_app`]). Every child is killed when its handle is dropped.
//!
//! It does not start cosmogate itself (the e2e tests do) and installs nothing: the Node
//! packages, the Python venv and the glewlwyd package come from `scripts/setup.sh`, and every
//! start fails with "run scripts/setup.sh first" when they are missing.

mod apps;
mod certs;
mod cosmos;
mod glewlwyd;
mod idp;
mod otlp;
mod paths;
mod ports;
mod process;
mod stack;
mod token_endpoint;

pub use apps::{ALL_OPS, AppArgs, AppCredential, OpResult, Sdk, find_op, run_app};
pub use certs::Certs;
pub use cosmos::CosmosServer;
pub use glewlwyd::{GLEWLWYD_SCOPE, Glewlwyd, GlewlwydClient};
pub use idp::{CLIENTS, DEFAULT_RESOURCE, Idp, IdpStats, KeyRing, RotationPhase};
pub use otlp::{CollectorMode, OtlpReceiver, ReceivedSpan};
pub use paths::{
    apps_dir, ensure_glewlwyd, ensure_node_rig, ensure_python_venv, repo_root, rig_dir, venv_python,
};
pub use ports::RefusingPort;
pub use process::{READY_TIMEOUT, RigProcess};
pub use stack::{
    CONTAINER, DATABASE, EMULATOR_KEY, ExtraIssuer, OTHER_CONTAINER, Stack, StackOptions,
    UpstreamAuth,
};
pub use token_endpoint::TokenEndpoint;
