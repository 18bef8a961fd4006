//! The cached managed-identity token and the background task that keeps it fresh.
//!
//! Requests only ever read the cache; the one background task is the only caller of the token
//! endpoint after start-up, so at most one token request is in flight per credential and token
//! traffic scales with token lifetime, not with request rate. A request that learns the token
//! was refused upstream can ask that task to refresh early, at most once a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::UpstreamError;
use crate::token_source::{FetchFailure, FetchedToken, STALE_MARGIN, TokenSource};

/// Tokens living at least this long are refreshed at half their remaining life.
const HALF_LIFE_THRESHOLD: Duration = Duration::from_secs(2 * 3600);
/// Shorter tokens are refreshed this long before they expire.
const EARLY_REFRESH: Duration = Duration::from_secs(5 * 60);
/// First wait after a failed background refresh; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Start-up attempts and the first wait between them (it doubles).
const STARTUP_ATTEMPTS: u32 = 5;
const STARTUP_BACKOFF: Duration = Duration::from_secs(1);
const STARTUP_MAX_WAIT: Duration = Duration::from_secs(30);
/// Jitter takes up to this share off (refresh) or adds it on (backoff).
const JITTER: f64 = 0.1;
const MIN_DELAY: Duration = Duration::from_secs(1);
/// Forced refreshes are this far apart at least, so a misconfigured identity (every request
/// refused upstream) costs one token request a minute, not one per request.
pub(crate) const FORCED_REFRESH_SPACING: Duration = Duration::from_secs(60);

/// Why a background refresh failed, as counted in [`TokenStatus::refresh_failures`]:
/// `config` (cosmogate's own settings or files, which no retry fixes), `rejected` (the
/// endpoint refused the request for good, such as a 400 or 403) and `transient` (timeouts,
/// connection failures, throttling and 5xx, retried with backoff).
pub const REFRESH_FAILURE_REASONS: [&str; 3] = ["config", "rejected", "transient"];

