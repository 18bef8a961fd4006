//! Properties of the path classifier: names survive canonical percent-encoding exactly, and
//! no trick (query strings, fragments, dot segments, encoded separators, keyword case, client
//! hint headers) makes a request address something else.

use cosmogate_protocol::{Operation, ProtocolError, RequestHead, classify};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

fn run(
    method: &Method,
    path: &str,
    headers: &[(String, String)],
) -> Result<Operation, ProtocolError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        map.append(name, value);
    }
    classify(&RequestHead {
        method,
        path,
        headers: &map,
    })
}

fn get(path: &str) -> Result<Operation, ProtocolError> {
    run(&Method::GET, path, &[])
}

/// Canonical encoding: unreserved characters as they are, every other byte escaped.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Resource names as Cosmos allows them: no `/ \ # ?`, no control characters, not a dot
/// segment. Short enough never to read as a database `_rid`. A name holding something that
/// reads as an escape once decoded (`%41`) is refused by design (double encoding), so none
/// is generated.
fn any_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.~;:@!$&'()*+,=%üé-]{1,10}"
        .prop_filter("not a dot segment", |n| n != "." && n != "..")
        .prop_filter("no escape after decoding", |n| !looks_escaped(n))
}

fn looks_escaped(name: &str) -> bool {
    name.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fn item_path(db: &str, container: &str, item: &str) -> String {
    format!(
        "/dbs/{}/colls/{}/docs/{}",
        encode(db),
        encode(container),
        encode(item)
    )
}

proptest! {
    #[test]
    fn canonically_encoded_names_classify_to_exactly_those_names(
        db in any_name(),
        container in any_name(),
        item in any_name(),
    ) {
        let op = get(&item_path(&db, &container, &item)).expect("canonical paths classify");
        prop_assume!(!op.rid_based);
        prop_assert_eq!(op.database.as_deref(), Some(db.as_str()));
        prop_assert_eq!(op.container.as_deref(), Some(container.as_str()));
        prop_assert_eq!(op.item_id.as_deref(), Some(item.as_str()));
    }

    #[test]
    fn a_name_that_still_holds_an_escape_after_decoding_is_refused(
        db in any_name(),
        hex in "[0-9A-Fa-f]{2}",
    ) {
        let container = format!("a%{hex}");
        prop_assert_eq!(
            get(&item_path(&db, &container, "x")).err(),
            Some(ProtocolError::MalformedPath)
        );
    }

    #[test]
    fn a_query_string_or_fragment_is_always_refused(
        db in any_name(),
        container in any_name(),
        suffix in "[?#][a-z/=.]{0,12}",
    ) {
        let path = format!("{}{suffix}", item_path(&db, &container, "x"));
        prop_assert!(get(&path).is_err(), "{}", path);
    }

    #[test]
    fn a_dot_segment_anywhere_is_refused(
        db in any_name(),
        container in any_name(),
        at in 0usize..6,
        dots in prop_oneof![Just("."), Just(".."), Just("%2E%2E"), Just("%2e"), Just(".%2E")],
    ) {
        let clean = item_path(&db, &container, "x");
        let mut segments: Vec<&str> = clean.split('/').skip(1).collect();
        segments.insert(at.min(segments.len()), dots);
        let path = format!("/{}", segments.join("/"));
        prop_assert_eq!(get(&path).err(), Some(ProtocolError::MalformedPath), "{}", path);
    }

    #[test]
    fn an_encoded_separator_in_a_name_is_refused(
        db in any_name(),
        left in "[a-z]{0,4}",
        right in "[a-z]{0,4}",
        separator in prop_oneof![Just("%2F"), Just("%2f"), Just("%5C"), Just("%5c"), Just("%252F"), Just("\\")],
    ) {
        let path = format!("/dbs/{}/colls/{left}{separator}{right}/docs/x", encode(&db));
        prop_assert!(get(&path).is_err(), "{}", path);
    }

    #[test]
    fn a_resource_keyword_in_another_case_is_refused(
        db in any_name(),
        container in any_name(),
        which in 0usize..3,
        upper in proptest::collection::vec(any::<bool>(), 5),
    ) {
        let keywords = ["dbs", "colls", "docs"];
        let mut cased: String = keywords[which]
            .chars()
            .zip(&upper)
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assume!(cased != keywords[which]);
        let mut names = [encode(&db), encode(&container), "x".to_owned()];
        let mut parts = Vec::new();
        for (i, keyword) in keywords.iter().enumerate() {
            parts.push(if i == which { std::mem::take(&mut cased) } else { (*keyword).to_owned() });
            parts.push(std::mem::take(&mut names[i]));
        }
        let path = format!("/{}", parts.join("/"));
        prop_assert_eq!(get(&path).err(), Some(ProtocolError::MalformedPath), "{}", path);
    }

    #[test]
    fn extra_empty_segments_never_change_what_is_addressed(
        db in any_name(),
        container in any_name(),
        slashes in proptest::collection::vec(1usize..3, 6),
        trailing in any::<bool>(),
    ) {
        let clean = item_path(&db, &container, "x");
        let segments: Vec<&str> = clean.split('/').skip(1).collect();
        let mut noisy = String::new();
        for (segment, count) in segments.iter().zip(&slashes) {
            noisy.push_str(&"/".repeat(*count));
            noisy.push_str(segment);
        }
        if trailing {
            noisy.push('/');
        }
        let (a, b) = (get(&clean).expect("clean path"), get(&noisy).expect("noisy path"));
        prop_assert_eq!((a.kind, a.database, a.container, a.item_id), (b.kind, b.database, b.container, b.item_id));
    }

    /// Case C22: client hints, forwarding and override headers are never read.
    #[test]
    fn client_hint_headers_never_change_the_classification(
        values in proptest::collection::vec("[ -~]{0,16}", 8),
        method in prop_oneof![Just(Method::GET), Just(Method::DELETE), Just(Method::PUT)],
    ) {
        let names = [
            "x-ms-thinclient-proxy-operation-type",
            "x-ms-thinclient-proxy-resource-type",
            "x-ms-cosmos-intended-collection-rid",
            "x-ms-documentdb-query-enablecrosspartition",
            "x-http-method-override",
            "x-original-url",
            "x-forwarded-uri",
            "x-forwarded-for",
        ];
        let path = "/dbs/shop/colls/orders/docs/o1";
        let key = vec![("x-ms-documentdb-partitionkey".to_owned(), r#"["p"]"#.to_owned())];
        let mut noisy = key.clone();
        noisy.extend(names.iter().map(|n| (*n).to_owned()).zip(values));
        let plain = run(&method, path, &key).expect("plain request classifies");
        let hinted = run(&method, path, &noisy).expect("hints are ignored");
        prop_assert_eq!((plain.kind, plain.actions, plain.container), (hinted.kind, hinted.actions, hinted.container));
        prop_assert_eq!(plain.partition_key, hinted.partition_key);
    }

    #[test]
    fn classify_never_panics_on_any_request_target(
        path in "/[ -~]{0,40}",
        method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PATCH), Just(Method::OPTIONS)],
    ) {
        let _ = run(&method, &path, &[]);
    }
}
