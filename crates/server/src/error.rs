//! Errors, and the one place where a refusal becomes an HTTP response.
//!
//! Bodies are shaped like Cosmos DB's own errors (`{"code": …, "message": …}`) so SDKs surface
//! them as ordinary failures. They say what happened in general terms and never which check
//! failed; the audit record carries the precise reason code.

use std::path::PathBuf;

use bytes::Bytes;
use cosmogate_protocol::{ErrorClass, ProtocolError};
use cosmogate_upstream::UpstreamError;
use cosmogate_validator::TokenError;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::{ProxyBody, full};

/// Seconds a client is asked to wait when a dependency gives no better estimate.
const DEFAULT_RETRY_AFTER: u64 = 5;

/// Why cosmogate could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A file named on the command line or in the configuration could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration or the policy has problems; all of them are listed.
    #[error("invalid configuration:\n  {}", problems.join("\n  "))]
    Invalid { problems: Vec<String> },
    /// The TLS certificate or key could not be used.
    #[error("tls setup failed: {0}")]
    Tls(String),
    /// The identity providers could not be reached or answered badly.
    #[error("token validation setup failed")]
    Validator(#[source] TokenError),
    /// cosmogate's own upstream credential or client could not be set up.
    #[error("upstream setup failed")]
    Upstream(#[source] UpstreamError),
    /// The policy could not be loaded.
    #[error("policy setup failed")]
    Policy(#[source] cosmogate_policy::PolicyError),
    /// The audit output could not be opened.
    #[error("cannot open the audit output {destination}: {source}")]
    Audit {
        destination: String,
        #[source]
        source: std::io::Error,
    },
    /// Trace export could not be set up.
    #[error("trace export setup failed")]
    Telemetry(#[source] crate::otel::TelemetryError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Serving the listener failed.
    #[error("listener failed")]
    Io(#[from] std::io::Error),
}

/// Why one request was refused or failed. Each variant has a stable reason code for audit.
#[derive(Debug)]
pub enum GatewayError {
    /// No usable credential: missing, malformed, a key, or a token that failed validation.
    Unauthenticated {
        reason: &'static str,
        token_presented: bool,
    },
    /// The principal may not perform the operation, or the operation is never allowed.
    Forbidden {
        reason: &'static str,
        message: String,
    },
    /// The request cannot be interpreted.
    BadRequest { reason: &'static str },
    /// A body cosmogate must read to authorise the request is over its limit.
    TooLarge { reason: &'static str },
    /// The request head is over the header count or size limit.
    HeadersTooLarge { reason: &'static str },
    /// A dependency cosmogate needs (identity provider keys, token endpoint) is unavailable;
    /// the client is told to retry after `retry_after` seconds.
    Unavailable {
        reason: &'static str,
        retry_after: u64,
    },
    /// The Cosmos gateway could not be reached or answered in a way cosmogate cannot relay.
    Upstream {
        reason: &'static str,
        status: StatusCode,
    },
    /// cosmogate's own fault.
    Internal { reason: &'static str },
}

impl GatewayError {
    /// The stable reason code written to the audit record.
    pub fn reason_code(&self) -> &'static str {
        match self {
            GatewayError::Unauthenticated { reason, .. }
            | GatewayError::Forbidden { reason, .. }
            | GatewayError::BadRequest { reason }
            | GatewayError::TooLarge { reason }
            | GatewayError::HeadersTooLarge { reason }
            | GatewayError::Unavailable { reason, .. }
            | GatewayError::Upstream { reason, .. }
            | GatewayError::Internal { reason } => reason,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Upstream { status, .. } => *status,
            GatewayError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The Cosmos-shaped response. `activity_id` goes into the body and the
    /// `x-ms-activity-id` header so the app's error can be matched to the audit record.
    pub fn into_response(self, activity_id: &str) -> Response<ProxyBody> {
        let status = self.status();
        let (code, message) = match &self {
            GatewayError::Unauthenticated { .. } => (
                "Unauthorized",
                "The request is not authorized: present a valid access token issued for this \
                 gateway, as type=aad&ver=1.0&sig=<token> or Bearer <token>."
                    .to_owned(),
            ),
            GatewayError::Forbidden { message, .. } => ("Forbidden", message.clone()),
            GatewayError::BadRequest { .. } => (
                "BadRequest",
                "The gateway could not interpret the request.".to_owned(),
            ),
            GatewayError::TooLarge { .. } => (
                "RequestEntityTooLarge",
                "The request body is larger than the gateway accepts.".to_owned(),
            ),
            GatewayError::HeadersTooLarge { .. } => (
                "RequestHeaderTooLarge",
                "The request headers are larger than the gateway accepts.".to_owned(),
            ),
            GatewayError::Unavailable { .. } => (
                "ServiceUnavailable",
                "A service the gateway depends on is unavailable; retry later.".to_owned(),
            ),
            GatewayError::Upstream { .. } => (
                "BadGateway",
                "The gateway could not complete the request with the Cosmos DB account.".to_owned(),
            ),
            GatewayError::Internal { .. } => (
                "InternalServerError",
                "The gateway failed to handle the request.".to_owned(),
            ),
        };
        let body = serde_json::json!({
            "code": code,
            "message": format!("{message}\r\nActivityId: {activity_id}"),
        });
        let mut response = Response::new(full(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::from_str(activity_id) {
            headers.insert("x-ms-activity-id", value);
        }
        match &self {
            GatewayError::Unauthenticated {
                token_presented: true,
                ..
            } => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            GatewayError::Unauthenticated { .. } => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            GatewayError::Unavailable { retry_after, .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

impl From<TokenError> for GatewayError {
    fn from(err: TokenError) -> Self {
        if err.is_unavailable() {
            GatewayError::Unavailable {
                reason: err.reason_code(),
                retry_after: err.retry_after_seconds().unwrap_or(DEFAULT_RETRY_AFTER),
            }
        } else {
            GatewayError::Unauthenticated {
                reason: err.reason_code(),
                token_presented: true,
            }
        }
    }
}

impl From<ProtocolError> for GatewayError {
    fn from(err: ProtocolError) -> Self {
        let reason = err.reason_code();
        match err.kind() {
            ErrorClass::Unauthenticated => GatewayError::Unauthenticated {
                reason,
                token_presented: true,
            },
            ErrorClass::BadRequest => GatewayError::BadRequest { reason },
            ErrorClass::Forbidden => GatewayError::Forbidden {
                reason,
                message: format!("Request blocked by cosmogate: {err}."),
            },
        }
    }
}

impl From<UpstreamError> for GatewayError {
    fn from(err: UpstreamError) -> Self {
        let reason = err.reason_code();
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        match status {
            StatusCode::SERVICE_UNAVAILABLE => GatewayError::Unavailable {
                reason,
                retry_after: DEFAULT_RETRY_AFTER,
            },
            StatusCode::INTERNAL_SERVER_ERROR => GatewayError::Internal { reason },
            _ => GatewayError::Upstream { reason, status },
        }
    }
}
