//! One request to the managed-identity token endpoint (IMDS or App Service).

use std::time::Duration;

use http::HeaderValue;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::config::{ManagedIdentityConfig, MiSource};
use crate::error::UpstreamError;
use crate::expiry;
use crate::token_source::{
    ATTEMPT_TIMEOUT, FetchFailure, FetchedToken, MAX_LIFETIME, STALE_MARGIN, TokenSource,
    epoch_now, parse_retry_after, token_header,
};

const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
const APP_SERVICE_ENDPOINT_ENV: &str = "IDENTITY_ENDPOINT";
/// Token responses are a few kilobytes; anything much larger is not a token response.
const MAX_BODY: usize = 64 * 1024;

/// The token endpoint of the host, ready to be asked.
pub(crate) struct TokenEndpoint {
    http: reqwest::Client,
    url: Url,
    source: MiSource,
    identity_header_env: String,
}

/// The members of a token response we read. Deliberately not `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_on: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_in: Option<Value>,
}

/// The error members of a failed response; only `error` is used, as a short code.
#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: Option<Value>,
}

impl TokenEndpoint {
    pub(crate) fn new(
        cfg: &ManagedIdentityConfig,
        http: reqwest::Client,
    ) -> Result<Self, UpstreamError> {
        let endpoint = Self {
            http,
            url: token_url(cfg)?,
            source: cfg.source,
            identity_header_env: cfg.identity_header_env.clone(),
        };
        if endpoint.source == MiSource::AppService {
            endpoint.identity_header()?;
        }
        Ok(endpoint)
    }

    fn request(&self) -> Result<reqwest::RequestBuilder, UpstreamError> {
        let request = self.http.get(self.url.clone());
        Ok(match self.source {
            MiSource::Imds => request.header("Metadata", "true"),
            MiSource::AppService => request.header("X-IDENTITY-HEADER", self.identity_header()?),
        })
    }

