//! Running the sample apps (`tests/apps/app.mjs` with @azure/cosmos, `tests/apps/app.py` with
//! azure-cosmos) and collecting their per-operation results.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use tokio::process::Command;

use crate::paths::{apps_dir, ensure_node_rig, ensure_python_venv, venv_python};

/// Every op the apps know, in the order they run them by default.
pub const ALL_OPS: &[&str] = &[
    "create",
    "read",
    "query_pk",
    "query_cross",
    "upsert",
    "replace",
    "patch",
    "read_all",
    "change_feed",
    "bulk",
    "delete",
];

/// Which sample app to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `node tests/apps/app.mjs` (@azure/cosmos 4.9.3).
    Js,
    /// `tests/.venv/bin/python tests/apps/app.py` (azure-cosmos 4.17.1, sync client).
    Python,
}

impl Sdk {
    /// The value apps put in the `sdk` field: `js` or `python`.
    pub fn name(self) -> &'static str {
        match self {
            Sdk::Js => "js",
            Sdk::Python => "python",
        }
    }
}

/// How the app authenticates.
#[derive(Clone)]
pub enum AppCredential {
    /// client_credentials against the test IdP (resource [`AppArgs::resource`]).
    Idp {
        /// The IdP's issuer URL.
        issuer: String,
        /// Client id.
        client: String,
        /// Client secret.
        secret: String,
    },
    /// The SDK is handed exactly this string as its access token.
    StaticToken(String),
    /// A Cosmos master key (for checking the rig without cosmogate in the middle).
    MasterKey(String),
}

impl fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppCredential::Idp { issuer, client, .. } => f
                .debug_struct("Idp")
                .field("issuer", issuer)
                .field("client", client)
                .field("secret", &"[redacted]")
                .finish(),
            AppCredential::StaticToken(_) => f.write_str("StaticToken([redacted])"),
            AppCredential::MasterKey(_) => f.write_str("MasterKey([redacted])"),
        }
    }
}

/// Arguments of one app run. Build with [`AppArgs::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct AppArgs {
    /// Account endpoint given to the SDK, e.g. cosmogate's `https://127.0.0.1:PORT/`.
    pub endpoint: String,
    /// CA file the SDK trusts for the endpoint.
    pub ca: PathBuf,
    /// Database name.
    pub database: String,
    /// Container name (partitioned on `/tenant`).
    pub container: String,
    /// How the app authenticates.
    pub credential: AppCredential,
    /// Ops to run, in order; empty (the default) runs [`ALL_OPS`].
    pub ops: Vec<String>,
    /// Item id; default: unique per run.
    pub item_id: Option<String>,
    /// Partition key value; default `t1`.
    pub tenant: Option<String>,
    /// Resource the IdP credential asks for; default `api://cosmogate`.
    pub resource: Option<String>,
    /// Turn SDK endpoint discovery off (default: on, as in real apps).
    pub no_discovery: bool,
    /// Regions the SDK prefers, in order (`connectionPolicy.preferredLocations` in JS,
    /// `preferred_locations` in Python).
    pub preferred_locations: Vec<String>,
    /// Extra environment for the app (e.g. `AZURE_COSMOS_AAD_SCOPE_OVERRIDE`).
    pub env: Vec<(String, String)>,
    /// Kill the app if it runs longer; default 120 s.
    pub timeout: Duration,
    /// Echo the app's stderr to this process's stderr; default true (tests), the demo turns it
    /// off to keep its output readable.
    pub echo_stderr: bool,
}

impl AppArgs {
    /// Arguments with every optional field at its default.
    pub fn new(
        endpoint: impl Into<String>,
        ca: impl Into<PathBuf>,
        database: impl Into<String>,
        container: impl Into<String>,
        credential: AppCredential,
    ) -> AppArgs {
        AppArgs {
            endpoint: endpoint.into(),
            ca: ca.into(),
            database: database.into(),
            container: container.into(),
            credential,
            ops: Vec::new(),
            item_id: None,
            tenant: None,
            resource: None,
            no_discovery: false,
            preferred_locations: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(120),
            echo_stderr: true,
        }
    }

    /// The same arguments restricted to `ops`.
    pub fn with_ops(mut self, ops: &[&str]) -> AppArgs {
        self.ops = ops.iter().map(|s| s.to_string()).collect();
        self
    }

    fn command_line(&self) -> Vec<String> {
        let mut out = vec![
            "--endpoint".to_string(),
            self.endpoint.clone(),
            "--ca".to_string(),
            self.ca.display().to_string(),
            "--database".to_string(),
            self.database.clone(),
            "--container".to_string(),
            self.container.clone(),
        ];
        match &self.credential {
            AppCredential::Idp {
                issuer,
                client,
                secret,
            } => {
                for (flag, value) in [
                    ("--idp", issuer),
                    ("--client", client),
                    ("--secret", secret),
                ] {
                    out.extend([flag.to_string(), value.clone()]);
                }
            }
            AppCredential::StaticToken(token) => {
                out.extend(["--static-token".into(), token.clone()])
            }
            AppCredential::MasterKey(key) => out.extend(["--key".into(), key.clone()]),
        }
        let optional = [
            ("--id", &self.item_id),
            ("--tenant", &self.tenant),
            ("--resource", &self.resource),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                out.extend([flag.to_string(), value.clone()]);
            }
        }
        if !self.ops.is_empty() {
            out.extend(["--ops".to_string(), self.ops.join(",")]);
        }
        if self.no_discovery {
            out.push("--no-discovery".to_string());
        }
        if !self.preferred_locations.is_empty() {
            out.push("--preferred-locations".to_string());
            out.push(self.preferred_locations.join(","));
        }
        out
    }

    fn expected_ops(&self) -> usize {
        if self.ops.is_empty() {
            ALL_OPS.len()
        } else {
            self.ops.len()
        }
    }
}

