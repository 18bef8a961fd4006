//! Cosmos DB (NoSQL API) wire-protocol knowledge for cosmogate.
//!
//! This crate reads the client's `Authorization` header, turns a request's method, path,
//! headers and (for batch and bulk) body into a Cosmos operation with the RBAC data actions it
//! needs, signs upstream requests with a master key for the emulator, and rewrites the account
//! document so SDKs keep talking to the proxy. It is pure and synchronous.
//!
//! It does not validate tokens (the validator crate does), decide whether an operation is
//! allowed (the policy crate does), or do any I/O; it knows nothing of HTTP servers.

mod account;
mod action;
mod auth;
mod batch;
mod classify;
mod error;
mod headers;
mod intent;
mod master_key;
mod path;

pub use account::{
    rewrite_account_document, rewrite_account_document_by_region, rewrite_content_location,
};
pub use action::DataAction;
pub use auth::{ClientToken, TokenScheme, parse_authorization};
pub use batch::{BatchOperation, classify_batch_body};
pub use classify::{Operation, OperationKind, RequestHead, classify};
pub use error::{ErrorClass, ProtocolError};
pub use headers::{PartitionKey, is_plain_header_value};
pub use intent::canonicalize_intent;
pub use master_key::MasterKey;
pub use path::{ResourcePath, parse_path};
