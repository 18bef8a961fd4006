//! The audit stream: one JSON record per request, on its own output.
//!
//! Records are serialised on the request's task and handed to a single writer task through a
//! bounded queue, so a slow disk never blocks a request. A record that finds the queue full is
//! counted and reported in the diagnostic log rather than silently lost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::AuditOutput;

/// The version of the record layout; bumped on any incompatible change.
pub const SCHEMA: &str = "cosmogate.audit/1";

/// Longest client-controlled string kept in a record; longer ones are cut and marked.
const MAX_FIELD_CHARS: usize = 512;

/// How many serialised records may wait for the writer.
const QUEUE_DEPTH: usize = 65_536;

/// One request, as the auditor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub schema: &'static str,
    /// When the request arrived (RFC 3339, UTC).
    pub time: String,
    /// cosmogate's id for the request, also sent to the client as `x-cosmogate-request-id`.
    pub request_id: String,
    /// The `x-ms-activity-id` sent to Cosmos DB, which its diagnostic logs record.
    pub activity_id: String,
    /// The socket peer.
    pub client_address: String,
    pub principal: Option<AuditPrincipal>,
    pub method: String,
    /// The request path, without its query string.
    pub path: String,
    pub operation: Option<&'static str>,
    pub actions: Vec<&'static str>,
    pub database: Option<String>,
    pub container: Option<String>,
    pub item_id: Option<String>,
    pub partition_key: Option<String>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Why: `allowed`, or the reason code of the refusal or failure.
    pub reason: &'static str,
    /// The policy roles that granted the request.
    pub roles: Vec<String>,
    /// The status the client received.
    pub status: u16,
    pub substatus: Option<String>,
    pub request_charge: Option<f64>,
    /// Whether the response body was delivered to the end.
    pub completed: bool,
    pub latency_ms: f64,
}

/// Who made the request, as far as the validated token says.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPrincipal {
    pub iss: String,
    pub sub: String,
    /// A prefix of the SHA-256 of the token: correlates requests without keeping the token.
    pub token_fingerprint: String,
}

/// Cuts a client-controlled string to a bounded length.
pub fn capped(value: &str) -> String {
    if value.chars().count() <= MAX_FIELD_CHARS {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(MAX_FIELD_CHARS).collect();
    cut.push('…');
    cut
}

/// Formats a time the way every record does.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// The sending half of the audit stream; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl AuditSink {
    /// Opens the output and starts the writer task.
    pub async fn open(output: &AuditOutput) -> std::io::Result<AuditSink> {
        let writer: Box<dyn AsyncWrite + Send + Unpin> = match output {
            AuditOutput::Stdout => Box::new(tokio::io::stdout()),
            AuditOutput::File(path) => Box::new(open_append(path).await?),
        };
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_records(receiver, writer));
        Ok(AuditSink {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues one record. Never waits.
    pub fn record(&self, record: &AuditRecord) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(err) => {
                tracing::error!(error = %err, "Audit record not serialisable");
                return;
            }
        };
        line.push(b'\n');
        if self.queue.try_send(line).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(audit.dropped = dropped, "Audit queue full, record dropped");
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

async fn write_records(
    mut receiver: mpsc::Receiver<Vec<u8>>,
    mut writer: Box<dyn AsyncWrite + Send + Unpin>,
) {
    while let Some(line) = receiver.recv().await {
        let mut result = writer.write_all(&line).await;
        // Drain what is already queued before flushing, so a burst costs one flush.
        while let Ok(next) = receiver.try_recv() {
            if result.is_ok() {
                result = writer.write_all(&next).await;
            }
        }
        if let Err(err) = result.and(writer.flush().await) {
            tracing::error!(error = %err, "Audit write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_client_strings_are_cut_and_marked() {
        let long = "x".repeat(2000);
        let cut = capped(&long);
        assert_eq!(cut.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(capped("short"), "short");
    }
}
