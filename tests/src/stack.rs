//! A whole local deployment: the test IdP, the Cosmos-compatible server, (for managed
//! identity) the loopback token endpoint, and a cosmogate configuration pointing at them.
//!
//! The tests run cosmogate in-process ([`Stack::start`]); the demo runs the `cosmogate`
//! binary against the configuration file [`Stack::config_path`] names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apps::{AppArgs, AppCredential};
use crate::certs::Certs;
use crate::cosmos::CosmosServer;
use crate::idp::Idp;
use crate::paths::repo_root;
use crate::process::read_jsonl;
use crate::token_endpoint::TokenEndpoint;

/// The account key of the Cosmos DB emulator, published by Microsoft for local development.
pub const EMULATOR_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// The database and container the policy in `config/policy.toml` talks about.
pub const DATABASE: &str = "shop";
/// See [`DATABASE`].
pub const CONTAINER: &str = "orders";
/// A container in the same database that no role grants.
pub const OTHER_CONTAINER: &str = "payroll";

/// The identity header value the App Service stand-in expects.
const IDENTITY_HEADER: &str = "rig-identity-header";

/// Which credential cosmogate uses towards the Cosmos-compatible server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `managed_identity` over the IMDS protocol, against the loopback token endpoint.
    ManagedIdentity,
    /// `master_key` with the emulator key.
    MasterKey,
}

/// Another issuer cosmogate trusts besides the stack's own IdP, for example a [`Glewlwyd`]
/// the test started.
///
/// [`Glewlwyd`]: crate::Glewlwyd
#[derive(Debug, Clone)]
pub struct ExtraIssuer {
    /// The issuer exactly as in `iss`; its keys are found through discovery.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
}

/// How to build a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub upstream: UpstreamAuth,
    /// Access token lifetime at the IdP, seconds. Default 300.
    pub token_ttl: u64,
    /// The leeway of every issuer in cosmogate's configuration, seconds. Default 60.
    pub leeway_seconds: u64,
    /// The listen address written into the configuration. Default `127.0.0.1:0`.
    pub listen: String,
    /// `jwks_cache_seconds` of every issuer. Default: not written (cosmogate's default).
    pub jwks_cache_seconds: Option<u64>,
    /// `unknown_kid_cooldown_seconds` of every issuer. Default: not written.
    pub unknown_kid_cooldown_seconds: Option<u64>,
    /// Issuers trusted besides the stack's IdP. Default none.
    pub extra_issuers: Vec<ExtraIssuer>,
    /// The policy file. Default `config/policy.toml`.
    pub policy_file: Option<PathBuf>,
    /// `(name, loopback host)` regions the Cosmos server advertises (see
    /// [`CosmosServer::start_with_regions`]). Default none: a single-region account.
    pub cosmos_regions: Vec<(String, String)>,
    /// When set, a `[telemetry.otlp]` section exporting to this collector base URL, with
    /// [`StackOptions::otlp_settings`] added to it. Default none.
    pub otlp_endpoint: Option<String>,
    /// More `[telemetry.otlp]` lines, such as `queue_size = 2`. Default none.
    pub otlp_settings: String,
    /// Whether [`Stack::start`] serves an admin listener on a free loopback port
    /// ([`Stack::admin_url`]). Default false.
    pub admin: bool,
    /// Lifetime of the managed-identity stand-in's tokens, seconds. Default 3600.
    pub upstream_token_lifetime: u64,
}

impl StackOptions {
    pub fn new(upstream: UpstreamAuth) -> StackOptions {
        StackOptions {
            upstream,
            token_ttl: 300,
            leeway_seconds: 60,
            listen: "127.0.0.1:0".to_owned(),
            jwks_cache_seconds: None,
            unknown_kid_cooldown_seconds: None,
            extra_issuers: Vec::new(),
            policy_file: None,
            cosmos_regions: Vec::new(),
            otlp_endpoint: None,
            otlp_settings: String::new(),
            admin: false,
            upstream_token_lifetime: 3600,
        }
    }

    /// The `[telemetry.otlp]` section, when export is asked for.
    fn telemetry_section(&self) -> String {
        match &self.otlp_endpoint {
            Some(endpoint) => format!(
                "\n[telemetry.otlp]\nendpoint = {}\n{}\n",
                toml_string(endpoint),
                self.otlp_settings
            ),
            None => String::new(),
        }
    }

