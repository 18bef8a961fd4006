//! Checks and bookkeeping on the request head, before any token is parsed: bounds on the
//! headers, cosmogate's own header namespace, the activity id, and the forwarded client address.

use std::net::SocketAddr;

use http::header::HeaderValue;
use http::{HeaderMap, HeaderName};

use crate::audit;
use crate::error::GatewayError;
use crate::gateway::Shared;

use super::ACTIVITY_ID;

static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers in cosmogate's own namespace are cosmogate's to set; a client's are dropped.
pub(super) fn drop_own_headers(headers: &mut HeaderMap) {
    let own: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-cosmogate-"))
        .cloned()
        .collect();
    for name in own {
        headers.remove(name);
    }
}

/// The client address a trusted proxy reports: the nearest `X-Forwarded-For` entry that is
/// not itself a trusted proxy. `None` unless the socket peer is trusted.
pub(super) fn forwarded_for(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Option<String> {
    let trusted = |ip: std::net::IpAddr| shared.trusted_proxies.iter().any(|net| net.contains(&ip));
    if !trusted(peer.ip()) {
        return None;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all(&FORWARDED_FOR) {
        hops.extend(value.to_str().ok()?.split(',').map(str::trim));
    }
    hops.into_iter()
        .rev()
        .find(|hop| hop.parse().map_or(true, |ip| !trusted(ip)))
        .map(audit::capped)
}

/// Keeps the client's activity id when it is a UUID, else sets a fresh one, so the request
/// Cosmos DB logs and the audit record carry the same id.
pub(super) fn ensure_activity_id(headers: &mut HeaderMap) -> String {
    let mut values = headers.get_all(&ACTIVITY_ID).iter();
    let sent = values.next().and_then(|value| value.to_str().ok());
    let alone = values.next().is_none();
    let given = sent.and_then(|text| uuid::Uuid::parse_str(text).ok());
    let id = uuid_text(given.unwrap_or_else(uuid::Uuid::new_v4));
    // SDKs send one, in the canonical form: it stays. Another form, a second value or none
    // is replaced, so Cosmos DB logs exactly the id the audit record holds.
    if !(alone && sent == Some(id.as_str()))
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        headers.insert(&ACTIVITY_ID, value);
    }
    id
}

/// The lower-case hyphenated form of a UUID, written without the formatting machinery.
pub(super) fn uuid_text(id: uuid::Uuid) -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buffer).to_owned()
}

/// Bounds on the request head, checked before anything parses it: total size and count
/// (case C27), and header values that are not visible ASCII (case C26), which Cosmos DB's
/// gateway would mangle or refuse.
pub(super) fn check_headers(
    headers: &HeaderMap,
    limits: &crate::config::LimitsConfig,
) -> Result<(), GatewayError> {
    if headers.len() > limits.max_header_count {
        return Err(GatewayError::HeadersTooLarge {
            reason: "too_many_headers",
        });
    }
    let mut total = 0usize;
    for (name, value) in headers {
        total += name.as_str().len() + value.len();
        if !cosmogate_protocol::is_plain_header_value(value.as_bytes()) {
            return Err(GatewayError::BadRequest {
                reason: "invalid_header_encoding",
            });
        }
    }
    if total > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge {
            reason: "headers_too_large",
        });
    }
    Ok(())
}

pub(super) fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(audit::capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(sent: Option<&str>) -> (String, String) {
        let mut headers = HeaderMap::new();
        if let Some(sent) = sent {
            headers.insert(&ACTIVITY_ID, HeaderValue::from_str(sent).expect("header"));
        }
        let id = ensure_activity_id(&mut headers);
        let forwarded = headers[&ACTIVITY_ID].to_str().expect("text").to_owned();
        (id, forwarded)
    }

    #[test]
    fn the_activity_id_is_kept_canonical_or_replaced() {
        let canonical = "9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a";
        assert_eq!(
            activity(Some(canonical)),
            (canonical.into(), canonical.into())
        );
        // Another spelling of the same UUID is forwarded and audited in the canonical form.
        for other in [
            "9A2F3C46-1D4E-4B5F-8A7C-2B1E0D9C8F7A",
            "{9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a}",
            "9a2f3c461d4e4b5f8a7c2b1e0d9c8f7a",
        ] {
            assert_eq!(
                activity(Some(other)),
                (canonical.into(), canonical.into()),
                "{other}"
            );
        }
        // A second value is dropped, even after a canonical first one.
        let mut headers = HeaderMap::new();
        headers.append(&ACTIVITY_ID, HeaderValue::from_static(canonical));
        headers.append(
            &ACTIVITY_ID,
            HeaderValue::from_static("11111111-1111-1111-1111-111111111111"),
        );
        assert_eq!(ensure_activity_id(&mut headers), canonical);
        let forwarded: Vec<_> = headers.get_all(&ACTIVITY_ID).iter().collect();
        assert_eq!(forwarded, [canonical]);
        // None, or not a UUID: a new one, the same in the header and in the record.
        for sent in [None, Some("not-a-uuid")] {
            let (id, forwarded) = activity(sent);
            assert_eq!(id, forwarded);
            assert_ne!(Some(id.as_str()), sent);
            assert_eq!(uuid::Uuid::parse_str(&id).map(uuid_text), Ok(id.clone()));
        }
    }
}
