//! The verified-token cache: a token that passed every check is not verified again until it
//! expires.
//!
//! Entries are keyed by the SHA-256 of the token, so the cache holds no token. An entry is used
//! only while the validator's clock is before the token's `exp` (the leeway is not added: after
//! `exp` the token goes through full validation again, which still applies the leeway), and
//! only while the key that verified it is still in its issuer's current key set. Entries whose
//! key left the set are also dropped eagerly when a new set is installed.
//!
//! Admission: while the cache is nearly full, a verified token is offered to the cache only when
//! it is seen a second time (a [`Doorkeeper`] remembers first sightings). moka's own admission
//! (TinyLFU) already keeps a newcomer from evicting tokens that are used more often, but only
//! after the entry was built and queued; a token used once, such as one minted per request or
//! one of a flood of distinct tokens, now costs no entry, no insert and no eviction work at all.
//! The price: from 90 % full on, a token that does come back pays its signature twice. Below that
//! fill level every verified token is cached at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    doorkeeper: Option<Arc<Doorkeeper>>,
    /// From this many entries on, a token is cached only on its second sighting.
    admit_from: u64,
}

/// What [`TokenCache::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Handed to the cache, whose own admission may still refuse it when it is full.
    Offered,
    /// The cache was nearly full and this was the token's first sighting.
    Deferred,
    Disabled,
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
        TokenCache {
            cache,
            doorkeeper: (capacity > 0).then(|| Arc::new(Doorkeeper::new(capacity))),
            admit_from: capacity - capacity / 10,
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    pub(crate) async fn get(&self, hash: &TokenHash) -> Option<Arc<Verified>> {
        self.cache.as_ref()?.get(hash).await
    }

    /// Caches a verified token, unless the cache is nearly full and the token is new to the
    /// doorkeeper.
    pub(crate) async fn insert(&self, hash: TokenHash, verified: Verified) -> Admission {
        let (Some(cache), Some(doorkeeper)) = (&self.cache, &self.doorkeeper) else {
            return Admission::Disabled;
        };
        if cache.entry_count() >= self.admit_from && !doorkeeper.seen_before(&hash) {
            return Admission::Deferred;
        }
        cache.insert(hash, Arc::new(verified)).await;
        Admission::Offered
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

/// First sightings of tokens, as a Bloom filter over their hashes: 8 to 16 bits per cache entry
/// (the bit count is rounded up to a power of two), three probes, so under 4 % of new tokens
/// pass for seen. It forgets everything after
/// as many first sightings as the cache holds, so a token counts as seen again only within
/// about one cache's worth of newcomers. Races between requests at most admit or defer a token
/// once more than they should.
pub(crate) struct Doorkeeper {
    bits: Box<[AtomicU64]>,
    /// `bits.len() * 64 - 1`: the bit count is a power of two.
    mask: u64,
    noted: AtomicU64,
    forget_after: u64,
}

impl Doorkeeper {
    const PROBES: usize = 3;

    pub(crate) fn new(capacity: u64) -> Doorkeeper {
        let bit_count = capacity
            .saturating_mul(8)
            .clamp(1 << 10, 1 << 26)
            .next_power_of_two();
        let words = usize::try_from(bit_count / 64).unwrap_or(1 << 20);
        Doorkeeper {
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            mask: bit_count - 1,
            noted: AtomicU64::new(0),
            forget_after: capacity.max(1),
        }
    }

    /// Whether the token was seen since the last forgetting; notes it when it was not. The hash
    /// is a SHA-256, so its bytes are independent probes already.
    pub(crate) fn seen_before(&self, hash: &TokenHash) -> bool {
        let mut seen = true;
        for probe in hash.chunks_exact(8).take(Self::PROBES) {
            let mut word = [0; 8];
            word.copy_from_slice(probe);
            let bit = u64::from_le_bytes(word) & self.mask;
            let (index, flag) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if self.bits[index].fetch_or(flag, Ordering::Relaxed) & flag == 0 {
                seen = false;
            }
        }
        if !seen {
            let noted = self.noted.fetch_add(1, Ordering::Relaxed) + 1;
            // One thread clears the window: the one whose count it was when it swapped in zero
            // (a thread that loses the swap to a newer count leaves it to the next newcomer).
            if noted >= self.forget_after
                && self
                    .noted
                    .compare_exchange(noted, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                for word in self.bits.iter() {
                    word.store(0, Ordering::Relaxed);
                }
            }
        }
        seen
    }
}

impl std::fmt::Debug for Doorkeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorkeeper")
            .field("bits", &(self.mask + 1))
            .field("noted", &self.noted.load(Ordering::Relaxed))
            .finish()
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
        let admission = cache.insert(hash(1), verified(0, 1, 2_000)).await;
        assert_eq!(admission, Admission::Disabled);
        assert!(!cache.is_enabled() && cache.get(&hash(1)).await.is_none());
    }

    fn random_hash(n: u64) -> TokenHash {
        use sha2::Digest;
        sha2::Sha256::digest(n.to_le_bytes()).into()
    }

    async fn settle(cache: &TokenCache) {
        if let Some(inner) = &cache.cache {
            inner.run_pending_tasks().await;
        }
    }

    #[tokio::test]
    async fn below_the_fill_level_every_token_is_cached_at_once() {
        let cache = TokenCache::new(100);
        for n in 0..80 {
            let admission = cache.insert(random_hash(n), verified(0, 1, 2_000)).await;
            assert_eq!(admission, Admission::Offered, "token {n}");
            settle(&cache).await;
        }
        for n in 0..80 {
            assert!(cache.get(&random_hash(n)).await.is_some(), "token {n}");
        }
    }

    #[tokio::test]
    async fn a_nearly_full_cache_takes_a_token_on_its_second_sighting() {
        let cache = TokenCache::new(100);
        for n in 0..95 {
            cache.insert(random_hash(n), verified(0, 1, 2_000)).await;
            settle(&cache).await;
        }
        assert!(cache.len() >= 90, "{} entries", cache.len());
        let newcomer = random_hash(1_000);
        let first = cache.insert(newcomer, verified(0, 1, 2_000)).await;
        settle(&cache).await;
        assert_eq!(first, Admission::Deferred);
        assert!(cache.get(&newcomer).await.is_none(), "not cached yet");
        let second = cache.insert(newcomer, verified(0, 1, 2_000)).await;
        assert_eq!(second, Admission::Offered);
        settle(&cache).await;
        assert!(
            cache.get(&newcomer).await.is_some(),
            "cached on its second sighting"
        );
    }

    #[test]
    fn the_doorkeeper_remembers_first_sightings_and_rarely_mistakes_a_newcomer() {
        let doorkeeper = Doorkeeper::new(10_000);
        let passed_while_filling = (0..5_000)
            .filter(|n| doorkeeper.seen_before(&random_hash(*n)))
            .count();
        assert!(passed_while_filling < 20, "{passed_while_filling}");
        for n in 0..5_000 {
            assert!(
                doorkeeper.seen_before(&random_hash(n)),
                "token {n} forgotten"
            );
        }
        let mistaken = (100_000..104_000)
            .filter(|n| doorkeeper.seen_before(&random_hash(*n)))
            .count();
        // 5,000 then 4,000 notes in 131,072 bits with three probes: under 1 % false positives
        // (15 of these 4,000); a filter with a quarter of the bits mistakes hundreds.
        assert!(
            mistaken < 40,
            "{mistaken} of 4,000 newcomers passed for seen"
        );
    }

    #[test]
    fn the_doorkeeper_forgets_after_a_cache_worth_of_newcomers() {
        let doorkeeper = Doorkeeper::new(1_000);
        assert!(!doorkeeper.seen_before(&random_hash(0)));
        assert!(doorkeeper.seen_before(&random_hash(0)));
        let mut newcomers = 1;
        while doorkeeper.noted.load(Ordering::Relaxed) != 0 {
            doorkeeper.seen_before(&random_hash(newcomers));
            newcomers += 1;
            assert!(newcomers < 2_000, "never forgets");
        }
        // The token itself was the first of the 1,000 first sightings.
        assert!(newcomers >= 1_000, "forgot after {newcomers}");
        assert!(!doorkeeper.seen_before(&random_hash(0)), "forgotten");
    }
}
