//! Entra ID token requests for workload identity and client secret, made by `azure_identity`.
//!
//! Only the exchange itself is the library's: a fresh credential is built for every fetch (a
//! few microseconds, sharing one transport and so one connection pool), which keeps its
//! in-line cache from ever serving or blocking anything, and lets a forced refresh really ask
//! again. Its retry policy is off and each attempt is cut off after 15 s; retries, backoff and
//! what to serve meanwhile belong to our cache. The federated token file and the client
//! secret are read here, before every exchange, so rotation needs no restart.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::headers::RETRY_AFTER;
use azure_core::http::{ClientMethodOptions, ClientOptions, RetryOptions, Transport};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions,
};
use zeroize::Zeroizing;

use crate::entra_config::{ClientSecretConfig, WorkloadIdentityConfig, check_tenant};
use crate::error::UpstreamError;
use crate::token_source::{
    ATTEMPT_TIMEOUT, FetchFailure, FetchedToken, TokenSource, parse_retry_after, token_expiring_at,
    token_header,
};

const TENANT_ENV: &str = "AZURE_TENANT_ID";
const CLIENT_ENV: &str = "AZURE_CLIENT_ID";
const TOKEN_FILE_ENV: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// One Entra v2 client-credentials exchange, ready to be made.
pub(crate) struct EntraSource {
    tenant_id: String,
    client_id: String,
    scope: String,
    proof: Proof,
    cloud: Arc<CloudConfiguration>,
    transport: Transport,
}

/// What proves the client's identity to Entra ID.
enum Proof {
    /// The projected service-account token, sent as a client assertion.
    FederatedTokenFile(PathBuf),
    SecretFile(PathBuf),
    SecretEnv(String),
}

impl EntraSource {
    /// Workload identity; ids and token file fall back to the webhook's environment variables.
    pub(crate) fn workload_identity(
        cfg: &WorkloadIdentityConfig,
        http: reqwest::Client,
    ) -> Result<Self, UpstreamError> {
        let tenant_id = configured_or_env(cfg.tenant_id.as_deref(), TENANT_ENV)?;
        let mut problems = Vec::new();
        check_tenant(&tenant_id, TENANT_ENV, &mut problems);
        if let Some(problem) = problems.pop() {
            return Err(UpstreamError::CredentialConfig(problem));
        }
        let token_file = match &cfg.token_file {
            Some(path) => path.clone(),
            None => PathBuf::from(configured_or_env(None, TOKEN_FILE_ENV)?),
        };
        Ok(Self {
            tenant_id,
            client_id: configured_or_env(cfg.client_id.as_deref(), CLIENT_ENV)?,
            scope: cfg.scope.clone(),
            proof: Proof::FederatedTokenFile(token_file),
            cloud: cloud(&cfg.authority_host),
            transport: Transport::new(Arc::new(http)),
        })
    }

    pub(crate) fn client_secret(cfg: &ClientSecretConfig, http: reqwest::Client) -> Self {
        let proof = match (&cfg.secret_file, &cfg.secret_env) {
            (Some(path), _) => Proof::SecretFile(path.clone()),
            (None, env) => Proof::SecretEnv(env.clone().unwrap_or_default()),
        };
        Self {
            tenant_id: cfg.tenant_id.clone(),
            client_id: cfg.client_id.clone(),
            scope: cfg.scope.clone(),
            proof,
            cloud: cloud(&cfg.authority_host),
            transport: Transport::new(Arc::new(http)),
        }
    }

