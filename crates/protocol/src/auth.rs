//! Reading the client's `Authorization` header.
//!
//! Cosmos SDKs send an Entra ID token as `type=aad&ver=1.0&sig=<jwt>`, either raw (JS, Python)
//! or percent-encoded as a whole (.NET, Rust). Plain `Bearer <jwt>` is accepted too, for callers
//! that are not Cosmos SDKs. Key-derived credentials are refused here: the proxy holds the only
//! key. Only the framing is checked; the token itself is left to the validator.

use std::borrow::Cow;
use std::fmt;

use crate::error::ProtocolError;

/// How the token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScheme {
    /// `type=aad&ver=1.0&sig=<jwt>`, raw or percent-encoded.
    Aad,
    /// `Bearer <jwt>`.
    Bearer,
}

/// The token found in the header, not yet validated.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken<'a> {
    /// How the token was presented.
    pub scheme: TokenScheme,
    /// The token text; borrowed unless the header had to be percent-decoded.
    pub token: Cow<'a, str>,
}

impl fmt::Debug for ClientToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientToken")
            .field("scheme", &self.scheme)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Credential types that are derived from account keys and never accepted from clients.
const KEY_TYPES: [&str; 3] = ["master", "resource", "sas"];

/// Parses an `Authorization` header value.
///
/// Fails with [`ProtocolError::KeyCredential`] for `type=master`, `type=resource` and `type=sas`,
/// and with [`ProtocolError::MalformedAuthorization`] for anything else that is not one of the
/// two accepted forms.
pub fn parse_authorization(value: &[u8]) -> Result<ClientToken<'_>, ProtocolError> {
    let text = std::str::from_utf8(value).map_err(|_| ProtocolError::MalformedAuthorization)?;
    // A bearer token must be all visible ASCII, which also covers the check below: one pass
    // over the token instead of two.
    if let Some(token) = strip_bearer(text) {
        return bearer(token);
    }
    if !all_visible_or_space(text.as_bytes()) {
        return Err(ProtocolError::MalformedAuthorization);
    }

    let is_encoded = text.len() >= 7 && text[..7].eq_ignore_ascii_case("type%3D");
    if !is_encoded {
        return parse_typed(text).map(|token| ClientToken {
            scheme: TokenScheme::Aad,
            token: Cow::Borrowed(token),
        });
    }

    let decoded = percent_decode(text)?;
    if !all_visible_or_space(decoded.as_bytes()) {
        return Err(ProtocolError::MalformedAuthorization);
    }
    let token = parse_typed(&decoded)?.to_owned();
    Ok(ClientToken {
        scheme: TokenScheme::Aad,
        token: Cow::Owned(token),
    })
}

/// Whether every byte is a space or visible ASCII (`0x20..=0x7e`).
fn all_visible_or_space(bytes: &[u8]) -> bool {
    crate::headers::all_bytes(bytes, |byte| (b' '..=b'~').contains(&byte))
}

/// Returns what follows `Bearer ` (scheme in any case, exactly one space).
fn strip_bearer(text: &str) -> Option<&str> {
    let scheme = text.get(..7)?;
    scheme.eq_ignore_ascii_case("bearer ").then(|| &text[7..])
}

fn bearer(token: &str) -> Result<ClientToken<'_>, ProtocolError> {
    let visible = crate::headers::all_bytes(token.as_bytes(), |byte| (b'!'..=b'~').contains(&byte));
    if token.is_empty() || !visible {
        return Err(ProtocolError::MalformedAuthorization);
    }
    Ok(ClientToken {
        scheme: TokenScheme::Bearer,
        token: Cow::Borrowed(token),
    })
}

/// Splits `type=…&ver=…&sig=…` and returns the signature part of an AAD credential.
fn parse_typed(text: &str) -> Result<&str, ProtocolError> {
    let mut parts = text.splitn(3, '&');
    let kind = parts
        .next()
        .and_then(|part| part.strip_prefix("type="))
        .ok_or(ProtocolError::MalformedAuthorization)?;
    if let Some(refused) = KEY_TYPES.iter().find(|k| k.eq_ignore_ascii_case(kind)) {
        return Err(ProtocolError::KeyCredential { kind: refused });
    }
    if kind != "aad" {
        return Err(ProtocolError::MalformedAuthorization);
    }

    let version = parts.next().and_then(|part| part.strip_prefix("ver="));
    if version != Some("1.0") {
        return Err(ProtocolError::MalformedAuthorization);
    }

    let sig = parts
        .next()
        .and_then(|part| part.strip_prefix("sig="))
        .ok_or(ProtocolError::MalformedAuthorization)?;
    if sig.is_empty() || sig.contains(' ') {
        return Err(ProtocolError::MalformedAuthorization);
    }
    Ok(sig)
}

