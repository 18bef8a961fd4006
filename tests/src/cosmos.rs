//! The Cosmos-compatible server (`tests/rig/cosmos.mjs`, @vercel/cosmosdb-server over HTTPS).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::certs::Certs;
use crate::process::{RigProcess, node_script, read_jsonl, unique_path};

/// A running Cosmos-compatible server on `https://127.0.0.1:<port>/`. It checks no
/// credentials; it records every request it receives in [`CosmosServer::log`].
#[derive(Debug)]
pub struct CosmosServer {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// `https://127.0.0.1:<port>/`, also what its `GET /` advertises as read and write endpoint.
    pub endpoint: String,
    /// JSONL request log: one record per request with `ts`, `method`, `url` (raw request
    /// target), `host`, `authorization` (full value), `x_ms_date`, `headers`, `setup` and, when
    /// started with a master key and the request is `type=master`, `master_sig_valid`,
    /// `resource_type` and `resource_link`.
    pub log: PathBuf,
    process: RigProcess,
}

impl CosmosServer {
    /// Starts the server with `certs`' server certificate. With `master_key`, master-key
    /// signatures are recomputed and recorded (and setup requests are signed with it).
    /// `setup` lists `(database, container)` pairs created before the server reports ready;
    /// containers are partitioned on `/tenant` (Hash, version 2).
    pub async fn start(
        dir: &Path,
        certs: &Certs,
        master_key: Option<&str>,
        setup: &[(&str, &str)],
    ) -> anyhow::Result<CosmosServer> {
        CosmosServer::start_with_regions(dir, certs, master_key, setup, &[]).await
    }

    /// [`CosmosServer::start`] for a multi-region account: `GET /` lists each `(name, host)`
    /// at `https://<host>:<port>/`, this same server under another loopback name (`127.0.0.1`,
    /// `localhost`). The first region is the write region; every region is readable. The
    /// logged `host` of a request tells which region it was sent to.
    pub async fn start_with_regions(
        dir: &Path,
        certs: &Certs,
        master_key: Option<&str>,
        setup: &[(&str, &str)],
        regions: &[(String, String)],
    ) -> anyhow::Result<CosmosServer> {
        let log = unique_path(dir, "cosmos-requests", "jsonl");
        let mut cmd = node_script("cosmos.mjs")?;
        cmd.arg("--cert").arg(&certs.cert);
        cmd.arg("--key").arg(&certs.key);
        cmd.arg("--log").arg(&log);
        if let Some(key) = master_key {
            cmd.arg("--master-key").arg(key);
        }
        if !setup.is_empty() {
            let spec: Vec<String> = setup.iter().map(|(db, c)| format!("{db}:{c}")).collect();
            cmd.arg("--setup").arg(spec.join(","));
        }
        if !regions.is_empty() {
            let spec: Vec<String> = regions
                .iter()
                .map(|(name, host)| format!("{name}={host}"))
                .collect();
            cmd.arg("--regions").arg(spec.join(","));
        }
        let process = RigProcess::spawn("cosmos", cmd, dir).await?;
        let port = process.port()?;
        Ok(CosmosServer {
            port,
            endpoint: format!("https://127.0.0.1:{port}/"),
            log,
            process,
        })
    }

    /// Records of the requests received after setup (`setup: false`), in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.all_records()
            .into_iter()
            .filter(|r| r.get("setup") == Some(&Value::Bool(false)))
            .collect()
    }

    /// Every record, setup requests included.
    pub fn all_records(&self) -> Vec<Value> {
        read_jsonl(&self.log)
    }

    /// The file holding the server's stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }
}
