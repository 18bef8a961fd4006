//! The demo behind `scripts/demo.sh`: a whole local deployment on 127.0.0.1 with the real
//! `cosmogate` binary in the middle, sample apps on both SDKs, and the audit records.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use cosmogate_e2e::{AppArgs, OpResult, Sdk, Stack, StackOptions, UpstreamAuth, run_app};
use tokio::process::{Child, Command};

/// Runs cosmogate between the real Cosmos SDKs and a Cosmos-compatible server.
#[derive(Debug, Parser)]
struct Args {
    /// The cosmogate binary to run.
    #[arg(long)]
    cosmogate: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.listen = format!("127.0.0.1:{}", free_port()?);
    say("starting the OpenID provider, the Cosmos-compatible server and the token endpoint");
    let stack = Stack::prepare(&options).await?;
    say(&format!("  identity provider   {}", stack.idp.issuer));
    say(&format!("  cosmos server       {}", stack.cosmos.endpoint));
    say(&format!(
        "  config              {}",
        stack.config_path.display()
    ));

    let log_path = stack.dir.path().join("cosmogate.log");
    let mut gateway = start_gateway(&args.cosmogate, &stack, &options.listen, &log_path).await?;
    let url = format!("https://{}/", options.listen);
    say(&format!(
        "  cosmogate           {url}  (cosmogate serve --config …)"
    ));
    let mut stack = stack;
    stack.gateway_url = url;

    let outcome = scenarios(&stack).await;
    let _ = gateway.kill().await;
    outcome?;

    print_audit(&stack).await;
    say("\ncosmogate's diagnostic log (standard error, apart from the audit stream), last lines:");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    for line in &lines[lines.len().saturating_sub(4)..] {
        say(&format!("  {line}"));
    }
    say("\nstopping everything the demo started");
    Ok(())
}

async fn print_audit(stack: &Stack) {
    let records = stack.audit().await;
    say(&format!(
        "\naudit records: {} requests, one record each",
        records.len()
    ));
    let row = |principal: &str, operation: &str, resource: &str, status: &str, reason: &str| {
        say(&format!(
            "  {principal:<11} {operation:<26} {resource:<12} {status:<6} {reason}"
        ));
    };
    row("principal", "operation", "resource", "status", "reason");
    for record in &records {
        let text = |field: &str| record[field].as_str().unwrap_or("-").to_owned();
        let resource = match (record["database"].as_str(), record["container"].as_str()) {
            (Some(db), Some(container)) => format!("{db}/{container}"),
            (Some(db), None) => db.to_owned(),
            _ => "/".to_owned(),
        };
        let principal = record["principal"]["sub"].as_str().unwrap_or("(none)");
        let status = record["status"].to_string();
        row(
            principal,
            &text("operation"),
            &resource,
            &status,
            &text("reason"),
        );
    }
    say("\nthe first refusals, exactly as cosmogate wrote them:");
    let raw = std::fs::read_to_string(&stack.audit_path).unwrap_or_default();
    for status in ["403", "401"] {
        let needle = format!("\"status\":{status},");
        if let Some(line) = raw.lines().find(|line| line.contains(&needle)) {
            say(line);
        }
    }
}

async fn scenarios(stack: &Stack) -> anyhow::Result<()> {
    let writer = quiet(stack.app("app-writer", "writer-secret"));
    scenario(
        "JavaScript SDK as app-writer (roles: cosmos.reader, cosmos.writer)",
        run_app(Sdk::Js, &writer).await?,
    );
    let reader = stack.app("app-reader", "reader-secret");
    let reader = quiet(reader.with_ops(&["read_all", "query_cross", "create", "delete"]));
    scenario(
        "JavaScript SDK as app-reader (role: cosmos.reader): writes are refused",
        run_app(Sdk::Js, &reader).await?,
    );
    let python = stack.app("app-writer", "writer-secret");
    let python = quiet(python.with_ops(&["create", "read", "query_pk", "patch", "delete"]));
    scenario(
        "Python SDK as app-writer",
        run_app(Sdk::Python, &python).await?,
    );
    let token = stack.idp.token("app-writer", "writer-secret").await?;
    let forged = format!("{}AAAA", token.trim_end_matches(|c| c != '.'));
    let forged_app = quiet(stack.app_with_token(&forged).with_ops(&["read"]));
    scenario(
        "JavaScript SDK with a forged token",
        run_app(Sdk::Js, &forged_app).await?,
    );
    Ok(())
}

/// The demo prints each app's outcomes itself; the apps' own stderr would repeat them.
fn quiet(mut args: AppArgs) -> AppArgs {
    args.echo_stderr = false;
    args
}

fn scenario(title: &str, results: Vec<OpResult>) {
    say(&format!("\n{title}"));
    for result in results {
        let status = result.status.map_or("-".to_owned(), |s| s.to_string());
        let outcome = if result.ok {
            "ok".to_owned()
        } else {
            format!("refused: {}", result.code.as_deref().unwrap_or("error"))
        };
        let message = match (&result.message, result.ok) {
            (Some(message), false) => format!("  \"{}\"", message.lines().next().unwrap_or("")),
            _ => String::new(),
        };
        say(&format!(
            "  {:<12} {status:>4}  {outcome}{message}",
            result.op
        ));
    }
}

async fn start_gateway(
    binary: &PathBuf,
    stack: &Stack,
    address: &str,
    log: &PathBuf,
) -> anyhow::Result<Child> {
    let log_file = std::fs::File::create(log)?;
    let mut child = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&stack.config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(address).await.is_err() {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("cosmogate exited ({status}) before listening:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("cosmogate did not listen on {address} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(child)
}

/// A port that was free a moment ago. The demo passes it to `cosmogate serve`, which binds it.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn say(line: &str) {
    println!("{line}");
}
