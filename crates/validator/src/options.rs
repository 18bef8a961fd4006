use std::sync::Arc;

use crate::cache::DEFAULT_TOKEN_CACHE_ENTRIES;
use crate::clock::{Clock, SystemClock};
use crate::config::DEFAULT_MAX_TOKEN_BYTES;

/// Settings of a [`Validator`](crate::Validator) that apply to all issuers.
#[derive(Debug, Clone)]
pub struct ValidatorOptions {
    /// Tokens longer than this many bytes are refused before any parsing. Default
    /// [`DEFAULT_MAX_TOKEN_BYTES`] (16 KiB); must be positive.
    pub max_token_bytes: usize,
    /// At most this many verified tokens are cached. Default
    /// [`DEFAULT_TOKEN_CACHE_ENTRIES`](crate::DEFAULT_TOKEN_CACHE_ENTRIES) (10 000); 0 turns the
    /// cache off, so every token is verified on every request.
    pub token_cache_entries: u64,
    /// Whether a background task refreshes key sets ahead of their expiry. Default true. When
    /// false, nothing refreshes them on schedule unless the owner calls
    /// [`Validator::refresh_keys`](crate::Validator::refresh_keys); tests use this to step
    /// time deterministically. Unknown-`kid` refetches happen either way.
    pub background_refresh: bool,
    /// The time source for token and cache times. Default [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl Default for ValidatorOptions {
    fn default() -> Self {
        ValidatorOptions {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            background_refresh: true,
            clock: Arc::new(SystemClock),
        }
    }
}
