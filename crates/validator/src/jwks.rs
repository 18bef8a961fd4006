//! JSON Web Key Set parsing and key selection.
//!
//! The set is read key by key: a key that is malformed, of an unknown type, meant for
//! encryption or symmetric is skipped and never spoils the others.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::compact::parse_object;
use crate::config::asymmetric_algorithm;
use crate::signature::PublicKey;

/// At most this many entries of a key set are looked at; the rest are ignored.
pub(crate) const MAX_KEYS: usize = 100;

/// The kind of public key, which decides the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// RS*/PS* need RSA; ES256 needs P-256 and ES384 P-384; EdDSA needs Ed25519.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// One usable signature verification key.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    /// The `alg` the key declares; `None` when it declares none (Entra).
    pub(crate) alg: Option<Algorithm>,
    pub(crate) kind: KeyKind,
    /// Parsed by aws-lc once, when the set was read.
    pub(crate) key: PublicKey,
    /// The key's own `issuer` member (Entra publishes one per key); honoured for multi-tenant
    /// issuers only.
    pub(crate) issuer: Option<String>,
    /// The RFC 7638 thumbprint of the public key: its identity across refreshes, whatever its
    /// `kid`.
    pub(crate) thumbprint: [u8; 32],
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|declared| declared == alg)
    }
}

/// The usable keys of a key set document, and how many entries were skipped.
#[derive(Debug)]
pub(crate) struct ParsedSet {
    pub(crate) keys: Vec<Arc<VerifyKey>>,
    pub(crate) skipped: usize,
}

/// Parses a key set document. Fails only when the document itself is not a JSON object with a
/// `keys` array; bad entries are counted in `skipped`.
pub(crate) fn parse_set(document: &[u8]) -> Result<ParsedSet, &'static str> {
    let set = parse_object(document).ok_or("key set is not a json object")?;
    let Some(Value::Array(entries)) = set.get("keys") else {
        return Err("key set has no keys array");
    };
    let mut parsed = ParsedSet {
        keys: Vec::new(),
        skipped: 0,
    };
    for entry in entries.iter().take(MAX_KEYS) {
        match parse_key(entry) {
            Ok(key) => parsed.keys.push(Arc::new(key)),
            Err(why) => {
                tracing::debug!(reason = why, "Signing key skipped");
                parsed.skipped += 1;
            }
        }
    }
    parsed.skipped += entries.len().saturating_sub(MAX_KEYS);
    Ok(parsed)
}

fn parse_key(entry: &Value) -> Result<VerifyKey, &'static str> {
    let jwk = entry.as_object().ok_or("key is not an object")?;
    match text(jwk, "use")? {
        None | Some("sig") => {}
        Some(_) => return Err("key is not meant for signatures"),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err("key_ops does not allow verify");
        }
    }
    let alg = match text(jwk, "alg")? {
        Some(name) => Some(asymmetric_algorithm(name).ok_or("key alg is not supported")?),
        None => None,
    };
    let kid = text(jwk, "kid")?.map(str::to_owned);
    let (kind, key) = match text(jwk, "kty")? {
        Some("RSA") => rsa_key(jwk, alg)?,
        Some("EC") => ec_key(jwk)?,
        Some("OKP") => okp_key(jwk)?,
        Some("oct") => return Err("symmetric keys are never used"),
        _ => return Err("key type is not supported"),
    };
    if alg.is_some_and(|alg| !kind.fits(alg)) {
        return Err("key alg does not fit its key type");
    }
    let issuer = text(jwk, "issuer")?.map(str::to_owned);
    Ok(VerifyKey {
        kid,
        alg,
        kind,
        key,
        issuer,
        thumbprint: thumbprint(jwk, kind),
    })
}

/// SHA-256 over the required public members in lexicographic order, without whitespace
/// (RFC 7638 §3). The members were checked to be base64url strings, which need no escaping.
fn thumbprint(jwk: &Map<String, Value>, kind: KeyKind) -> [u8; 32] {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    let canonical = match kind {
        KeyKind::Rsa => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e"),
            member("n")
        ),
        KeyKind::P256 | KeyKind::P384 => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        KeyKind::Ed25519 => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, member("x")),
    };
    Sha256::digest(canonical.as_bytes()).into()
}

