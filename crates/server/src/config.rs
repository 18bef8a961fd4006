//! The configuration file: one TOML document that names every endpoint, file and limit.
//!
//! Relative paths are resolved against the directory of the configuration file, so a
//! configuration and the files it names can move together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cosmogate_upstream::{CredentialConfig, UpstreamConfig};
use cosmogate_validator::IssuerConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::StartupError;

/// The whole configuration of one cosmogate process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where and how cosmogate listens for apps.
    pub listen: ListenConfig,
    /// The OpenID providers whose access tokens are accepted. At least one.
    pub issuers: Vec<IssuerConfig>,
    /// Limits on what a client may send.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The policy that maps claims to allowed Cosmos operations.
    pub policy: PolicyConfig,
    /// The Cosmos DB account cosmogate forwards to, and cosmogate's own credential for it.
    pub upstream: UpstreamConfig,
    /// Where audit records go.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The admin listener: health, readiness and metrics.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Diagnostic logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Telemetry sent to other systems: OpenTelemetry traces over OTLP. Default: none.
    #[serde(default)]
    pub telemetry: crate::otel::TelemetryConfig,
}

/// The client-facing listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Socket address to bind, for example `0.0.0.0:443`. Port 0 picks a free port.
    pub address: SocketAddr,
    /// The URL apps use to reach cosmogate; advertised in the account document so SDKs stay
    /// on the proxy. Default: `https://<bound address>/`, or `http://<bound address>/` when
    /// `tls` is off.
    #[serde(default)]
    pub public_url: Option<url::Url>,
    /// Whether the listener speaks TLS. Default `true`. `false` serves plain HTTP (HTTP/1.1
    /// and h2 with prior knowledge), for a TLS-terminating ingress in front of cosmogate on a
    /// private network, and for benchmarks; it must be written explicitly, and then no
    /// certificate or key may be given.
    #[serde(default = "default_tls")]
    pub tls: bool,
    /// PEM certificate chain served to clients. Required unless `tls` is `false`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for the certificate. Required unless `tls` is
    /// `false`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Networks of proxies in front of cosmogate (load balancers, ingress) whose
    /// `X-Forwarded-For` is recorded in the audit record. Default: none, so the header is
    /// ignored and only the socket peer is recorded.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

fn default_tls() -> bool {
    true
}

impl ListenConfig {
    /// The URL advertised in account documents, with its trailing slash: `public_url` when
    /// set, otherwise the bound address with the listener's scheme.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.to_string(),
            None if self.tls => format!("https://{bound}/"),
            None => format!("http://{bound}/"),
        }
    }

    /// Warnings about a valid but risky listener, each as `path.field: message`.
    pub fn warnings(&self) -> Vec<String> {
        if self.tls {
            return Vec::new();
        }
        vec![
            "listen.tls: TLS is off, so cosmogate serves plain HTTP and access tokens cross \
             the network in clear; put a TLS-terminating proxy on the same host or private \
             network in front of it"
                .to_owned(),
        ]
    }

    /// Every problem with the listener section, each as `listen.field: message`.
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.public_url {
            match url.scheme() {
                "https" => {}
                // Behind a TLS-terminating ingress the public URL is usually still https;
                // plain http is only possible when cosmogate itself serves plain HTTP.
                "http" if !self.tls => {}
                _ if self.tls => {
                    problems.push("listen.public_url: must be an https URL".to_owned());
                }
                _ => {
                    problems.push("listen.public_url: must be an https or http URL".to_owned());
                }
            }
            if url.path() != "/" || url.query().is_some() {
                problems.push("listen.public_url: must have no path or query".to_owned());
            }
        }
        for (field, path) in [
            ("listen.tls_cert_file", &self.tls_cert_file),
            ("listen.tls_key_file", &self.tls_key_file),
        ] {
            match (self.tls, path) {
                (true, None) => problems.push(format!(
                    "{field}: required (set `listen.tls = false` to serve plain HTTP)"
                )),
                (true, Some(path)) if !path.is_file() => problems.push(format!(
                    "{field}: {} is not a readable file",
                    path.display()
                )),
                (false, Some(_)) => problems.push(format!(
                    "{field}: must not be set when `listen.tls = false`"
                )),
                _ => {}
            }
        }
        problems
    }
}

/// Bounds on client input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest access token accepted, in bytes; larger ones are refused before parsing.
    /// Default 16384.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Largest batch or bulk body cosmogate reads to authorise each operation, in bytes.
    /// Cosmos caps a batch at 2 MiB of documents; the default, 2 MiB plus 64 KiB, leaves room
    /// for the operation envelope.
    #[serde(default = "default_max_batch_body_bytes")]
    pub max_batch_body_bytes: usize,
    /// Largest account document (`GET /`) read for endpoint rewriting. Default 1 MiB.
    #[serde(default = "default_max_account_document_bytes")]
    pub max_account_document_bytes: usize,
    /// Largest request head accepted, names and values of all headers together, in bytes;
    /// larger ones get 431 before any token is parsed. Default 65536: room for an 8 KiB token
    /// beside large session and continuation tokens.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most headers accepted in one request; more get 431. Default 100.
    #[serde(default = "default_max_header_count")]
    pub max_header_count: usize,
    /// Most verified tokens remembered, so a repeated token skips its signature check until it
    /// expires. Each entry holds the token's claims twice (as sent and normalised) and costs
    /// about 4 to 8 KiB. Default 10000; 0 turns the cache off.
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_token_bytes: default_max_token_bytes(),
            max_batch_body_bytes: default_max_batch_body_bytes(),
            max_account_document_bytes: default_max_account_document_bytes(),
            max_header_bytes: default_max_header_bytes(),
            max_header_count: default_max_header_count(),
            token_cache_entries: default_token_cache_entries(),
        }
    }
}

