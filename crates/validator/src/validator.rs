use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::{Admission, TokenCache, TokenHash, Verified};
use crate::claims::{self, Claims};
use crate::clock::Clock;
use crate::compact;
use crate::config::{IssuerConfig, validate_issuers};
use crate::error::TokenError;
use crate::header;
use crate::issuer::{Issuer, KeyQuery, clip, ensure_crypto_provider};
use crate::keystore::KeyStatus;
use crate::options::ValidatorOptions;
use crate::principal::{Principal, token_fingerprint};
use crate::signature::verify_signature;
use crate::stats::{Counters, ValidatorStats};
use crate::tenant;

/// How often the background task looks whether a key set is due for refresh, in real time.
const REFRESH_TICK: Duration = Duration::from_secs(1);

/// Validates OIDC access tokens against a fixed list of issuers. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<Issuer>,
    /// Every accepted `iss`, with its entry in `issuers` and, for a template, its tenant.
    by_iss: HashMap<String, (usize, Option<String>)>,
    max_token_bytes: usize,
    clock: Arc<dyn Clock>,
    cache: TokenCache,
    counters: Counters,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self
            .inner
            .issuers
            .iter()
            .map(|issuer| issuer.config.issuer.as_str())
            .collect();
        f.debug_struct("Validator")
            .field("issuers", &issuers)
            .field("max_token_bytes", &self.inner.max_token_bytes)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Checks the configuration, then fetches the discovery document (unless `jwks_uri` is
    /// set) and the key set of every issuer. Returns only when every issuer has usable keys,
    /// so a returned validator is ready. Tokens longer than `max_token_bytes` are refused before
    /// parsing ([`DEFAULT_MAX_TOKEN_BYTES`](crate::DEFAULT_MAX_TOKEN_BYTES) is a sensible
    /// value). `http` should not follow redirects; redirected responses are refused anyway.
    /// The other settings take their [`ValidatorOptions`] defaults.
    pub async fn new(
        issuers: Vec<IssuerConfig>,
        max_token_bytes: usize,
        http: reqwest::Client,
    ) -> Result<Validator, TokenError> {
        let options = ValidatorOptions {
            max_token_bytes,
            ..ValidatorOptions::default()
        };
        Self::with_options(issuers, http, options).await
    }

    /// [`new`](Self::new) with another time source, for tests.
    pub async fn with_clock(
        issuers: Vec<IssuerConfig>,
        max_token_bytes: usize,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Validator, TokenError> {
        let options = ValidatorOptions {
            max_token_bytes,
            clock,
            ..ValidatorOptions::default()
        };
        Self::with_options(issuers, http, options).await
    }

    /// [`new`](Self::new) with every setting given. Must be called inside a Tokio runtime,
    /// which runs the background key refresh while the validator lives.
    pub async fn with_options(
        issuers: Vec<IssuerConfig>,
        http: reqwest::Client,
        options: ValidatorOptions,
    ) -> Result<Validator, TokenError> {
        let mut problems = validate_issuers(&issuers, "issuers");
        if options.max_token_bytes == 0 {
            problems.push("max_token_bytes: must be positive".to_owned());
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        if options.background_refresh && runtime.is_none() {
            problems.push("background_refresh: needs a Tokio runtime".to_owned());
        }
        if !problems.is_empty() {
            return Err(TokenError::InvalidConfig { problems });
        }
        ensure_crypto_provider()?;

        let cache = TokenCache::new(options.token_cache_entries);
        let mut loaded = Vec::with_capacity(issuers.len());
        let mut by_iss = HashMap::new();
        for (index, config) in issuers.into_iter().enumerate() {
            let clock = options.clock.clone();
            let issuer = Issuer::load(config, index, &http, clock, cache.clone()).await?;
            for (iss, tenant) in &issuer.concrete {
                by_iss.insert(iss.clone(), (index, tenant.clone()));
            }
            loaded.push(issuer);
        }
        let inner = Arc::new(Inner {
            issuers: loaded,
            by_iss,
            max_token_bytes: options.max_token_bytes,
            clock: options.clock,
            cache,
            counters: Counters::default(),
        });
        if let (true, Some(runtime)) = (options.background_refresh, runtime) {
            for index in 0..inner.issuers.len() {
                runtime.spawn(refresh_in_background(Arc::downgrade(&inner), index));
            }
        }
        Ok(Validator { inner })
    }

    /// Validates `token` (the bare compact JWS) and returns who presented it. A token seen
    /// before returns the same shared principal.
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let result = self.check(token).await;
        if let Err(error) = &result {
            // Field values are only computed when the event is enabled.
            tracing::debug!(reason = error.reason_code(),
                token.fingerprint = %token_fingerprint(token), "Token refused");
        }
        result
    }

    async fn check(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let max = self.inner.max_token_bytes;
        if token.len() > max {
            return Err(TokenError::TooLarge {
                size: token.len(),
                max,
            });
        }
        let hash: TokenHash = Sha256::digest(token.as_bytes()).into();
        if let Some(principal) = self.cached(&hash).await? {
            self.inner.counters.hit();
            return Ok(principal);
        }
        self.inner.counters.miss();
        let verified = self.verify(token, &hash).await?;
        if !self.inner.cache.is_enabled() {
            return Ok(verified.principal);
        }
        let principal = Arc::clone(&verified.principal);
        if self.inner.cache.insert(hash, verified).await == Admission::Deferred {
            self.inner.counters.deferral();
        }
        Ok(principal)
    }

    /// The principal of a token verified before, when its entry may still be used: the token
    /// has not reached `exp` and the key that verified it is still published. Keys past their
    /// maximum staleness fail the token as they would fail a new one.
    async fn cached(&self, hash: &TokenHash) -> Result<Option<Arc<Principal>>, TokenError> {
        let Some(entry) = self.inner.cache.get(hash).await else {
            return Ok(None);
        };
        let set = self.inner.issuers[entry.issuer].keys.current()?;
        if self.inner.clock.now() >= entry.expires_at || !set.has(&entry.key) {
            self.inner.cache.remove(hash).await;
            return Ok(None);
        }
        Ok(Some(Arc::clone(&entry.principal)))
    }

    /// Full validation: structure, header, claim types, issuer, signature, claim values and
    /// the issuer's required claims.
    async fn verify(&self, token: &str, hash: &TokenHash) -> Result<Verified, TokenError> {
        let parts = compact::parse(token)?;
        let header = header::read(&parts.header)?;
        let claims = claims::read(&parts.payload)?;
        let (index, tenant) = self.issuer_of(&claims, &parts.payload)?;
        let issuer = &self.inner.issuers[index];
        issuer.check_algorithm(header.alg)?;
        issuer.check_typ(header.typ.as_deref())?;

        let query = KeyQuery {
            header: &header,
            iss: &claims.iss,
            tenant,
        };
        let key = issuer.key_for(&query).await?;
        self.inner.counters.verification();
        verify_signature(token, &parts.signature, &key.key, header.alg)?;
        let now = self.inner.clock.now();
        claims::check(&claims, &issuer.config, now)?;
        claims::check_required(&parts.payload, &issuer.config)?;

        let Claims { iss, sub, exp, .. } = claims;
        let principal = Principal::new(
            iss,
            sub,
            parts.payload,
            exp,
            hex::encode(&hash[..8]),
            header.kid,
        );
        Ok(Verified::new(
            Arc::new(principal),
            index,
            key.thumbprint,
            now,
        ))
    }

    /// The entry that accepts the token's `iss`; for a multi-tenant entry, also the tenant,
    /// after checking that `tid` names it.
    fn issuer_of(
        &self,
        claims: &Claims,
        payload: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(usize, Option<&str>), TokenError> {
        if let Some((index, tenant)) = self.inner.by_iss.get(&claims.iss) {
            if let Some(tenant) = tenant {
                tenant::check_tid(payload, tenant)?;
            }
            return Ok((*index, tenant.as_deref()));
        }
        let templated = self.inner.issuers.iter().any(|issuer| {
            tenant::is_template(&issuer.config.issuer)
                && tenant::fits_template(&issuer.config.issuer, &claims.iss)
        });
        tracing::debug!(iss = ?clip(&claims.iss), templated, "Token issuer is not configured");
        Err(if templated {
            TokenError::TenantNotAllowed
        } else {
            TokenError::UnknownIssuer
        })
    }

    /// The state of every issuer's cached key set, sorted by issuer. The server should warn
    /// while `serving_stale` is set and report unreadiness when an issuer is no longer
    /// `usable`.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        let mut status: Vec<KeyStatus> = self
            .inner
            .issuers
            .iter()
            .map(|issuer| issuer.keys.status())
            .collect();
        status.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        status
    }

    /// Counters since start-up, for metrics.
    pub fn stats(&self) -> ValidatorStats {
        self.inner.counters.snapshot(self.inner.cache.len())
    }

    /// Refreshes now every key set whose refresh time has come, as the background task does
    /// each second; waits for the fetches. For validators built without background refresh,
    /// and for tests.
    pub async fn refresh_keys(&self) {
        for issuer in &self.inner.issuers {
            issuer.keys.refresh_if_due().await;
        }
    }
}

/// Refreshes the key set of issuer `index` when it is due, until the validator is dropped.
async fn refresh_in_background(inner: Weak<Inner>, index: usize) {
    let mut tick = tokio::time::interval(REFRESH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Some(issuer) = inner.issuers.get(index) {
            issuer.keys.refresh_if_due().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn debug_output_lists_issuers_only() {
        let inner = Inner {
            issuers: Vec::new(),
            by_iss: HashMap::new(),
            max_token_bytes: 10,
            clock: Arc::new(SystemClock),
            cache: TokenCache::new(0),
            counters: Counters::default(),
        };
        let printed = format!(
            "{:?}",
            Validator {
                inner: Arc::new(inner)
            }
        );
        assert_eq!(
            printed,
            "Validator { issuers: [], max_token_bytes: 10, .. }"
        );
    }
}
