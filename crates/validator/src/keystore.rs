//! The cached key set of one issuer: refreshed ahead of its expiry by the validator's
//! background task, refetched at most once per cooldown for unknown `kid`s (shared by
//! concurrent callers), and kept through IdP outages for a bounded time.
//!
//! Requests never wait for a scheduled refresh: they use the set in hand, which a refresh
//! replaces atomically. A set is refreshed once four fifths of its lifetime have passed, so a
//! working IdP is asked well before the set expires. When refreshes fail, the last good set
//! keeps being used until `max_stale_seconds` after it expired; after that, tokens of the
//! issuer fail with `keys_unavailable` until a refresh succeeds. A failed refresh is retried no
//! sooner than one cooldown later, so an outage costs at most one fetch per cooldown. A refresh
//! that returns a set with no usable key replaces a non-empty set only when the next refresh
//! returns an empty set too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use url::Url;

use crate::cache::TokenCache;
use crate::clock::Clock;
use crate::config::IssuerConfig;
use crate::error::TokenError;
use crate::fetch::{self, FetchedSet};
use crate::jwks::VerifyKey;

/// The default of `max_stale_seconds`: how long after its expiry a key set is still used when
/// it cannot be refreshed.
pub const MAX_STALE_SECONDS: i64 = 3600;

/// Bounds on the lifetime a key set response may ask for with `Cache-Control`, in seconds.
const MIN_TTL: u64 = 60;
const MAX_TTL: u64 = 3600;

/// How one issuer's cached key set is doing, for health reporting and metrics by the server.
///
/// The server should log a warning while `serving_stale` is set and report unreadiness (or
/// alert) once `usable` is false.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyStatus {
    /// The configured issuer (a template for a multi-tenant issuer).
    pub issuer: String,
    /// Usable keys in the cached set.
    pub key_count: usize,
    /// The last fetch failed (or brought an ignored empty set). Cleared by the next success.
    pub refresh_failing: bool,
    /// The cached set is past its lifetime and still used because refreshes fail: the
    /// degraded state that deserves a warning.
    pub serving_stale: bool,
    /// Seconds the cached set is past its lifetime; 0 while it is fresh.
    pub stale_seconds: u64,
    /// The configured `max_stale_seconds`.
    pub max_stale_seconds: u64,
    /// The cached set may still be used; false once it is more than `max_stale_seconds` past
    /// its lifetime, when tokens of this issuer fail with `keys_unavailable`.
    pub usable: bool,
    /// Key set fetches attempted since start-up, including the first one.
    pub fetches: u64,
    /// Key set fetches that failed or brought an ignored empty set.
    pub fetch_failures: u64,
    /// Why the last fetch failed, while `refresh_failing`; never contains key material.
    pub last_error: Option<String>,
}

/// One fetched key set.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Arc<VerifyKey>>,
    /// Incremented on every replacement, so waiters can tell whether a fetch happened.
    pub(crate) generation: u64,
    /// From this time on the background task refreshes the set.
    pub(crate) refresh_at: i64,
    pub(crate) expires_at: i64,
}

impl KeySet {
    fn new(keys: Vec<Arc<VerifyKey>>, generation: u64, now: i64, ttl: i64) -> KeySet {
        KeySet {
            keys,
            generation,
            refresh_at: now.saturating_add(ttl - ttl / 5),
            expires_at: now.saturating_add(ttl),
        }
    }

    /// Whether the key with this thumbprint is in the set.
    pub(crate) fn has(&self, thumbprint: &[u8; 32]) -> bool {
        self.keys.iter().any(|key| &key.thumbprint == thumbprint)
    }
}

#[derive(Debug)]
struct State {
    current: Arc<KeySet>,
    /// No scheduled refresh is tried before this time (set after a failed refresh).
    next_attempt_at: i64,
    /// When the last refetch for an unknown `kid` started.
    forced_at: Option<i64>,
    /// Consecutive refreshes that returned no usable key while we held some.
    empty_streak: u32,
    /// Why the last fetch failed, until one succeeds.
    last_error: Option<String>,
}

/// The key cache of one issuer.
#[derive(Debug)]
pub(crate) struct IssuerKeys {
    issuer: String,
    jwks_uri: Url,
    default_ttl: u64,
    cooldown: i64,
    max_stale: i64,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Held while a fetch runs; makes fetches of one issuer single-flight.
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    /// The verified-token cache, whose entries for keys that left the set are dropped when a
    /// new set is installed; `index` is this issuer's position in it.
    tokens: TokenCache,
    index: usize,
}

