//! Startup: everything a request needs, built and checked before the listener opens.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cosmogate_upstream::{Credential, Forwarder};

use cosmogate_validator::{Validator, ValidatorOptions};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::audit::AuditSink;
use crate::config::{Config, LimitsConfig, LoadedConfig};
use crate::error::StartupError;
use crate::metrics::Metrics;
use crate::otel::Telemetry;
use crate::reload::{self, LivePolicy};
use crate::route::Routes;
use crate::{serve, tls};

/// What every request shares: read-only after startup.
#[derive(Debug)]
pub(crate) struct Shared {
    pub validator: Validator,
    pub policy: Arc<LivePolicy>,
    pub routes: Routes,
    pub audit: AuditSink,
    /// The URL advertised in account documents, with its trailing slash.
    pub public_url: String,
    pub limits: LimitsConfig,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub hash_identifiers: bool,
    pub metrics: Arc<Metrics>,
    /// Trace export (a no-op unless `[telemetry.otlp]` is configured).
    pub telemetry: Arc<Telemetry>,
    /// cosmogate's own credential, read by the metrics for its token's age and refreshes.
    pub credential: Credential,
}

/// A ready gateway: identity provider keys fetched, upstream credential acquired, policy
/// loaded. Only then does it accept connections.
pub struct Gateway {
    config: Config,
    validator: Validator,
    policy: Arc<LivePolicy>,
    routes: Routes,
    audit: AuditSink,
    /// `None` only for an explicit plain-HTTP listener (`listen.tls = false`).
    acceptor: Option<TlsAcceptor>,
    telemetry: Arc<Telemetry>,
    credential: Credential,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.config.listen.address)
            .field("validator", &self.validator)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds every part from a loaded configuration. Fails if any identity provider, the
    /// upstream token endpoint or a configured file cannot be used.
    pub async fn build(loaded: LoadedConfig) -> Result<Gateway, StartupError> {
        let config = loaded.config;
        let http = outbound_client()?;
        let acceptor = tls::for_listener(&config.listen)?;
        let policy = Arc::new(LivePolicy::load(&config.policy.file).map_err(StartupError::Policy)?);
        let options = ValidatorOptions {
            max_token_bytes: config.limits.max_token_bytes,
            token_cache_entries: config.limits.token_cache_entries,
            ..ValidatorOptions::default()
        };
        let validator = Validator::with_options(config.issuers.clone(), http.clone(), options)
            .await
            .map_err(StartupError::Validator)?;
        let credential = Credential::new(&config.upstream.credential, http)
            .await
            .map_err(StartupError::Upstream)?;
        let forwarder =
            Forwarder::new(&config.upstream, credential.clone()).map_err(StartupError::Upstream)?;
        let routes = Routes::new(forwarder, &config.upstream).map_err(StartupError::Upstream)?;
        let telemetry =
            Arc::new(Telemetry::new(&config.telemetry).map_err(StartupError::Telemetry)?);
        let audit = AuditSink::open(&config.audit.output)
            .await
            .map_err(|source| StartupError::Audit {
                destination: match &config.audit.output {
                    crate::config::AuditOutput::Stdout => "stdout".to_owned(),
                    crate::config::AuditOutput::File(path) => path.display().to_string(),
                },
                source,
            })?;
        tracing::info!(
            config.fingerprint = %loaded.fingerprint,
            issuers = config.issuers.len(),
            upstream = %config.upstream.endpoint,
            upstream.regions = config.upstream.regions.len(),
            "Gateway ready"
        );
        Ok(Gateway {
            config,
            validator,
            policy,
            routes,
            audit,
            acceptor,
            telemetry,
            credential,
        })
    }

    /// Binds the configured listen address.
    pub async fn bind(&self) -> Result<TcpListener, StartupError> {
        let address = self.config.listen.address;
        TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })
    }

    /// Binds the configured admin address, if there is one.
    pub async fn bind_admin(&self) -> Result<Option<TcpListener>, StartupError> {
        let Some(address) = self.config.admin.address else {
            return Ok(None);
        };
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        Ok(Some(listener))
    }

    /// Serves connections from `listener` until `shutdown` completes, then lets open
    /// requests finish. The admin listener is bound from the configuration.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartupError> {
        let admin = self.bind_admin().await?;
        self.serve_with_admin(listener, admin, shutdown).await
    }

    /// [`Gateway::serve`] with an admin listener the caller bound (or none).
    pub async fn serve_with_admin(
        self,
        listener: TcpListener,
        admin: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartupError> {
        let local = listener.local_addr()?;
        let public_url = self.config.listen.public_url_for(local);
        tracing::info!(listen.address = %local, listen.public_url = %public_url, "Listening");
        reload::spawn_watcher(Arc::clone(&self.policy));
        let shared = Arc::new(Shared {
            validator: self.validator,
            policy: self.policy,
            routes: self.routes,
            audit: self.audit,
            public_url,
            limits: self.config.limits,
            trusted_proxies: self.config.listen.trusted_proxies,
            hash_identifiers: self.config.audit.hash_identifiers,
            metrics: Arc::new(Metrics::new()),
            telemetry: Arc::clone(&self.telemetry),
            credential: self.credential,
        });
        admin::spawn_key_watch(Arc::clone(&shared));
        if let Some(admin) = admin {
            tracing::info!(admin.address = %admin.local_addr()?, "Admin listener");
            admin::spawn(admin, Arc::clone(&shared));
        }
        serve::accept_loop(listener, self.acceptor, Arc::clone(&shared), shutdown).await?;
        // Every record of a drained request is on its way; wait until it is written.
        let audit = shared.audit.clone();
        if tokio::task::spawn_blocking(move || audit.flush())
            .await
            .is_err()
        {
            tracing::error!("Audit flush did not finish");
        }
        self.telemetry.shutdown().await;
        Ok(())
    }
}

/// The client for identity providers and token endpoints. It never uses an HTTP proxy from
/// the environment: token endpoints such as IMDS must be reached directly.
fn outbound_client() -> Result<reqwest::Client, StartupError> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| StartupError::Tls(format!("outbound http client: {err}")))
}
