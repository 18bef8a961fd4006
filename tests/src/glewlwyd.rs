//! The second, independent OpenID provider: glewlwyd 2.7 from Debian, run by
//! `tests/rig/glewlwyd.mjs` as a private instance on 127.0.0.1.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::idp::client_credentials;
use crate::process::{RigProcess, node_script, unique_path};

/// The scope the rig's clients are granted; glewlwyd, without resource indicators, also puts
/// it in `aud`.
pub const GLEWLWYD_SCOPE: &str = "cosmos.read";

/// One client_credentials client of the glewlwyd instance.
#[derive(Debug, Clone, Deserialize)]
pub struct GlewlwydClient {
    pub client_id: String,
    pub secret: String,
    /// `RS256` or `ES256`: the algorithm of the key this client's tokens are signed with.
    pub alg: String,
    /// The `kid` of that key.
    pub kid: String,
}

#[derive(Deserialize)]
struct Ready {
    issuer: String,
    port: u16,
    scope: String,
    clients: Vec<GlewlwydClient>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A running glewlwyd with issuer `http://127.0.0.1:<port>/api/oidc`.
#[derive(Debug)]
pub struct Glewlwyd {
    /// The issuer, exactly as it appears in `iss`.
    pub issuer: String,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The scope to ask for; also the tokens' `aud`.
    pub scope: String,
    /// The token endpoint, from discovery.
    pub token_endpoint: String,
    /// The JWKS URL, from discovery.
    pub jwks_uri: String,
    /// One client per signing algorithm.
    pub clients: Vec<GlewlwydClient>,
    http: reqwest::Client,
    process: RigProcess,
}

impl Glewlwyd {
    /// Starts glewlwyd with the default access-token lifetime of 300 s. Its database and
    /// configuration live in a fresh directory under `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Glewlwyd> {
        Self::start_with_ttl(dir, 300).await
    }

    /// Starts glewlwyd with access tokens that live `ttl_secs` seconds.
    pub async fn start_with_ttl(dir: &Path, ttl_secs: u64) -> anyhow::Result<Glewlwyd> {
        crate::paths::ensure_glewlwyd()?;
        let state = unique_path(dir, "glewlwyd", "d");
        let mut cmd = node_script("glewlwyd.mjs")?;
        cmd.arg("--ttl").arg(ttl_secs.to_string());
        cmd.arg("--dir").arg(&state);
        let process = RigProcess::spawn("glewlwyd", cmd, dir).await?;
        let ready: Ready = serde_json::from_value(process.ready().clone())
            .context("reading the glewlwyd ready line")?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let url = format!("{}/.well-known/openid-configuration", ready.issuer);
        let discovery: Discovery = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .context("reading glewlwyd discovery")?;
        if discovery.issuer != ready.issuer {
            bail!(
                "glewlwyd discovery names issuer {} but the launcher configured {}",
                discovery.issuer,
                ready.issuer
            );
        }
        Ok(Glewlwyd {
            issuer: ready.issuer,
            port: ready.port,
            scope: ready.scope,
            token_endpoint: discovery.token_endpoint,
            jwks_uri: discovery.jwks_uri,
            clients: ready.clients,
            http,
            process,
        })
    }

    /// The client whose tokens are signed with `alg` (`RS256` or `ES256`).
    pub fn client(&self, alg: &str) -> anyhow::Result<&GlewlwydClient> {
        let found = self.clients.iter().find(|client| client.alg == alg);
        found.with_context(|| format!("glewlwyd has no {alg} client"))
    }

    /// A client_credentials access token for `client` and the rig's scope.
    pub async fn token(&self, client: &str, secret: &str) -> anyhow::Result<String> {
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
        ];
        let endpoint = &self.token_endpoint;
        client_credentials(&self.http, endpoint, (client, secret), &form, "glewlwyd").await
    }

    /// A token for the client that signs with `alg`.
    pub async fn token_for_alg(&self, alg: &str) -> anyhow::Result<String> {
        let client = self.client(alg)?;
        self.token(&client.client_id, &client.secret).await
    }

    /// The file holding the launcher's and glewlwyd's log.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}
