//! W3C trace context: the trace a request belongs to, accepted from the client when valid and
//! passed on to Cosmos DB with cosmogate as the parent.
//!
//! Without trace export cosmogate's span id is random; with it (see `otel`), it is the id of
//! the span exported for the request, so the client's, cosmogate's and Cosmos DB's spans join.

use http::header::HeaderValue;
use http::{HeaderMap, HeaderName};
use rand::RngCore;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The trace of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub trace_id: [u8; 16],
    /// cosmogate's own span for this request, the parent of what Cosmos DB records.
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// The client's span, from a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl ClientParent {
    /// The parent the client's `traceparent` names, when it is valid.
    pub fn from_request(headers: &HeaderMap) -> Option<ClientParent> {
        headers
            .get(&TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_traceparent)
    }
}

impl TraceContext {
    /// Continues the client's trace when its `traceparent` is valid, else starts a new one.
    pub fn from_request(headers: &HeaderMap) -> TraceContext {
        let mut span_id = [0u8; 8];
        rand::rng().fill_bytes(&mut span_id);
        match ClientParent::from_request(headers) {
            Some(ClientParent {
                trace_id, sampled, ..
            }) => TraceContext {
                trace_id,
                span_id,
                sampled,
            },
            None => {
                let mut trace_id = [0u8; 16];
                rand::rng().fill_bytes(&mut trace_id);
                TraceContext {
                    trace_id,
                    span_id,
                    sampled: false,
                }
            }
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// Replaces the request's `traceparent` with one naming cosmogate's span as the parent.
    pub fn propagate(&self, headers: &mut HeaderMap) {
        // Written into a fixed buffer: 2 + 1 + 32 + 1 + 16 + 1 + 2 bytes.
        let mut value = [0u8; 55];
        value[..3].copy_from_slice(b"00-");
        let hex_ok = hex::encode_to_slice(self.trace_id, &mut value[3..35]).is_ok()
            && hex::encode_to_slice(self.span_id, &mut value[36..52]).is_ok();
        value[35] = b'-';
        value[52] = b'-';
        value[53..].copy_from_slice(if self.sampled { b"01" } else { b"00" });
        if let (true, Ok(value)) = (hex_ok, HeaderValue::from_bytes(&value)) {
            headers.insert(&TRACEPARENT, value);
        }
    }
}

/// `version-traceid-parentid-flags`, version 00, lowercase hex, ids not all zero.
fn parse_traceparent(text: &str) -> Option<ClientParent> {
    let mut parts = text.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() {
        return None;
    }
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(trace, 32) || !lower_hex(parent, 16) || !lower_hex(flags, 2) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    let mut span_id = [0u8; 8];
    hex::decode_to_slice(parent, &mut span_id).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(ClientParent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&TRACEPARENT, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn a_valid_client_traceparent_is_continued_with_a_new_parent() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::from_request(&headers(given));
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(trace.sampled);

        let mut outgoing = headers(given);
        trace.propagate(&mut outgoing);
        let sent = outgoing[&TRACEPARENT].to_str().expect("ascii");
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(
            !sent.contains("00f067aa0ba902b7"),
            "cosmogate is the new parent"
        );
        assert!(sent.ends_with("-01"));
        let parsed = parse_traceparent(sent).expect("cosmogate sends a valid traceparent");
        assert_eq!(parsed.trace_id, trace.trace_id);
        assert_eq!(parsed.span_id, trace.span_id);
        assert_eq!(sent.len(), 55);
    }

    #[test]
    fn the_client_span_is_read_as_the_parent() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let parent = ClientParent::from_request(&headers(given)).expect("valid");
        assert_eq!(hex::encode(parent.span_id), "00f067aa0ba902b7");
        assert_eq!(
            hex::encode(parent.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(!parent.sampled);
        assert_eq!(ClientParent::from_request(&HeaderMap::new()), None);
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            let trace = TraceContext::from_request(&headers(bad));
            assert_ne!(
                trace.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert!(!trace.sampled, "{bad}");
        }
    }
}