    /// The `[[issuers]]` tables: the stack's IdP first, then [`StackOptions::extra_issuers`].
    fn issuer_sections(&self, idp_issuer: &str) -> String {
        let own = ExtraIssuer {
            issuer: idp_issuer.to_owned(),
            audiences: vec![crate::idp::DEFAULT_RESOURCE.to_owned()],
        };
        std::iter::once(&own)
            .chain(&self.extra_issuers)
            .map(|issuer| self.issuer_section(issuer))
            .collect()
    }

    fn issuer_section(&self, issuer: &ExtraIssuer) -> String {
        let mut section = format!(
            "[[issuers]]\nissuer = {}\naudiences = {}\nleeway_seconds = {}\n",
            toml_string(&issuer.issuer),
            toml_strings(&issuer.audiences),
            self.leeway_seconds
        );
        if let Some(seconds) = self.jwks_cache_seconds {
            section.push_str(&format!("jwks_cache_seconds = {seconds}\n"));
        }
        if let Some(seconds) = self.unknown_kid_cooldown_seconds {
            section.push_str(&format!("unknown_kid_cooldown_seconds = {seconds}\n"));
        }
        section.push('\n');
        section
    }
}

/// A TOML basic string; JSON's escapes are a subset of TOML's.
fn toml_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

