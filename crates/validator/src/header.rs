//! The JOSE header, read by this crate before any key is looked up.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::asymmetric_algorithm;
use crate::error::TokenError;

/// Header members that are refused outright. `jwk`, `jku`, `x5u` and `x5c` would let the token
/// choose its own key or make us fetch a URL it names; `crit` lists extensions that must be
/// understood, and we understand none; `b64` (RFC 7797) only has a meaning through `crit`;
/// `zip` and `enc` belong to JWE, never to a signed token.
const FORBIDDEN: [&str; 8] = ["jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"];

/// The header members the validator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoseHeader {
    pub(crate) alg: Algorithm,
    pub(crate) typ: Option<String>,
    pub(crate) kid: Option<String>,
}

/// Reads the header. `alg` must name an asymmetric algorithm this crate supports; `typ` and
/// `kid`, when present, must be strings. Other members are ignored (RFC 7515 §4).
pub(crate) fn read(header: &Map<String, Value>) -> Result<JoseHeader, TokenError> {
    if let Some(name) = FORBIDDEN
        .into_iter()
        .find(|name| header.contains_key(*name))
    {
        return Err(TokenError::ForbiddenHeader(name));
    }

    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            asymmetric_algorithm(name).ok_or(TokenError::UnsupportedAlgorithm)?
        }
        Some(_) => return Err(TokenError::Malformed("header alg is not a string")),
        None => return Err(TokenError::Malformed("header has no alg")),
    };
    let typ = optional_string(header, "typ", "header typ is not a string")?;
    let kid = optional_string(header, "kid", "header kid is not a string")?;
    Ok(JoseHeader { alg, typ, kid })
}

fn optional_string(
    header: &Map<String, Value>,
    name: &str,
    wrong_type: &'static str,
) -> Result<Option<String>, TokenError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(TokenError::Malformed(wrong_type)),
    }
}

/// `typ` in the form used for comparison: ASCII lowercase, `application/` prefix removed
/// (RFC 7515 §4.1.9 lets senders omit it).
pub(crate) fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).expect("test header must parse")
    }

    #[test]
    fn a_plain_header_is_read() {
        let read = read(&header(
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1","nonce":"x"}"#,
        ));
        let expected = JoseHeader {
            alg: Algorithm::ES256,
            typ: Some("at+jwt".into()),
            kid: Some("k1".into()),
        };
        assert_eq!(read, Ok(expected));
    }

    #[test]
    fn none_and_symmetric_algorithms_are_unsupported() {
        for alg in [
            "none", "None", "NONE", "nOnE", "", "HS256", "HS512", "ES512", "rs256",
        ] {
            let text = format!(r#"{{"alg":"{alg}"}}"#);
            assert_eq!(
                read(&header(&text)),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn missing_or_non_string_alg_is_malformed() {
        for text in [r#"{}"#, r#"{"alg":null}"#, r#"{"alg":["RS256"]}"#] {
            assert!(
                matches!(read(&header(text)), Err(TokenError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn key_material_and_crit_headers_are_forbidden() {
        let cases = [
            (r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#, "jwk"),
            (r#"{"alg":"RS256","jku":"http://127.0.0.1/k"}"#, "jku"),
            (r#"{"alg":"RS256","x5u":"http://127.0.0.1/c"}"#, "x5u"),
            (r#"{"alg":"RS256","x5c":["MIIB"]}"#, "x5c"),
            (r#"{"alg":"RS256","crit":[]}"#, "crit"),
            (r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "crit"),
            (r#"{"alg":"RS256","crit":"exp"}"#, "crit"),
            (r#"{"alg":"RS256","b64":false}"#, "b64"),
            (r#"{"alg":"RS256","zip":"DEF"}"#, "zip"),
        ];
        for (text, member) in cases {
            assert_eq!(
                read(&header(text)),
                Err(TokenError::ForbiddenHeader(member)),
                "{text}"
            );
        }
    }

    #[test]
    fn non_string_kid_or_typ_is_malformed() {
        for text in [r#"{"alg":"RS256","kid":5}"#, r#"{"alg":"RS256","kid":{}}"#] {
            assert!(
                matches!(read(&header(text)), Err(TokenError::Malformed(_))),
                "{text}"
            );
        }
        let typ = header(r#"{"alg":"RS256","typ":1}"#);
        assert!(matches!(read(&typ), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn typ_comparison_ignores_case_and_the_application_prefix() {
        assert_eq!(normalize_typ("JWT"), "jwt");
        assert_eq!(normalize_typ("application/AT+JWT"), "at+jwt");
        assert_eq!(normalize_typ("at+jwt"), "at+jwt");
    }
}
