//! cosmogate's side of the conversation with the Cosmos DB gateway.
//!
//! This crate holds cosmogate's own credential for the account (a managed-identity token kept
//! fresh in the background, or the account master key for the emulator) and the client that
//! forwards an already-authorised request to the gateway: byte-exact request target, the
//! client's credential and hop-by-hop headers dropped, ours added, bodies streamed both ways,
//! no retries.
//!
//! It does not authenticate clients, classify requests or apply policy, and it does not
//! rewrite responses (the `GET /` account document included): the server crate does that,
//! and it turns [`UpstreamError`] into HTTP answers.

mod config;
mod credential;
mod error;
mod expiry;
mod forward;
mod hop;
mod tls;
mod token_cache;
mod token_endpoint;

pub use config::{CredentialConfig, ManagedIdentityConfig, MiSource, UpstreamConfig};
pub use credential::Credential;
pub use error::{BoxError, UpstreamError};
pub use forward::{Forwarder, UpstreamBody};
pub use hop::strip_hop_by_hop;
