use std::future::Future;

use http::header::HeaderValue;
use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::SpanData;

use super::*;
use crate::audit::{AuditPrincipal, AuditRecord, SCHEMA};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Keeps every exported span.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Recorder {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = Arc::clone(&self.0);
        async move {
            spans.lock().expect("spans").extend(batch);
            Ok(())
        }
    }
}

fn telemetry(extra: &str) -> (Telemetry, Recorder) {
    let otlp: OtlpConfig =
        toml::from_str(&format!("endpoint = \"http://127.0.0.1:1\"\n{extra}")).expect("otlp table");
    let recorder = Recorder::default();
    (Telemetry::exporting(recorder.clone(), &otlp), recorder)
}

fn exported(telemetry: &Telemetry, recorder: &Recorder) -> Vec<SpanData> {
    let export = telemetry.export.as_ref().expect("exporting");
    export.provider.force_flush().expect("flush");
    recorder.0.lock().expect("spans").clone()
}

fn client(flags: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-{flags}");
    headers.insert(
        "traceparent",
        HeaderValue::from_str(&value).expect("header"),
    );
    headers
}

/// A completed, allowed point read with a request charge (also used by the metrics tests).
pub(crate) fn record(status: u16, reason: &'static str) -> AuditRecord {
    AuditRecord {
        schema: SCHEMA,
        time: "2026-01-01T00:00:00.000Z".to_owned(),
        request_id: "req-1".to_owned(),
        trace_id: CLIENT_TRACE.to_owned(),
        activity_id: "8b5a3c9e-0f7d-4d0b-9a3e-0d1c2b3a4f5e".to_owned(),
        client_address: "127.0.0.1:50000".into(),
        forwarded_for: None,
        user_agent: Some("sdk/1".to_owned()),
        principal: Some(std::sync::Arc::new(
            AuditPrincipal {
                iss: "https://idp.example".to_owned(),
                sub: "app-writer".to_owned(),
                oid: None,
                tid: None,
                client_id: None,
                token_fingerprint: "fp".to_owned(),
            }
            .into(),
        )),
        method: "GET".to_owned(),
        path: "/dbs/shop/colls/orders/docs/1".to_owned(),
        operation: Some("read_item"),
        actions: vec!["items/read"],
        database: Some("shop".into()),
        container: Some("orders".into()),
        item_id: Some("1".to_owned()),
        partition_key: Some("[\"t1\"]".to_owned()),
        decision: "allow",
        reason,
        rule: Some("orders-writer".to_owned()),
        policy_version: Some("abc".into()),
        roles: vec!["orders-writer".to_owned()],
        shadow: Vec::new(),
        status,
        substatus: Some("0".to_owned()),
        request_charge: Some(1.5),
        bytes_in: 0,
        bytes_out: 10,
        upstream_status: Some(status),
        upstream_latency_ms: Some(1.0),
        upstream_region: None,
        completed: true,
        latency_ms: 2.0,
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[test]
fn the_span_is_the_client_spans_child_and_the_parent_named_to_cosmos() {
    let (telemetry, recorder) = telemetry("");
    let (trace, span) = telemetry.start(&client("01"));
    assert_eq!(trace.trace_id_hex(), CLIENT_TRACE);
    assert!(trace.sampled);
    let mut outgoing = client("01");
    trace.propagate(&mut outgoing);
    let sent = outgoing["traceparent"].to_str().expect("ascii").to_owned();

    span.end(&record(200, "allowed"));
    span.end(&record(500, "twice"));
    let spans = exported(&telemetry, &recorder);
    assert_eq!(spans.len(), 1, "one span per request, ended once");
    let exported = &spans[0];
    let own = exported.span_context.span_id().to_string();
    assert_eq!(sent, format!("00-{CLIENT_TRACE}-{own}-01"));
    assert_eq!(exported.span_context.trace_id().to_string(), CLIENT_TRACE);
    assert_eq!(exported.parent_span_id.to_string(), CLIENT_SPAN);
    assert!(exported.parent_span_is_remote);
    assert_eq!(exported.span_kind, SpanKind::Server);
    assert_eq!(exported.name, "cosmogate read_item");
    assert_eq!(exported.status, Status::Unset);
    for (key, value) in [
        ("cosmogate.decision", Value::from("allow")),
        ("cosmogate.reason", Value::from("allowed")),
        ("cosmogate.rule", Value::from("orders-writer")),
        ("cosmogate.principal.subject", Value::from("app-writer")),
        ("db.collection.name", Value::from("orders")),
        ("http.response.status_code", Value::from(200)),
        ("azure.cosmosdb.operation.request_charge", Value::from(1.5)),
        ("client.address", Value::from("127.0.0.1")),
    ] {
        assert_eq!(attribute(exported, key), Some(value), "{key}");
    }
    for kv in &exported.attributes {
        let value = kv.value.as_str();
        assert!(!["[\"t1\"]", "1", "fp"].contains(&value.as_ref()), "{kv:?}");
        assert!(!kv.key.as_str().contains("partition"), "no partition key");
    }
}

#[test]
fn a_client_that_does_not_sample_gets_no_exported_span() {
    let (telemetry, recorder) = telemetry("");
    let (trace, span) = telemetry.start(&client("00"));
    assert!(!trace.sampled);
    assert_eq!(trace.trace_id_hex(), CLIENT_TRACE);
    span.end(&record(200, "allowed"));
    assert!(exported(&telemetry, &recorder).is_empty());
}

#[test]
fn a_request_without_a_trace_starts_a_sampled_root() {
    let (telemetry, recorder) = telemetry("");
    let (trace, span) = telemetry.start(&HeaderMap::new());
    assert!(trace.sampled);
    span.end(&record(502, "upstream_connect_failed"));
    let spans = exported(&telemetry, &recorder);
    assert_eq!(spans[0].parent_span_id, SpanId::INVALID);
    assert_eq!(spans[0].span_context.trace_id().to_bytes(), trace.trace_id);
    assert_eq!(
        spans[0].status,
        Status::error("upstream_connect_failed"),
        "a gateway failure is an error"
    );
}

#[test]
fn a_zero_sample_ratio_exports_no_new_trace_but_follows_the_client() {
    let (telemetry, recorder) = telemetry("sample_ratio = 0.0");
    let (root, span) = telemetry.start(&HeaderMap::new());
    assert!(!root.sampled);
    span.end(&record(200, "allowed"));
    let (child, span) = telemetry.start(&client("01"));
    assert!(child.sampled);
    span.end(&record(200, "allowed"));
    assert_eq!(exported(&telemetry, &recorder).len(), 1);
}

#[test]
fn without_export_the_trace_context_is_the_clients_and_spans_are_no_ops() {
    let telemetry = Telemetry::new(&TelemetryConfig::default()).expect("off");
    let (trace, span) = telemetry.start(&client("01"));
    assert_eq!(trace.trace_id_hex(), CLIENT_TRACE);
    span.end(&record(200, "allowed"));
    assert!(telemetry.stats().is_none());
}
