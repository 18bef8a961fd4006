//! The gateway's path rule: from a request path to segments, resource type and resource link.
//!
//! The proxy refuses rather than normalises anything that could make the policy and Cosmos see
//! different resources (case C16): dot segments, escaped `/` or `\`, escapes of unreserved
//! characters, escapes that survive one round of decoding, control characters, and resource-type
//! keywords in the wrong case (Cosmos compares those case-insensitively). Empty segments are
//! dropped, as Cosmos does, because Python sends a trailing `/` on every path.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::error::ProtocolError;

/// A request path split the way the Cosmos gateway splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath<'a> {
    /// Non-empty segments, each percent-decoded exactly once; a segment without escapes
    /// borrows from the path.
    pub segments: Vec<Cow<'a, str>>,
    /// The resource type the request signs and addresses (`""` for the account).
    pub resource_type: String,
    /// The resource link used in a master-key signature (`""` for the account and `/dbs`).
    pub resource_link: String,
    /// True when the database segment is a `_rid` rather than a name.
    pub rid_based: bool,
}

/// Resource-type keywords that must appear in lower case at a keyword position.
const KEYWORDS: [&str; 17] = [
    "addresses",
    "attachments",
    "clientencryptionkeys",
    "colls",
    "conflicts",
    "dbs",
    "docs",
    "media",
    "offers",
    "operations",
    "partitions",
    "permissions",
    "pkranges",
    "sprocs",
    "triggers",
    "udfs",
    "users",
];

/// Splits and decodes a raw request path (it may still carry `?query` or `#fragment`, which are
/// ignored here; the classifier decides whether they are acceptable).
pub fn parse_path(raw_path: &str) -> Result<ResourcePath<'_>, ProtocolError> {
    parse_path_and_cut(raw_path).map(|(path, _)| path)
}

/// [`parse_path`], and whether the raw path went on past a `?` or `#`, which the search for the
/// cut has found already.
pub(crate) fn parse_path_and_cut(
    raw_path: &str,
) -> Result<(ResourcePath<'_>, bool), ProtocolError> {
    // The path ends at the first `?` or `#` (both ASCII, so a byte search finds a char
    // boundary); what comes before must be visible ASCII.
    let cut = raw_path.bytes().position(|b| b == b'?' || b == b'#');
    let path = &raw_path[..cut.unwrap_or(raw_path.len())];
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProtocolError::MalformedPath);
    }

    // Room for the deepest resource path (`dbs/d/colls/c/docs/i/attachments/a`) at once.
    let mut segments = Vec::with_capacity(8);
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        segments.push(decode_segment(segment)?);
    }
    check_keyword_case(&segments)?;

    let rid_based = segments.first().is_some_and(|s| s == "dbs")
        && segments.get(1).is_some_and(|s| is_database_rid(s));
    let (resource_type, link_len) = type_and_link(&segments);
    let mut resource_link = segments[..link_len].join("/");
    if rid_based || resource_type == "offers" {
        resource_link.make_ascii_lowercase();
    }

    let path = ResourcePath {
        resource_type: resource_type.to_owned(),
        segments,
        resource_link,
        rid_based,
    };
    Ok((path, cut.is_some()))
}

/// Odd counts are feeds, even counts single resources, with one special case for
/// `dbs/{d}/colls/{c}/operations/{op}`, which signs as its container.
fn type_and_link<'s>(segments: &'s [Cow<'_, str>]) -> (&'s str, usize) {
    let n = segments.len();
    if n == 0 {
        return ("", 0);
    }
    if n == 6 && segments[0] == "dbs" && segments[2] == "colls" && segments[4] == "operations" {
        return ("colls", 4);
    }
    if n % 2 == 1 {
        (&segments[n - 1], n - 1)
    } else {
        (&segments[n - 2], n)
    }
}

