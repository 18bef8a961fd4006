//! cosmogate's side of the conversation with the Cosmos DB gateway.
//!
//! This crate holds cosmogate's own credential for the account and the client that forwards
//! an already-authorised request to the gateway: byte-exact request target, the client's
//! credential and hop-by-hop headers dropped, ours added, bodies streamed both ways, no
//! retries. It also tells an upstream 401 or 403 that our credential caused
//! ([`classify_upstream_denial`], [`screen_upstream_denial`]) from one the app should see.
//!
//! Credentials are chosen explicitly in config, never probed: managed identity through IMDS
//! (VMs) or `IDENTITY_ENDPOINT` (App Service, Functions), AKS workload identity, a client
//! secret, or the account master key for the emulator. Every token credential sits behind
//! one cache of ours: first token before start-up completes, background refresh at
//! `refresh_in`, half-life or five minutes before expiry, one refresh in flight, backoff on
//! failure while the cached token keeps serving, and no request ever waiting on a token
//! endpoint.
//!
//! Who fetches the tokens, and why:
//! - Managed identity (IMDS and App Service) uses our own small client. `azure_identity`
//!   1.0 hard-codes the IMDS address 169.254.169.254 with a forced retry policy of up to
//!   about 100 s, takes the App Service endpoint only from the process environment, refuses
//!   `expires_on` as a JSON number or as the legacy date form, and does not support a
//!   user-assigned resource id on App Service. Ours takes every endpoint from config (so
//!   tests reach loopback only), reads all three `expires_on` forms and `refresh_in`, and
//!   classifies retryable statuses itself.
//! - Workload identity and client secret use `azure_identity` (`ClientAssertionCredential`
//!   with the token file read by us before every exchange, and `ClientSecretCredential`),
//!   pointed at the configured authority through a custom cloud configuration and sending
//!   through the `reqwest` client the server hands in. A fresh credential per fetch keeps
//!   its in-line cache out of the way; its retries are off and each attempt is cut off after
//!   15 s. It needs an `https` authority, so tests run a TLS stand-in on loopback. It adds 32
//!   crates to this crate's dependency graph (132 to 164), among them `time`, `rand` 0.10 and
//!   the azure/typespec crates, and ties our `reqwest` to its 0.13 major.
//!
//! It does not authenticate clients, classify requests or apply policy, and it does not
//! rewrite responses (the `GET /` account document included): the server crate does that,
//! and it turns [`UpstreamError`] into HTTP answers.

mod config;
mod credential;
mod denial;
mod entra;
mod entra_config;
mod error;
mod expiry;
mod forward;
mod hop;
mod idle;
mod pool;
mod tls;
mod token_cache;
mod token_endpoint;
mod token_source;

pub use config::{
    CredentialConfig, ManagedIdentityConfig, MiSource, RegionConfig, UpstreamConfig, authority_key,
    is_loopback,
};
pub use credential::{Credential, CredentialStatus};
pub use denial::{
    DENIAL_BODY_LIMIT, classify_upstream_denial, needs_screening, screen_upstream_denial,
};
pub use entra_config::{ClientSecretConfig, WorkloadIdentityConfig};
pub use error::{BoxError, UpstreamError};
pub use forward::{Forwarder, UpstreamBody};
pub use hop::strip_hop_by_hop;
pub use idle::{BodyStalled, IdleTimeout};
pub use pool::ResponseBody;
pub use token_cache::{REFRESH_FAILURE_REASONS, TokenStatus};
