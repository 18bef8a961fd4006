//! The one error type of this crate.

use std::error::Error as StdError;

/// A boxed error kept as the cause of an [`UpstreamError`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why talking to the Cosmos gateway, or getting the credential for it, failed.
///
/// Messages never contain a token, a key or a signature: they name the condition and, at most,
/// a status code or an error code that the token endpoint sent.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection to the upstream could not be made.
    #[error("cannot connect to the upstream")]
    Connect(#[source] BoxError),

    /// Connecting, or waiting for the response headers, took longer than configured.
    #[error("the upstream did not answer in time")]
    Timeout,

    /// The TLS handshake failed (untrusted certificate, wrong name, protocol mismatch).
    #[error("tls with the upstream failed")]
    Tls(#[source] BoxError),

    /// The token endpoint cannot give us a token and no valid cached token is left.
    #[error("upstream credential unavailable: {reason}")]
    CredentialUnavailable {
        /// What went wrong, without any secret.
        reason: String,
        /// The transport error, if there was one.
        #[source]
        source: Option<BoxError>,
    },

    /// The credential is configured wrongly: unreadable key, bad key, missing variable.
    #[error("upstream credential misconfigured: {0}")]
    CredentialConfig(String),

    /// The upstream broke the HTTP protocol, or the exchange failed after it started.
    #[error("upstream protocol error: {reason}")]
    Protocol {
        /// What went wrong.
        reason: String,
        /// The transport error, if there was one.
        #[source]
        source: Option<BoxError>,
    },

    /// The upstream settings are unusable (bad endpoint, unreadable CA file).
    #[error("upstream misconfigured: {0}")]
    Config(String),

    /// The upstream answered 401 or 403 because of cosmogate's own credential, identity or
    /// address, not because of anything the app did (see [`crate::classify_upstream_denial`]).
    #[error("the upstream refused cosmogate's credential ({status}, substatus {substatus:?})")]
    UpstreamDenied {
        /// `upstream_auth_failed`, `upstream_clock_skew` or `upstream_network_denied`.
        reason: &'static str,
        /// The upstream status, 401 or 403.
        status: u16,
        /// The upstream `x-ms-substatus`, when it was a number.
        substatus: Option<u32>,
    },
}

impl UpstreamError {
    /// A stable short code for audit records and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Connect(_) => "upstream_connect_failed",
            Self::Timeout => "upstream_timeout",
            Self::Tls(_) => "upstream_tls",
            Self::CredentialUnavailable { .. } => "credential_unavailable",
            Self::CredentialConfig(_) => "credential_config",
            Self::Protocol { .. } => "upstream_protocol",
            Self::Config(_) => "upstream_config",
            Self::UpstreamDenied { reason, .. } => reason,
        }
    }

    /// The HTTP status the server should answer its client with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Connect(_) | Self::Tls(_) | Self::Protocol { .. } => 502,
            Self::UpstreamDenied { .. } => 502,
            Self::Timeout => 504,
            Self::CredentialUnavailable { .. } => 503,
            Self::CredentialConfig(_) | Self::Config(_) => 500,
        }
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Self::CredentialUnavailable {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Self::Protocol {
            reason: reason.into(),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_its_reason_code_and_status() {
        let cases = [
            (
                UpstreamError::Connect("x".into()),
                "upstream_connect_failed",
                502,
            ),
            (UpstreamError::Timeout, "upstream_timeout", 504),
            (UpstreamError::Tls("x".into()), "upstream_tls", 502),
            (
                UpstreamError::unavailable("down"),
                "credential_unavailable",
                503,
            ),
            (
                UpstreamError::CredentialConfig("x".into()),
                "credential_config",
                500,
            ),
            (UpstreamError::protocol("x"), "upstream_protocol", 502),
            (UpstreamError::Config("x".into()), "upstream_config", 500),
            (
                UpstreamError::UpstreamDenied {
                    reason: "upstream_auth_failed",
                    status: 401,
                    substatus: Some(5008),
                },
                "upstream_auth_failed",
                502,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!(err.reason_code(), code);
            assert_eq!(err.status(), status);
        }
    }
}