impl IssuerKeys {
    /// Fetches the first key set; fails when it cannot be fetched or holds no usable key.
    pub(crate) async fn load(
        config: &IssuerConfig,
        jwks_uri: Url,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        tokens: TokenCache,
        index: usize,
    ) -> Result<Self, TokenError> {
        let unavailable = || TokenError::KeysUnavailable {
            issuer: config.issuer.clone(),
            retry_after_seconds: config.unknown_kid_cooldown_seconds,
        };
        let fetched = fetch::key_set(&http, &jwks_uri).await.map_err(|error| {
            tracing::debug!(issuer = %config.issuer, %error, "Key set fetch failed");
            unavailable()
        })?;
        if fetched.set.keys.is_empty() {
            tracing::debug!(issuer = %config.issuer, "Key set has no usable key");
            return Err(unavailable());
        }
        let ttl = ttl(fetched.max_age, config.jwks_cache_seconds);
        let current = Arc::new(KeySet::new(fetched.set.keys, 1, clock.now(), ttl));
        let state = State {
            current,
            next_attempt_at: 0,
            forced_at: None,
            empty_streak: 0,
            last_error: None,
        };
        Ok(IssuerKeys {
            issuer: config.issuer.clone(),
            jwks_uri,
            default_ttl: config.jwks_cache_seconds,
            cooldown: seconds(config.unknown_kid_cooldown_seconds),
            max_stale: seconds(config.max_stale_seconds),
            http,
            clock,
            state: Mutex::new(state),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(1),
            fetch_failures: AtomicU64::new(0),
            tokens,
            index,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.state().current)
    }

    /// The key set to use now, without waiting for anything: the cached set while it is usable,
    /// else `keys_unavailable`.
    pub(crate) fn current(&self) -> Result<Arc<KeySet>, TokenError> {
        let set = self.snapshot();
        if self.usable(&set, self.clock.now()) {
            Ok(set)
        } else {
            Err(self.unavailable())
        }
    }

    /// Refreshes the set when its refresh time has come and no failed attempt asks to wait.
    /// Returns the new set when one was installed. Does nothing while another fetch runs.
    pub(crate) async fn refresh_if_due(&self) -> Option<Arc<KeySet>> {
        if !refresh_due(&self.state(), self.clock.now()) {
            return None;
        }
        let _guard = self.refresh.try_lock().ok()?;
        if !refresh_due(&self.state(), self.clock.now()) {
            return None;
        }
        tracing::debug!(issuer = %self.issuer, "Refreshing key set");
        self.refresh_locked().await
    }

    /// Refetches because a token named a `kid` that `seen` does not have. Returns the newer set
    /// when one arrived since `seen` (fetched here or by a concurrent caller), or `None` when the
    /// cooldown forbids a fetch or the fetch brought nothing new.
    pub(crate) async fn refetch_for_unknown_kid(&self, seen: u64) -> Option<Arc<KeySet>> {
        // Wait for a fetch in flight before looking at the cooldown: a request that arrives
        // while another one's refetch is running must see that fetch's keys, not be refused
        // because the cooldown it started is already active.
        let _guard = self.refresh.lock().await;
        if let Some(newer) = self.newer_or_cooling(seen) {
            return newer;
        }
        self.state().forced_at = Some(self.clock.now());
        tracing::debug!(issuer = %self.issuer, "Refetching key set for unknown kid");
        self.refresh_locked().await
    }

    /// `Some(Some(set))` when a newer set than `seen` exists, `Some(None)` when within the
    /// cooldown, `None` when a fetch is allowed.
    fn newer_or_cooling(&self, seen: u64) -> Option<Option<Arc<KeySet>>> {
        let state = self.state();
        if state.current.generation != seen {
            return Some(Some(Arc::clone(&state.current)));
        }
        let now = self.clock.now();
        let cooling = state
            .forced_at
            .is_some_and(|at| now < at.saturating_add(self.cooldown));
        cooling.then_some(None)
    }

    /// Fetches and, when the result is acceptable, installs and returns a new set. Caller
    /// holds `refresh`.
    async fn refresh_locked(&self) -> Option<Arc<KeySet>> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = fetch::key_set(&self.http, &self.jwks_uri).await;
        let now = self.clock.now();
        let mut state = self.state();
        let problem = match result {
            Ok(fetched) if self.accept(&mut state, &fetched) => {
                let ttl = ttl(fetched.max_age, self.default_ttl);
                let generation = state.current.generation + 1;
                tracing::debug!(issuer = %self.issuer, keys = fetched.set.keys.len(),
                    skipped = fetched.set.skipped, "Key set refreshed");
                let set = Arc::new(KeySet::new(fetched.set.keys, generation, now, ttl));
                let old = std::mem::replace(&mut state.current, Arc::clone(&set));
                state.next_attempt_at = 0;
                state.last_error = None;
                drop(state);
                if old.keys.iter().any(|key| !set.has(&key.thumbprint)) {
                    let kept = Arc::clone(&set);
                    self.tokens
                        .drop_keys_of(self.index, move |thumbprint| kept.has(thumbprint));
                }
                return Some(set);
            }
            Ok(_) => "key set has no usable key; ignored once".to_owned(),
            Err(error) => error.to_string(),
        };
        tracing::debug!(issuer = %self.issuer, error = %problem, "Key set refresh failed");
        self.fetch_failures.fetch_add(1, Ordering::Relaxed);
        state.next_attempt_at = now.saturating_add(self.cooldown);
        state.last_error = Some(problem);
        None
    }

