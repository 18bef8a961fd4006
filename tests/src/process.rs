//! A rig server running as a child process: started, awaited until it prints its ready line,
//! and killed (and reaped) when dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use tokio::sync::oneshot;

/// How long a rig server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a log's end goes into an error message.
const TAIL_BYTES: u64 = 4096;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A unique file name in `dir` for this process: `<stem>-<n>.<ext>`.
pub(crate) fn unique_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{stem}-{n}.{ext}"))
}

/// A running rig server. Dropping it kills the process and waits for it.
#[derive(Debug)]
pub struct RigProcess {
    name: String,
    child: Child,
    log: PathBuf,
    ready: Value,
}

impl RigProcess {
    /// Starts `cmd` and waits up to [`READY_TIMEOUT`] for a stdout line that is a JSON object
    /// with `"ready": true`. The child's stderr, and any other stdout line, go to
    /// `<dir>/<name>-<n>.log`; the end of that log is part of the error if the child exits or
    /// times out first.
    pub async fn spawn(name: &str, mut cmd: Command, dir: &Path) -> anyhow::Result<RigProcess> {
        let log = unique_path(dir, name, "log");
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = child.stdout.take().context("child stdout is piped")?;

        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || pump_stdout(stdout, log_file, tx));

        let mut process = RigProcess {
            name: name.to_string(),
            child,
            log,
            ready: Value::Null,
        };
        let outcome = tokio::time::timeout(READY_TIMEOUT, rx).await;
        match outcome {
            Ok(Ok(Ok(ready))) => {
                process.ready = ready;
                Ok(process)
            }
            Ok(Ok(Err(why))) => Err(process.failure(&why)),
            Ok(Err(_)) => Err(process.failure("stdout reader stopped")),
            Err(_) => Err(process.failure("no ready line within 30 s")),
        }
    }

    /// The parsed ready line.
    pub fn ready(&self) -> &Value {
        &self.ready
    }

    /// The `port` field of the ready line.
    pub fn port(&self) -> anyhow::Result<u16> {
        let port = self.ready.get("port").and_then(Value::as_u64);
        let port = port.ok_or_else(|| anyhow!("{}: ready line has no port", self.name))?;
        u16::try_from(port).with_context(|| format!("{}: port {port} out of range", self.name))
    }

    /// The file holding the child's stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child and builds an error carrying the end of its log.
    fn failure(&mut self, why: &str) -> anyhow::Error {
        self.kill();
        let status = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .map_or_else(|| "unknown".to_string(), |s| s.to_string());
        let tail = log_tail(&self.log);
        anyhow!(
            "{} did not become ready: {why} (exit status {status}); end of {}:\n{tail}",
            self.name,
            self.log.display()
        )
    }

    fn kill(&mut self) {
        // Killing an already exited child fails harmlessly; wait() then reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RigProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the child's stdout: the first ready line is sent to `tx`, everything else is
/// appended to the log. Keeps draining until EOF so the child never blocks on a full pipe.
fn pump_stdout(stdout: ChildStdout, mut log: File, tx: oneshot::Sender<Result<Value, String>>) {
    let mut tx = Some(tx);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if tx.is_some()
            && let Some(ready) = parse_ready(&line)
        {
            if let Some(tx) = tx.take() {
                let _ = tx.send(Ok(ready));
            }
            continue;
        }
        let _ = writeln!(log, "[stdout] {line}");
    }
    if let Some(tx) = tx.take() {
        let _ = tx.send(Err("exited before printing a ready line".to_string()));
    }
}

fn parse_ready(line: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line.trim()).ok()?;
    (value.get("ready") == Some(&Value::Bool(true))).then_some(value)
}

/// The last few KB of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let Ok(mut file) = OpenOptions::new().read(true).open(path) else {
        return "(log unreadable)".to_string();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads a JSONL file, skipping lines that do not parse (none should).
pub(crate) fn read_jsonl(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// A `node <tests/rig/script>` command, after checking that setup has been run.
pub(crate) fn node_script(script: &str) -> anyhow::Result<Command> {
    crate::paths::ensure_node_rig()?;
    let path = crate::paths::rig_dir().join(script);
    if !path.is_file() {
        bail!("{} is missing", path.display());
    }
    let mut cmd = Command::new("node");
    cmd.arg(path).current_dir(crate::paths::rig_dir());
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    Ok(cmd)
}