/// A read-only view of a cached token, for metrics: never the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStatus {
    /// Time since the current token was obtained.
    pub age: Duration,
    /// Time until the current token expires; zero once it has.
    pub expires_in: Duration,
    /// Whether the current token is still served: it is not, from a minute before it expires.
    pub usable: bool,
    /// Wall-clock time the current token was obtained: at start-up, or by the last
    /// successful refresh.
    pub obtained_at: SystemTime,
    /// Token requests made by the background refresh since start-up (the start-up attempts
    /// are not counted: they happen before the gateway serves).
    pub refresh_attempts: u64,
    /// Failed background refreshes since start-up, by reason, in the order of
    /// [`REFRESH_FAILURE_REASONS`].
    pub refresh_failures: [(&'static str, u64); 3],
}

/// The current token, shared by every clone of a credential.
pub(crate) struct TokenCache {
    slot: RwLock<CachedToken>,
    wake: Notify,
    last_forced: Mutex<Option<Instant>>,
    attempts: AtomicU64,
    failures: [AtomicU64; 3],
}

struct CachedToken {
    header: HeaderValue,
    usable_until: Instant,
    expires_at: Instant,
    obtained: Instant,
    obtained_at: SystemTime,
}

impl TokenCache {
    pub(crate) fn new(token: &FetchedToken) -> Self {
        Self {
            slot: RwLock::new(CachedToken::from(token)),
            wake: Notify::new(),
            last_forced: Mutex::new(None),
            attempts: AtomicU64::new(0),
            failures: Default::default(),
        }
    }

    /// The age, expiry and refresh counts of the cached token.
    pub(crate) fn status(&self) -> TokenStatus {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let failures = std::array::from_fn(|i| {
            (
                REFRESH_FAILURE_REASONS[i],
                self.failures[i].load(Ordering::Relaxed),
            )
        });
        TokenStatus {
            age: now.saturating_duration_since(slot.obtained),
            expires_in: slot.expires_at.saturating_duration_since(now),
            usable: now < slot.usable_until,
            obtained_at: slot.obtained_at,
            refresh_attempts: self.attempts.load(Ordering::Relaxed),
            refresh_failures: failures,
        }
    }

    fn count_failure(&self, failure: &FetchFailure) {
        let reason = match (&failure.error, failure.retryable) {
            (_, true) => "transient",
            (UpstreamError::CredentialConfig(_), false) => "config",
            (_, false) => "rejected",
        };
        if let Some(i) = REFRESH_FAILURE_REASONS.iter().position(|r| *r == reason) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the refresh task to fetch a new token now, unless it was asked less than
    /// [`FORCED_REFRESH_SPACING`] ago. True when it was asked. The cached token keeps serving
    /// meanwhile, and still serves if the forced refresh fails.
    pub(crate) fn request_refresh(&self) -> bool {
        let now = Instant::now();
        let mut last = self
            .last_forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now < at + FORCED_REFRESH_SPACING) {
            return false;
        }
        *last = Some(now);
        self.wake.notify_one();
        true
    }

    /// The header value, as long as the token has more than a minute left.
    pub(crate) fn get(&self) -> Result<HeaderValue, UpstreamError> {
        let slot = self.slot.read().unwrap_or_else(PoisonError::into_inner);
        if Instant::now() >= slot.usable_until {
            return Err(UpstreamError::unavailable(
                "the cached token expired and the token endpoint has not given a new one",
            ));
        }
        Ok(slot.header.clone())
    }

    fn store(&self, token: &FetchedToken) {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        *slot = CachedToken::from(token);
    }
}

impl From<&FetchedToken> for CachedToken {
    fn from(token: &FetchedToken) -> Self {
        Self {
            header: token.header.clone(),
            usable_until: token.expires_at - STALE_MARGIN,
            expires_at: token.expires_at,
            obtained: Instant::now(),
            obtained_at: SystemTime::now(),
        }
    }
}

/// Aborts the refresh task when the last clone of the credential goes away.
pub(crate) struct Refresher(JoinHandle<()>);

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Gets the first token, retrying transient failures a few times (about 15 s in all).
pub(crate) async fn fetch_first(
    endpoint: &impl TokenSource,
) -> Result<FetchedToken, UpstreamError> {
    let mut wait = STARTUP_BACKOFF;
    let mut attempt = 1;
    loop {
        let failure = match endpoint.fetch().await {
            Ok(token) => return Ok(token),
            Err(failure) => failure,
        };
        tracing::debug!(
            attempt,
            retryable = failure.retryable,
            reason = failure.error.reason_code(),
            "Token request failed"
        );
        if !failure.retryable || attempt >= STARTUP_ATTEMPTS {
            return Err(failure.error);
        }
        let floor = failure
            .retry_after
            .unwrap_or_default()
            .min(STARTUP_MAX_WAIT);
        tokio::time::sleep(with_added_jitter(wait.max(floor), rand::random())).await;
        wait *= 2;
        attempt += 1;
    }
}

/// Starts the task that refreshes `cache` from `endpoint`, first when `first` is due.
pub(crate) fn spawn_refresher(
    endpoint: impl TokenSource,
    cache: Arc<TokenCache>,
    first: &FetchedToken,
) -> Refresher {
    let delay = refresh_delay(first, Instant::now(), rand::random());
    Refresher(tokio::spawn(refresh_loop(endpoint, cache, delay)))
}

async fn refresh_loop(endpoint: impl TokenSource, cache: Arc<TokenCache>, mut delay: Duration) {
    let mut failures = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cache.wake.notified() => tracing::debug!("Forced token refresh"),
        }
        cache.attempts.fetch_add(1, Ordering::Relaxed);
        match endpoint.fetch().await {
            Ok(token) => {
                cache.store(&token);
                failures = 0;
                delay = refresh_delay(&token, Instant::now(), rand::random());
                tracing::debug!(next_refresh_seconds = delay.as_secs(), "Token refreshed");
            }
            Err(failure) => {
                cache.count_failure(&failure);
                failures += 1;
                delay = failure_delay(&failure, failures, rand::random());
                tracing::debug!(
                    failures,
                    retryable = failure.retryable,
                    reason = failure.error.reason_code(),
                    next_attempt_seconds = delay.as_secs(),
                    "Token refresh failed"
                );
            }
        }
    }
}

