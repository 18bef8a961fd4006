//! The request headers that decide how an operation is classified.
//!
//! Every header read here is read strictly: a repeated header, a boolean that is neither
//! `true` nor `false`, or a partition key that is not a visible-ASCII JSON array is refused,
//! so that the proxy and Cosmos can never read the same request two ways. Client hints such as
//! `x-ms-thinclient-proxy-operation-type` are deliberately not read at all (case C22).

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::error::ProtocolError;

// Parsed once: a lookup by `&str` would parse and check the name again on every request.
pub(crate) static PARTITION_KEY: HeaderName =
    HeaderName::from_static("x-ms-documentdb-partitionkey");
pub(crate) static PARTITION_KEY_RANGE_ID: HeaderName =
    HeaderName::from_static("x-ms-documentdb-partitionkeyrangeid");
pub(crate) static START_EPK: HeaderName = HeaderName::from_static("x-ms-start-epk");
pub(crate) static END_EPK: HeaderName = HeaderName::from_static("x-ms-end-epk");
pub(crate) static IS_BATCH: HeaderName = HeaderName::from_static("x-ms-cosmos-is-batch-request");
pub(crate) static BATCH_ATOMIC: HeaderName = HeaderName::from_static("x-ms-cosmos-batch-atomic");
pub(crate) static IS_QUERY_PLAN: HeaderName =
    HeaderName::from_static("x-ms-cosmos-is-query-plan-request");
pub(crate) static IS_QUERY: HeaderName = HeaderName::from_static("x-ms-documentdb-isquery");
pub(crate) static IS_UPSERT: HeaderName = HeaderName::from_static("x-ms-documentdb-is-upsert");
pub(crate) static A_IM: HeaderName = HeaderName::from_static("a-im");
pub(crate) static CONTENT_TYPE: HeaderName = http::header::CONTENT_TYPE;

/// Whether every byte of a header value is visible ASCII, a space or a horizontal tab: what
/// cosmogate forwards unchanged (case C26).
pub fn is_plain_header_value(bytes: &[u8]) -> bool {
    all_bytes(bytes, |byte| byte == b'\t' || (b' '..=b'~').contains(&byte))
}

/// Whether `accept` holds for every byte. Headers run to kilobytes on every request (the
/// token alone is about one), so each 32-byte chunk is tested without an early exit, which
/// lets the compiler vectorise the loop.
pub(crate) fn all_bytes(bytes: &[u8], accept: impl Fn(u8) -> bool + Copy) -> bool {
    bytes
        .chunks(32)
        .all(|chunk| chunk.iter().fold(true, |ok, &byte| ok & accept(byte)))
}

/// A logical partition key: the JSON array of the key's component values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionKey {
    /// The JSON text as the client sent it, kept for the audit record.
    pub raw: String,
    /// The decoded components (one for a simple key, more for a hierarchical key).
    pub values: Vec<serde_json::Value>,
}

impl PartitionKey {
    /// Parses the JSON text of a partition key; it must be an array.
    pub(crate) fn from_json_text(raw: &str) -> Option<PartitionKey> {
        let values: Vec<serde_json::Value> = serde_json::from_str(raw).ok()?;
        Some(PartitionKey {
            raw: raw.to_owned(),
            values,
        })
    }

    /// Parses the header form, which must be visible ASCII: SDKs escape everything else as
    /// `\uXXXX` (case C26), so raw UTF-8, DEL or control bytes mean a client we cannot trust to
    /// agree with Cosmos about the key.
    fn from_header(value: &HeaderValue) -> Option<PartitionKey> {
        let bytes = value.as_bytes();
        if !bytes.iter().all(|b| *b == b' ' || b.is_ascii_graphic()) {
            return None;
        }
        Self::from_json_text(std::str::from_utf8(bytes).ok()?)
    }
}

/// The header's only value, if present; a repeated header is refused.
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: &'static HeaderName,
) -> Result<Option<&'h HeaderValue>, ProtocolError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ProtocolError::MalformedHeader {
            name: name.as_str(),
        });
    }
    Ok(first)
}

/// A boolean header: absent is false; `true` and `false` in any case (Python sends `True`).
pub(crate) fn flag(headers: &HeaderMap, name: &'static HeaderName) -> Result<bool, ProtocolError> {
    let Some(value) = single(headers, name)? else {
        return Ok(false);
    };
    let text = value.as_bytes().trim_ascii();
    if text.eq_ignore_ascii_case(b"true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case(b"false") {
        Ok(false)
    } else {
        Err(ProtocolError::MalformedHeader {
            name: name.as_str(),
        })
    }
}

/// Whether a header is present (once) with any value.
pub(crate) fn present(
    headers: &HeaderMap,
    name: &'static HeaderName,
) -> Result<bool, ProtocolError> {
    Ok(single(headers, name)?.is_some())
}