    /// The App Service identity header, read fresh because the platform rotates it.
    fn identity_header(&self) -> Result<HeaderValue, UpstreamError> {
        let name = &self.identity_header_env;
        let value = std::env::var(name).map_err(|_| {
            UpstreamError::CredentialConfig(format!("environment variable {name} is not set"))
        })?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            UpstreamError::CredentialConfig(format!("environment variable {name} is not a header"))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl TokenSource for TokenEndpoint {
    /// Asks for a token once; no retries here.
    async fn fetch(&self) -> Result<FetchedToken, FetchFailure> {
        let request = self.request().map_err(FetchFailure::permanent)?;
        match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(FetchFailure::transient("token endpoint timed out")),
        }
    }
}

/// The endpoint with `api-version`, `resource` and the identity selector in the query.
fn token_url(cfg: &ManagedIdentityConfig) -> Result<Url, UpstreamError> {
    let mut url = match (&cfg.endpoint, cfg.source) {
        (Some(url), _) => url.clone(),
        (None, MiSource::Imds) => Url::parse(IMDS_ENDPOINT)
            .map_err(|_| UpstreamError::CredentialConfig("bad imds default".into()))?,
        (None, MiSource::AppService) => app_service_endpoint_from_env()?,
    };
    let (api_version, object_id_param, resource_id_param) = match cfg.source {
        MiSource::Imds => (IMDS_API_VERSION, "object_id", "msi_res_id"),
        MiSource::AppService => (APP_SERVICE_API_VERSION, "principal_id", "mi_res_id"),
    };
    let selectors = [
        ("client_id", &cfg.client_id),
        (object_id_param, &cfg.object_id),
        (resource_id_param, &cfg.resource_id),
    ];
    let mut query = url.query_pairs_mut();
    query.append_pair("api-version", api_version);
    query.append_pair("resource", &cfg.resource);
    for (name, value) in selectors {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    drop(query);
    Ok(url)
}

fn app_service_endpoint_from_env() -> Result<Url, UpstreamError> {
    let text = std::env::var(APP_SERVICE_ENDPOINT_ENV).map_err(|_| {
        UpstreamError::CredentialConfig(format!(
            "environment variable {APP_SERVICE_ENDPOINT_ENV} is not set"
        ))
    })?;
    Url::parse(text.trim()).map_err(|_| {
        UpstreamError::CredentialConfig(format!(
            "environment variable {APP_SERVICE_ENDPOINT_ENV} is not a url"
        ))
    })
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<FetchedToken, FetchFailure> {
    let mut response = request.send().await.map_err(transport_failure)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchFailure::from_status(
                status.as_u16(),
                "token response is too large".into(),
                retry_after,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if status != StatusCode::OK {
        let reason = format!(
            "token endpoint answered {}{}",
            status.as_u16(),
            error_code(&body)
        );
        return Err(FetchFailure::from_status(
            status.as_u16(),
            reason,
            retry_after,
        ));
    }
    parse_token(&body).map_err(|reason| FetchFailure {
        error: UpstreamError::unavailable(reason),
        retryable: true,
        retry_after: None,
    })
}

fn transport_failure(err: reqwest::Error) -> FetchFailure {
    let reason = if err.is_timeout() {
        "token endpoint timed out"
    } else if err.is_connect() {
        "cannot connect to the token endpoint"
    } else {
        "token request failed"
    };
    FetchFailure {
        error: UpstreamError::CredentialUnavailable {
            reason: reason.to_owned(),
            source: Some(Box::new(err.without_url())),
        },
        retryable: true,
        retry_after: None,
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// `: <error>` when the body carries a short, plain OAuth error code.
fn error_code(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) else {
        return String::new();
    };
    match parsed.error.as_ref().and_then(Value::as_str) {
        Some(code)
            if !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            format!(": {code}")
        }
        _ => String::new(),
    }
}

fn parse_token(body: &[u8]) -> Result<FetchedToken, &'static str> {
    let parsed: TokenResponse =
        serde_json::from_slice(body).map_err(|_| "token response is not valid json")?;
    if parsed
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err("token response has an unexpected token_type");
    }
    let header = token_header(&parsed.access_token)?;

    let expires_in = parsed.expires_in.as_ref().and_then(expiry::seconds);
    let remaining = remaining_life(parsed.expires_on.as_ref(), expires_in)?;
    if remaining <= STALE_MARGIN {
        return Err("token endpoint returned a token that is about to expire");
    }
    let lifetime = expires_in.map_or(remaining, |secs| {
        Duration::from_secs(secs).min(MAX_LIFETIME)
    });
    let refresh_in = parsed.refresh_in.as_ref().and_then(expiry::seconds);
    Ok(FetchedToken {
        header,
        expires_at: Instant::now() + remaining,
        lifetime,
        refresh_in: refresh_in.map(|secs| Duration::from_secs(secs).min(MAX_LIFETIME)),
    })
}

/// Life left from `expires_on` and `expires_in`, capped at [`MAX_LIFETIME`].
fn remaining_life(
    expires_on: Option<&Value>,
    expires_in: Option<u64>,
) -> Result<Duration, &'static str> {
    let now_epoch = epoch_now();
    let until_expires_on = expires_on
        .and_then(expiry::epoch_seconds)
        .map(|at| at.saturating_sub(now_epoch));
    // `expires_in` counts from issuance and IMDS hands out cached tokens, so when both are
    // present the earlier expiry is the one to believe.
    let secs = match (until_expires_on, expires_in) {
        (Some(on), Some(within)) => on.min(within),
        (Some(on), None) => on,
        (None, Some(within)) => within,
        (None, None) => return Err("token response has no usable expiry"),
    };
    Ok(Duration::from_secs(secs).min(MAX_LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn string_valued_imds_response_is_understood() {
        let on = epoch_now() + 3600;
        let body = format!(
            r#"{{"access_token":"eyJ.a.b","refresh_token":"","expires_in":"3599",
            "expires_on":"{on}","not_before":"1","resource":"r","token_type":"Bearer"}}"#
        );
        let token = parse_token(body.as_bytes()).expect("must parse");
        assert_eq!(
            token.header.to_str().ok(),
            Some("type=aad&ver=1.0&sig=eyJ.a.b")
        );
        assert!(token.header.is_sensitive());
        assert_eq!(token.lifetime, Duration::from_secs(3599));
        assert!(token.refresh_in.is_none());
    }

    #[tokio::test]
    async fn number_valued_response_with_refresh_in_is_understood() {
        let body = br#"{"access_token":"t","expires_in":86400,"refresh_in":43200}"#;
        let token = parse_token(body).expect("must parse");
        assert_eq!(token.lifetime, Duration::from_secs(86400));
        assert_eq!(token.refresh_in, Some(Duration::from_secs(43200)));
    }

    #[tokio::test]
    async fn the_earlier_of_expires_on_and_expires_in_wins() {
        let on = epoch_now() + 600;
        let body = format!(r#"{{"access_token":"t","expires_in":"86399","expires_on":{on}}}"#);
        let token = parse_token(body.as_bytes()).expect("must parse");
        let left = token.expires_at - Instant::now();
        assert!(left <= Duration::from_secs(600), "{left:?}");
    }

    #[tokio::test]
    async fn unusable_responses_are_refused() {
        let on = epoch_now() + 3600;
        let cases = [
            "not json".to_owned(),
            r#"{"expires_in":3600}"#.to_owned(),
            r#"{"access_token":"t"}"#.to_owned(),
            r#"{"access_token":"","expires_in":3600}"#.to_owned(),
            r#"{"access_token":"a b","expires_in":3600}"#.to_owned(),
            r#"{"access_token":"t","expires_in":30}"#.to_owned(),
            format!(r#"{{"access_token":"t","expires_on":"{on}","token_type":"pop"}}"#),
        ];
        for body in cases {
            assert!(parse_token(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[tokio::test]
    async fn absurd_expiry_values_are_capped_instead_of_overflowing() {
        let body = br#"{"access_token":"t","expires_on":18446744073709551615,
            "expires_in":"18446744073709551615","refresh_in":18446744073709551615}"#;
        let token = parse_token(body).expect("must parse");
        assert_eq!(token.lifetime, MAX_LIFETIME);
        assert_eq!(token.refresh_in, Some(MAX_LIFETIME));
        assert!(token.expires_at - Instant::now() <= MAX_LIFETIME);
    }

    #[test]
    fn only_plain_error_codes_are_echoed() {
        assert_eq!(
            error_code(br#"{"error":"invalid_resource"}"#),
            ": invalid_resource"
        );
        assert_eq!(error_code(br#"{"error":"bad code <script>"}"#), "");
        assert_eq!(error_code(b"<html>"), "");
    }
}