/// When to refresh a token just received: at `refresh_in` if the endpoint sent one, at half
/// the remaining life for tokens of two hours or more, otherwise five minutes before expiry;
/// never later than that, and a little earlier by a random share (`jitter` in `0..1`).
fn refresh_delay(token: &FetchedToken, now: Instant, jitter: f64) -> Duration {
    let remaining = token.expires_at.saturating_duration_since(now);
    // A short-lived token is refreshed halfway through the part of its life in which it is
    // served: it stops being used `STALE_MARGIN` before it expires.
    let latest = if remaining > EARLY_REFRESH * 2 {
        remaining - EARLY_REFRESH
    } else {
        remaining.saturating_sub(STALE_MARGIN) / 2
    };
    let wanted = match token.refresh_in {
        Some(refresh_in) => refresh_in,
        None if token.lifetime >= HALF_LIFE_THRESHOLD => remaining / 2,
        None => latest,
    };
    wanted
        .min(latest)
        .mul_f64(1.0 - JITTER * jitter.clamp(0.0, 1.0))
        .max(MIN_DELAY)
}

/// When to try again after the `failures`-th failed refresh in a row: exponential from 30 s
/// up to 5 min, at least `Retry-After`; a non-retryable answer waits the longest.
fn failure_delay(failure: &FetchFailure, failures: u32, jitter: f64) -> Duration {
    let backoff = if failure.retryable {
        let doublings = failures.saturating_sub(1).min(16);
        FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF)
    } else {
        MAX_BACKOFF
    };
    let floor = failure.retry_after.unwrap_or_default().min(MAX_BACKOFF);
    with_added_jitter(backoff.max(floor), jitter)
}

