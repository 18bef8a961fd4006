//! Telling an upstream 401 or 403 that cosmogate's own credential caused from one the app
//! should see.
//!
//! Cosmos DB only ever sees cosmogate's credential, never the app's, so every 401 is ours:
//! a wrong audience (substatus 5008), an untrusted tenant (5007), an expired token (5006), a
//! bad signature, local auth disabled for a master key (5202). A 403 is ours when role-based
//! access control refused cosmogate's identity (5300–5306, 5400) or a network rule refused
//! its address (5307–5313, the account firewall). Other 403s belong to the app and pass on
//! unchanged: 403/3 (write forbidden during failover) and 403/1008 (account not found) make
//! the SDKs refresh their endpoints, and hiding them would break failover.
//!
//! Passing ours on would blame the app, and a 401 makes well-behaved SDKs refresh their own
//! token in a loop; the server answers them as a 502 gateway error instead.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;

use crate::error::{BoxError, UpstreamError};
use crate::forward::UpstreamBody;

/// Bytes of a 401 or 403 body that [`screen_upstream_denial`] reads to classify it. Cosmos
/// error bodies are far smaller; a longer body is classified by this prefix and then passed
/// on whole.
pub const DENIAL_BODY_LIMIT: usize = 16 * 1024;

/// Why an upstream 401 or 403 is cosmogate's fault, or `None` when it is the app's answer.
///
/// The reasons are `upstream_auth_failed` (the upstream refused cosmogate's credential or
/// its identity lacks a data-plane role), `upstream_clock_skew` (the token or signature is
/// "not valid at the current time") and `upstream_network_denied` (a firewall or network
/// perimeter rule refused cosmogate's address). `body_prefix` is the start of the response
/// body, or empty; only the substatus header is needed for most decisions.
pub fn classify_upstream_denial(
    status: StatusCode,
    headers: &HeaderMap,
    body_prefix: &[u8],
) -> Option<&'static str> {
    let substatus = substatus(headers);
    let says = |needle: &str| contains_ignore_case(body_prefix, needle.as_bytes());
    let clock_skew = substatus == Some(5005) || says("not valid at the current time");
    match status {
        StatusCode::UNAUTHORIZED if clock_skew => Some("upstream_clock_skew"),
        StatusCode::UNAUTHORIZED => Some("upstream_auth_failed"),
        StatusCode::FORBIDDEN => forbidden_reason(substatus, clock_skew, says),
        _ => None,
    }
}

fn forbidden_reason(
    substatus: Option<u32>,
    clock_skew: bool,
    says: impl Fn(&str) -> bool,
) -> Option<&'static str> {
    match substatus {
        Some(5300..=5306 | 5400) => return Some("upstream_auth_failed"),
        Some(5307..=5313) => return Some("upstream_network_denied"),
        Some(code) if code != 0 => return None,
        _ => {}
    }
    if clock_skew {
        Some("upstream_clock_skew")
    } else if says("required RBAC permissions") || says("Request blocked by Auth") {
        Some("upstream_auth_failed")
    } else if says("blocked by your Cosmos DB account firewall") {
        Some("upstream_network_denied")
    } else {
        None
    }
}

/// The `x-ms-substatus` header as a number, when it is one.
pub(crate) fn substatus(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("x-ms-substatus")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Whether a response with this status can be a refusal of cosmogate's own credential (a 401
/// or 403), and so needs [`screen_upstream_denial`]; every other response can pass on without
/// it, unread.
pub fn needs_screening(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// Passes a response on, unless it is a 401 or 403 that cosmogate's credential caused: that
/// becomes [`UpstreamError::UpstreamDenied`] (reason code from [`classify_upstream_denial`],
/// status 502), carrying the upstream status and substatus for the audit record.
///
/// Other responses are not touched: no body is read, and the stream goes on as it came. For
/// a 401 or 403 up to [`DENIAL_BODY_LIMIT`] bytes are read first and then replayed, so what
/// the app receives is byte for byte what the upstream sent.
pub async fn screen_upstream_denial<B>(
    response: Response<B>,
) -> Result<Response<UpstreamBody>, UpstreamError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let status = response.status();
    if !needs_screening(status) {
        return Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()));
    }
    let (parts, mut body) = response.into_parts();
    let mut frames = Vec::new();
    let mut prefix = Vec::new();
    while prefix.len() < DENIAL_BODY_LIMIT {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|err| UpstreamError::Protocol {
            reason: "the upstream answer broke off".into(),
            source: Some(err.into()),
        })?;
        if let Some(data) = frame.data_ref() {
            let room = DENIAL_BODY_LIMIT - prefix.len();
            prefix.extend_from_slice(&data[..data.len().min(room)]);
        }
        frames.push(frame);
    }
    if let Some(reason) = classify_upstream_denial(status, &parts.headers, &prefix) {
        tracing::debug!(
            upstream.status = status.as_u16(),
            upstream.substatus = substatus(&parts.headers),
            reason,
            "Upstream refused our credential"
        );
        return Err(UpstreamError::UpstreamDenied {
            reason,
            status: status.as_u16(),
            substatus: substatus(&parts.headers),
        });
    }
    let replay = Replay {
        frames: frames.into_iter(),
        rest: body,
    };
    Ok(Response::from_parts(
        parts,
        replay.map_err(Into::into).boxed_unsync(),
    ))
}