    /// A fresh `azure_identity` credential holding what was just read from file or env.
    async fn credential(&self) -> Result<Arc<dyn TokenCredential>, FetchFailure> {
        let client_options = ClientOptions {
            transport: Some(self.transport.clone()),
            retry: RetryOptions::none(),
            cloud: Some(self.cloud.clone()),
            ..Default::default()
        };
        let built: azure_core::Result<Arc<dyn TokenCredential>> = match &self.proof {
            Proof::FederatedTokenFile(path) => {
                let assertion = FederatedToken(read_file(path, "federated token file").await?);
                let options = ClientAssertionCredentialOptions { client_options };
                ClientAssertionCredential::new(
                    self.tenant_id.clone(),
                    self.client_id.clone(),
                    assertion,
                    Some(options),
                )
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            Proof::SecretFile(_) | Proof::SecretEnv(_) => {
                let secret = self.read_secret().await?;
                let options = ClientSecretCredentialOptions { client_options };
                ClientSecretCredential::new(
                    &self.tenant_id,
                    self.client_id.clone(),
                    Secret::new(secret.to_string()),
                    Some(options),
                )
                .map(|c| c as Arc<dyn TokenCredential>)
            }
        };
        built.map_err(|err| {
            let reason = format!("cannot set up the token request ({:?})", err.kind());
            FetchFailure::permanent(UpstreamError::CredentialConfig(reason))
        })
    }

    async fn read_secret(&self) -> Result<Zeroizing<String>, FetchFailure> {
        match &self.proof {
            Proof::SecretFile(path) => read_file(path, "client secret file").await,
            Proof::SecretEnv(name) => match std::env::var(name) {
                Ok(value) if !value.trim().is_empty() => {
                    Ok(Zeroizing::new(value.trim().to_owned()))
                }
                _ => Err(FetchFailure::permanent(UpstreamError::CredentialConfig(
                    format!("environment variable {name} is not set"),
                ))),
            },
            Proof::FederatedTokenFile(_) => Err(FetchFailure::permanent(
                UpstreamError::CredentialConfig("no client secret configured".into()),
            )),
        }
    }
}

impl TokenSource for EntraSource {
    async fn fetch(&self) -> Result<FetchedToken, FetchFailure> {
        let credential = self.credential().await?;
        let scopes = [self.scope.as_str()];
        match tokio::time::timeout(ATTEMPT_TIMEOUT, credential.get_token(&scopes, None)).await {
            Err(_) => Err(FetchFailure::transient("token endpoint timed out")),
            Ok(Err(err)) => Err(failure_from(&err)),
            Ok(Ok(token)) => fetched(&token),
        }
    }
}

fn fetched(token: &AccessToken) -> Result<FetchedToken, FetchFailure> {
    let unusable = |reason: &'static str| FetchFailure::transient(reason);
    let header = token_header(token.token.secret()).map_err(unusable)?;
    token_expiring_at(header, token.expires_on.unix_timestamp()).map_err(unusable)
}

/// The status, Entra error codes and `Retry-After` of a refused exchange, or the kind of a
/// transport failure. Entra's `error_description` is left out: it is long, free text.
fn failure_from(err: &azure_core::Error) -> FetchFailure {
    let mut kinds = Vec::new();
    let mut level: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = level {
        if let Some(azure) = current.downcast_ref::<azure_core::Error>() {
            if let ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } = azure.kind()
            {
                let status = u16::from(*status);
                let codes = error_code.as_deref().filter(|c| is_code_list(c));
                let reason = match codes {
                    Some(codes) => format!("token endpoint answered {status}: AADSTS{codes}"),
                    None => format!("token endpoint answered {status}"),
                };
                let retry_after = raw_response
                    .as_ref()
                    .and_then(|raw| raw.headers().get_optional_str(&RETRY_AFTER))
                    .and_then(parse_retry_after);
                return FetchFailure::from_status(status, reason, retry_after);
            }
            kinds.push(azure.kind().clone());
        }
        level = current.source();
    }
    // Not an answer with a status: the connection failed, or the answer was unreadable.
    let reason = if kinds.iter().any(|k| matches!(k, ErrorKind::Connection)) {
        "cannot connect to the token endpoint"
    } else if kinds.iter().any(|k| matches!(k, ErrorKind::DataConversion)) {
        "token endpoint sent an unreadable answer"
    } else {
        "token request failed"
    };
    FetchFailure::transient(reason)
}

/// Entra's numeric error codes as `azure_identity` joins them: `7000215` or `50001,70011`.
fn is_code_list(codes: &str) -> bool {
    !codes.is_empty() && codes.len() <= 64 && codes.bytes().all(|b| b.is_ascii_digit() || b == b',')
}

fn cloud(authority_host: &url::Url) -> Arc<CloudConfiguration> {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = authority_host.as_str().to_owned();
    Arc::new(CloudConfiguration::from(custom))
}

fn configured_or_env(value: Option<&str>, env: &str) -> Result<String, UpstreamError> {
    if let Some(value) = value {
        return Ok(value.trim().to_owned());
    }
    match std::env::var(env) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => Err(UpstreamError::CredentialConfig(format!(
            "not configured and environment variable {env} is not set"
        ))),
    }
}

/// Reads a small secret file; a missing or empty file may be mid-rotation, so it is retried.
async fn read_file(path: &PathBuf, what: &str) -> Result<Zeroizing<String>, FetchFailure> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if !text.trim().is_empty() => Ok(Zeroizing::new(text.trim().to_owned())),
        Ok(_) => Err(FetchFailure::transient(format!(
            "{what} {} is empty",
            path.display()
        ))),
        Err(err) => Err(FetchFailure::transient(format!(
            "cannot read {what} {}: {}",
            path.display(),
            err.kind()
        ))),
    }
}

/// The service-account token just read, handed to `azure_identity` as the assertion.
struct FederatedToken(Zeroizing<String>);

impl fmt::Debug for FederatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FederatedToken([redacted])")
    }
}

#[async_trait::async_trait]
impl ClientAssertion for FederatedToken {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numeric_entra_code_lists_are_echoed() {
        assert!(is_code_list("7000215"));
        assert!(is_code_list("50001,70011"));
        assert!(!is_code_list("Bad Request"));
        assert!(!is_code_list(""));
    }

    #[test]
    fn federated_token_debug_is_redacted() {
        let token = FederatedToken(Zeroizing::new("eyJ.secret.sig".into()));
        assert_eq!(format!("{token:?}"), "FederatedToken([redacted])");
    }

    #[test]
    fn transport_failures_without_a_status_are_retryable() {
        let err = azure_core::Error::with_message(ErrorKind::Connection, "refused");
        let failure = failure_from(&err);
        assert!(failure.retryable);
        assert!(failure.error.to_string().contains("cannot connect"));
    }
}
