//! Policy hot reload: a changed policy file, or SIGHUP, is validated and swapped in atomically.
//!
//! Requests in flight keep the policy they started with. A file that does not validate is
//! refused: the running policy stays, the problems are logged, and the refusal is counted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use cosmogate_policy::Policy;
use sha2::{Digest, Sha256};

/// How often the policy file is checked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A policy and the version of the file it came from.
#[derive(Debug)]
pub(crate) struct Versioned {
    pub policy: Policy,
    /// A prefix of the SHA-256 of the policy file, recorded in every audit record.
    pub version: Arc<str>,
}

/// The live policy, shared by every request.
#[derive(Debug)]
pub(crate) struct LivePolicy {
    current: ArcSwap<Versioned>,
    path: PathBuf,
    /// SHA-256 of the file bytes last looked at, valid or not: a change is a new digest.
    seen: std::sync::Mutex<[u8; 32]>,
    reloads: AtomicU64,
    refused: AtomicU64,
}

impl LivePolicy {
    /// Loads the policy file; at startup an invalid file is an error.
    pub fn load(path: &Path) -> Result<LivePolicy, cosmogate_policy::PolicyError> {
        let bytes = std::fs::read(path).unwrap_or_default();
        let policy = Policy::load(path)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        Ok(LivePolicy {
            current: ArcSwap::from_pointee(Versioned {
                policy,
                version: hex::encode(&digest[..8]).into(),
            }),
            path: path.to_owned(),
            seen: std::sync::Mutex::new(digest),
            reloads: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The policy to decide this request with.
    pub fn get(&self) -> Arc<Versioned> {
        self.current.load_full()
    }

    /// Successful reloads and refused files since startup.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reloads.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Re-reads the file if its bytes changed (or when `force`), and swaps it in if it is
    /// valid. Returns whether a new policy is now live.
    pub fn reload(&self, force: bool) -> bool {
        let Ok(bytes) = std::fs::read(&self.path) else {
            self.refuse(&["the policy file cannot be read".to_owned()]);
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if !force && *seen == digest {
            return false;
        }
        let text = String::from_utf8_lossy(&bytes);
        match Policy::from_toml(&text, &self.path.display().to_string()) {
            Ok(policy) => {
                let version: Arc<str> = hex::encode(&digest[..8]).into();
                self.current.store(Arc::new(Versioned { policy, version }));
                *seen = digest;
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    policy.file = %self.path.display(),
                    policy.digest = %hex::encode(&digest[..8]),
                    "Policy reloaded"
                );
                true
            }
            Err(err) => {
                // Remember the refused bytes so one bad save is reported once, not every poll.
                *seen = digest;
                self.refuse(err.problems());
                false
            }
        }
    }

    fn refuse(&self, problems: &[String]) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(
            policy.file = %self.path.display(),
            policy.refused = refused,
            problems = %problems.join("; "),
            "Policy reload refused, previous policy stays"
        );
    }
}

/// Watches the policy file and SIGHUP until the process ends.
pub(crate) fn spawn_watcher(policy: Arc<LivePolicy>) {
    tokio::spawn(async move {
        let mut hangup = hangup_signal();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = next_hangup(&mut hangup) => true,
            };
            policy.reload(forced);
        }
    });
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

async fn next_hangup(hangup: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        return signal.recv().await;
    }
    let _ = hangup;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version = 1
[[roles]]
name = "r"
builtin = "data-reader"
scopes = ["/dbs/a"]
[[bindings]]
role = "r"
claim = "roles"
contains = "x"
"#;

    #[test]
    fn a_valid_change_is_swapped_in_and_an_invalid_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, GOOD).expect("write");
        let live = LivePolicy::load(&path).expect("load");
        let first = live.get();
        assert_eq!(first.version.len(), 16);

        assert!(!live.reload(false), "an unchanged file is not reloaded");
        std::fs::write(&path, GOOD.replace("/dbs/a", "/dbs/b")).expect("write");
        assert!(live.reload(false));
        assert!(!Arc::ptr_eq(&first, &live.get()));

        let second = live.get();
        std::fs::write(&path, "version = 1\n[[roles]]\nname = 3\n").expect("write");
        assert!(!live.reload(false));
        assert!(
            Arc::ptr_eq(&second, &live.get()),
            "the previous policy stays"
        );
        assert!(!live.reload(false), "a refused file is reported once");
        assert_eq!(live.counts(), (1, 1));
    }
}