fn text<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, &'static str> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err("key member is not a string"),
    }
}

fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let encoded = text(jwk, name)?.ok_or("key member is missing")?;
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| "key member is not base64url")
}

fn rsa_key(
    jwk: &Map<String, Value>,
    alg: Option<Algorithm>,
) -> Result<(KeyKind, PublicKey), &'static str> {
    let n = bytes(jwk, "n")?;
    let e = bytes(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    // What aws-lc checks only when it verifies, checked here so that such keys never enter the
    // set: a modulus of 2048 to 8192 bits, odd; an odd exponent of 3 to 33 bits.
    if !(2048..=8192).contains(&bit_length(n)) || n.last().is_none_or(|b| b & 1 == 0) {
        return Err("rsa modulus size is not supported");
    }
    let e_bits = bit_length(e);
    if !(2..=33).contains(&e_bits) || e.last().is_none_or(|b| b & 1 == 0) {
        return Err("rsa exponent is not usable");
    }
    // A key that declares no alg is checked as RS256; one that declares a non-RSA alg is
    // refused below, after the kind is known.
    let check_alg = alg
        .filter(|alg| KeyKind::Rsa.fits(*alg))
        .unwrap_or(Algorithm::RS256);
    let key = PublicKey::rsa(n, e, check_alg).map_err(|_| "rsa key is refused by the verifier")?;
    Ok((KeyKind::Rsa, key))
}

fn ec_key(jwk: &Map<String, Value>) -> Result<(KeyKind, PublicKey), &'static str> {
    let (kind, size) = match text(jwk, "crv")? {
        Some("P-256") => (KeyKind::P256, 32),
        Some("P-384") => (KeyKind::P384, 48),
        _ => return Err("ec curve is not supported"),
    };
    let x = bytes(jwk, "x")?;
    let y = bytes(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err("ec coordinates do not fit the curve");
    }
    // The uncompressed SEC1 point; aws-lc checks that it lies on the curve.
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key = PublicKey::ec(kind, point).map_err(|_| "ec point is not on its curve")?;
    Ok((kind, key))
}

fn okp_key(jwk: &Map<String, Value>) -> Result<(KeyKind, PublicKey), &'static str> {
    if text(jwk, "crv")? != Some("Ed25519") {
        return Err("okp curve is not supported");
    }
    let x = bytes(jwk, "x")?;
    if x.len() != 32 {
        return Err("ed25519 key is not 32 bytes");
    }
    let key = PublicKey::ed25519(x).map_err(|_| "ed25519 key is refused by the verifier")?;
    Ok((KeyKind::Ed25519, key))
}

/// The bit length of a big-endian number without leading zero bytes.
fn bit_length(bytes: &[u8]) -> u32 {
    match bytes.first() {
        Some(first) => (bytes.len() as u32) * 8 - first.leading_zeros(),
        None => 0,
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Why no key was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No key has the token's `kid`: the only case that may justify a refetch.
    UnknownKid,
    /// Keys with the `kid` exist, but none fits the token's `alg`.
    Mismatch,
    /// More than one key fits.
    Ambiguous,
    /// The token has no `kid` and the set has no compatible key.
    NoKey,
}

/// Picks the key for a token with `kid` (if any) signed with `alg`. With a `kid`, exactly one
/// key with that `kid` must fit `alg`; without one, exactly one key of the whole set must fit.
pub(crate) fn select<'a>(
    keys: &'a [Arc<VerifyKey>],
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'a Arc<VerifyKey>, Miss> {
    let mut named = false;
    let mut found = None;
    for key in keys {
        if kid.is_some_and(|kid| key.kid.as_deref() != Some(kid)) {
            continue;
        }
        named = true;
        if key.fits(alg) {
            if found.is_some() {
                return Err(Miss::Ambiguous);
            }
            found = Some(key);
        }
    }
    match found {
        Some(key) => Ok(key),
        None if kid.is_none() => Err(Miss::NoKey),
        None if !named => Err(Miss::UnknownKid),
        None => Err(Miss::Mismatch),
    }
}

#[cfg(test)]
mod tests;
