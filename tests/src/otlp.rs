//! A loopback OTLP/HTTP collector: decodes the real OTLP protobuf export requests cosmogate
//! sends to `POST /v1/traces` and keeps every span, and every request body as received, so
//! tests can check what was exported and search it for secrets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

/// How the collector answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorMode {
    /// Accepts every export.
    Accept,
    /// Reads the request and never answers.
    Hang,
}

/// One exported span, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// Lowercase hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// The OTLP `SpanKind` number (2 is server).
    pub kind: i32,
    /// The span's attributes as JSON values.
    pub attributes: Map<String, Value>,
    /// The OTLP status code (0 unset, 1 ok, 2 error) and message.
    pub status: (i32, String),
    /// The resource's attributes.
    pub resource: Map<String, Value>,
}

impl ReceivedSpan {
    /// An attribute as a string, or `""`.
    pub fn text(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    bodies: Vec<Vec<u8>>,
    headers: Vec<String>,
}

/// A running collector on `http://127.0.0.1:<port>`; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    /// The base URL to configure as `telemetry.otlp.endpoint`.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Binds a free loopback port and serves `POST /v1/traces`.
    pub async fn start(mode: CollectorMode) -> anyhow::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Received::default()));
        let state = Arc::clone(&received);
        let app = Router::new().route(
            "/v1/traces",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let state = Arc::clone(&state);
                async move {
                    let outcome = record(&state, &headers, &body);
                    if mode == CollectorMode::Hang {
                        std::future::pending::<()>().await;
                    }
                    outcome
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(OtlpReceiver {
            endpoint,
            received,
            task,
        })
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().expect("received").spans.clone()
    }

    /// Every export request so far, headers and body as received (the body read as UTF-8
    /// where it is), for searching.
    pub fn raw_text(&self) -> String {
        let received = self.received.lock().expect("received");
        let mut text = received.headers.join("\n");
        for body in &received.bodies {
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(body));
        }
        text
    }

    /// Waits (at most `limit`) until `count` spans have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.spans().len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.spans()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(
    state: &Mutex<Received>,
    headers: &axum::http::HeaderMap,
    body: &Bytes,
) -> (StatusCode, Vec<u8>) {
    let mut received = state.lock().expect("received");
    received.bodies.push(body.to_vec());
    received.headers.push(format!("{headers:?}"));
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let status = span.status.unwrap_or_default();
                received.spans.push(ReceivedSpan {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    status: (status.code, status.message),
                    resource: resource.clone(),
                });
            }
        }
    }
    let response = ExportTraceServiceResponse::default().encode_to_vec();
    (StatusCode::OK, response)
}

fn attributes(pairs: &[KeyValue]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), json(pair.value.as_ref())))
        .collect()
}

fn json(value: Option<&AnyValue>) -> Value {
    use any_value::Value as V;
    match value.and_then(|value| value.value.as_ref()) {
        Some(V::StringValue(text)) => Value::from(text.as_str()),
        Some(V::BoolValue(flag)) => Value::from(*flag),
        Some(V::IntValue(number)) => Value::from(*number),
        Some(V::DoubleValue(number)) => Value::from(*number),
        Some(V::ArrayValue(array)) => array.values.iter().map(|v| json(Some(v))).collect(),
        Some(V::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(V::BytesValue(bytes)) => Value::from(hex::encode(bytes)),
        Some(V::StringValueStrindex(index)) => Value::from(format!("strindex:{index}")),
        None => Value::Null,
    }
}