/// The frames already read, then the rest of the body.
struct Replay<B> {
    frames: std::vec::IntoIter<Frame<Bytes>>,
    rest: B,
}

impl<B> Body for Replay<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(frame) = self.frames.next() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.frames.len() == 0 && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: usize = self
            .frames
            .as_slice()
            .iter()
            .filter_map(Frame::data_ref)
            .map(Bytes::len)
            .sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + buffered as u64);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + buffered as u64);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_substatus(code: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-substatus", HeaderValue::from_static(code));
        headers
    }

    const RBAC_BODY: &[u8] = br#"{"code":"Forbidden","message":"Request blocked by Auth acct : Request is blocked because principal [p] does not have required RBAC permissions to perform action [a] on resource [r]."}"#;

    #[test]
    fn only_401_and_403_need_screening() {
        for code in 100..=599 {
            let status = StatusCode::from_u16(code).expect("status");
            assert_eq!(
                needs_screening(status),
                code == 401 || code == 403,
                "{code}"
            );
        }
    }

    #[test]
    fn every_upstream_401_is_our_credential() {
        for code in ["5008", "5007", "5006", "5202", "0", "garbage"] {
            let reason =
                classify_upstream_denial(StatusCode::UNAUTHORIZED, &with_substatus(code), b"");
            assert_eq!(reason, Some("upstream_auth_failed"), "{code}");
        }
        let bare = classify_upstream_denial(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b"{}");
        assert_eq!(bare, Some("upstream_auth_failed"));
    }

    #[test]
    fn rbac_refusals_of_our_identity_are_ours() {
        for code in ["5300", "5301", "5302", "5306", "5400"] {
            let reason =
                classify_upstream_denial(StatusCode::FORBIDDEN, &with_substatus(code), b"");
            assert_eq!(reason, Some("upstream_auth_failed"), "{code}");
        }
        let by_text = classify_upstream_denial(StatusCode::FORBIDDEN, &HeaderMap::new(), RBAC_BODY);
        assert_eq!(by_text, Some("upstream_auth_failed"));
    }

    #[test]
    fn failover_and_account_answers_pass_on_to_the_app() {
        for code in ["3", "1008", "1005"] {
            let reason =
                classify_upstream_denial(StatusCode::FORBIDDEN, &with_substatus(code), RBAC_BODY);
            assert_eq!(reason, None, "{code}");
        }
        let plain = classify_upstream_denial(StatusCode::FORBIDDEN, &HeaderMap::new(), b"{}");
        assert_eq!(plain, None);
        for status in [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert_eq!(
                classify_upstream_denial(status, &HeaderMap::new(), RBAC_BODY),
                None
            );
        }
    }

    #[test]
    fn clock_skew_and_network_refusals_get_their_own_reason() {
        let skew = b"The authorization token is not valid at the current time.";
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
            let reason = classify_upstream_denial(status, &HeaderMap::new(), skew);
            assert_eq!(reason, Some("upstream_clock_skew"), "{status}");
        }
        let firewall = b"Request originated from IP 10.0.0.1 through public internet. This is blocked by your Cosmos DB account firewall settings.";
        let reason = classify_upstream_denial(StatusCode::FORBIDDEN, &HeaderMap::new(), firewall);
        assert_eq!(reason, Some("upstream_network_denied"));
        let nsp = classify_upstream_denial(StatusCode::FORBIDDEN, &with_substatus("5307"), b"");
        assert_eq!(nsp, Some("upstream_network_denied"));
    }

    #[test]
    fn needle_search_ignores_case_and_handles_short_input() {
        assert!(contains_ignore_case(
            b"xx NOT VALID AT THE CURRENT TIME",
            b"not valid at"
        ));
        assert!(!contains_ignore_case(b"no", b"longer needle"));
        assert!(!contains_ignore_case(b"\xff\xfe", b"x"));
    }
}
