//! cosmogate's own credential for the Cosmos account.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use cosmogate_protocol::MasterKey;
use http::HeaderValue;
use zeroize::Zeroizing;

use crate::config::CredentialConfig;
use crate::entra::EntraSource;
use crate::error::UpstreamError;
use crate::token_cache::{self, Refresher, TokenCache, TokenStatus};
use crate::token_endpoint::TokenEndpoint;
use crate::token_source::TokenSource;

/// The `Authorization` source for upstream requests: the account key, or an Entra ID token
/// (managed identity, workload identity or client secret) that a background task keeps
/// fresh. Cheap to clone; clones share one cache.
#[derive(Clone)]
pub struct Credential {
    inner: Arc<Inner>,
}

enum Inner {
    MasterKey(MasterKey),
    Token {
        kind: &'static str,
        cache: Arc<TokenCache>,
        _refresher: Refresher,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Loads the credential, refusing settings that do not validate. A master key is read and
    /// decoded now. For a token credential the first token is fetched before this returns (so
    /// a returned credential means "ready"; transient failures are retried for about 15 s),
    /// and a background task on the current tokio runtime refreshes it from then on.
    ///
    /// `http` is used only for the token endpoint (IMDS, App Service or the Entra authority).
    /// Build it with `no_proxy()` (IMDS must never be reached through a proxy) and without
    /// redirects (the App Service secret header would follow one).
    pub async fn new(
        cfg: &CredentialConfig,
        http: reqwest::Client,
    ) -> Result<Credential, UpstreamError> {
        let mut problems = Vec::new();
        cfg.validate("credential", &mut problems);
        if !problems.is_empty() {
            return Err(UpstreamError::CredentialConfig(problems.join("; ")));
        }
        let inner = match cfg {
            CredentialConfig::MasterKey { key_file, key_env } => {
                let text = read_key(key_file.as_deref(), key_env.as_deref())?;
                let key = MasterKey::from_base64(text.trim()).map_err(|_| {
                    UpstreamError::CredentialConfig("the master key is not valid base64".into())
                })?;
                Inner::MasterKey(key)
            }
            CredentialConfig::ManagedIdentity(mi) => {
                token_inner("managed_identity", TokenEndpoint::new(mi, http)?).await?
            }
            CredentialConfig::WorkloadIdentity(wi) => {
                let source = EntraSource::workload_identity(wi, http)?;
                token_inner("workload_identity", source).await?
            }
            CredentialConfig::ClientSecret(cs) => {
                token_inner("client_secret", EntraSource::client_secret(cs, http)).await?
            }
        };
        Ok(Credential {
            inner: Arc::new(inner),
        })
    }

    /// The `Authorization` value for one upstream request, marked sensitive.
    ///
    /// With a managed identity this reads the cache and never waits for the token endpoint;
    /// it fails with `credential_unavailable` only when no usable token is left. The master
    /// key signs `method`, `resource_type`, `resource_link` and `x_ms_date`; a token ignores
    /// them.
    pub async fn authorization(
        &self,
        method: &http::Method,
        resource_type: &str,
        resource_link: &str,
        x_ms_date: &str,
    ) -> Result<HeaderValue, UpstreamError> {
        match &*self.inner {
            Inner::MasterKey(key) => {
                let value = key.authorization(method, resource_type, resource_link, x_ms_date);
                let mut header = HeaderValue::try_from(value).map_err(|_| {
                    UpstreamError::CredentialConfig("signature is not a header value".into())
                })?;
                header.set_sensitive(true);
                Ok(header)
            }
            Inner::Token { cache, .. } => cache.get(),
        }
    }

    /// `"master_key"`, `"managed_identity"`, `"workload_identity"` or `"client_secret"`.
    pub fn kind(&self) -> &'static str {
        match &*self.inner {
            Inner::MasterKey(_) => "master_key",
            Inner::Token { kind, .. } => kind,
        }
    }

    /// The credential's kind and, for a token credential, the state of its cached token.
    /// Reads the cache only; never waits.
    pub fn status(&self) -> CredentialStatus {
        let token = match &*self.inner {
            Inner::MasterKey(_) => None,
            Inner::Token { cache, .. } => Some(cache.status()),
        };
        CredentialStatus {
            kind: self.kind(),
            token,
        }
    }

    /// Asks for a new token in the background, for when the upstream refused the current one
    /// (401). Returns false, and does nothing, for a master key or when a forced refresh was
    /// asked for less than a minute ago. Requests keep using the cached token meanwhile.
    ///
    /// [`Forwarder::forward`](crate::Forwarder::forward) already calls this on every upstream
    /// 401. Managed-identity endpoints cache tokens on their side for hours, so there a forced
    /// refresh usually brings back the same token; it helps after a clock jump or revocation,
    /// not after a wrong audience or a missing role assignment.
    pub fn request_refresh(&self) -> bool {
        match &*self.inner {
            Inner::MasterKey(_) => false,
            Inner::Token { cache, .. } => cache.request_refresh(),
        }
    }
}

/// A read-only view of a credential for metrics: its kind and, for a token credential, the
/// token's age, expiry and refresh counts. Never the token or the key.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialStatus {
    /// As [`Credential::kind`].
    pub kind: &'static str,
    /// `None` for the master key, which has no token to age or refresh.
    pub token: Option<TokenStatus>,
}

/// Fetches the first token from `source` and starts the task that keeps it fresh.
async fn token_inner(kind: &'static str, source: impl TokenSource) -> Result<Inner, UpstreamError> {
    let first = token_cache::fetch_first(&source).await?;
    let cache = Arc::new(TokenCache::new(&first));
    let refresher = token_cache::spawn_refresher(source, cache.clone(), &first);
    Ok(Inner::Token {
        kind,
        cache,
        _refresher: refresher,
    })
}

fn read_key(
    key_file: Option<&Path>,
    key_env: Option<&str>,
) -> Result<Zeroizing<String>, UpstreamError> {
    match (key_file, key_env) {
        (Some(path), None) => std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|e| {
                UpstreamError::CredentialConfig(format!(
                    "cannot read key_file {}: {}",
                    path.display(),
                    e.kind()
                ))
            }),
        (None, Some(name)) => std::env::var(name).map(Zeroizing::new).map_err(|_| {
            UpstreamError::CredentialConfig(format!("environment variable {name} is not set"))
        }),
        _ => Err(UpstreamError::CredentialConfig(
            "give exactly one of key_file and key_env".into(),
        )),
    }
}
