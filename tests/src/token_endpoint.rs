//! The loopback managed-identity token endpoint (`tests/rig/token-endpoint.mjs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::process::{RigProcess, node_script, read_jsonl, unique_path};

/// A running stand-in for the IMDS and App Service token endpoints on `http://127.0.0.1:<port>`.
#[derive(Debug)]
pub struct TokenEndpoint {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub base_url: String,
    /// The value App Service requests must send as `X-IDENTITY-HEADER`.
    pub identity_header: String,
    /// JSONL log: one record per request with `ts`, `protocol` (`imds`, `appservice`,
    /// `control`, `unknown`), `method`, `path`, `query`, `headers`, `status` and `token` (the
    /// issued access token or null).
    pub log: PathBuf,
    process: RigProcess,
}

impl TokenEndpoint {
    /// Starts the endpoint with tokens that live 3600 s.
    pub async fn start(dir: &Path, identity_header: &str) -> anyhow::Result<TokenEndpoint> {
        Self::start_with_lifetime(dir, identity_header, 3600).await
    }

    /// Starts the endpoint with tokens that live `lifetime_secs` seconds.
    pub async fn start_with_lifetime(
        dir: &Path,
        identity_header: &str,
        lifetime_secs: u64,
    ) -> anyhow::Result<TokenEndpoint> {
        let log = unique_path(dir, "token-endpoint", "jsonl");
        let mut cmd = node_script("token-endpoint.mjs")?;
        cmd.arg("--identity-header").arg(identity_header);
        cmd.arg("--lifetime").arg(lifetime_secs.to_string());
        cmd.arg("--log").arg(&log);
        let process = RigProcess::spawn("token-endpoint", cmd, dir).await?;
        let port = process.port()?;
        Ok(TokenEndpoint {
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            identity_header: identity_header.to_string(),
            log,
            process,
        })
    }

    /// The IMDS-style token URL (what `http://169.254.169.254/metadata/identity/oauth2/token`
    /// would be on Azure), without a query.
    pub fn imds_url(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.base_url)
    }

    /// The App Service `IDENTITY_ENDPOINT` value.
    pub fn app_service_url(&self) -> String {
        format!("{}/msi/token", self.base_url)
    }

    /// Makes the next `count` token requests answer `status` with an error body.
    pub async fn fail_next(&self, count: u32, status: u16) -> anyhow::Result<()> {
        let url = format!("{}/_rig/fail?count={count}&status={status}", self.base_url);
        let res = reqwest::Client::new()
            .post(url)
            .send()
            .await
            .context("calling the token endpoint's control route")?;
        if !res.status().is_success() {
            bail!("token endpoint control route answered {}", res.status());
        }
        Ok(())
    }

    /// Every request record so far, in arrival order (control requests included).
    pub fn records(&self) -> Vec<Value> {
        read_jsonl(&self.log)
    }

    /// The file holding the endpoint's stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}