    /// Whether `fetched` may replace the current set: an empty set replaces a non-empty one
    /// only on the second consecutive sighting.
    fn accept(&self, state: &mut State, fetched: &FetchedSet) -> bool {
        if !fetched.set.keys.is_empty() || state.current.keys.is_empty() {
            state.empty_streak = 0;
            return true;
        }
        state.empty_streak += 1;
        if state.empty_streak >= 2 {
            state.empty_streak = 0;
            return true;
        }
        false
    }

    pub(crate) fn status(&self) -> KeyStatus {
        let now = self.clock.now();
        let state = self.state();
        let stale = now.saturating_sub(state.current.expires_at).max(0);
        KeyStatus {
            issuer: self.issuer.clone(),
            key_count: state.current.keys.len(),
            refresh_failing: state.last_error.is_some(),
            serving_stale: stale > 0 && self.usable(&state.current, now),
            stale_seconds: u64::try_from(stale).unwrap_or(0),
            max_stale_seconds: u64::try_from(self.max_stale).unwrap_or(0),
            usable: self.usable(&state.current, now),
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self.fetch_failures.load(Ordering::Relaxed),
            last_error: state.last_error.clone(),
        }
    }

    fn usable(&self, set: &KeySet, now: i64) -> bool {
        now < set.expires_at.saturating_add(self.max_stale)
    }

    fn unavailable(&self) -> TokenError {
        let now = self.clock.now();
        let wait = self
            .state()
            .next_attempt_at
            .saturating_sub(now)
            .clamp(1, self.cooldown.max(1));
        TokenError::KeysUnavailable {
            issuer: self.issuer.clone(),
            retry_after_seconds: u64::try_from(wait).unwrap_or(1),
        }
    }
}

fn refresh_due(state: &State, now: i64) -> bool {
    now >= state.current.refresh_at && now >= state.next_attempt_at
}

fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The lifetime of a fetched set: the response's `max-age` clamped to 60..=3600 when present,
/// else the configured default.
fn ttl(max_age: Option<u64>, default: u64) -> i64 {
    seconds(max_age.map_or(default, |age| age.clamp(MIN_TTL, MAX_TTL)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_lifetime_is_clamped() {
        assert_eq!(ttl(None, 300), 300);
        assert_eq!(ttl(Some(0), 300), 60);
        assert_eq!(ttl(Some(600), 300), 600);
        assert_eq!(ttl(Some(86_400), 300), 3600);
    }

    #[test]
    fn a_set_is_refreshed_after_four_fifths_of_its_lifetime() {
        let set = KeySet::new(Vec::new(), 1, 1_000, 300);
        assert_eq!((set.refresh_at, set.expires_at), (1_240, 1_300));
        let short = KeySet::new(Vec::new(), 1, 0, 60);
        assert_eq!((short.refresh_at, short.expires_at), (48, 60));
    }

    #[test]
    fn a_failed_attempt_postpones_the_next_refresh() {
        let state = State {
            current: Arc::new(KeySet::new(Vec::new(), 1, 0, 300)),
            next_attempt_at: 270,
            forced_at: None,
            empty_streak: 0,
            last_error: None,
        };
        assert!(!refresh_due(&state, 239));
        assert!(!refresh_due(&state, 250));
        assert!(refresh_due(&state, 270));
    }
}
