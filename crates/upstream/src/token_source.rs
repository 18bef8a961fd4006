//! The seam between the token cache and whatever fetches tokens.
//!
//! A [`TokenSource`] asks its endpoint once and says whether trying again soon could help;
//! the cache decides when to ask and what to serve meanwhile. Managed identity on VMs and
//! App Service is our own small client (`token_endpoint`); the Entra flows (workload identity,
//! client secret) go through `azure_identity` (`entra`).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use tokio::time::Instant;

use crate::error::UpstreamError;

/// Longest wait for one token request, body included. `azure_identity` alone can block for
/// well over a minute, so every source is cut off here and the cache's own backoff takes over.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longer lifetimes are believed only up to this (it also keeps instants from overflowing).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// A token with less life than this left is not served, and is refused when fetched.
pub(crate) const STALE_MARGIN: Duration = Duration::from_secs(60);

/// Something that can fetch one token for the Cosmos account.
pub(crate) trait TokenSource: Send + Sync + 'static {
    /// Asks once; no retries here.
    fn fetch(&self) -> impl Future<Output = Result<FetchedToken, FetchFailure>> + Send;
}

/// A token as received, with its times on our monotonic clock.
pub(crate) struct FetchedToken {
    /// `type=aad&ver=1.0&sig=<token>`, marked sensitive.
    pub header: HeaderValue,
    pub expires_at: Instant,
    /// The whole lifetime (`expires_in`), or the remaining life when only an expiry came.
    pub lifetime: Duration,
    pub refresh_in: Option<Duration>,
}

/// A failed token request and whether trying again soon could help.
pub(crate) struct FetchFailure {
    pub error: UpstreamError,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl FetchFailure {
    /// A failure that no retry will fix (configuration, unreadable file).
    pub(crate) fn permanent(error: UpstreamError) -> Self {
        Self {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    /// A transient failure worth retrying after the usual backoff.
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Self {
            error: UpstreamError::unavailable(reason),
            retryable: true,
            retry_after: None,
        }
    }

    /// The endpoint answered `status`. Per the IMDS guidance (which Entra's matches): 404 and
    /// 410 (updating), 408, 429 and 5xx are worth retrying; any other 4xx is a design-time
    /// error that retrying will not fix.
    pub(crate) fn from_status(status: u16, reason: String, retry_after: Option<Duration>) -> Self {
        Self {
            error: UpstreamError::unavailable(reason),
            retryable: matches!(status, 404 | 408 | 410 | 429) || (500..600).contains(&status),
            retry_after,
        }
    }
}

/// `type=aad&ver=1.0&sig=<token>`, sensitive. The token must be one visible-ASCII word.
pub(crate) fn token_header(token: &str) -> Result<HeaderValue, &'static str> {
    const UNUSABLE: &str = "token response has an unusable access_token";
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
        return Err(UNUSABLE);
    }
    let mut header =
        HeaderValue::from_str(&format!("type=aad&ver=1.0&sig={token}")).map_err(|_| UNUSABLE)?;
    header.set_sensitive(true);
    Ok(header)
}

/// A token that expires at `epoch` (Unix seconds), with nothing else known about it.
pub(crate) fn token_expiring_at(
    header: HeaderValue,
    epoch: i64,
) -> Result<FetchedToken, &'static str> {
    let remaining = u64::try_from(epoch)
        .ok()
        .map(|at| at.saturating_sub(epoch_now()))
        .map(|secs| Duration::from_secs(secs).min(MAX_LIFETIME))
        .ok_or("token endpoint returned a token that is about to expire")?;
    if remaining <= STALE_MARGIN {
        return Err("token endpoint returned a token that is about to expire");
    }
    Ok(FetchedToken {
        header,
        expires_at: Instant::now() + remaining,
        lifetime: remaining,
        refresh_in: None,
    })
}

/// A `Retry-After` value: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Seconds since the Unix epoch on the wall clock.
pub(crate) fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_follow_the_guidance() {
        let retryable = |status| FetchFailure::from_status(status, String::new(), None).retryable;
        for status in [404, 408, 410, 429, 500, 503, 599] {
            assert!(retryable(status), "{status}");
        }
        for status in [400, 401, 403, 405, 409] {
            assert!(!retryable(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn token_expiring_within_the_margin_or_in_the_past_is_refused() {
        let header = HeaderValue::from_static("type=aad&ver=1.0&sig=t");
        let now = epoch_now() as i64;
        assert!(token_expiring_at(header.clone(), now + 30).is_err());
        assert!(token_expiring_at(header.clone(), now - 30).is_err());
        assert!(token_expiring_at(header.clone(), -1).is_err());
        let token = token_expiring_at(header, now + 3600).expect("an hour is fine");
        assert!(token.lifetime <= Duration::from_secs(3600));
        assert!(token.lifetime > Duration::from_secs(3500));
    }

    #[test]
    fn tokens_with_spaces_commas_or_controls_are_refused() {
        for bad in ["", "a b", "a,b", "a\nb", "é"] {
            assert!(token_header(bad).is_err(), "{bad:?}");
        }
        assert!(token_header("eyJ.a.b").expect("plain token").is_sensitive());
    }
}
