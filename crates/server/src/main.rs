//! The `cosmogate` command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cosmogate_server::{Config, Gateway, LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

mod tools;

/// mimalloc keeps a free list per thread: the many small, short-lived allocations of a request
/// (header maps, claim strings, the audit line) cost far less than with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An identity-aware gateway for Azure Cosmos DB.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve apps: validate their tokens, apply the policy, forward to Cosmos DB.
    Serve {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration and its policy file, reporting every problem, then exit.
    Check {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Explain how the policy decides one request: the classified operation, the claims,
    /// bindings, roles and deny rules that mattered, and the decision. Never contacts the
    /// identity provider: token claims are read without verification. Exits 0 when the
    /// request would be allowed, 1 when denied, 2 on bad input.
    Explain(Box<tools::ExplainArgs>),
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Audit tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Summarise audit files: who did which operations on which containers, and every
    /// denial by principal and reason, as a terminal table and optionally an HTML report.
    Summarize {
        /// Only records at or after this time (RFC 3339, or YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only records before this time.
        #[arg(long)]
        to: Option<String>,
        /// Also write a self-contained HTML report with a chart of requests over time.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Audit files (JSON lines).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run table-driven policy tests from a cases file; exits non-zero on any failure.
    Test(tools::TestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Check { config } => tools::check(&config),
        Command::Explain(args) => tools::explain(&args),
        Command::Policy {
            command: PolicyCommand::Test(args),
        } => tools::policy_test(&args),
        Command::Audit {
            command:
                AuditCommand::Summarize {
                    from,
                    to,
                    html,
                    files,
                },
        } => summarize(from.as_deref(), to.as_deref(), html.as_deref(), &files),
    }
}

fn summarize(
    from: Option<&str>,
    to: Option<&str>,
    html: Option<&Path>,
    files: &[PathBuf],
) -> ExitCode {
    let summary = cosmogate_server::TimeRange::parse(from, to)
        .and_then(|range| cosmogate_server::summarize(files, range));
    let summary = match summary {
        Ok(summary) => summary,
        Err(err) => {
            eprintln!("{}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    print!("{}", summary.table());
    if let Some(path) = html {
        if let Err(err) = std::fs::write(path, summary.html()) {
            eprintln!("cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        println!("HTML report written to {}", path.display());
    }
    ExitCode::SUCCESS
}

fn serve(path: &Path) -> ExitCode {
    let loaded = match Config::load(path) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    init_logging(&loaded.config.log);
    let (mut builder, scheduler) = runtime_builder();
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        scheduler,
        workers = runtime.metrics().num_workers(),
        "Async runtime started"
    );
    match runtime.block_on(run(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "Gateway stopped");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime: tokio's multi-thread scheduler, one worker per core the process may use
/// (the standard library reads the CPU affinity and the container's CPU quota;
/// `TOKIO_WORKER_THREADS` sets the count), except where that is one core and no count is set:
/// then the current-thread scheduler runs everything on the main thread, the same single
/// worker without the work-stealing scheduler's hand-offs between threads.
fn runtime_builder() -> (tokio::runtime::Builder, &'static str) {
    let cores = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .ok();
    if one_thread(cores, std::env::var_os("TOKIO_WORKER_THREADS").is_some()) {
        (
            tokio::runtime::Builder::new_current_thread(),
            "current_thread",
        )
    } else {
        (tokio::runtime::Builder::new_multi_thread(), "multi_thread")
    }
}

/// Whether the gateway runs on the current-thread scheduler: one usable core, no worker count
/// set. An unknown core count keeps the multi-thread default.
fn one_thread(cores: Option<usize>, worker_count_set: bool) -> bool {
    cores == Some(1) && !worker_count_set
}

async fn run(loaded: cosmogate_server::LoadedConfig) -> Result<(), cosmogate_server::StartupError> {
    let gateway = Gateway::build(loaded).await?;
    let listener = gateway.bind().await?;
    gateway.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(config: &LogConfig) {
    let filter = std::env::var("COSMOGATE_LOG")
        .ok()
        .and_then(|text| EnvFilter::try_new(text).ok())
        // azure_identity's transport logs failed token requests at info; ours are reported
        // once, by the credential cache.
        .or_else(|| {
            EnvFilter::try_new(format!(
                "{},azure_core=warn,typespec_client_core=warn",
                config.level
            ))
            .ok()
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::one_thread;

    #[test]
    fn one_usable_core_runs_on_the_current_thread_unless_a_worker_count_is_set() {
        assert!(one_thread(Some(1), false));
        assert!(!one_thread(Some(1), true), "TOKIO_WORKER_THREADS is obeyed");
        assert!(!one_thread(Some(2), false));
        assert!(!one_thread(Some(64), false));
        assert!(
            !one_thread(None, false),
            "an unknown count keeps tokio's default"
        );
    }
}
