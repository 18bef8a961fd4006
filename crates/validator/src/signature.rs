//! Signature verification with `jsonwebtoken`, configured in exactly one place.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use crate::config::IssuerConfig;
use crate::error::TokenError;
use crate::jwks::VerifyKey;

/// The one place a `jsonwebtoken` [`Validation`] is built; its defaults are too loose.
///
/// It allows exactly one algorithm (already checked against the issuer's list), requires
/// `exp`, `iss`, `aud` and `sub`, pins `iss` to the entry's concrete issuers (one, or one per
/// tenant of a template) and `aud` to its audiences. The
/// time claims are switched off here on purpose: `jsonwebtoken` reads the system clock, while
/// `exp`, `nbf` and `iat` are checked with the validator's clock and leeway in
/// `claims::check`, after the signature. The claim types were checked before (`claims::read`).
pub(crate) fn jwt_validation(
    config: &IssuerConfig,
    alg: Algorithm,
    issuers: &[String],
) -> Validation {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(issuers);
    validation.set_audience(&config.audiences);
    validation.validate_aud = true;
    validation.sub = None;
    validation.leeway = config.leeway_seconds;
    validation.reject_tokens_expiring_in_less_than = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation
}

/// Verifies the signature (and, again, `iss`/`aud` presence and values) with `jsonwebtoken`.
pub(crate) fn verify_signature(
    token: &str,
    key: &VerifyKey,
    validation: &Validation,
) -> Result<(), TokenError> {
    let error = match jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &key.key, validation) {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    Err(match error.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::Provider(_) => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::KeyAlgMismatch,
        ErrorKind::InvalidIssuer => TokenError::UnknownIssuer,
        ErrorKind::InvalidAudience => TokenError::BadAudience,
        ErrorKind::MissingRequiredClaim(name) => TokenError::MissingClaim(claim_name(name)),
        ErrorKind::InvalidClaimFormat(name) => TokenError::InvalidClaim(claim_name(name)),
        _ => TokenError::Malformed("token refused by the jwt library"),
    })
}

fn claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IssuerConfig {
        serde_json::from_str(r#"{"issuer":"https://idp.test","audiences":["api://x","api://y"]}"#)
            .expect("test config must parse")
    }

    #[test]
    fn the_jwt_validation_requires_the_registered_claims_and_pins_iss_and_aud() {
        let issuers = ["https://idp.test".to_owned()];
        let validation = jwt_validation(&config(), Algorithm::PS256, &issuers);
        assert_eq!(validation.algorithms, [Algorithm::PS256]);
        for claim in ["exp", "iss", "aud", "sub"] {
            assert!(validation.required_spec_claims.contains(claim), "{claim}");
        }
        let iss = validation.iss.as_ref().expect("issuer pinned");
        assert_eq!(iss.len(), 1);
        assert!(iss.contains("https://idp.test"));
        assert_eq!(validation.aud.as_ref().map(|aud| aud.len()), Some(2));
        assert!(validation.validate_aud);
        assert!(!validation.validate_exp && !validation.validate_nbf);
    }
}