fn with_added_jitter(delay: Duration, jitter: f64) -> Duration {
    delay.mul_f64(1.0 + JITTER * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn token(now: Instant, lifetime: Duration, refresh_in: Option<Duration>) -> FetchedToken {
        FetchedToken {
            header: HeaderValue::from_static("type=aad&ver=1.0&sig=t"),
            expires_at: now + lifetime,
            lifetime,
            refresh_in,
        }
    }

    fn failure(retryable: bool, retry_after: Option<Duration>) -> FetchFailure {
        FetchFailure {
            error: UpstreamError::unavailable("x"),
            retryable,
            retry_after,
        }
    }

    #[test]
    fn one_hour_token_is_refreshed_five_minutes_before_expiry() {
        let now = Instant::now();
        assert_eq!(refresh_delay(&token(now, HOUR, None), now, 0.0), 55 * MIN);
    }

    #[test]
    fn long_lived_token_is_refreshed_at_half_life() {
        let now = Instant::now();
        assert_eq!(
            refresh_delay(&token(now, 24 * HOUR, None), now, 0.0),
            12 * HOUR
        );
    }

    #[test]
    fn refresh_in_from_the_endpoint_wins() {
        let now = Instant::now();
        let t = token(now, 24 * HOUR, Some(3 * HOUR));
        assert_eq!(refresh_delay(&t, now, 0.0), 3 * HOUR);
    }

    #[test]
    fn refresh_in_past_the_safe_point_is_cut_back() {
        let now = Instant::now();
        let t = token(now, HOUR, Some(2 * HOUR));
        assert_eq!(refresh_delay(&t, now, 0.0), 55 * MIN);
    }

    #[test]
    fn short_token_is_refreshed_halfway_through_its_usable_life() {
        let now = Instant::now();
        // Served for three of its four minutes.
        let delay = refresh_delay(&token(now, 4 * MIN, None), now, 0.0);
        assert_eq!(delay, Duration::from_secs(90));
        // Halfway through the usable part, however short; a token usable for under two
        // seconds is refreshed after the one-second floor, when it is about to stop serving.
        for secs in [61, 62, 70, 90, 300, 600] {
            let lifetime = Duration::from_secs(secs);
            let usable = lifetime - STALE_MARGIN;
            let delay = refresh_delay(&token(now, lifetime, None), now, 0.0);
            assert_eq!(delay, (usable / 2).max(MIN_DELAY), "{secs} s");
            if usable > 2 * MIN_DELAY {
                assert!(delay < usable, "{secs} s: {delay:?}");
            }
        }
    }

    #[test]
    fn jitter_only_ever_moves_a_refresh_earlier_by_at_most_a_tenth() {
        let now = Instant::now();
        let t = token(now, HOUR, None);
        assert_eq!(refresh_delay(&t, now, 1.0), (55 * MIN).mul_f64(0.9));
        assert_eq!(refresh_delay(&t, now, 7.0), (55 * MIN).mul_f64(0.9));
    }

    #[test]
    fn failed_refreshes_back_off_exponentially_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=6)
            .map(|n| failure_delay(&failure(true, None), n, 0.0).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let f = failure(true, Some(Duration::from_secs(100)));
        assert_eq!(failure_delay(&f, 1, 0.0), Duration::from_secs(100));
        let f = failure(true, Some(Duration::from_secs(86_400)));
        assert_eq!(failure_delay(&f, 1, 0.0), MAX_BACKOFF);
    }

    #[test]
    fn non_retryable_failure_waits_the_longest() {
        assert_eq!(failure_delay(&failure(false, None), 1, 0.0), MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn forced_refreshes_are_spaced_at_least_a_minute_apart() {
        let cache = TokenCache::new(&token(Instant::now(), HOUR, None));
        assert!(cache.request_refresh());
        assert!(!cache.request_refresh());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!cache.request_refresh());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.request_refresh());
    }

    #[tokio::test(start_paused = true)]
    async fn cached_token_stops_being_served_a_minute_before_expiry() {
        let cache = TokenCache::new(&token(Instant::now(), 10 * MIN, None));
        tokio::time::advance(8 * MIN).await;
        assert!(cache.get().is_ok());
        tokio::time::advance(MIN + Duration::from_secs(1)).await;
        let err = cache.get().expect_err("stale token must not be served");
        assert_eq!(err.reason_code(), "credential_unavailable");
    }

    /// Answers each fetch with the next scripted outcome: `Ok(lifetime)` or a failure.
    struct Scripted(Mutex<Vec<Result<Duration, FetchFailure>>>);

    impl TokenSource for Scripted {
        async fn fetch(&self) -> Result<FetchedToken, FetchFailure> {
            let next = self.0.lock().expect("script").remove(0);
            next.map(|lifetime| token(Instant::now(), lifetime, None))
        }
    }

    fn failures(status: &TokenStatus) -> Vec<u64> {
        status.refresh_failures.iter().map(|(_, n)| *n).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn status_reports_age_expiry_and_refresh_failures_by_reason() {
        let first = token(Instant::now(), 4 * MIN, None);
        let cache = Arc::new(TokenCache::new(&first));
        let script = vec![
            Err(failure(true, None)),
            Err(FetchFailure::from_status(403, "refused".into(), None)),
            Err(FetchFailure::permanent(UpstreamError::CredentialConfig(
                "x".into(),
            ))),
            Ok(HOUR),
        ];
        let _refresher = spawn_refresher(Scripted(Mutex::new(script)), cache.clone(), &first);

        tokio::time::advance(MIN).await;
        let status = cache.status();
        assert_eq!((status.age, status.expires_in), (MIN, 3 * MIN));
        assert_eq!(status.refresh_attempts, 0);
        assert_eq!(failures(&status), [0, 0, 0]);

        // Attempts at about 2 min (half-life), then after 30 s, 5 min and 5 min of backoff,
        // each with up to a tenth of jitter: the third ends by 8.05 min, the fourth starts
        // at 12.3 min at the earliest.
        tokio::time::sleep(9 * MIN).await;
        let status = cache.status();
        assert_eq!(status.refresh_attempts, 3);
        assert_eq!(failures(&status), [1, 1, 1], "config, rejected, transient");
        assert_eq!(
            status.age,
            10 * MIN,
            "the first token is still the one held"
        );
        assert_eq!(status.expires_in, Duration::ZERO);

        tokio::time::sleep(5 * MIN).await;
        let status = cache.status();
        assert_eq!(status.refresh_attempts, 4);
        assert_eq!(failures(&status), [1, 1, 1], "the fourth succeeded");
        assert!(status.age < 3 * MIN, "a fresh token: {:?}", status.age);
        assert!(status.expires_in > 57 * MIN);
        let reasons: Vec<&str> = status.refresh_failures.iter().map(|(r, _)| *r).collect();
        assert_eq!(reasons, REFRESH_FAILURE_REASONS);
    }
}
