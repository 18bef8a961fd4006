//! OpenTelemetry traces: one server span per request, exported over OTLP/HTTP (protobuf) when
//! `[telemetry.otlp]` is configured, and nothing at all otherwise.
//!
//! The span starts when the request arrives, as the child of the client's span when it sent a
//! valid `traceparent`, and its id is the parent cosmogate names in the `traceparent` it sends
//! to Cosmos DB, so the three join in one trace. It ends when the request's audit record is
//! written and carries the record's operation, decision and outcome: never a token, a
//! signature, a key or the upstream credential, and neither the item id nor the partition key,
//! which may hold personal data.
//!
//! Export never blocks a request. Ended spans go through an admission gate to the SDK's batch
//! processor, which exports from a thread of its own with a bounded queue; what the gate turns
//! away and what the collector fails to take are counted (see `export`), and the exporter gives
//! up on a batch after the configured timeout.

mod config;
mod export;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cosmogate_protocol::Operation;
use http::HeaderMap;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
    SpanExporter,
};

use crate::audit::AuditRecord;
use crate::trace::{ClientParent, TraceContext};

pub use config::{OtlpConfig, TelemetryConfig};
pub(crate) use export::ExportStats;

/// The most spans sent in one export request.
const MAX_BATCH: usize = 512;

/// How long ended spans may wait before they are exported.
const EXPORT_DELAY: Duration = Duration::from_secs(2);

/// How long stopping the gateway waits for the last spans to be exported.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The environment variable meant to hold the collector headers is unusable. Its value is
    /// never part of the message.
    #[error("telemetry.otlp.headers_env: {name} {problem}")]
    Headers { name: String, problem: &'static str },
    /// The OTLP exporter refused its settings.
    #[error("the OTLP exporter could not be built")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Trace export for the whole process: on when configured, else a no-op.
#[derive(Debug)]
pub(crate) struct Telemetry {
    export: Option<Export>,
}

#[derive(Debug)]
struct Export {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    counters: Arc<export::Counters>,
}

impl Telemetry {
    /// Sets up export as configured. Spawns the SDK's export thread; needs no runtime.
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let Some(otlp) = &config.otlp else {
            return Ok(Telemetry { export: None });
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(otlp.traces_url())
            .with_timeout(otlp.timeout())
            .with_headers(otlp.headers()?)
            .build()
            .map_err(TelemetryError::Exporter)?;
        tracing::info!(otlp.endpoint = %otlp.traces_url(), "Exporting traces");
        Ok(Telemetry::exporting(exporter, otlp))
    }

    /// Export to `exporter` with the batching and sampling `otlp` asks for.
    fn exporting(exporter: impl SpanExporter + 'static, otlp: &OtlpConfig) -> Telemetry {
        let counters = Arc::new(export::Counters::default());
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(otlp.queue_size)
            .with_max_export_batch_size(MAX_BATCH.min(otlp.queue_size))
            .with_scheduled_delay(EXPORT_DELAY)
            .build();
        let processor =
            BatchSpanProcessor::new(export::Counted::new(exporter, Arc::clone(&counters)), batch);
        let resource = Resource::builder()
            .with_service_name(otlp.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(otlp.sample_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(export::Gate::new(
                processor,
                Arc::clone(&counters),
                otlp.queue_size,
            ))
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("cosmogate");
        Telemetry {
            export: Some(Export {
                provider,
                tracer,
                counters,
            }),
        }
    }

    /// The request's trace and, when exporting, its span: the child of the client's span,
    /// named as the parent of what Cosmos DB records.
    pub(crate) fn start(&self, headers: &HeaderMap) -> (TraceContext, RequestSpan) {
        let Some(export) = &self.export else {
            return (TraceContext::from_request(headers), RequestSpan(None));
        };
        let parent = match ClientParent::from_request(headers) {
            Some(client) => {
                let flags = match client.sampled {
                    true => TraceFlags::SAMPLED,
                    false => TraceFlags::default(),
                };
                let context = SpanContext::new(
                    TraceId::from_bytes(client.trace_id),
                    SpanId::from_bytes(client.span_id),
                    flags,
                    true,
                    TraceState::default(),
                );
                Context::new().with_remote_span_context(context)
            }
            None => Context::new(),
        };
        let span = export
            .tracer
            .span_builder("cosmogate")
            .with_kind(SpanKind::Server)
            .start_with_context(&export.tracer, &parent);
        let context = span.span_context();
        let trace = TraceContext {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        };
        let span = span
            .is_recording()
            .then(|| Arc::new(Mutex::new(Some(span))));
        (trace, RequestSpan(span))
    }

    /// Export counts since start, when exporting.
    pub(crate) fn stats(&self) -> Option<ExportStats> {
        self.export.as_ref().map(|export| export.counters.stats())
    }

    /// Exports what is still queued, waiting at most a few seconds for the collector.
    pub(crate) async fn shutdown(&self) {
        let Some(export) = &self.export else {
            return;
        };
        let provider = export.provider.clone();
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_WAIT))
                .await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::warn!("Trace export did not finish before shutdown");
        }
    }
}