/// One line of app output: the outcome of one op.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OpResult {
    /// `js` or `python`.
    pub sdk: String,
    /// The op name (see [`ALL_OPS`]).
    pub op: String,
    /// Whether the SDK call succeeded.
    pub ok: bool,
    /// HTTP status of the (last) response, when there was one.
    pub status: Option<u16>,
    /// The error's code: the Cosmos body `code` (e.g. `Forbidden`) or a client-side error name.
    pub code: Option<String>,
    /// The first 200 characters of the error message.
    pub message: Option<String>,
    /// Documents returned, for query and feed ops.
    #[serde(default)]
    pub count: Option<u64>,
}

/// The result of `op` in `results`, if it ran.
pub fn find_op<'a>(results: &'a [OpResult], op: &str) -> Option<&'a OpResult> {
    results.iter().find(|r| r.op == op)
}

/// Runs a sample app to completion and returns one [`OpResult`] per op. Fails if the app
/// crashed (non-zero exit), timed out, printed anything that is not a result line, or
/// reported fewer ops than asked. The app's stderr is echoed to this process's stderr.
pub async fn run_app(sdk: Sdk, args: &AppArgs) -> anyhow::Result<Vec<OpResult>> {
    let mut cmd = app_command(sdk)?;
    cmd.args(args.command_line())
        .env_remove("AZURE_COSMOS_AAD_SCOPE_OVERRIDE")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .envs(args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting the {} app", sdk.name()))?;
    let output = tokio::time::timeout(args.timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!(
                "the {} app did not finish within {:?}",
                sdk.name(),
                args.timeout
            )
        })?
        .with_context(|| format!("waiting for the {} app", sdk.name()))?;

    let stderr = String::from_utf8_lossy(&output.stderr);
    if args.echo_stderr && !stderr.trim().is_empty() {
        eprintln!("--- {} app stderr ---\n{}--- end ---", sdk.name(), stderr);
    }
    if !output.status.success() {
        bail!(
            "the {} app crashed ({}): {}",
            sdk.name(),
            output.status,
            tail(&stderr)
        );
    }
    let results = parse_results(&String::from_utf8_lossy(&output.stdout))?;
    if results.len() != args.expected_ops() {
        bail!(
            "the {} app reported {} ops, expected {}",
            sdk.name(),
            results.len(),
            args.expected_ops()
        );
    }
    Ok(results)
}

fn app_command(sdk: Sdk) -> anyhow::Result<Command> {
    match sdk {
        Sdk::Js => {
            ensure_node_rig()?;
            let mut cmd = Command::new("node");
            cmd.arg(apps_dir().join("app.mjs"));
            Ok(cmd)
        }
        Sdk::Python => {
            ensure_python_venv()?;
            let mut cmd = Command::new(venv_python());
            cmd.arg(apps_dir().join("app.py"))
                .env("PYTHONUNBUFFERED", "1");
            Ok(cmd)
        }
    }
}

fn parse_results(stdout: &str) -> anyhow::Result<Vec<OpResult>> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .with_context(|| format!("app printed a non-result line: {line}"))
        })
        .collect()
}

fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_from_both_sdks_parse() {
        let out = "{\"sdk\":\"js\",\"op\":\"read\",\"ok\":true,\"status\":200,\"code\":null,\"message\":null,\"count\":null}\n\
                   {\"sdk\": \"python\", \"op\": \"read\", \"ok\": false, \"status\": 403, \"code\": \"Forbidden\", \"message\": \"no\"}\n";
        let results = parse_results(out).expect("lines parse");
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].status, Some(403));
        assert_eq!(results[1].code.as_deref(), Some("Forbidden"));
        assert_eq!(results[1].count, None);
    }

    #[test]
    fn a_stray_stdout_line_is_an_error() {
        assert!(parse_results("hello\n").is_err());
    }

    #[test]
    fn credential_debug_output_hides_secrets() {
        let cred = AppCredential::Idp {
            issuer: "http://127.0.0.1:1".into(),
            client: "app-writer".into(),
            secret: "writer-secret".into(),
        };
        let text = format!("{cred:?} {:?}", AppCredential::StaticToken("tok".into()));
        assert!(!text.contains("writer-secret") && !text.contains("tok)"));
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn command_line_carries_only_the_options_that_are_set() {
        let args = AppArgs::new(
            "https://127.0.0.1:1/",
            "/ca.pem",
            "db",
            "c",
            AppCredential::StaticToken("t".into()),
        )
        .with_ops(&["read", "delete"]);
        let line = args.command_line().join(" ");
        assert!(line.contains("--static-token t --ops read,delete"));
        assert!(!line.contains("--tenant") && !line.contains("--no-discovery"));
    }
}
