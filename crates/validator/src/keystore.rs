//! The cached key set of one issuer: TTL refresh, one refetch per cooldown for unknown `kid`s
//! (shared by concurrent callers), and last-good keys kept through IdP outages.
//!
//! Staleness: when refreshes fail, the last good set keeps being used until
//! [`MAX_STALE_SECONDS`] after it expired; after that, tokens of the issuer fail with
//! `keys_unavailable` until a refresh succeeds. A failed refresh is retried no sooner than one
//! cooldown later, so an IdP outage costs at most one fetch per cooldown, not one per request.
//! A refresh that returns a set with no usable key replaces a non-empty set only when the
//! next refresh returns an empty set too.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use url::Url;

use crate::clock::Clock;
use crate::config::IssuerConfig;
use crate::error::TokenError;
use crate::fetch::{self, FetchedSet};
use crate::jwks::VerifyKey;

/// How long after its expiry a key set is still used when it cannot be refreshed, in seconds.
pub const MAX_STALE_SECONDS: i64 = 3600;

/// Bounds on the lifetime a key set response may ask for with `Cache-Control`, in seconds.
const MIN_TTL: u64 = 60;
const MAX_TTL: u64 = 3600;

/// How one issuer's cached key set is doing, for health reporting by the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyStatus {
    /// The configured issuer.
    pub issuer: String,
    /// Usable keys in the cached set.
    pub key_count: usize,
    /// The last refresh attempt failed (or was an ignored empty set): the cached set is being
    /// served past its lifetime. Cleared by the next successful refresh.
    pub refresh_failing: bool,
    /// The cached set may still be used; false once it is more than [`MAX_STALE_SECONDS`] past
    /// its lifetime, when tokens of this issuer fail with `keys_unavailable`.
    pub usable: bool,
}

/// One fetched key set.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerifyKey>,
    /// Incremented on every replacement, so waiters can tell whether a fetch happened.
    pub(crate) generation: u64,
    pub(crate) expires_at: i64,
}

#[derive(Debug)]
struct State {
    current: Arc<KeySet>,
    /// No TTL refresh is tried before this time (set after a failed refresh).
    next_attempt_at: i64,
    /// When the last refetch for an unknown `kid` started.
    forced_at: Option<i64>,
    /// Consecutive refreshes that returned no usable key while we held some.
    empty_streak: u32,
}

/// The key cache of one issuer.
#[derive(Debug)]
pub(crate) struct IssuerKeys {
    issuer: String,
    jwks_uri: Url,
    default_ttl: u64,
    cooldown: i64,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Held while a fetch runs; makes fetches of one issuer single-flight.
    refresh: tokio::sync::Mutex<()>,
}