/// The span of one request, when it is exported; cheap to clone, and every method is a no-op
/// for a request whose trace is not sampled or when export is off.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpan(Option<Arc<Mutex<Option<Span>>>>);

impl RequestSpan {
    /// Records what the classifier knows that the audit record does not: the resource type.
    pub(crate) fn note_operation(&self, operation: &Operation) {
        self.with_span(|span| {
            span.set_attribute(KeyValue::new(
                "cosmogate.resource_type",
                operation.resource_type.clone(),
            ));
        });
    }

    /// Ends the span with the request's outcome, from its finished audit record. Only the
    /// first call counts.
    pub(crate) fn end(&self, record: &AuditRecord) {
        let Some(slot) = &self.0 else {
            return;
        };
        let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut span) = taken else {
            return;
        };
        span.update_name(span_name(record));
        span.set_attributes(attributes(record));
        if record.status >= 500 {
            span.set_attribute(KeyValue::new("error.type", record.reason));
            span.set_status(Status::error(record.reason));
        }
        span.end();
    }

    fn with_span(&self, change: impl FnOnce(&mut Span)) {
        let Some(slot) = &self.0 else {
            return;
        };
        if let Some(span) = slot.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            change(span);
        }
    }
}

/// The operation when the request was classified, else its method: few distinct names.
fn span_name(record: &AuditRecord) -> String {
    match record.operation {
        Some(operation) => format!("cosmogate {operation}"),
        None => format!("cosmogate {}", record.method),
    }
}

/// The span's attributes: OpenTelemetry's HTTP and database conventions where they fit,
/// `cosmogate.*` for the decision.
fn attributes(record: &AuditRecord) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", record.method.clone()),
        KeyValue::new("http.response.status_code", i64::from(record.status)),
        KeyValue::new("http.request.body.size", to_i64(record.bytes_in)),
        KeyValue::new("http.response.body.size", to_i64(record.bytes_out)),
        KeyValue::new("db.system.name", "azure.cosmosdb"),
        KeyValue::new("cosmogate.request_id", record.request_id.clone()),
        KeyValue::new("cosmogate.activity_id", record.activity_id.clone()),
        KeyValue::new("cosmogate.decision", record.decision),
        KeyValue::new("cosmogate.reason", record.reason),
        KeyValue::new("cosmogate.completed", record.completed),
        KeyValue::new("cosmogate.data_actions", strings(&record.actions)),
    ];
    let mut add = |key: &'static str, value: Option<Value>| {
        if let Some(value) = value {
            attributes.push(KeyValue::new(key, value));
        }
    };
    let text = |value: &Option<String>| value.clone().map(Value::from);
    let peer: Option<SocketAddr> = record.client_address.parse().ok();
    add("client.address", peer.map(|p| p.ip().to_string().into()));
    add("client.port", peer.map(|p| i64::from(p.port()).into()));
    add("user_agent.original", text(&record.user_agent));
    add("db.operation.name", record.operation.map(Value::from));
    let shared = |value: &Option<Arc<str>>| value.as_deref().map(|v| Value::from(v.to_owned()));
    add("db.namespace", shared(&record.database));
    add("db.collection.name", shared(&record.container));
    add("cosmogate.rule", text(&record.rule));
    add(
        "cosmogate.policy_version",
        record
            .policy_version
            .as_deref()
            .map(|version| Value::from(version.to_owned())),
    );
    add(
        "azure.cosmosdb.response.sub_status_code",
        record
            .substatus
            .as_deref()
            .and_then(|text| text.parse::<i64>().ok())
            .map(Value::from),
    );
    add(
        "azure.cosmosdb.operation.request_charge",
        record.request_charge.map(Value::from),
    );
    add(
        "cosmogate.upstream.status_code",
        record.upstream_status.map(|s| i64::from(s).into()),
    );
    add("cosmogate.upstream.region", text(&record.upstream_region));
    if let Some(principal) = &record.principal {
        add(
            "cosmogate.principal.issuer",
            Some(principal.iss.clone().into()),
        );
        add(
            "cosmogate.principal.subject",
            Some(principal.sub.clone().into()),
        );
    }
    attributes
}

fn strings(values: &[&'static str]) -> Value {
    let values: Vec<StringValue> = values.iter().map(|v| StringValue::from(*v)).collect();
    Value::Array(Array::String(values))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests;
