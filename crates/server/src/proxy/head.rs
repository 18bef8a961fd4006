//! Checks and bookkeeping on the request head, before any token is parsed: bounds on the
//! headers, cosmogate's own header namespace, the activity id, and the forwarded client address.

use std::net::SocketAddr;

use http::HeaderMap;
use http::header::HeaderValue;

use crate::audit;
use crate::error::GatewayError;
use crate::gateway::Shared;

use super::ACTIVITY_ID;

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
    for value in headers.get_all("x-forwarded-for") {
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
    let given = headers
        .get(ACTIVITY_ID)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| uuid::Uuid::parse_str(text).ok());
    let id = given.unwrap_or_else(uuid::Uuid::new_v4).to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(ACTIVITY_ID, value);
    }
    id
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

pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(audit::capped)
}
