//! Signature verification, in exactly one place.
//!
//! Only the signature is checked here: by the time it runs, the token's structure, header and
//! claim types have been read by cosmogate's own strict parser, the algorithm is one the issuer
//! allows, and the key was picked for it. The claim values (`iss`, `aud`, `sub`, the times) are
//! checked in `claims::check` with the validator's clock, after the signature.
//!
//! The crypto is aws-lc-rs, the provider `jsonwebtoken` itself is built on here. A key is parsed
//! into aws-lc's own form once, when its key set is read, and then serves every token: building
//! an RSA key from `n`/`e` (and its Montgomery constants) on each verification costs more than
//! the verification itself.

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use jsonwebtoken::Algorithm;

use crate::error::TokenError;
use crate::jwks::KeyKind;

/// The RSA algorithms, in the order of their slots in [`PublicKey`].
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A public key, parsed for each algorithm it is asked to verify.
///
/// aws-lc binds a parsed key to one algorithm. An EC or Ed25519 key can serve exactly one; an
/// RSA key that declares no `alg` (Entra's) can serve six, so each is parsed the first time a
/// token asks for it and kept for the key's lifetime.
pub(crate) struct PublicKey {
    material: Material,
    parsed: [OnceLock<Option<ParsedPublicKey>>; RSA_ALGORITHMS.len()],
}

enum Material {
    /// Big-endian modulus and exponent without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed SEC1 point on the key's curve.
    Ec { kind: KeyKind, point: Vec<u8> },
    /// The 32 raw bytes of an Ed25519 key.
    Ed25519(Vec<u8>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey([redacted])")
    }
}

impl PublicKey {
    /// An RSA key. `check_alg` is parsed at once, so a key aws-lc refuses to parse is refused
    /// here, while its key set is read, and not on every token. aws-lc checks the modulus size
    /// only when it verifies, so the key set parser checks it before this.
    pub(crate) fn rsa(n: &[u8], e: &[u8], check_alg: Algorithm) -> Result<PublicKey, KeyRefused> {
        Self::new(
            Material::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            check_alg,
        )
    }

    /// A P-256 or P-384 key from its uncompressed point.
    pub(crate) fn ec(kind: KeyKind, point: Vec<u8>) -> Result<PublicKey, KeyRefused> {
        let alg = match kind {
            KeyKind::P256 => Algorithm::ES256,
            KeyKind::P384 => Algorithm::ES384,
            KeyKind::Rsa | KeyKind::Ed25519 => return Err(KeyRefused),
        };
        Self::new(Material::Ec { kind, point }, alg)
    }

    /// An Ed25519 key from its 32 bytes.
    pub(crate) fn ed25519(x: Vec<u8>) -> Result<PublicKey, KeyRefused> {
        Self::new(Material::Ed25519(x), Algorithm::EdDSA)
    }

    fn new(material: Material, check_alg: Algorithm) -> Result<PublicKey, KeyRefused> {
        let key = PublicKey {
            material,
            parsed: Default::default(),
        };
        key.parsed_for(check_alg).ok_or(KeyRefused)?;
        Ok(key)
    }

    /// The key parsed for `alg`; `None` when the key cannot serve `alg` or aws-lc refuses it.
    fn parsed_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        let slot = match &self.material {
            Material::Rsa { .. } => RSA_ALGORITHMS.iter().position(|known| *known == alg)?,
            Material::Ec { kind, .. } if kind.fits(alg) => 0,
            Material::Ed25519(_) if alg == Algorithm::EdDSA => 0,
            Material::Ec { .. } | Material::Ed25519(_) => return None,
        };
        self.parsed[slot].get_or_init(|| self.parse(alg)).as_ref()
    }

    fn parse(&self, alg: Algorithm) -> Option<ParsedPublicKey> {
        match &self.material {
            Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(rsa_parameters(alg)?)
                .ok(),
            Material::Ec { kind, point } => {
                let algorithm: &'static sig::EcdsaVerificationAlgorithm = match (kind, alg) {
                    (KeyKind::P256, Algorithm::ES256) => &sig::ECDSA_P256_SHA256_FIXED,
                    (KeyKind::P384, Algorithm::ES384) => &sig::ECDSA_P384_SHA384_FIXED,
                    _ => return None,
                };
                ParsedPublicKey::new(algorithm, point).ok()
            }
            Material::Ed25519(x) if alg == Algorithm::EdDSA => {
                ParsedPublicKey::new(&sig::ED25519, x).ok()
            }
            Material::Ed25519(_) => None,
        }
    }
}

/// aws-lc refused the key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyRefused;

/// The aws-lc parameters for an RSA algorithm: PKCS #1 v1.5 or PSS, with 2048- to 8192-bit
/// moduli, as `jsonwebtoken` uses them.
fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Verifies `signature` (the decoded third segment) over `token`'s signing input under `alg`
/// with `key`. `token` is a compact JWS already checked by `compact::parse`.
pub(crate) fn verify_signature(
    token: &str,
    signature: &[u8],
    key: &PublicKey,
    alg: Algorithm,
) -> Result<(), TokenError> {
    let (signing_input, _) = token.rsplit_once('.').ok_or(TokenError::Malformed(
        "token is not three dot-separated parts",
    ))?;
    let parsed = key.parsed_for(alg).ok_or(TokenError::KeyAlgMismatch)?;
    parsed
        .verify_sig(signing_input.as_bytes(), signature)
        .map_err(|_| TokenError::BadSignature)
}

#[cfg(test)]
mod tests;