/// Decodes `%XX` escapes once; `+` stays a plus sign.
fn percent_decode(text: &str) -> Result<String, ProtocolError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = bytes
            .get(i + 1..i + 3)
            .and_then(crate::path::hex_pair)
            .ok_or(ProtocolError::MalformedAuthorization)?;
        out.push(escape);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| ProtocolError::MalformedAuthorization)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEwMCJ9.c2ln+/=";

    fn aad(value: &str) -> Result<String, ProtocolError> {
        parse_authorization(value.as_bytes()).map(|t| {
            assert_eq!(t.scheme, TokenScheme::Aad);
            t.token.into_owned()
        })
    }

    #[test]
    fn raw_aad_header_yields_the_token_borrowed() {
        let value = format!("type=aad&ver=1.0&sig={JWT}");
        let token = parse_authorization(value.as_bytes()).expect("raw aad header must parse");
        assert_eq!(token.scheme, TokenScheme::Aad);
        assert!(matches!(token.token, Cow::Borrowed(JWT)));
    }

    #[test]
    fn percent_encoded_aad_header_is_decoded_once_and_plus_is_kept() {
        let value = "type%3Daad%26ver%3D1.0%26sig%3DeyJh.eyJz.a%2Bb+c%2f%3D";
        assert_eq!(
            aad(value).expect("encoded header must parse"),
            "eyJh.eyJz.a+b+c/="
        );
    }

    #[test]
    fn encoded_prefix_is_recognised_in_any_hex_case() {
        assert_eq!(
            aad("TYPE%3daad%26ver%3d1.0%26sig%3dabc"),
            Err(ProtocolError::MalformedAuthorization)
        );
        assert_eq!(
            aad("type%3daad%26ver%3d1.0%26sig%3dabc").as_deref(),
            Ok("abc")
        );
    }

    #[test]
    fn double_encoding_is_decoded_only_once() {
        assert_eq!(
            aad("type%3Daad%26ver%3D1.0%26sig%3Da%252Bb").as_deref(),
            Ok("a%2Bb")
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_with_exactly_one_space() {
        for prefix in ["Bearer ", "bearer ", "BEARER "] {
            let value = format!("{prefix}{JWT}");
            let token = parse_authorization(value.as_bytes()).expect("bearer must parse");
            assert_eq!(token.scheme, TokenScheme::Bearer);
            assert_eq!(token.token, JWT);
        }
        for bad in [
            "Bearer  abc",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer a\u{7f}b",
            "Bearer caf\u{e9}",
            "Bearer a\r\nx-injected: 1",
            "Bearerabc",
            "Basic abc",
        ] {
            assert_eq!(
                parse_authorization(bad.as_bytes()),
                Err(ProtocolError::MalformedAuthorization),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_credentials_are_refused_by_kind_raw_and_encoded() {
        let cases = [
            ("type=master&ver=1.0&sig=abc", "master"),
            ("type%3Dmaster%26ver%3D1.0%26sig%3DYD98TEaA%2BV23", "master"),
            ("type=resource&ver=1&sig=abc", "resource"),
            ("type%3Dresource%26ver%3D1%26sig%3Dx", "resource"),
            ("type=sas&ver=1.0&sig=abc", "sas"),
            ("type%3Dsas%26ver%3D1.0%26sig%3Dabc", "sas"),
            ("type=MASTER&ver=1.0&sig=abc", "master"),
        ];
        for (value, kind) in cases {
            assert_eq!(
                parse_authorization(value.as_bytes()),
                Err(ProtocolError::KeyCredential { kind }),
                "{value}"
            );
        }
    }

    #[test]
    fn incomplete_or_reordered_aad_headers_are_malformed() {
        let bad = [
            "",
            "type=aad",
            "type=aad&ver=1.0",
            "type=aad&ver=1.0&sig=",
            "type=aad&sig=abc",
            "type=aad&ver=&sig=abc",
            "type=aad&ver=2.0&sig=abc",
            "ver=1.0&type=aad&sig=abc",
            "type=AAD&ver=1.0&sig=abc",
            "type=jwt&ver=1.0&sig=abc",
            "type=aad&ver=1.0&sig=a b",
            "type%3Daad%26ver%3D1.0%26sig%3D",
            "type%3Daad%26ver%3D1.0%26sig%3Dab%2",
            "type%3Daad%26ver%3D1.0%26sig%3Dab%zz",
            "type%3Daad%26ver%3D1.0%26sig%3Dab%00",
            "type%3Daad%26ver%3D1.0%26sig%3Dab%FF",
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        ];
        for value in bad {
            assert_eq!(
                parse_authorization(value.as_bytes()),
                Err(ProtocolError::MalformedAuthorization),
                "{value:?}"
            );
        }
    }

    #[test]
    fn control_characters_and_non_ascii_are_malformed() {
        let cases: [&[u8]; 5] = [
            b"type=aad&ver=1.0&sig=ab\x00c",
            b"type=aad&ver=1.0&sig=ab\tc",
            b"type=aad&ver=1.0&sig=ab\x7f",
            b"Bearer ab\xffc",
            "Bearer \u{00e9}".as_bytes(),
        ];
        for value in cases {
            assert_eq!(
                parse_authorization(value),
                Err(ProtocolError::MalformedAuthorization)
            );
        }
    }

    #[test]
    fn errors_and_debug_output_never_contain_the_token() {
        let secret = "eyJzZWNyZXQiOiJ0b2tlbiJ9";
        let value = format!("type=master&ver=1.0&sig={secret}");
        let err = parse_authorization(value.as_bytes()).expect_err("master must be refused");
        assert!(!err.to_string().contains(secret));
        assert!(!format!("{err:?}").contains(secret));

        let value = format!("Bearer {secret}");
        let token = parse_authorization(value.as_bytes()).expect("bearer must parse");
        let debug = format!("{token:?}");
        assert!(!debug.contains(secret));
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn the_visible_check_agrees_with_ascii_graphic_or_space_for_every_byte() {
        for byte in 0..=u8::MAX {
            let expected = byte == b' ' || byte.is_ascii_graphic();
            assert_eq!(all_visible_or_space(&[byte]), expected, "{byte:#04x}");
            let mut long = vec![b'a'; 70];
            long[65] = byte;
            assert_eq!(all_visible_or_space(&long), expected, "{byte:#04x} at 65");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_authorization_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_authorization(&bytes);
        }

        #[test]
        fn encoded_form_never_panics(tail in "[%0-9A-Fa-f&=a-z+]{0,40}") {
            let value = format!("type%3D{tail}");
            let _ = parse_authorization(value.as_bytes());
        }
    }
}
