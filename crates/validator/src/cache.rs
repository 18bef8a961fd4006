//! The verified-token cache: a token that passed every check is not verified again until it
//! expires.
//!
//! Entries are keyed by the SHA-256 of the token, so the cache holds no token. An entry is used
//! only while the validator's clock is before the token's `exp` (the leeway is not added: after
//! `exp` the token goes through full validation again, which still applies the leeway), and
//! only while the key that verified it is still in its issuer's current key set. Entries whose
//! key left the set are also dropped eagerly when a new set is installed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::principal::Principal;

/// The default bound on cached tokens.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 10_000;

/// The SHA-256 of a token.
pub(crate) type TokenHash = [u8; 32];

/// What is remembered about a verified token.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) principal: Arc<Principal>,
    /// Index of the issuer entry in the validator.
    pub(crate) issuer: usize,
    /// Thumbprint of the key that verified the signature.
    pub(crate) key: [u8; 32],
    /// The token's `exp` on the validator's clock.
    pub(crate) expires_at: i64,
    /// How long the entry may stay in memory, measured on the real clock; only reclaims memory,
    /// the validator's clock decides whether an entry is used.
    ttl: Duration,
}

impl Verified {
    pub(crate) fn new(principal: Arc<Principal>, issuer: usize, key: [u8; 32], now: i64) -> Self {
        let expires_at = principal.expires_at;
        let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
        Verified {
            principal,
            issuer,
            key,
            expires_at,
            ttl: Duration::from_secs(left),
        }
    }
}

/// Per-entry lifetime: until the token's `exp`.
struct UntilExpiry;

impl Expiry<TokenHash, Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Arc<Verified>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A bounded cache of verified tokens; disabled when built with capacity 0.
#[derive(Clone)]
pub(crate) struct TokenCache {
    cache: Option<Cache<TokenHash, Arc<Verified>>>,
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> TokenCache {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry)
                .support_invalidation_closures()
                .build()
        });
        TokenCache { cache }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    pub(crate) async fn get(&self, hash: &TokenHash) -> Option<Arc<Verified>> {
        self.cache.as_ref()?.get(hash).await
    }

    pub(crate) async fn insert(&self, hash: TokenHash, verified: Verified) {
        if let Some(cache) = &self.cache {
            cache.insert(hash, Arc::new(verified)).await;
        }
    }

    pub(crate) async fn remove(&self, hash: &TokenHash) {
        if let Some(cache) = &self.cache {
            cache.invalidate(hash).await;
        }
    }

    /// Drops the entries of `issuer` whose key `keep` says is gone.
    pub(crate) fn drop_keys_of(
        &self,
        issuer: usize,
        keep: impl Fn(&[u8; 32]) -> bool + Send + Sync + 'static,
    ) {
        let Some(cache) = &self.cache else { return };
        let predicate =
            move |_: &TokenHash, entry: &Arc<Verified>| entry.issuer == issuer && !keep(&entry.key);
        if cache.invalidate_entries_if(predicate).is_err() {
            // Only possible without `support_invalidation_closures`; the lookup-time key check
            // still refuses such entries.
            tracing::debug!("Token cache invalidation was not registered");
        }
    }

    /// Entries currently held (approximate: moka counts lazily).
    pub(crate) fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, Cache::entry_count)
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("enabled", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn verified(issuer: usize, key: u8, expires_at: i64) -> Verified {
        let principal = Principal::new(
            "https://idp.test".into(),
            "u".into(),
            Map::new(),
            expires_at,
            String::new(),
            None,
        );
        Verified::new(Arc::new(principal), issuer, [key; 32], 1_000)
    }

    fn hash(n: u32) -> TokenHash {
        let mut hash = [0; 32];
        hash[..4].copy_from_slice(&n.to_be_bytes());
        hash
    }

    #[tokio::test]
    async fn the_cache_holds_no_more_than_its_capacity() {
        let cache = TokenCache::new(10);
        for n in 0..200 {
            cache.insert(hash(n), verified(0, 1, 2_000)).await;
        }
        if let Some(inner) = &cache.cache {
            inner.run_pending_tasks().await;
        }
        assert!(cache.len() <= 10, "{} entries", cache.len());
    }

    #[tokio::test]
    async fn entries_of_a_removed_key_are_dropped_eagerly_and_only_those() {
        let cache = TokenCache::new(100);
        cache.insert(hash(1), verified(0, 1, 2_000)).await;
        cache.insert(hash(2), verified(0, 2, 2_000)).await;
        cache.insert(hash(3), verified(1, 1, 2_000)).await;
        cache.drop_keys_of(0, |key| key == &[2; 32]);
        if let Some(inner) = &cache.cache {
            inner.run_pending_tasks().await;
        }
        assert!(cache.get(&hash(1)).await.is_none());
        assert!(cache.get(&hash(2)).await.is_some());
        assert!(
            cache.get(&hash(3)).await.is_some(),
            "another issuer's entry stays"
        );
    }

    #[test]
    fn an_entry_lives_in_memory_until_the_token_expires() {
        assert_eq!(verified(0, 1, 1_600).ttl, Duration::from_secs(600));
        assert_eq!(verified(0, 1, 900).ttl, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_disabled_cache_stores_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(hash(1), verified(0, 1, 2_000)).await;
        assert!(!cache.is_enabled() && cache.get(&hash(1)).await.is_none());
    }
}
