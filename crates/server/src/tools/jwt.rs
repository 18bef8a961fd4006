//! Reading the claims of a token without verifying it, for `explain` only.
//!
//! This is deliberately not the validator: nothing here checks a signature, an issuer, an
//! audience or a lifetime, and its result must never authorise a request.

use serde_json::{Map, Value};

/// The claims of a compact JWT (or of an `Authorization` value carrying one), unverified.
pub(crate) fn unverified_claims(token: &str) -> Result<Map<String, Value>, String> {
    let token = token.trim();
    let bare = match cosmogate_protocol::parse_authorization(token.as_bytes()) {
        Ok(client) => client.token.into_owned(),
        Err(_) => token.to_owned(),
    };
    let mut parts = bare.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a compact JWT (three dot-separated parts)".to_owned());
    };
    let bytes = base64url(payload).ok_or("the token payload is not base64url")?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err("the token payload is not a JSON object".to_owned()),
    }
}

/// Decodes base64url, with or without padding.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // {"alg":"none"} . {"iss":"http://127.0.0.1:9400","roles":["a"]} . sig
    const TOKEN: &str =
        "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjk0MDAiLCJyb2xlcyI6WyJhIl19.c2ln";

    #[test]
    fn claims_are_read_from_a_bare_token_and_from_authorization_forms() {
        for form in [
            TOKEN.to_owned(),
            format!("Bearer {TOKEN}"),
            format!("type=aad&ver=1.0&sig={TOKEN}"),
            format!("  {TOKEN}\n"),
        ] {
            let claims = unverified_claims(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(claims["iss"], "http://127.0.0.1:9400");
            assert_eq!(claims["roles"], serde_json::json!(["a"]));
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        for bad in ["", "abc", "a.b", "a.b.c.d", "a.!!!.c", "a.bm90IGpzb24.c"] {
            assert!(unverified_claims(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base64url_decodes_with_and_without_padding() {
        assert_eq!(base64url("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64url("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64url("a"), None);
        assert_eq!(base64url("a+b/"), None);
    }
}
