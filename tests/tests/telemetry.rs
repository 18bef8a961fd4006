//! The admin listener (liveness, readiness and metrics that agree with the audit stream) and
//! trace export to a loopback OTLP collector: one span per request, joined with the client's
//! trace and with what Cosmos DB received, and requests unharmed by a collector that hangs or
//! refuses.

use std::time::Duration;

use cosmogate_e2e::{
    CollectorMode, OtlpReceiver, RefusingPort, Sdk, Stack, StackOptions, UpstreamAuth, run_app,
};
use tokio::net::TcpListener;

/// The value of the first sample whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} sample in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served_apart_from_the_data_port() {
    let mut stack = Stack::prepare(&StackOptions::new(UpstreamAuth::ManagedIdentity))
        .await
        .expect("the local stack starts");
    let loaded = cosmogate_server::Config::load(&stack.config_path).expect("config");
    let gateway = cosmogate_server::Gateway::build(loaded)
        .await
        .expect("gateway");
    let listener = gateway.bind().await.expect("data listener");
    let admin = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("admin listener");
    let admin_url = format!("http://{}", admin.local_addr().expect("address"));
    stack.gateway_url = format!("https://{}/", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gateway.serve_with_admin(listener, Some(admin), async {
        let _ = stopped.await;
    }));

    let writer = stack
        .app("app-writer", "writer-secret")
        .with_ops(&["create", "read"]);
    assert!(
        run_app(Sdk::Js, &writer)
            .await
            .expect("app")
            .iter()
            .all(|r| r.ok)
    );
    let reader = stack
        .app("app-reader", "reader-secret")
        .with_ops(&["create"]);
    run_app(Sdk::Js, &reader).await.expect("app");
    let audit = stack.audit().await;

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let get = |path: &str| http.get(format!("{admin_url}{path}")).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    let metrics = get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");

    for series in [
        "cosmogate_requests_total{",
        "cosmogate_request_duration_seconds_bucket{",
        "cosmogate_upstream_duration_seconds_count",
        "cosmogate_request_charge_total{",
        "cosmogate_audit_dropped_total 0",
        "cosmogate_policy_reloads_total 0",
        "cosmogate_jwks_usable{",
        "cosmogate_jwks_fetches{",
        "cosmogate_token_cache_hits",
        "cosmogate_signature_verifications",
        "cosmogate_token_cache_deferred 0",
        "cosmogate_upstream_credential{kind=\"managed_identity\"} 1",
        "cosmogate_upstream_token_age_seconds{kind=\"managed_identity\"} ",
        "cosmogate_upstream_token_last_refresh_timestamp_seconds{kind=\"managed_identity\"} ",
        "cosmogate_upstream_token_refreshes_total{kind=\"managed_identity\"} 0",
        "cosmogate_upstream_token_refresh_failures_total{kind=\"managed_identity\",reason=\"config\"} 0",
        "cosmogate_upstream_token_refresh_failures_total{kind=\"managed_identity\",reason=\"rejected\"} 0",
        "cosmogate_upstream_token_refresh_failures_total{kind=\"managed_identity\",reason=\"transient\"} 0",
    ] {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }
    let expires_in = sample(&metrics, "cosmogate_upstream_token_expires_in_seconds{");
    assert!(
        expires_in > 3000.0 && expires_in <= 3600.0,
        "the rig's one-hour token: {expires_in}"
    );
    assert!(
        !metrics.contains("cosmogate_otlp_spans_dropped_total{"),
        "no export series while export is off"
    );
    let counted: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("cosmogate_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, audit.len() as u64, "metrics and audit agree");
    let denied = "action=\"items/create\",decision=\"deny\",status=\"403\"";
    assert!(
        metrics.contains(denied),
        "the denial is counted:\n{metrics}"
    );
    let audit_text = std::fs::read_to_string(&stack.audit_path).expect("audit");
    assert!(!metrics.contains("sig="), "no credential in metrics");
    assert!(!audit_text.is_empty());

    let data = stack.https_client().expect("client");
    let on_data_port = data
        .get(format!("{}metrics", stack.gateway_url))
        .send()
        .await;
    let status = on_data_port.expect("response").status();
    assert_eq!(status, 401, "metrics are not served on the data port");

    let _ = stop.send(());
    served.await.expect("join").expect("served");
}

/// A gateway exporting spans to `collector`, with `[telemetry.otlp]` lines `settings` and
/// `extra` configuration appended, serving an admin listener.
struct Traced {
    stack: Stack,
    admin_url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<(), cosmogate_server::StartupError>>,
}

