//! The audit stream: one JSON record per request, on its own output.
//!
//! Records are serialised on the request's thread and written in batches by one writer
//! thread ([`AuditSink`]), so a slow disk never blocks a request. A record that finds the
//! queue full is counted and reported in the diagnostic log rather than silently lost.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    pub principal: Option<Arc<PrincipalView>>,
    pub method: String,
    /// The request path, without its query string.
    pub path: String,
    pub operation: Option<&'static str>,
    pub actions: Vec<&'static str>,
    pub database: Option<Arc<str>>,
    pub container: Option<Arc<str>>,
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
    /// The audit view of a verified token's principal.
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

/// An [`AuditPrincipal`] with its JSON written once: every record of the same token copies
/// those bytes instead of escaping the same strings again. Requests keep it with the verified
/// principal ([`Principal::derived`]), so a cached token's view is worked out once. Read the
/// fields through `Deref`; a changed view is a new one ([`PrincipalView::new`]).
#[derive(Debug, Clone)]
pub struct PrincipalView {
    principal: AuditPrincipal,
    json: Box<[u8]>,
}

impl PrincipalView {
    /// The view and its JSON.
    pub fn new(principal: AuditPrincipal) -> PrincipalView {
        let mut json = Vec::with_capacity(256);
        line::principal(&principal, &mut json);
        PrincipalView {
            principal,
            json: json.into_boxed_slice(),
        }
    }

    /// The view of a verified token's principal ([`AuditPrincipal::of`]).
    pub fn of(principal: &Principal) -> PrincipalView {
        PrincipalView::new(AuditPrincipal::of(principal))
    }

    /// The principal's JSON object, as the record's line holds it.
    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }
}

impl From<AuditPrincipal> for PrincipalView {
    fn from(principal: AuditPrincipal) -> PrincipalView {
        PrincipalView::new(principal)
    }
}

impl std::ops::Deref for PrincipalView {
    type Target = AuditPrincipal;

    fn deref(&self) -> &AuditPrincipal {
        &self.principal
    }
}

impl Serialize for PrincipalView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.principal.serialize(serializer)
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

/// [`capped`] as a shared string, for fields the metrics keep as labels without copying.
pub fn capped_shared(value: &str) -> Arc<str> {
    if value.len() <= MAX_FIELD_CHARS {
        Arc::from(value)
    } else {
        Arc::from(capped(value))
    }
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

thread_local! {
    /// The second last formatted on this thread, as `YYYY-MM-DDTHH:MM:SS.`.
    static SECOND: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

/// The last second RFC 3339's four-digit years can write (9999-12-31T23:59:59Z).
const LAST_SECOND: u64 = 253_402_300_799;

/// Formats a time the way every record does (RFC 3339, UTC, milliseconds). The date and time
/// of day are formatted once per second on each thread; a request adds its milliseconds. A
/// clock set before 1970 or after 9999 is written as the nearest time that can be written
/// (the formatter would panic on either).
pub fn timestamp(time: SystemTime) -> String {
    let since = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .min(Duration::new(LAST_SECOND, 999_999_999));
    let second = since.as_secs();
    SECOND.with_borrow_mut(|kept| {
        let prefix = match kept {
            Some((at, prefix)) if *at == second => prefix,
            _ => {
                // `…:SS.000Z` less the milliseconds and the zone.
                let mut prefix =
                    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs(second))
                        .to_string();
                prefix.truncate(prefix.len() - "000Z".len());
                &mut kept.insert((second, prefix)).1
            }
        };
        let millis = since.subsec_millis();
        let mut text = String::with_capacity(prefix.len() + 4);
        text.push_str(prefix);
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            text.push(char::from(b'0' + digit as u8));
        }
        text.push('Z');
        text
    })
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

    #[test]
    fn timestamps_match_the_formatter_and_a_clock_out_of_range_never_panics() {
        let formatted = |time: SystemTime| humantime::format_rfc3339_millis(time).to_string();
        let base = UNIX_EPOCH + Duration::from_secs(1_796_356_141);
        // Within one second, across its end, back again, and far apart: each is formatted
        // as the formatter does, whatever this thread formatted before.
        for offset_ms in [
            0, 1, 9, 10, 99, 100, 847, 999, 1000, 1001, 61_000, 500, 86_400_000,
        ] {
            let time = base + Duration::from_millis(offset_ms);
            assert_eq!(timestamp(time), formatted(time), "{offset_ms} ms");
        }
        for time in [UNIX_EPOCH, UNIX_EPOCH + Duration::from_nanos(999_999_999)] {
            assert_eq!(timestamp(time), formatted(time));
        }
        assert_eq!(timestamp(base), "2026-12-04T03:49:01.000Z");
        // A clock out of the formatter's range is written, not a panic.
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(timestamp(before), "1970-01-01T00:00:00.000Z");
        let after = UNIX_EPOCH + Duration::from_secs(LAST_SECOND + 86_400);
        assert_eq!(timestamp(after), "9999-12-31T23:59:59.999Z");
        let last = UNIX_EPOCH + Duration::new(LAST_SECOND, 999_000_000);
        assert_eq!(timestamp(last), formatted(last));
    }
}
