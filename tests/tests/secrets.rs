//! No secret reaches a log, an audit record, an exported span or a metric: a full run through
//! cosmogate with diagnostic logging at its most verbose and every span exported to a loopback
//! OTLP collector, then every captured line, every export request as received and a `/metrics`
//! scrape are searched for the apps' tokens, cosmogate's own upstream token and the account
//! key.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_e2e::{
    CollectorMode, EMULATOR_KEY, OtlpReceiver, Sdk, Stack, StackOptions, UpstreamAuth, run_app,
};
use serde_json::Value;

/// Everything cosmogate logged in this test binary.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .init();
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The signature segment of every JWT-shaped string in `text` issued by `issuer`.
fn signatures_from(text: &str, issuer: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .filter_map(|candidate| {
            let parts: Vec<&str> = candidate.split('.').collect();
            let [_, payload, signature] = parts[..] else {
                return None;
            };
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
            (claims["iss"] == issuer).then(|| signature.to_owned())
        })
        .collect()
}

fn assert_absent(haystack: &str, secret: &str, what: &str) {
    assert!(secret.len() >= 16, "{what} is too short to search for");
    assert!(
        !haystack.contains(secret),
        "{what} appears in the logs, the audit stream, the spans or the metrics"
    );
}

/// A stack exporting every span to its own collector, with an admin listener.
async fn full_run(upstream: UpstreamAuth) -> (Stack, OtlpReceiver, Vec<String>) {
    let collector = OtlpReceiver::start(CollectorMode::Accept)
        .await
        .expect("collector");
    let mut options = StackOptions::new(upstream);
    options.otlp_endpoint = Some(collector.endpoint.clone());
    options.admin = true;
    let stack = Stack::start(&options).await.expect("stack");
    let writer = stack.app("app-writer", "writer-secret");
    assert!(
        run_app(Sdk::Js, &writer)
            .await
            .expect("js")
            .iter()
            .all(|r| r.ok)
    );
    let reader = stack
        .app("app-reader", "reader-secret")
        .with_ops(&["read_all", "create"]);
    run_app(Sdk::Python, &reader).await.expect("python");
    let token = stack
        .idp
        .token("app-writer", "writer-secret")
        .await
        .expect("token");
    let forged = format!("{}{}", &token[..token.len() - 8], "AAAAAAAA");
    let mut secrets = vec![token.clone(), forged.clone()];
    run_app(Sdk::Js, &stack.app_with_token(&forged).with_ops(&["read"]))
        .await
        .expect("js");
    // The apps' own tokens are known only to the apps; the upstream log shows none reached it,
    // and the audit and log search below looks for any token this IdP signed.
    secrets.extend(
        stack
            .tokens
            .iter()
            .flat_map(|tokens| tokens.records())
            .filter_map(|record| record["token"].as_str().map(str::to_owned)),
    );
    (stack, collector, secrets)
}

async fn scrape(stack: &Stack) -> String {
    let admin = stack.admin_url.as_deref().expect("an admin listener");
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The decoded spans as text, and the export requests as received.
fn exported_text(collector: &OtlpReceiver) -> String {
    let spans: Vec<String> = collector
        .spans()
        .iter()
        .map(|span| format!("{} {:?} {:?}", span.name, span.attributes, span.resource))
        .collect();
    format!("{}\n{}", spans.join("\n"), collector.raw_text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_key_reaches_the_logs_audit_spans_or_metrics() {
    let logs = captured();
    let (mut mi, mi_spans, mut secrets) = full_run(UpstreamAuth::ManagedIdentity).await;
    let (mut keyed, keyed_spans, more) = full_run(UpstreamAuth::MasterKey).await;
    secrets.extend(more);
    let mi_metrics = scrape(&mi).await;
    let keyed_metrics = scrape(&keyed).await;
    assert!(mi_metrics.contains("cosmogate_upstream_token_age_seconds{kind=\"managed_identity\"}"));
    assert!(keyed_metrics.contains("cosmogate_upstream_credential{kind=\"master_key\"} 1"));
    assert!(
        !keyed_metrics.contains("cosmogate_upstream_token_age_seconds{"),
        "the account key has no token to age"
    );
    mi.stop_gateway().await;
    keyed.stop_gateway().await;
    for (stack, collector) in [(&mi, &mi_spans), (&keyed, &keyed_spans)] {
        let records = stack.audit().await.len();
        let spans = collector.wait_for(records, Duration::from_secs(30)).await;
        assert_eq!(spans.len(), records, "every request's span was captured");
    }

    let mut text = String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned();
    assert!(
        text.contains("Request denied"),
        "the capture saw cosmogate's logs"
    );
    for stack in [&mi, &keyed] {
        text.push_str(&std::fs::read_to_string(&stack.audit_path).expect("audit"));
    }
    for collector in [&mi_spans, &keyed_spans] {
        text.push_str(&exported_text(collector));
    }
    assert!(
        text.contains("cosmogate.principal.subject"),
        "the search covers the exported spans"
    );
    text.push_str(&mi_metrics);
    text.push_str(&keyed_metrics);
    for secret in &secrets {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        assert_absent(&text, signature, "a token signature");
    }
    for stack in [&mi, &keyed] {
        let leaked = signatures_from(&text, &stack.idp.issuer);
        assert!(leaked.is_empty(), "an app's token appears: {leaked:?}");
    }
    assert_absent(&text, EMULATOR_KEY, "the account key");
    assert_absent(&text, &EMULATOR_KEY[..24], "part of the account key");
    assert!(!text.contains("sig="), "an Authorization value appears");
}
