//! Entry points for the fuzz targets in `fuzz/`; not part of the supported API.
//!
//! They run the parsing that untrusted bytes reach before any key or network is involved, so
//! a fuzzer can drive it without an identity provider. None of them verifies anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::{DEFAULT_MAX_TOKEN_BYTES, TENANT_PLACEHOLDER};
use crate::error::TokenError;
use crate::{claims, compact, header, jwks, normalize, tenant};

/// Runs every step a token goes through before key selection: the size cap, the compact
/// serialization, the header, the registered claim types, the multi-tenant issuer shape and
/// claim normalisation. The signature is not checked: never use this to accept a token.
pub fn inspect_unverified(token: &str) -> Result<(), TokenError> {
    if token.len() > DEFAULT_MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            size: token.len(),
            max: DEFAULT_MAX_TOKEN_BYTES,
        });
    }
    let parts = compact::parse(token)?;
    header::read(&parts.header)?;
    let mut normalized = parts.payload.clone();
    normalize::normalize_in_place(&mut normalized);
    for path in ["realm_access.roles", "kubernetes.io.namespace", "scp"] {
        if let Some(value) = normalize::lookup(&normalized, path) {
            normalize::list(value, true);
        }
    }
    let claims = claims::read(&parts.payload)?;
    let template = format!("https://login.microsoftonline.com/{TENANT_PLACEHOLDER}/v2.0");
    if tenant::fits_template(&template, &claims.iss) {
        tenant::check_tid(&parts.payload, "00000000-0000-0000-0000-000000000000")?;
    }
    Ok(())
}

/// [`inspect_unverified`] on a token built from raw header and payload bytes (base64url-encoded
/// here, with a fixed signature), so a fuzzer reaches the JSON, header and claim checks without
/// having to find valid base64 first.
pub fn inspect_segments(header: &[u8], payload: &[u8]) -> Result<(), TokenError> {
    let token = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    inspect_unverified(&token)
}

/// Parses a key set document as a fetched one is parsed; returns the number of usable keys.
pub fn parse_key_set(document: &[u8]) -> Result<usize, &'static str> {
    jwks::parse_set(document).map(|set| set.keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspection_refuses_garbage_and_oversized_input_without_panicking() {
        assert!(inspect_unverified("").is_err());
        assert!(inspect_unverified("a.b.c").is_err());
        let huge = "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
        assert_eq!(
            inspect_unverified(&huge).map_err(|e| e.reason_code()),
            Err("token_too_large")
        );
        assert_eq!(parse_key_set(b"{\"keys\":[]}"), Ok(0));
        let header = br#"{"alg":"RS256"}"#;
        let payload = br#"{"iss":"a","sub":"s","aud":"x","exp":1}"#;
        assert_eq!(inspect_segments(header, payload), Ok(()));
        assert!(inspect_segments(header, br#"{"exp":1,"exp":2}"#).is_err());
        assert!(parse_key_set(b"[").is_err());
    }
}
