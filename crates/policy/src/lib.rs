//! The authorization decision of cosmogate: may this verified principal perform this
//! classified Cosmos DB operation.
//!
//! A policy file defines roles (Cosmos data actions granted on scopes `/`, `/dbs/{db}`,
//! `/dbs/{db}/colls/{container}`, following Cosmos DB data-plane RBAC) and bindings that hand a
//! role to every token whose claim matches a condition. [`Policy::decide`] allows an operation
//! only when every one of its actions is granted on its scope; anything else is denied.
//!
//! This crate does not verify tokens (the validator does), does not read requests (the protocol
//! crate classifies them into an [`Operation`](cosmogate_protocol::Operation)), and does not log:
//! the [`Decision`] carries the reason for the audit record.

mod action;
mod claims;
mod decide;
mod error;
mod file;
mod load;
mod policy;
mod scope;
#[cfg(test)]
mod test_support;

pub use decide::{Decision, Subject};
pub use error::PolicyError;
pub use policy::Policy;
