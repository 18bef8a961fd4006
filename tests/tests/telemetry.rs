//! The admin listener: liveness, readiness and metrics that agree with the audit stream.

use cosmogate_e2e::{Sdk, Stack, StackOptions, UpstreamAuth, run_app};
use tokio::net::TcpListener;

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
    ] {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }
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
