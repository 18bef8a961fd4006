use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Who presented a token that passed every check.
///
/// It never holds the token itself; `token_fingerprint` correlates log lines and audit records
/// with a token without revealing it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Principal {
    /// The `iss` claim, equal byte for byte to a configured issuer.
    pub issuer: String,
    /// The `sub` claim.
    pub subject: String,
    /// Every claim of the payload, as sent by the issuer (including `iss`, `sub`, `aud`, `exp`).
    pub claims: Map<String, Value>,
    /// The `exp` claim, Unix seconds.
    pub expires_at: i64,
    /// The first 16 hex characters of the SHA-256 of the token string.
    pub token_fingerprint: String,
    /// The header `kid`, when the token had one.
    pub key_id: Option<String>,
}

/// The first 16 hex characters of the SHA-256 of `token`.
pub fn token_fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_a_sixteen_character_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(token_fingerprint("abc"), "ba7816bf8f01cfea");
    }
}
