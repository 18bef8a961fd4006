//! Hop-by-hop headers: the ones that describe one connection and must not be forwarded.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// Headers that are always connection-specific (RFC 9110 §7.6.1, plus the legacy
/// `keep-alive` and `proxy-connection`). A `static`, not a `const`: a `const` array of header
/// names is built and dropped again at every use.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Removes the hop-by-hop headers and every header that a `Connection` header names, keeping
/// the order of the rest.
///
/// A caller that decides anything from request headers (policy, classification) should call
/// this first and decide from what is left: otherwise a client could show a header to the
/// decision and then have it dropped on the way upstream by naming it in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests carry none of them (`Connection` is one, so nothing is named either):
    // a few lookups then spare rebuilding the map.
    if !HOP_BY_HOP.iter().any(|name| headers.contains_key(name)) {
        return;
    }
    let old = std::mem::take(headers);
    copy_end_to_end(old, headers, |_| false);
}

/// Appends to `into` every end-to-end header of `from`, in order, except those `also_drop`
/// picks. (`HeaderMap::remove` reorders the map, so dropping is done by copying.)
pub(crate) fn copy_end_to_end(
    from: HeaderMap,
    into: &mut HeaderMap,
    also_drop: impl Fn(&HeaderName) -> bool,
) {
    let named: Vec<HeaderName> = from
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();
    let keep =
        |name: &HeaderName| !HOP_BY_HOP.contains(name) && !named.contains(name) && !also_drop(name);
    into.reserve(from.len());
    // Values after the first of a name come with `None`: they belong to the last name seen.
    let mut current: Option<HeaderName> = None;
    for (name, value) in from {
        if name.is_some() {
            current = name;
        }
        if let Some(name) = current.as_ref().filter(|name| keep(name)) {
            into.append(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn connection_named_and_fixed_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.append(
            "connection",
            HeaderValue::from_static("keep-alive, X-Private"),
        );
        headers.append("connection", HeaderValue::from_static(" x-other ,,"));
        for name in [
            "x-private",
            "x-other",
            "keep-alive",
            "te",
            "upgrade",
            "trailer",
        ] {
            headers.insert(name, HeaderValue::from_static("1"));
        }
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert("x-ms-session-token", HeaderValue::from_static("0:1"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-ms-session-token"]);
    }

    #[test]
    fn order_and_repeated_values_of_the_remaining_headers_are_kept() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("connection", HeaderValue::from_static("x-b"));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-c", HeaderValue::from_static("3"));
        headers.append("x-a", HeaderValue::from_static("4"));
        headers.append("te", HeaderValue::from_static("trailers"));
        headers.append("x-d", HeaderValue::from_static("5"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("?")))
            .collect();
        assert_eq!(
            left,
            [("x-a", "1"), ("x-a", "4"), ("x-c", "3"), ("x-d", "5")]
        );
    }

    #[test]
    fn a_map_without_hop_headers_keeps_every_header_and_value_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-a", HeaderValue::from_static("3"));
        let before = headers.clone();
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, before);
        let order: Vec<&str> = headers
            .values()
            .map(|v| v.to_str().unwrap_or("?"))
            .collect();
        assert_eq!(order, ["1", "3", "2"]);
    }

    #[test]
    fn non_ascii_connection_value_still_drops_the_names_it_lists() {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"x-a, \xff\xfe").expect("obs-text is allowed");
        headers.insert("connection", value);
        headers.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert!(headers.is_empty());
    }
}
