//! One configured issuer entry: its discovery, key cache, `typ` list and the `jsonwebtoken`
//! validations for its algorithms, plus key selection for a token.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use jsonwebtoken::crypto::CryptoProvider;
use url::Url;

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::config::{IssuerConfig, KeySource};
use crate::error::TokenError;
use crate::fetch::{self, Discovery};
use crate::header::{JoseHeader, normalize_typ};
use crate::jwks::{self, Miss, VerifyKey};
use crate::keystore::IssuerKeys;
use crate::tenant;

/// A `kid` longer than this is refused without a lookup or a refetch.
const MAX_KID_BYTES: usize = 256;

/// Values from the token are cut to this many bytes before they are logged.
const MAX_LOGGED_BYTES: usize = 128;

/// A loaded issuer entry.
pub(crate) struct Issuer {
    pub(crate) config: IssuerConfig,
    /// The `iss` values this entry accepts, each with the tenant it stands for.
    pub(crate) concrete: Vec<(String, Option<String>)>,
    /// The algorithms this entry accepts.
    algorithms: Vec<Algorithm>,
    typ: Vec<String>,
    pub(crate) keys: IssuerKeys,
}

/// The token facts key selection needs besides the header.
pub(crate) struct KeyQuery<'a> {
    pub(crate) header: &'a JoseHeader,
    pub(crate) iss: &'a str,
    /// The tenant of a multi-tenant issuer's token.
    pub(crate) tenant: Option<&'a str>,
}

impl Issuer {
    /// Discovers (unless `jwks_uri` is set) and fetches the first key set of `config`.
    pub(crate) async fn load(
        config: IssuerConfig,
        index: usize,
        http: &reqwest::Client,
        clock: Arc<dyn Clock>,
        cache: TokenCache,
    ) -> Result<Issuer, TokenError> {
        let jwks_uri = resolve_jwks_uri(&config, http).await?;
        let keys = IssuerKeys::load(&config, jwks_uri, http.clone(), clock, cache, index).await?;
        let concrete = tenant::concrete_issuers(&config.issuer, &config.tenants);
        Ok(Issuer {
            concrete,
            algorithms: config.allowed_algorithms(),
            typ: config.typ.iter().map(|t| normalize_typ(t)).collect(),
            keys,
            config,
        })
    }

    /// A token without `typ` passes; one with `typ` must use an accepted value.
    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), TokenError> {
        match typ {
            Some(typ) if !self.typ.contains(&normalize_typ(typ)) => Err(TokenError::BadTyp),
            _ => Ok(()),
        }
    }

    /// Refuses an algorithm this entry does not accept.
    pub(crate) fn check_algorithm(&self, alg: Algorithm) -> Result<(), TokenError> {
        if self.algorithms.contains(&alg) {
            Ok(())
        } else {
            Err(TokenError::UnsupportedAlgorithm)
        }
    }

    /// The key for the token, from this issuer's key set only. An unknown `kid` causes at most
    /// one refetch, and only when the cooldown allows it.
    pub(crate) async fn key_for(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyKey>, TokenError> {
        let header = query.header;
        let kid = header.kid.as_deref();
        if kid.is_some_and(|kid| kid.len() > MAX_KID_BYTES) {
            return Err(TokenError::UnknownKey);
        }
        let set = self.keys.current()?;
        let key = match jwks::select(&set.keys, kid, header.alg) {
            Ok(key) => Arc::clone(key),
            Err(Miss::UnknownKid) => self.refetched_key(query, set.generation).await?,
            Err(miss) => return Err(miss_error(miss)),
        };
        check_key_issuer(&key, query)?;
        Ok(key)
    }

    async fn refetched_key(
        &self,
        query: &KeyQuery<'_>,
        seen: u64,
    ) -> Result<Arc<VerifyKey>, TokenError> {
        let kid = query.header.kid.as_deref();
        tracing::debug!(issuer = %self.config.issuer, kid = ?kid.map(clip), "Unknown kid");
        let Some(set) = self.keys.refetch_for_unknown_kid(seen).await else {
            return Err(TokenError::UnknownKey);
        };
        jwks::select(&set.keys, kid, query.header.alg)
            .cloned()
            .map_err(miss_error)
    }
}

/// For a multi-tenant issuer, a key that names an issuer must name the token's (Entra's
/// per-key `issuer`). Plain issuers ignore the member: their key set is theirs alone.
fn check_key_issuer(key: &VerifyKey, query: &KeyQuery<'_>) -> Result<(), TokenError> {
    let (Some(tenant), Some(key_issuer)) = (query.tenant, key.issuer.as_deref()) else {
        return Ok(());
    };
    if tenant::key_issuer_fits(key_issuer, query.iss, tenant) {
        Ok(())
    } else {
        Err(TokenError::KeyIssuerMismatch)
    }
}

fn miss_error(miss: Miss) -> TokenError {
    match miss {
        Miss::UnknownKid | Miss::NoKey => TokenError::UnknownKey,
        Miss::Mismatch => TokenError::KeyAlgMismatch,
        Miss::Ambiguous => TokenError::AmbiguousKey,
    }
}

async fn resolve_jwks_uri(
    config: &IssuerConfig,
    http: &reqwest::Client,
) -> Result<Url, TokenError> {
    let url = match config.key_source() {
        Some(KeySource::Jwks(url)) => return Ok(url),
        Some(KeySource::Discovery(url)) => url,
        None => {
            return Err(TokenError::InvalidConfig {
                problems: vec![no_source(config)],
            });
        }
    };
    match fetch::discover(http, &url, &config.issuer).await {
        Ok(Discovery::Jwks(jwks_uri)) => Ok(jwks_uri),
        Ok(Discovery::IssuerMismatch(found)) => Err(TokenError::DiscoveryIssuerMismatch {
            expected: config.issuer.clone(),
            found: clip(&found).to_owned(),
        }),
        Err(error) => {
            tracing::debug!(issuer = %config.issuer, %error, "Discovery failed");
            Err(TokenError::KeysUnavailable {
                issuer: config.issuer.clone(),
                retry_after_seconds: config.unknown_kid_cooldown_seconds,
            })
        }
    }
}

fn no_source(config: &IssuerConfig) -> String {
    format!(
        "issuers: {:?} has no usable discovery_url or jwks_uri",
        config.issuer
    )
}

/// Makes sure `jsonwebtoken` has a crypto backend, so it cannot panic at first use when another
/// dependency also enabled its `rust_crypto` feature.
pub(crate) fn ensure_crypto_provider() -> Result<(), TokenError> {
    if CryptoProvider::try_get_default().is_some() {
        return Ok(());
    }
    // Losing a race with another installer is fine: any installed provider will do.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    CryptoProvider::try_get_default()
        .map(|_| ())
        .ok_or(TokenError::NoCryptoProvider)
}

/// `text` cut to at most [`MAX_LOGGED_BYTES`] on a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    if text.len() <= MAX_LOGGED_BYTES {
        return text;
    }
    let mut end = MAX_LOGGED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_respects_character_boundaries() {
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_LOGGED_BYTES && clipped.chars().all(|c| c == 'é'));
        assert_eq!(clip("short"), "short");
    }
}
