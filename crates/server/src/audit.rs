//! The audit stream: one JSON record per request, on its own output.
//!
//! Records are serialised on the request's thread and written in batches by one writer
//! thread ([`AuditSink`]), so a slow disk never blocks a request. A record that finds the
//! queue full is counted and reported in the diagnostic log rather than silently lost.

use std::sync::Arc;
use std::time::SystemTime;

use cosmogate_validator::Principal;
use serde::Serialize;

mod line;
mod sink;

pub use sink::AuditSink;

/// The version of the record layout; bumped on any incompatible change.
pub const SCHEMA: &str = "cosmogate.audit/1";

/// Longest client-controlled string kept in a record; longer ones are cut and marked.
const MAX_FIELD_CHARS: usize = 512;

/// One request, as the auditor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub schema: &'static str,
    /// When the request arrived (RFC 3339, UTC).
    pub time: String,
    /// cosmogate's id for the request, also sent to the client as `x-cosmogate-request-id`.
    pub request_id: String,
    /// The W3C trace id: the client's when it sent a valid `traceparent`, else a new one.
    pub trace_id: String,
    /// The `x-ms-activity-id` sent to Cosmos DB, which its diagnostic logs record.
    pub activity_id: String,
    /// The socket peer (formatted once per connection).
    pub client_address: Arc<str>,
    /// The client as a trusted proxy in front of cosmogate reports it (`X-Forwarded-For`).
    /// Only set when the socket peer is one of `listen.trusted_proxies`.
    pub forwarded_for: Option<String>,
    pub user_agent: Option<String>,
    /// Worked out once per verified token and shared by the requests that present it.
    pub principal: Option<Arc<AuditPrincipal>>,
    pub method: String,
    /// The request path, without its query string.
    pub path: String,
    pub operation: Option<&'static str>,
    pub actions: Vec<&'static str>,
    pub database: Option<String>,
    pub container: Option<String>,
    pub item_id: Option<String>,
    pub partition_key: Option<String>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Why: `allowed`, or the reason code of the refusal or failure.
    pub reason: &'static str,
    /// The policy rule that decided, when the policy names one.
    pub rule: Option<String>,
    /// Which policy decided: a prefix of the SHA-256 of the policy file.
    pub policy_version: Option<Arc<str>>,
    /// The policy roles that granted the request.
    pub roles: Vec<String>,
    /// Audit-only rules that would have denied the request.
    pub shadow: Vec<ShadowRecord>,
    /// The status the client received.
    pub status: u16,
    pub substatus: Option<String>,
    pub request_charge: Option<f64>,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// The status Cosmos DB answered with, when the request was forwarded.
    pub upstream_status: Option<u16>,
    /// Time until Cosmos DB's response headers arrived.
    pub upstream_latency_ms: Option<f64>,
    /// The `upstream.regions` entry the request went to; `None` for the account endpoint or
    /// when it was not forwarded.
    pub upstream_region: Option<String>,
    /// Whether the response body was delivered to the end.
    pub completed: bool,
    pub latency_ms: f64,
}

/// An audit-only rule that would have denied the request.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowRecord {
    pub rule: String,
    pub reason: String,
}

/// Who made the request, as far as the validated token says.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPrincipal {
    pub iss: String,
    pub sub: String,
    /// Entra ID's object id of the principal (`oid`).
    pub oid: Option<String>,
    /// The tenant (`tid`).
    pub tid: Option<String>,
    /// The client application (`azp`, `appid` or `client_id`).
    pub client_id: Option<String>,
    /// A prefix of the SHA-256 of the token: correlates requests without keeping the token.
    pub token_fingerprint: String,
}

impl AuditPrincipal {
    /// The audit view of a verified token's principal. Requests keep it with the principal
    /// ([`Principal::derived`]), so a cached token's view is worked out once.
    pub fn of(principal: &Principal) -> AuditPrincipal {
        let claim = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| principal.claim(name).and_then(serde_json::Value::as_str))
                .map(capped)
        };
        AuditPrincipal {
            iss: capped(&principal.issuer),
            sub: capped(&principal.subject),
            oid: claim(&["oid"]),
            tid: claim(&["tid"]),
            client_id: claim(&["azp", "appid", "client_id"]),
            token_fingerprint: principal.token_fingerprint.clone(),
        }
    }
}

/// Appends a record's JSON line, newline included, to `out`: what the audit stream writes.
/// The same JSON `serde_json` makes of the record, written without its generic machinery.
pub fn write_line(record: &AuditRecord, out: &mut Vec<u8>) {
    line::write(record, out);
    out.push(b'\n');
}

/// Cuts a client-controlled string to a bounded length.
pub fn capped(value: &str) -> String {
    // No more bytes than the limit means no more characters either: skip the count.
    if value.len() <= MAX_FIELD_CHARS || value.chars().count() <= MAX_FIELD_CHARS {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(MAX_FIELD_CHARS).collect();
    cut.push('…');
    cut
}

/// [`capped`] for a string the caller owns, which is kept as it is when short enough.
pub fn capped_owned(value: String) -> String {
    if value.len() <= MAX_FIELD_CHARS {
        value
    } else {
        capped(&value)
    }
}

/// `sha256:<hex>` of a value that may hold personal data.
pub fn hashed(value: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(value.as_bytes())))
}

/// Milliseconds with microsecond precision: enough, and free of float noise.
pub fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1000.0
}

/// Formats a time the way every record does.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_strings_are_cut_and_marked() {
        let long = "x".repeat(2000);
        let cut = capped(&long);
        assert_eq!(cut.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(capped("short"), "short");
        assert_eq!(capped_owned(long.clone()), cut);
        assert_eq!(capped_owned("short".to_owned()), "short");
        let exact = "y".repeat(MAX_FIELD_CHARS);
        assert_eq!(capped_owned(exact.clone()), exact);
    }
}
