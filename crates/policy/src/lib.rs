//! The authorization decision of cosmogate: may this verified principal perform this
//! classified Cosmos DB operation, and why.
//!
//! A policy file defines roles (Cosmos data actions granted on scopes `/`, `/dbs/{db}`,
//! `/dbs/{db}/colls/{container}`, by exact name or `*` pattern, optionally bound to the
//! partition key a claim names), bindings that hand a role to every principal meeting a
//! condition on its token, and deny rules that win over every grant. [`Policy::decide`] allows
//! an operation only when no deny rule refuses it and every one of its actions (every
//! operation of a batch or bulk, on its own) is granted; anything else is denied. Rules can be
//! audit-only: they report what they would have refused in [`Decision::shadow`].
//!
//! This crate does not verify tokens (the validator does), does not read requests (the protocol
//! crate classifies them into an [`Operation`](cosmogate_protocol::Operation)), and does not log:
//! the [`Decision`] carries the reason, the deciding rule and the policy fingerprint for the
//! audit record.

mod action;
mod claims;
mod decide;
mod error;
mod explain;
mod file;
mod glob;
mod index;
mod load;
mod partition;
mod policy;
mod scope;
#[cfg(test)]
mod test_support;

pub use decide::{Decision, HeldRoles, ShadowHit, Subject};
pub use error::PolicyError;
pub use explain::{BindingMatch, ClaimUse, DenyMatch, Explanation, RoleView};
pub use policy::Policy;