async fn traced(collector: &str, settings: &str, extra: &str) -> Traced {
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.otlp_endpoint = Some(collector.to_owned());
    options.otlp_settings = settings.to_owned();
    let mut stack = Stack::prepare(&options)
        .await
        .expect("the local stack starts");
    let mut config = std::fs::read_to_string(&stack.config_path).expect("config");
    config.push_str(extra);
    std::fs::write(&stack.config_path, config).expect("config");
    let loaded = cosmogate_server::Config::load(&stack.config_path).expect("config");
    let gateway = cosmogate_server::Gateway::build(loaded)
        .await
        .expect("gateway");
    let listener = gateway.bind().await.expect("data listener");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("admin");
    let admin_url = format!("http://{}", admin.local_addr().expect("address"));
    stack.gateway_url = format!("https://{}/", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gateway.serve_with_admin(listener, Some(admin), async {
        let _ = stopped.await;
    }));
    Traced {
        stack,
        admin_url,
        stop,
        served,
    }
}

impl Traced {
    /// Sends `GET <path>` with `token` and the client span `traceparent`.
    async fn get(&self, token: &str, path: &str, traceparent: &str) -> u16 {
        let client = self.stack.https_client().expect("client");
        let response = client
            .get(format!("{}{path}", self.stack.gateway_url))
            .header("authorization", format!("type=aad&ver=1.0&sig={token}"))
            .header("traceparent", traceparent)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("cosmogate answers");
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        status
    }

    async fn metrics(&self) -> String {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}/metrics", self.admin_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Stops the gateway; it must stop whatever the collector does.
    async fn stop(self) -> Stack {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(90), self.served).await;
        stopped
            .expect("the gateway stops")
            .expect("join")
            .expect("served");
        self.stack
    }
}

