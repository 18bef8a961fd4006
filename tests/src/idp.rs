//! The test OpenID provider (`tests/rig/idp.mjs`, oidc-provider 9), including the key
//! rotation it performs on request and the request counts it keeps.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::process::{RigProcess, node_script};

/// The audience the IdP puts in tokens unless another resource is asked for.
pub const DEFAULT_RESOURCE: &str = "api://cosmogate";

/// The IdP's clients: `(client_id, secret, roles)`. All carry `tenant: "t1"`; `app-es256`
/// gets ES256-signed tokens, the others RS256.
pub const CLIENTS: &[(&str, &str, &[&str])] = &[
    ("app-reader", "reader-secret", &["cosmos.reader"]),
    (
        "app-writer",
        "writer-secret",
        &["cosmos.reader", "cosmos.writer"],
    ),
    (
        "app-es256",
        "es256-secret",
        &["cosmos.reader", "cosmos.writer"],
    ),
    ("app-nobody", "nobody-secret", &[]),
];

/// A running test IdP with issuer `http://127.0.0.1:<port>`.
#[derive(Debug)]
pub struct Idp {
    /// The issuer, exactly as it appears in `iss` (no trailing slash).
    pub issuer: String,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The token endpoint taken from discovery.
    pub token_endpoint: String,
    http: reqwest::Client,
    process: RigProcess,
}

/// A step of a signing-key rotation, in the order oidc-provider's documentation gives: publish
/// the new keys next to the old ones, switch signing to them, then retire the old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationPhase {
    /// A new RS256 + ES256 pair joins the end of the JWKS; the old pair still signs.
    Publish,
    /// The new pair moves to the front and signs; the old pair stays published.
    Switch,
    /// The old pair leaves the JWKS.
    Retire,
}

impl RotationPhase {
    fn as_str(self) -> &'static str {
        match self {
            RotationPhase::Publish => "publish",
            RotationPhase::Switch => "switch",
            RotationPhase::Retire => "retire",
        }
    }
}

/// The IdP's keys after a rotation step.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRing {
    /// The `kid`s in the JWKS, in the order served.
    pub jwks: Vec<String>,
    /// The `kid`s that sign now: the RSA one, then the EC one.
    pub signing: Vec<String>,
}

/// What the IdP has been asked since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct IdpStats {
    /// Requests for the JWKS.
    pub jwks: u64,
    /// Requests for the discovery document.
    pub discovery: u64,
    /// Requests to the token endpoint.
    pub token: u64,
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

/// A client_credentials token request with basic client authentication, shared by the rig's
/// identity providers; `provider` names the provider in errors.
pub(crate) async fn client_credentials(
    http: &reqwest::Client,
    token_endpoint: &str,
    (client, secret): (&str, &str),
    form: &[(&str, &str)],
    provider: &str,
) -> anyhow::Result<String> {
    let res = http
        .post(token_endpoint)
        .basic_auth(client, Some(secret))
        .form(form)
        .send()
        .await
        .with_context(|| format!("calling the {provider} token endpoint"))?;
    let status = res.status();
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        bail!("{provider} token request for {client} answered {status}: {body}");
    }
    let token: TokenResponse = res
        .json()
        .await
        .with_context(|| format!("reading the {provider} token response"))?;
    Ok(token.access_token)
}

impl Idp {
    /// Starts the IdP with the default access-token lifetime of 300 s.
    pub async fn start(dir: &Path) -> anyhow::Result<Idp> {
        Self::start_with_ttl(dir, 300).await
    }

    /// Starts the IdP with access tokens that live `ttl_secs` seconds.
    pub async fn start_with_ttl(dir: &Path, ttl_secs: u64) -> anyhow::Result<Idp> {
        let mut cmd = node_script("idp.mjs")?;
        cmd.arg("--ttl").arg(ttl_secs.to_string());
        let process = RigProcess::spawn("idp", cmd, dir).await?;
        let port = process.port()?;
        let issuer = process
            .ready()
            .get("issuer")
            .and_then(|v| v.as_str())
            .context("idp ready line has no issuer")?
            .to_string();
        let http = reqwest::Client::builder().build()?;
        let discovery: Discovery = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .context("reading idp discovery")?;
        Ok(Idp {
            issuer,
            port,
            token_endpoint: discovery.token_endpoint,
            http,
            process,
        })
    }

    /// The discovery document URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// A client_credentials access token for audience [`DEFAULT_RESOURCE`].
    pub async fn token(&self, client: &str, secret: &str) -> anyhow::Result<String> {
        self.token_for(client, secret, DEFAULT_RESOURCE).await
    }

    /// A client_credentials access token for `resource` (any absolute URI) as audience.
    pub async fn token_for(
        &self,
        client: &str,
        secret: &str,
        resource: &str,
    ) -> anyhow::Result<String> {
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "cosmos"),
        ];
        client_credentials(
            &self.http,
            &self.token_endpoint,
            (client, secret),
            &form,
            "idp",
        )
        .await
    }

    /// Performs one rotation step inside the running IdP (same port, same issuer) and returns
    /// the resulting key ring. Steps out of order are refused.
    pub async fn rotate(&self, phase: RotationPhase) -> anyhow::Result<KeyRing> {
        let url = format!("{}/_rig/rotate?phase={}", self.issuer, phase.as_str());
        let res = self
            .http
            .post(url)
            .send()
            .await
            .context("rotating idp keys")?;
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            bail!("idp rotation {phase:?} answered {status}: {body}");
        }
        res.json().await.context("reading the idp key ring")
    }

    /// The IdP's request counts so far.
    pub async fn stats(&self) -> anyhow::Result<IdpStats> {
        let url = format!("{}/_rig/stats", self.issuer);
        let res = self
            .http
            .get(url)
            .send()
            .await
            .context("reading idp stats")?;
        res.error_for_status()?
            .json()
            .await
            .context("reading idp stats")
    }

    /// The file holding the IdP's stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}
