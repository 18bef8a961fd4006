//! Hop-by-hop headers: the ones that describe one connection and must not be forwarded.

use http::HeaderMap;
use http::header::{self, HeaderName};

/// Whether a header is always connection-specific (RFC 9110 §7.6.1, plus the legacy
/// `keep-alive` and `proxy-connection`). A match on the name is cheaper than looking each of
/// these up in a map: most messages carry one of them at most.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
    )
}

/// Removes the hop-by-hop headers and every header that a `Connection` header names.
///
/// The map is changed in place: the values of each remaining name keep their order, while
/// the order between different names may change, which HTTP allows (RFC 9110 §5.3: the order
/// of field lines with differing names carries no meaning). Copying the map to keep that order
/// cost about ten times as much whenever a `Connection` header was present, which is on most
/// responses.
///
/// A caller that decides anything from request headers (policy, classification) should call
/// this first and decide from what is left: otherwise a client could show a header to the
/// decision and then have it dropped on the way upstream by naming it in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names; nothing is allocated when none is hop-by-hop (most requests).
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name))
        .cloned()
        .collect();
    if doomed.is_empty() {
        return;
    }
    // The names `Connection` lists (usually only `keep-alive` or `close`).
    let named = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .filter(|name| !is_hop_by_hop(name));
    doomed.extend(named);
    for name in &doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The names left in the map, sorted: the order between names is not kept.
    fn sorted_names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

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
        headers.insert(
            "proxy-authenticate",
            HeaderValue::from_static("Basic realm=x"),
        );
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert("x-ms-session-token", HeaderValue::from_static("0:1"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-ms-session-token"]);
    }

    #[test]
    fn one_fixed_hop_header_without_connection_is_removed() {
        for name in [
            "te",
            "trailer",
            "upgrade",
            "proxy-authenticate",
            "transfer-encoding",
        ] {
            let mut headers = HeaderMap::new();
            headers.append("x-a", HeaderValue::from_static("1"));
            headers.append(name, HeaderValue::from_static("v"));
            headers.append(name, HeaderValue::from_static("w"));
            strip_hop_by_hop(&mut headers);
            let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(left, ["x-a"], "{name}");
        }
    }

    #[test]
    fn remaining_headers_keep_every_value_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("connection", HeaderValue::from_static("x-b"));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-c", HeaderValue::from_static("3"));
        headers.append("x-a", HeaderValue::from_static("4"));
        headers.append("te", HeaderValue::from_static("trailers"));
        headers.append("x-d", HeaderValue::from_static("5"));
        strip_hop_by_hop(&mut headers);
        let names = sorted_names(&headers);
        assert_eq!(names, ["x-a", "x-c", "x-d"]);
        let values = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("?"))
                .collect()
        };
        assert_eq!(values("x-a"), ["1", "4"]);
        assert_eq!(values("x-c"), ["3"]);
        assert_eq!(values("x-d"), ["5"]);
        assert_eq!(headers.len(), 4);
    }

    #[test]
    fn connection_naming_only_fixed_hop_headers_removes_just_those() {
        let mut headers = HeaderMap::new();
        headers.append("connection", HeaderValue::from_static("keep-alive, close"));
        headers.append("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.append("x-ms-request-charge", HeaderValue::from_static("1"));
        headers.append("content-length", HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut headers);
        let names = sorted_names(&headers);
        assert_eq!(names, ["content-length", "x-ms-request-charge"]);
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