fn client_span(i: usize) -> (String, String) {
    (
        format!("{:032x}", 0xc05_0000 + i),
        format!("{:016x}", 0xa99 + i),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_exports_one_span_joined_with_the_client_and_cosmos() {
    let collector = OtlpReceiver::start(CollectorMode::Accept)
        .await
        .expect("collector");
    // An account document larger than this cannot be rewritten: an upstream failure (502).
    let limits = "\n[limits]\nmax_account_document_bytes = 16\n";
    let traced = traced(
        &collector.endpoint,
        "service_name = \"cosmogate-e2e\"",
        limits,
    )
    .await;
    let stack = &traced.stack;
    let writer = stack
        .idp
        .token("app-writer", "writer-secret")
        .await
        .expect("token");
    let reader = stack
        .idp
        .token("app-reader", "reader-secret")
        .await
        .expect("token");
    let forged = format!("{}AAAAAAAA", &writer[..writer.len() - 8]);
    let cases = [
        ("allowed", &writer, "dbs/shop/colls/orders", 200),
        ("denied", &reader, "dbs/shop/colls/payroll", 403),
        ("unauthenticated", &forged, "dbs/shop/colls/orders", 401),
        ("upstream failure", &writer, "", 502),
    ];
    for (i, (what, token, path, status)) in cases.iter().enumerate() {
        let (trace, parent) = client_span(i);
        let traceparent = format!("00-{trace}-{parent}-01");
        assert_eq!(
            traced.get(token, path, &traceparent).await,
            *status,
            "{what}"
        );
    }
    let audit = stack.audit().await;
    assert_eq!(audit.len(), cases.len());
    let stack = traced.stop().await;

    let spans = collector
        .wait_for(cases.len(), Duration::from_secs(30))
        .await;
    assert_eq!(spans.len(), cases.len(), "one span per request: {spans:#?}");
    let upstream = stack.cosmos.requests();
    for (i, (what, _, _, status)) in cases.iter().enumerate() {
        let (trace, parent) = client_span(i);
        let span = spans
            .iter()
            .find(|span| span.trace_id == trace)
            .unwrap_or_else(|| panic!("{what}: no span in the client's trace"));
        let record = audit
            .iter()
            .find(|record| record["trace_id"] == trace.as_str())
            .unwrap_or_else(|| panic!("{what}: no audit record"));
        assert_eq!(
            span.parent_span_id, parent,
            "{what}: the client's span is the parent"
        );
        assert_eq!(span.kind, 2, "{what}: a server span");
        assert_eq!(span.resource["service.name"], "cosmogate-e2e");
        assert_eq!(
            span.attributes["http.response.status_code"], *status,
            "{what}"
        );
        for (attribute, field) in [
            ("cosmogate.decision", "decision"),
            ("cosmogate.reason", "reason"),
            ("cosmogate.activity_id", "activity_id"),
            ("cosmogate.request_id", "request_id"),
        ] {
            assert_eq!(span.text(attribute), record[field], "{what}: {attribute}");
        }
        let principal = &record["principal"];
        if principal.is_object() {
            assert_eq!(span.text("cosmogate.principal.issuer"), principal["iss"]);
            assert_eq!(span.text("cosmogate.principal.subject"), principal["sub"]);
        } else {
            assert!(!span.attributes.contains_key("cosmogate.principal.subject"));
        }
        let sent = format!("00-{trace}-{}-01", span.span_id);
        let forwarded: Vec<_> = upstream
            .iter()
            .filter(|request| {
                let header = request["headers"]["traceparent"]
                    .as_str()
                    .unwrap_or_default();
                header.contains(trace.as_str())
            })
            .collect();
        if record["upstream_status"].is_null() {
            assert!(forwarded.is_empty(), "{what}: never reached Cosmos DB");
        } else {
            assert_eq!(forwarded.len(), 1, "{what}");
            assert_eq!(forwarded[0]["headers"]["traceparent"], sent, "{what}");
            assert_eq!(
                forwarded[0]["headers"]["x-ms-activity-id"],
                record["activity_id"]
            );
        }
    }
    let by_case = |i: usize| {
        let (trace, _) = client_span(i);
        spans
            .iter()
            .find(|span| span.trace_id == trace)
            .expect("span")
    };
    let allowed = by_case(0);
    assert_eq!(allowed.name, "cosmogate read_container");
    assert_eq!(allowed.text("db.namespace"), "shop");
    assert_eq!(allowed.text("db.collection.name"), "orders");
    assert_eq!(allowed.text("cosmogate.resource_type"), "colls");
    assert_eq!(
        allowed.attributes["cosmogate.data_actions"][0],
        "readMetadata"
    );
    assert_eq!(allowed.status.0, 0);
    let denied = by_case(1);
    assert_eq!(denied.text("db.collection.name"), "payroll");
    assert_eq!(denied.text("cosmogate.decision"), "deny");
    let failed = by_case(3);
    assert_eq!(
        failed.text("cosmogate.reason"),
        "account_document_unreadable"
    );
    assert_eq!(failed.status.0, 2, "a gateway failure is an error span");
}

/// Every span of `requests` is accounted for: exported, dropped, or still waiting.
fn accounted(metrics: &str) -> (f64, f64, f64, f64) {
    (
        sample(metrics, "cosmogate_otlp_spans_exported_total "),
        sample(
            metrics,
            "cosmogate_otlp_spans_dropped_total{reason=\"queue_full\"}",
        ),
        sample(
            metrics,
            "cosmogate_otlp_spans_dropped_total{reason=\"export_failed\"}",
        ),
        sample(metrics, "cosmogate_otlp_spans_queued "),
    )
}

async fn requests_despite(collector: &str, timeout_seconds: u64) -> Traced {
    let settings = format!("queue_size = 2\ntimeout_seconds = {timeout_seconds}");
    let traced = traced(collector, &settings, "").await;
    let token = traced
        .stack
        .idp
        .token("app-writer", "writer-secret")
        .await
        .expect("token");
    for i in 0..REQUESTS {
        let (trace, parent) = client_span(i);
        let traceparent = format!("00-{trace}-{parent}-01");
        let status = traced
            .get(&token, "dbs/shop/colls/orders", &traceparent)
            .await;
        assert_eq!(
            status, 200,
            "request {i} is served whatever the collector does"
        );
    }
    assert_eq!(traced.stack.audit().await.len(), REQUESTS);
    traced
}

const REQUESTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_hangs_costs_spans_not_requests() {
    let collector = OtlpReceiver::start(CollectorMode::Hang)
        .await
        .expect("collector");
    let traced = requests_despite(&collector.endpoint, 30).await;
    let (exported, queue_full, failed, queued) = accounted(&traced.metrics().await);
    assert_eq!(exported, 0.0);
    assert!(
        queue_full >= 1.0,
        "spans beyond the queue are dropped and counted"
    );
    assert_eq!(exported + queue_full + failed + queued, REQUESTS as f64);
    traced.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_refuses_costs_spans_not_requests() {
    let refusing = RefusingPort::new().expect("a refused port");
    let collector = refusing.url();
    let traced = requests_despite(&collector, 1).await;
    let mut metrics = traced.metrics().await;
    for _ in 0..300 {
        let (_, queue_full, failed, _) = accounted(&metrics);
        if queue_full + failed == REQUESTS as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        metrics = traced.metrics().await;
    }
    let (exported, queue_full, failed, queued) = accounted(&metrics);
    assert_eq!((exported, queued), (0.0, 0.0), "{metrics}");
    assert!(failed >= 1.0, "failed exports are counted: {metrics}");
    assert_eq!(queue_full + failed, REQUESTS as f64, "{metrics}");
    traced.stop().await;
}
