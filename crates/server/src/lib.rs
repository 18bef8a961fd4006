//! The cosmogate server: the HTTPS listener apps talk to, and the wiring of the library
//! crates into one request path.
//!
//! A request is authenticated (`cosmogate-validator`), classified (`cosmogate-protocol`),
//! decided (`cosmogate-policy`), forwarded with cosmogate's own credential
//! (`cosmogate-upstream`), and audited here. This crate owns the configuration file, the
//! conversion of every refusal into a Cosmos-shaped response, and the audit stream; it holds
//! no protocol, token or policy logic of its own.

mod admin;
pub mod audit;
mod body;
mod config;
mod error;
mod gateway;
mod metrics;
mod otel;
mod proxy;
mod reload;
mod route;
mod serve;
mod summarize;
mod tls;
mod trace;

pub use audit::{AuditPrincipal, AuditRecord, PrincipalView, SCHEMA as AUDIT_SCHEMA, ShadowRecord};
pub use config::{
    AuditConfig, AuditOutput, Config, LimitsConfig, ListenConfig, LoadedConfig, LogConfig,
    LogFormat, PolicyConfig,
};
pub use error::{GatewayError, StartupError};
pub use gateway::Gateway;
pub use otel::{OtlpConfig, TelemetryConfig, TelemetryError};
pub use summarize::{SummarizeError, Summary, TimeRange, parse_time, summarize};