fn toml_strings(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| toml_string(value)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The parts of a deployment, running, plus cosmogate's configuration file.
#[derive(Debug)]
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub certs: Certs,
    pub idp: Idp,
    pub cosmos: CosmosServer,
    pub tokens: Option<TokenEndpoint>,
    pub config_path: PathBuf,
    pub audit_path: PathBuf,
    /// `https://127.0.0.1:<port>/` once cosmogate listens.
    pub gateway_url: String,
    /// `http://127.0.0.1:<port>` of the admin listener, when [`StackOptions::admin`] asked
    /// for one.
    pub admin_url: Option<String>,
    /// Whether [`Stack::start_gateway`] serves an admin listener ([`StackOptions::admin`]).
    serve_admin: bool,
    gateway: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Stack {
    /// Starts the IdP, the Cosmos server (with `shop/orders` and `shop/payroll` created
    /// directly on it, as ARM would) and the token endpoint, and writes the configuration.
    /// cosmogate itself is not started.
    pub async fn prepare(options: &StackOptions) -> anyhow::Result<Stack> {
        let dir = tempfile::Builder::new()
            .prefix("cosmogate-stack-")
            .tempdir()?;
        let certs = Certs::generate(dir.path())?;
        let idp = Idp::start_with_ttl(dir.path(), options.token_ttl).await?;
        let master = (options.upstream == UpstreamAuth::MasterKey).then_some(EMULATOR_KEY);
        let setup = [(DATABASE, CONTAINER), (DATABASE, OTHER_CONTAINER)];
        let cosmos = CosmosServer::start_with_regions(
            dir.path(),
            &certs,
            master,
            &setup,
            &options.cosmos_regions,
        )
        .await?;
        let tokens = match options.upstream {
            UpstreamAuth::MasterKey => None,
            _ => Some(
                TokenEndpoint::start_with_lifetime(
                    dir.path(),
                    IDENTITY_HEADER,
                    options.upstream_token_lifetime,
                )
                .await?,
            ),
        };
        let audit_path = dir.path().join("audit.jsonl");
        let config_path = dir.path().join("cosmogate.toml");
        let credential = credential_section(options.upstream, tokens.as_ref(), dir.path())?;
        let policy =
            (options.policy_file.clone()).unwrap_or_else(|| repo_root().join("config/policy.toml"));
        let config = format!(
            r#"[listen]
address = "{listen}"
tls_cert_file = "{cert}"
tls_key_file = "{key}"

{issuers}[policy]
file = "{policy}"

[upstream]
endpoint = "{endpoint}"
ca_file = "{ca}"

{credential}
[audit]
output = "{audit}"
{telemetry}"#,
            listen = options.listen,
            cert = certs.cert.display(),
            key = certs.key.display(),
            issuers = options.issuer_sections(&idp.issuer),
            policy = policy.display(),
            endpoint = cosmos.endpoint,
            ca = certs.ca.display(),
            audit = audit_path.display(),
            telemetry = options.telemetry_section(),
        );
        std::fs::write(&config_path, config)?;
        Ok(Stack {
            dir,
            certs,
            idp,
            cosmos,
            tokens,
            config_path,
            audit_path,
            gateway_url: String::new(),
            admin_url: None,
            serve_admin: options.admin,
            gateway: None,
        })
    }

    /// [`Stack::prepare`], then cosmogate in this process, listening on a free port.
    pub async fn start(options: &StackOptions) -> anyhow::Result<Stack> {
        let mut stack = Stack::prepare(options).await?;
        stack.start_gateway().await?;
        Ok(stack)
    }

    /// Starts cosmogate in this process from [`Stack::config_path`] as it is now (a test may
    /// have edited it after [`Stack::prepare`]).
    pub async fn start_gateway(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.gateway.is_none(), "cosmogate is already running");
        let loaded = cosmogate_server::Config::load(&self.config_path)?;
        let gateway = cosmogate_server::Gateway::build(loaded).await?;
        let listener = gateway.bind().await?;
        self.gateway_url = format!("https://{}/", listener.local_addr()?);
        let admin = match self.serve_admin {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
            false => None,
        };
        if let Some(admin) = &admin {
            self.admin_url = Some(format!("http://{}", admin.local_addr()?));
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let served = match admin {
                Some(admin) => {
                    gateway
                        .serve_with_admin(listener, Some(admin), shutdown)
                        .await
                }
                None => gateway.serve(listener, shutdown).await,
            };
            if let Err(err) = served {
                eprintln!("cosmogate stopped with an error: {err}");
            }
        });
        self.gateway = Some((stop, task));
        Ok(())
    }

    /// Arguments for a sample app that talks to cosmogate about `shop/orders`.
    pub fn app(&self, client: &str, secret: &str) -> AppArgs {
        let credential = AppCredential::Idp {
            issuer: self.idp.issuer.clone(),
            client: client.to_owned(),
            secret: secret.to_owned(),
        };
        AppArgs::new(
            &self.gateway_url,
            &self.certs.ca,
            DATABASE,
            CONTAINER,
            credential,
        )
    }

    /// Like [`Stack::app`], but the app sends exactly `token`.
    pub fn app_with_token(&self, token: &str) -> AppArgs {
        let credential = AppCredential::StaticToken(token.to_owned());
        AppArgs::new(
            &self.gateway_url,
            &self.certs.ca,
            DATABASE,
            CONTAINER,
            credential,
        )
    }

    /// An HTTPS client that trusts the stack's CA.
    pub fn https_client(&self) -> anyhow::Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.certs.ca_pem()?.as_bytes())?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([ca])
            .no_proxy()
            .build()?)
    }

    /// The audit records written so far, once the stream has gone quiet: a record is written
    /// when its response ends, a moment after the client has read it.
    pub async fn audit(&self) -> Vec<Value> {
        let mut last = usize::MAX;
        for _ in 0..50 {
            let records = read_jsonl(&self.audit_path);
            if records.len() == last {
                return records;
            }
            last = records.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        read_jsonl(&self.audit_path)
    }

    /// Stops cosmogate and waits for it to drain.
    pub async fn stop_gateway(&mut self) {
        if let Some((stop, task)) = self.gateway.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

fn credential_section(
    upstream: UpstreamAuth,
    tokens: Option<&TokenEndpoint>,
    dir: &Path,
) -> anyhow::Result<String> {
    let section = match (upstream, tokens) {
        (UpstreamAuth::MasterKey, _) => {
            let key_file = dir.join("account-key");
            std::fs::write(&key_file, EMULATOR_KEY).context("writing the account key file")?;
            format!(
                "[upstream.credential]\nkind = \"master_key\"\nkey_file = \"{}\"\n",
                key_file.display()
            )
        }
        (UpstreamAuth::ManagedIdentity, Some(tokens)) => format!(
            "[upstream.credential]\nkind = \"managed_identity\"\nsource = \"imds\"\n\
             endpoint = \"{}\"\n",
            tokens.imds_url()
        ),
        _ => anyhow::bail!("a managed identity stack needs the token endpoint"),
    };
    Ok(section)
}