impl IssuerKeys {
    /// Fetches the first key set; fails when it cannot be fetched or holds no usable key.
    pub(crate) async fn load(
        config: &IssuerConfig,
        jwks_uri: Url,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
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
        let now = clock.now();
        let ttl = ttl(fetched.max_age, config.jwks_cache_seconds);
        let current = Arc::new(KeySet {
            keys: fetched.set.keys,
            generation: 1,
            expires_at: now + ttl,
        });
        let state = State {
            current,
            next_attempt_at: 0,
            forced_at: None,
            empty_streak: 0,
        };
        Ok(IssuerKeys {
            issuer: config.issuer.clone(),
            jwks_uri,
            default_ttl: config.jwks_cache_seconds,
            cooldown: i64::try_from(config.unknown_kid_cooldown_seconds).unwrap_or(i64::MAX),
            http,
            clock,
            state: Mutex::new(state),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.state().current)
    }

    /// The key set to use now, refreshing it first when its lifetime is over. Requests do not
    /// wait for a refresh while the old set is still usable; one request does the fetch.
    pub(crate) async fn current(&self) -> Result<Arc<KeySet>, TokenError> {
        let now = self.clock.now();
        let (set, due) = {
            let state = self.state();
            (Arc::clone(&state.current), refresh_due(&state, now))
        };
        if !due && usable(&set, now) {
            return Ok(set);
        }
        if due {
            match self.refresh.try_lock() {
                Ok(_guard) => {
                    let still_due = refresh_due(&self.state(), self.clock.now());
                    if still_due {
                        self.refresh_locked().await;
                    }
                }
                // Someone else is fetching: wait only if the old set cannot be used.
                Err(_) if !usable(&set, now) => drop(self.refresh.lock().await),
                Err(_) => {}
            }
        }
        let set = self.snapshot();
        if usable(&set, self.clock.now()) {
            Ok(set)
        } else {
            Err(self.unavailable())
        }
    }

    /// Refetches because a token named a `kid` that `seen` does not have. Returns the newer set
    /// when one arrived since `seen` (fetched here or by a concurrent caller), or `None` when the
    /// cooldown forbids a fetch or the fetch brought nothing new.
    pub(crate) async fn refetch_for_unknown_kid(&self, seen: u64) -> Option<Arc<KeySet>> {
        if let Some(newer) = self.newer_or_cooling(seen) {
            return newer;
        }
        let _guard = self.refresh.lock().await;
        if let Some(newer) = self.newer_or_cooling(seen) {
            return newer;
        }
        self.state().forced_at = Some(self.clock.now());
        tracing::debug!(issuer = %self.issuer, "Refetching key set for unknown kid");
        self.refresh_locked().await;
        let current = self.snapshot();
        (current.generation != seen).then_some(current)
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

    /// Fetches and, when the result is acceptable, installs a new set. Caller holds `refresh`.
    async fn refresh_locked(&self) {
        let result = fetch::key_set(&self.http, &self.jwks_uri).await;
        let now = self.clock.now();
        let mut state = self.state();
        match result {
            Ok(fetched) if self.accept(&mut state, &fetched) => {
                let ttl = ttl(fetched.max_age, self.default_ttl);
                let generation = state.current.generation + 1;
                tracing::debug!(issuer = %self.issuer, keys = fetched.set.keys.len(),
                    skipped = fetched.set.skipped, "Key set refreshed");
                let keys = fetched.set.keys;
                state.current = Arc::new(KeySet {
                    keys,
                    generation,
                    expires_at: now + ttl,
                });
                state.next_attempt_at = 0;
            }
            Ok(_) => {
                tracing::debug!(issuer = %self.issuer, "Empty key set ignored once");
                state.next_attempt_at = now.saturating_add(self.cooldown);
            }
            Err(error) => {
                tracing::debug!(issuer = %self.issuer, %error, "Key set refresh failed");
                state.next_attempt_at = now.saturating_add(self.cooldown);
            }
        }
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
        KeyStatus {
            issuer: self.issuer.clone(),
            key_count: state.current.keys.len(),
            refresh_failing: state.next_attempt_at != 0,
            usable: usable(&state.current, now),
        }
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
    now >= state.current.expires_at && now >= state.next_attempt_at
}

fn usable(set: &KeySet, now: i64) -> bool {
    now < set.expires_at.saturating_add(MAX_STALE_SECONDS)
}

/// The lifetime of a fetched set: the response's `max-age` clamped to 60..=3600 when present,
/// else the configured default.
fn ttl(max_age: Option<u64>, default: u64) -> i64 {
    let seconds = max_age.map_or(default, |age| age.clamp(MIN_TTL, MAX_TTL));
    i64::try_from(seconds).unwrap_or(i64::MAX)
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
    fn a_set_stays_usable_for_the_stale_window_after_expiry() {
        let set = KeySet {
            keys: Vec::new(),
            generation: 1,
            expires_at: 1_000,
        };
        assert!(usable(&set, 1_000 + MAX_STALE_SECONDS - 1));
        assert!(!usable(&set, 1_000 + MAX_STALE_SECONDS));
    }
}