fn default_max_token_bytes() -> usize {
    16 * 1024
}

fn default_max_batch_body_bytes() -> usize {
    2 * 1024 * 1024 + 64 * 1024
}

fn default_max_account_document_bytes() -> usize {
    1024 * 1024
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_max_header_count() -> usize {
    100
}

/// The highest `limits.max_header_count`.
const MAX_HEADER_COUNT: usize = 1000;

/// The highest `limits.token_cache_entries`: some GiB of cached claims.
const MAX_TOKEN_CACHE_ENTRIES: u64 = 1_000_000;

fn default_token_cache_entries() -> u64 {
    cosmogate_validator::DEFAULT_TOKEN_CACHE_ENTRIES
}

/// Where the policy lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Path of the policy file (TOML).
    pub file: PathBuf,
}

/// The admin listener, apart from the data port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Socket address for plain-HTTP `/healthz`, `/readyz` and `/metrics`, for example
    /// `127.0.0.1:9464`. Default: none, no admin listener. Keep it off networks apps reach.
    #[serde(default)]
    pub address: Option<SocketAddr>,
}

/// Where audit records are written: one JSON object per line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `"stdout"` (default) or a file path, appended to.
    #[serde(default)]
    pub output: AuditOutput,
    /// Record item ids and partition keys as `sha256:<hex>` instead of their values, for
    /// containers where they hold personal data. Default `false`.
    #[serde(default)]
    pub hash_identifiers: bool,
}

/// The destination of the audit stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditOutput {
    /// Standard output; diagnostic logs go to standard error, so the two never mix.
    #[default]
    Stdout,
    /// A file, created if missing and appended to.
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditOutput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "stdout" => AuditOutput::Stdout,
            _ => AuditOutput::File(PathBuf::from(text)),
        })
    }
}

/// Diagnostic log settings. Logs go to standard error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `cosmogate=debug`. Default `info`; the
    /// `COSMOGATE_LOG` environment variable overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// How diagnostic log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A loaded configuration together with a fingerprint of its text, for the startup log.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed configuration, with relative paths resolved.
    pub config: Config,
    /// The first 16 hex characters of the SHA-256 of the file's bytes.
    pub fingerprint: String,
}

impl Config {
    /// Reads, parses and validates a configuration file, reporting every problem at once.
    pub fn load(path: &Path) -> Result<LoadedConfig, StartupError> {
        let text = std::fs::read_to_string(path).map_err(|source| StartupError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let fingerprint = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
        let origin = path.display().to_string();
        // toml's message names the line, the column and the offending key.
        let mut config: Config = toml::from_str(&text).map_err(|err| StartupError::Invalid {
            problems: vec![format!("{origin}: {}", err.to_string().trim())],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        let problems: Vec<String> = config
            .validate()
            .into_iter()
            .map(|problem| format!("{origin}: {problem}"))
            .collect();
        if !problems.is_empty() {
            return Err(StartupError::Invalid { problems });
        }
        Ok(LoadedConfig {
            config,
            fingerprint,
        })
    }

    /// Every problem in the configuration, each as `path.field: message`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(cosmogate_validator::validate_issuers(
            &self.issuers,
            "issuers",
        ));
        problems.extend(self.upstream.validate("upstream"));
        problems.extend(self.telemetry.validate("telemetry"));
        problems.extend(self.listen.validate());
        if self.limits.max_token_bytes < 1024 || self.limits.max_token_bytes > 64 * 1024 {
            problems.push("limits.max_token_bytes: must be between 1024 and 65536".to_owned());
        }
        if !(1..=MAX_HEADER_COUNT).contains(&self.limits.max_header_count) {
            problems.push(format!(
                "limits.max_header_count: must be between 1 and {MAX_HEADER_COUNT}"
            ));
        }
        if self.limits.token_cache_entries > MAX_TOKEN_CACHE_ENTRIES {
            problems.push(format!(
                "limits.token_cache_entries: must be at most {MAX_TOKEN_CACHE_ENTRIES}"
            ));
        }
        if !self.policy.file.is_file() {
            problems.push(format!(
                "policy.file: {} is not a readable file",
                self.policy.file.display()
            ));
        }
        if let AuditOutput::File(path) = &self.audit.output {
            let directory = path.parent().filter(|dir| !dir.as_os_str().is_empty());
            if directory.is_some_and(|dir| !dir.is_dir()) {
                problems.push(format!(
                    "audit.output: the directory of {} does not exist",
                    path.display()
                ));
            }
        }
        problems
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        if let Some(path) = &mut self.listen.tls_cert_file {
            resolve(path);
        }
        if let Some(path) = &mut self.listen.tls_key_file {
            resolve(path);
        }
        resolve(&mut self.policy.file);
        if let AuditOutput::File(path) = &mut self.audit.output {
            resolve(path);
        }
        if let Some(path) = &mut self.upstream.ca_file {
            resolve(path);
        }
        if let CredentialConfig::MasterKey {
            key_file: Some(path),
            ..
        } = &mut self.upstream.credential
        {
            resolve(path);
        }
    }
}