/// Whether the body is declared as a query (`application/query+json`, parameters ignored).
pub(crate) fn is_query_content_type(headers: &HeaderMap) -> Result<bool, ProtocolError> {
    let Some(value) = single(headers, &CONTENT_TYPE)? else {
        return Ok(false);
    };
    let essence = value
        .as_bytes()
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    Ok(essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/query+json"))
}

/// The `x-ms-documentdb-partitionkey` header, parsed.
pub(crate) fn partition_key(headers: &HeaderMap) -> Result<Option<PartitionKey>, ProtocolError> {
    let malformed = ProtocolError::MalformedHeader {
        name: PARTITION_KEY.as_str(),
    };
    match single(headers, &PARTITION_KEY)? {
        None => Ok(None),
        Some(value) => PartitionKey::from_header(value).map(Some).ok_or(malformed),
    }
}

/// Whether the request is scoped to a physical partition key range or an effective
/// partition key (EPK) range rather than to one logical partition key. Any of the three
/// headers, with any value, counts; a repeated one is refused.
pub(crate) fn range_scoped(headers: &HeaderMap) -> Result<bool, ProtocolError> {
    let mut scoped = false;
    for name in [&PARTITION_KEY_RANGE_ID, &START_EPK, &END_EPK] {
        scoped |= present(headers, name)?;
    }
    Ok(scoped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(pairs: &[(&HeaderName, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let value = HeaderValue::from_bytes(value).expect("test header value must be valid");
            headers.append(*name, value);
        }
        headers
    }

    #[test]
    fn plain_header_values_are_visible_ascii_space_or_tab_at_any_position() {
        assert!(is_plain_header_value(b""));
        assert!(is_plain_header_value(b"type=aad&ver=1.0&sig=a.b.c"));
        assert!(is_plain_header_value(b"a\tb c~"));
        // A bad byte is found wherever it sits, in the first chunk, the last or between.
        for len in [1, 31, 32, 33, 64, 1000] {
            for at in [0, len / 2, len - 1] {
                for bad in [0x00, 0x0a, 0x0d, 0x1f, 0x7f, 0x80, 0xff] {
                    let mut value = vec![b'x'; len];
                    value[at] = bad;
                    assert!(
                        !is_plain_header_value(&value),
                        "len {len} at {at} byte {bad:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn flags_accept_true_and_false_in_any_case() {
        for (text, expected) in [
            ("true", true),
            ("True", true),
            (" TRUE ", true),
            ("False", false),
        ] {
            let headers = map(&[(&IS_QUERY, text.as_bytes())]);
            assert_eq!(flag(&headers, &IS_QUERY), Ok(expected), "{text}");
        }
        assert_eq!(flag(&HeaderMap::new(), &IS_QUERY), Ok(false));
    }

    #[test]
    fn flags_refuse_other_values_and_repeats() {
        let malformed = Err(ProtocolError::MalformedHeader {
            name: IS_UPSERT.as_str(),
        });
        for text in ["1", "yes", "", "true,false", "tru"] {
            let headers = map(&[(&IS_UPSERT, text.as_bytes())]);
            assert_eq!(flag(&headers, &IS_UPSERT), malformed, "{text:?}");
        }
        let headers = map(&[(&IS_UPSERT, b"true"), (&IS_UPSERT, b"true")]);
        assert_eq!(flag(&headers, &IS_UPSERT), malformed);
    }

    #[test]
    fn range_headers_mark_a_request_as_range_scoped() {
        assert_eq!(range_scoped(&HeaderMap::new()), Ok(false));
        for name in [&PARTITION_KEY_RANGE_ID, &START_EPK, &END_EPK] {
            assert_eq!(range_scoped(&map(&[(name, b"0")])), Ok(true), "{name}");
            let repeated = map(&[(name, b"0"), (name, b"1")]);
            assert_eq!(
                range_scoped(&repeated),
                Err(ProtocolError::MalformedHeader {
                    name: name.as_str()
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn query_content_type_ignores_case_and_parameters() {
        let headers = map(&[(&CONTENT_TYPE, b"Application/Query+JSON; charset=utf-8")]);
        assert_eq!(is_query_content_type(&headers), Ok(true));
        let headers = map(&[(&CONTENT_TYPE, b"application/json")]);
        assert_eq!(is_query_content_type(&headers), Ok(false));
    }

    #[test]
    fn partition_key_header_decodes_json_escapes() {
        let headers = map(&[(&PARTITION_KEY, br#"["M\u00fcller"]"#)]);
        let key = partition_key(&headers)
            .expect("escaped key must parse")
            .expect("key is set");
        assert_eq!(key.values, vec![json!("Müller")]);
        assert_eq!(key.raw, r#"["M\u00fcller"]"#);
    }

    #[test]
    fn hierarchical_and_special_partition_keys_parse() {
        for (raw, values) in [
            (r#"["a","b"]"#, vec![json!("a"), json!("b")]),
            ("[1]", vec![json!(1)]),
            ("[{}]", vec![json!({})]),
            ("[]", vec![]),
            ("[null]", vec![json!(null)]),
        ] {
            let headers = map(&[(&PARTITION_KEY, raw.as_bytes())]);
            let key = partition_key(&headers)
                .expect("key must parse")
                .expect("key is set");
            assert_eq!(key.values, values, "{raw}");
        }
    }

    #[test]
    fn partition_key_header_with_raw_bytes_or_non_array_is_malformed() {
        let malformed = Err(ProtocolError::MalformedHeader {
            name: PARTITION_KEY.as_str(),
        });
        let bad: [&[u8]; 8] = [
            "[\"Müller\"]".as_bytes(),
            b"[\"a\x80b\"]",
            b"[\"a\tb\"]",
            b"\"p1\"",
            b"p1",
            b"{\"a\":1}",
            b"[\"p1\"",
            b"",
        ];
        for value in bad {
            let headers = map(&[(&PARTITION_KEY, value)]);
            assert_eq!(
                partition_key(&headers),
                malformed,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let headers = map(&[(&PARTITION_KEY, b"[\"a\"]"), (&PARTITION_KEY, b"[\"b\"]")]);
        assert_eq!(partition_key(&headers), malformed);
    }
}