fn check_keyword_case(segments: &[Cow<'_, str>]) -> Result<(), ProtocolError> {
    let miscased = segments.iter().step_by(2).any(|segment| {
        let ascii = segment.is_ascii();
        let folds_to = |keyword: &&str| {
            segment.eq_ignore_ascii_case(keyword)
                // Non-ASCII letters that case-fold to ASCII ones (`ſ` to `s`, the Kelvin sign
                // to `k`) would pass a Unicode case-insensitive compare in another component.
                || (!ascii
                    && (segment.to_lowercase() == **keyword
                        || segment.to_uppercase().to_lowercase() == **keyword))
        };
        KEYWORDS
            .iter()
            .any(|keyword| folds_to(keyword) && segment != keyword)
    });
    if miscased {
        return Err(ProtocolError::MalformedPath);
    }
    Ok(())
}

/// Decodes one segment's `%XX` escapes, once, and checks the result.
fn decode_segment(raw: &str) -> Result<Cow<'_, str>, ProtocolError> {
    if !raw.contains('%') {
        // Nothing to decode (the common case): the segment is borrowed. `parse_path` has cut
        // the path at `?` and `#`, split it at `/` and checked it is all visible ASCII, so of
        // `check_segment`'s refusals only a dot segment and `\` can occur here.
        debug_assert!(
            raw.bytes()
                .all(|b| b.is_ascii_graphic() && !b"/?#".contains(&b))
        );
        if raw == "." || raw == ".." || raw.contains('\\') {
            return Err(ProtocolError::MalformedPath);
        }
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = bytes
            .get(i + 1..i + 3)
            .and_then(hex_pair)
            .ok_or(ProtocolError::MalformedPath)?;
        if is_unreserved(byte) {
            return Err(ProtocolError::MalformedPath);
        }
        out.push(byte);
        i += 3;
    }
    let segment = String::from_utf8(out).map_err(|_| ProtocolError::MalformedPath)?;
    check_segment(&segment)?;
    Ok(Cow::Owned(segment))
}

/// A decoded segment may not walk the tree, split into more segments, or carry another layer
/// of escapes that some later component might decode.
fn check_segment(segment: &str) -> Result<(), ProtocolError> {
    if segment == "." || segment == ".." {
        return Err(ProtocolError::MalformedPath);
    }
    let forbidden = |c: char| matches!(c, '/' | '\\' | '?' | '#') || c.is_control();
    if segment.chars().any(forbidden) || has_escape(segment.as_bytes()) {
        return Err(ProtocolError::MalformedPath);
    }
    Ok(())
}

fn has_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w[0] == b'%' && hex_pair(&w[1..]).is_some())
}

/// RFC 3986 unreserved characters, which canonical clients never escape.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Decodes two hex digits (either case) into a byte.
pub(crate) fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    match pair {
        [hi, lo] => Some((digit(*hi)? * 16 + digit(*lo)?) as u8),
        _ => None,
    }
}

