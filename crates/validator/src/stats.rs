//! Counters of the validator's work, for metrics and for tests that prove what a path did.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the validator's counters since start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ValidatorStats {
    /// Tokens answered from the verified-token cache, without signature work.
    pub token_cache_hits: u64,
    /// Tokens that went through full validation (the cache was disabled, missed, or held an
    /// entry that could no longer be used).
    pub token_cache_misses: u64,
    /// Signature verifications attempted.
    pub signature_verifications: u64,
    /// Verified tokens not cached: the cache was nearly full and the token was new to its
    /// doorkeeper (a second sighting caches it).
    pub token_cache_deferred: u64,
    /// Tokens currently held by the verified-token cache (approximate).
    pub token_cache_entries: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    verifications: AtomicU64,
    deferrals: AtomicU64,
}

impl Counters {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn verification(&self) {
        self.verifications.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn deferral(&self) {
        self.deferrals.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, entries: u64) -> ValidatorStats {
        ValidatorStats {
            token_cache_hits: self.hits.load(Ordering::Relaxed),
            token_cache_misses: self.misses.load(Ordering::Relaxed),
            signature_verifications: self.verifications.load(Ordering::Relaxed),
            token_cache_deferred: self.deferrals.load(Ordering::Relaxed),
            token_cache_entries: entries,
        }
    }
}
