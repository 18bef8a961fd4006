//! Signature verification with `jsonwebtoken`'s crypto provider, in exactly one place.
//!
//! Only the signature is checked here: by the time it runs, the token's structure, header and
//! claim types have been read by cosmogate's own strict parser, the algorithm is one the issuer
//! allows, and the key was picked for it. The claim values (`iss`, `aud`, `sub`, the times) are
//! checked in `claims::check` with the validator's clock, after the signature. So the signature
//! is verified over the signing input as it stands, and nothing is decoded a second time.

use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;

use crate::error::TokenError;
use crate::jwks::VerifyKey;

/// Verifies the signature of `token` (a compact JWS already checked by `compact::parse`) under
/// `alg` with `key`.
pub(crate) fn verify_signature(
    token: &str,
    key: &VerifyKey,
    alg: Algorithm,
) -> Result<(), TokenError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed(
        "token is not three dot-separated parts",
    ))?;
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key.key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TokenError::BadSignature),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::KeyAlgMismatch,
            ErrorKind::Base64(_) => TokenError::Malformed("signature is not base64url"),
            // A key whose type does not fit the algorithm, or one the provider refuses.
            _ => TokenError::BadSignature,
        }),
    }
}