/// Cosmos' base64 flavour for `_rid`s: `-` stands for `/`, padding always present; we are
/// lenient about trailing bits so that we never call something a name that Cosmos reads as a RID.
const RID_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// True when Cosmos would read this database segment as a database `_rid`.
///
/// Cosmos treats the segment after `dbs` as a RID when it is padded base64 whose decoded bytes
/// name only a database: the first four bytes, with everything after them zero. A database RID
/// is normally exactly four bytes (`gAAMAA==`).
fn is_database_rid(segment: &str) -> bool {
    if segment.is_empty() || !segment.len().is_multiple_of(4) {
        return false;
    }
    let Ok(bytes) = RID_BASE64.decode(segment.replace('-', "/")) else {
        return false;
    };
    bytes.len() >= 4 && bytes.len().is_multiple_of(4) && bytes[4..].iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> ResourcePath<'_> {
        parse_path(raw).unwrap_or_else(|e| panic!("{raw} must parse: {e}"))
    }

    fn type_and_link_of(raw: &str) -> (String, String) {
        let p = parsed(raw);
        (p.resource_type, p.resource_link)
    }

    fn pair(t: &str, l: &str) -> (String, String) {
        (t.to_owned(), l.to_owned())
    }

    #[test]
    fn account_root_has_empty_type_and_link() {
        assert_eq!(type_and_link_of("/"), pair("", ""));
        assert_eq!(type_and_link_of("/?query"), pair("", ""));
    }

    #[test]
    fn odd_segment_counts_are_feeds_signed_by_their_parent() {
        assert_eq!(type_and_link_of("/dbs"), pair("dbs", ""));
        assert_eq!(type_and_link_of("/dbs/d/colls"), pair("colls", "dbs/d"));
        assert_eq!(
            type_and_link_of("/dbs/d/colls/c/docs"),
            pair("docs", "dbs/d/colls/c")
        );
    }

    #[test]
    fn even_segment_counts_are_single_resources_signed_by_their_own_link() {
        assert_eq!(type_and_link_of("/dbs/d"), pair("dbs", "dbs/d"));
        assert_eq!(
            type_and_link_of("/dbs/d/colls/c/docs/item1"),
            pair("docs", "dbs/d/colls/c/docs/item1")
        );
    }

    #[test]
    fn python_trailing_slash_and_js_style_agree() {
        assert_eq!(
            parsed("/dbs/d/colls/c/docs/"),
            parsed("/dbs/d/colls/c/docs")
        );
        assert_eq!(parsed("//dbs//d/colls/c/"), parsed("/dbs/d/colls/c"));
    }

    #[test]
    fn partition_key_delete_signs_as_its_container() {
        assert_eq!(
            type_and_link_of("/dbs/d/colls/c/operations/partitionkeydelete"),
            pair("colls", "dbs/d/colls/c")
        );
    }

    #[test]
    fn name_based_links_keep_case_and_are_decoded() {
        let p = parsed("/dbs/Experiment%20DB/colls/Items%20%C3%BC");
        assert_eq!(p.resource_link, "dbs/Experiment DB/colls/Items ü");
        assert_eq!(p.segments, ["dbs", "Experiment DB", "colls", "Items ü"]);
        assert!(!p.rid_based);
        assert_eq!(parsed("/dbs/d/colls/c/docs/100%25").segments[5], "100%");
    }

    #[test]
    fn rid_based_links_are_lower_cased() {
        let p = parsed("/dbs/gAAMAA==/colls/gAAMAIAAAAE=/docs");
        assert!(p.rid_based);
        assert_eq!(p.resource_link, "dbs/gaamaa==/colls/gaamaiaaaae=");
        assert!(parsed("/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/pkranges").rid_based);
    }

    #[test]
    fn offers_links_are_lower_cased() {
        assert_eq!(
            type_and_link_of("/offers/AbCd"),
            pair("offers", "offers/abcd")
        );
    }

    #[test]
    fn only_the_database_segment_decides_rid_addressing() {
        assert!(!parsed("/dbs/shop/colls/XP0mAJ3H-AA=/docs").rid_based);
        assert!(!parsed("/dbs/shop/colls/XP0mAA==").rid_based);
        assert!(!parsed("/dbs/shop").rid_based);
        assert!(!parsed("/dbs/orders12").rid_based);
        // Padded base64 whose bytes name only a database is a RID even when longer than 4 bytes.
        assert!(parsed("/dbs/gAAMAAAAAAA=").rid_based);
        assert!(!parsed("/dbs/gAAMAIAAAAE=").rid_based);
    }

    #[test]
    fn query_string_and_fragment_never_reach_the_segments() {
        let clean = parsed("/dbs/shop/colls/payroll/docs/p1");
        assert_eq!(parsed("/dbs/shop/colls/payroll/docs/p1?/healthz"), clean);
        assert_eq!(parsed("/dbs/shop/colls/payroll/docs/p1#/healthz"), clean);
        assert_eq!(
            parsed("/?x=/dbs/shop/colls/payroll").segments,
            Vec::<Cow<str>>::new()
        );
        assert_eq!(
            parsed("/dbs/shop/colls/orders/docs/o1?p=../../payroll").segments[3],
            "orders"
        );
    }

    #[test]
    fn c16_path_tricks_are_refused() {
        let tricks = [
            "/dbs/shop/colls/orders/../payroll/docs/p1",
            "/dbs/shop/colls/orders/%2E%2E/payroll/docs/p1",
            "/dbs/shop/colls/orders/%2e%2e/payroll/docs/p1",
            "/dbs/shop/colls/orders/..%2Fpayroll/docs/p1",
            "/dbs/shop/colls/orders%2F..%2Fpayroll/docs/p1",
            "/dbs/shop/colls/orders%2f..%2fpayroll/docs/p1",
            "/dbs/shop/colls/./payroll/docs/p1",
            "/DBS/shop/COLLS/payroll/docs/p1",
            "/dbs/shop/Colls/payroll/docs/p1",
            "/dbs/shop/colls/payroll/Docs/p1",
            "/dbs/shop/Users/u1/permissions",
            "/dbs/shop/colls/payroll%5Cdocs/p1",
            "/dbs/shop/colls/payroll\\docs\\p1",
            "/dbs/shop/colls/orders%252F..%252Fpayroll/docs/p1",
            "/dbs/shop/colls/orders;x=/../payroll/docs/p1",
            "/dbs/shop/colls/orders/docs/%00",
            "/dbs/shop/colls/orders/docs/a%7Fb",
            "/dbs/shop/colls/orders/docs/a%C2%85b",
            "/dbs/shop/colls/%6Frders/docs/o1",
            "/dbs/shop/colls/orders%3F/../payroll/docs/p1",
            "/dbs/shop/colls/orders/docs/a%23b",
            "/dbs/shop/colls/orders/docs/%",
            "/dbs/shop/colls/orders/docs/%4",
            "/dbs/shop/colls/orders/docs/%zz",
            "/dbs/shop/colls/orders/docs/%FF",
            "/dbs/shop/colls/orders/docs/a b",
            "/dbs/shop/colls/orders/docs/\u{00fc}",
            "dbs/shop/colls/orders",
            "*",
        ];
        for raw in tricks {
            assert_eq!(parse_path(raw), Err(ProtocolError::MalformedPath), "{raw}");
        }
    }

    #[test]
    fn a_differently_cased_name_is_a_different_resource() {
        let p = parsed("/dbs/shop/colls/Payroll/docs/p1");
        assert_eq!(p.segments[3], "Payroll");
        assert_eq!(p.resource_link, "dbs/shop/colls/Payroll/docs/p1");
    }

    #[test]
    fn names_that_merely_resemble_keywords_in_value_positions_are_kept() {
        let p = parsed("/dbs/DBS/colls/Docs/docs/COLLS");
        assert_eq!(p.segments, ["dbs", "DBS", "colls", "Docs", "docs", "COLLS"]);
    }

    #[test]
    fn reserved_characters_may_be_escaped() {
        let p = parsed("/dbs/d/colls/c/docs/a%3Bb%2Bc%40d%3D");
        assert_eq!(p.segments[5], "a;b+c@d=");
        assert_eq!(parsed("/dbs/d/colls/c/docs/a+b").segments[5], "a+b");
    }

    proptest::proptest! {
        #[test]
        fn an_unescaped_segment_is_refused_exactly_when_the_full_checks_refuse_it(
            raw in "[!-~&&[^/?#%]]{1,12}|\\.|\\.\\."
        ) {
            // What `parse_path` hands over without `%`: visible ASCII, no separators.
            proptest::prop_assert_eq!(decode_segment(&raw).is_ok(), check_segment(&raw).is_ok());
        }

        #[test]
        fn parse_path_never_panics_and_segments_never_hold_separators(raw in "\\PC{0,48}") {
            if let Ok(p) = parse_path(&raw) {
                for s in &p.segments {
                    proptest::prop_assert!(!s.is_empty());
                    proptest::prop_assert!(!s.contains('/') && !s.contains('\\'));
                    proptest::prop_assert!(s != "." && s != "..");
                }
            }
        }

        #[test]
        fn escaped_paths_never_hold_separators(
            parts in proptest::collection::vec("(%[0-9A-Fa-f]{2}|[a-z./\\\\%])*", 0..6)
        ) {
            let raw = format!("/{}", parts.join("/"));
            if let Ok(p) = parse_path(&raw) {
                for s in &p.segments {
                    proptest::prop_assert!(!s.contains('/') && !s.contains('\\'));
                    proptest::prop_assert!(s != "." && s != "..");
                }
            }
        }
    }
}
