//! Strict reading of the JWS compact serialization: three segments, canonical unpadded
//! base64url (RFC 7515 §2 and §3.1), JSON objects without duplicate members.

use std::fmt;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::error::TokenError;

/// The decoded parts of a compact JWS whose encoding is canonical.
#[derive(Debug)]
pub(crate) struct Compact {
    pub(crate) header: Map<String, Value>,
    pub(crate) payload: Map<String, Value>,
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
}

/// Splits and decodes `token`; refuses anything that another string could also decode to.
pub(crate) fn parse(token: &str) -> Result<Compact, TokenError> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::Malformed(
            "token must have exactly three segments",
        ));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed("token segments must not be empty"));
    }

    let header = parse_object(&decode_segment(header)?)
        .ok_or(TokenError::Malformed("header is not a json object"))?;
    let payload = parse_object(&decode_segment(payload)?)
        .ok_or(TokenError::Malformed("payload is not a json object"))?;
    let signature = decode_segment(signature)?;
    Ok(Compact {
        header,
        payload,
        signature,
    })
}

/// The one spelling RFC 7515 allows: the URL-safe alphabet (which has no whitespace), no
/// padding, and zero unused trailing bits. Every setting is spelled out here rather than taken
/// from a preset, because the rule is this configuration: with it, decoding is one-to-one, so a
/// segment that decodes is the canonical encoding of its bytes (a property test below holds it
/// to that; the decoder no longer re-encodes each segment to compare).
const CANONICAL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes one segment, accepting only the one canonical spelling of its bytes.
pub(crate) fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    CANONICAL
        .decode(segment)
        .map_err(|_| TokenError::Malformed("segment is not canonical base64url"))
}

/// Parses `bytes` as one JSON object, refusing duplicate member names at any depth (a second
/// `exp` or `iss` would otherwise silently win in one parser and lose in another).
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(Value::Object(map))) => Some(map),
        _ => None,
    }
}

/// A JSON value whose objects had no duplicate member names.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a json value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(value.into())))
    }

    fn visit_u64<E>(self, value: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(value.into())))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<StrictValue, E> {
        let number = Number::from_f64(value).ok_or_else(|| E::custom("number is not finite"))?;
        Ok(StrictValue(Value::Number(number)))
    }

    fn visit_str<E>(self, value: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(value)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            // One search per member: the vacant slot found by the duplicate check is filled.
            let Entry::Vacant(slot) = map.entry(name) else {
                return Err(de::Error::custom("duplicate member"));
            };
            let StrictValue(value) = access.next_value()?;
            slot.insert(value);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        CANONICAL.encode(text)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    #[test]
    fn a_well_formed_token_is_decoded() {
        let parsed = parse(&token(r#"{"alg":"RS256"}"#, r#"{"sub":"u"}"#)).expect("parses");
        assert_eq!(parsed.header["alg"], "RS256");
        assert_eq!(parsed.payload["sub"], "u");
    }

    #[test]
    fn segment_counts_other_than_three_are_malformed() {
        let two = format!("{}.{}", b64("{}"), b64("{}"));
        for text in [
            two.clone(),
            format!("{two}."),
            format!("{two}.c2ln.c2ln"),
            String::new(),
        ] {
            assert!(
                matches!(parse(&text), Err(TokenError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn padding_standard_alphabet_and_whitespace_are_refused() {
        for segment in [
            "c2ln=", "c2l=n", "ab+/", "ab/_", "c2 ln", "c2ln\n", "c2!n", "c2%6e",
        ] {
            assert!(decode_segment(segment).is_err(), "{segment:?}");
        }
        assert_eq!(decode_segment("c2ln").expect("canonical"), b"sig");
    }

    #[test]
    fn non_zero_unused_trailing_bits_are_refused() {
        // "AQ" is the canonical spelling of [0x01]; "AR" decodes to the same byte with a
        // non-zero unused bit.
        assert_eq!(decode_segment("AQ").expect("canonical"), [1]);
        assert!(decode_segment("AR").is_err());
    }

    /// Every string over the alphabet, `=`, and a few strays that decodes at all is the
    /// canonical encoding of what it decodes to: the one-spelling rule, without re-encoding.
    #[test]
    fn whatever_decodes_is_the_canonical_spelling_of_its_bytes() {
        use rand::{Rng, SeedableRng};
        const CHARS: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \n.";
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut decoded, mut refused) = (0, 0);
        for _ in 0..200_000 {
            let len = rng.random_range(1..12);
            let text: String = (0..len)
                .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
                .collect();
            match decode_segment(&text) {
                Ok(bytes) => {
                    decoded += 1;
                    assert_eq!(CANONICAL.encode(&bytes), text, "{text:?}");
                }
                Err(_) => refused += 1,
            }
        }
        // Both branches ran often enough for the property to mean something.
        assert!(decoded > 1_000 && refused > 1_000, "{decoded} {refused}");
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"exp":1,"exp":2}"#).is_none());
        assert!(parse_object(br#"{"a":{"b":1,"b":1}}"#).is_none());
        assert!(parse_object(br#"{"a":[{"b":1,"b":2}]}"#).is_none());
        assert!(parse_object(br#"{"a":{"b":1},"b":1}"#).is_some());
    }

    #[test]
    fn non_objects_and_trailing_bytes_are_refused() {
        for text in [&b"[]"[..], b"\"x\"", b"null", b"{} {}", b"{", b"\xff"] {
            assert!(parse_object(text).is_none());
        }
    }

    #[test]
    fn deeply_nested_json_is_refused_without_panicking() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_object(deep.as_bytes()).is_none());
    }
}
