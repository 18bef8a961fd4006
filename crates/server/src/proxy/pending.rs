//! The audit record of a request in flight, and the guarantee that it is written exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use http::Response;
use http::header::HeaderValue;
use http_body_util::BodyExt;

use crate::audit::{self, AuditRecord};
use crate::body::{Finish, ProxyBody};
use crate::gateway::Shared;
use crate::otel::RequestSpan;

use super::REQUEST_ID;

/// The audit record of a request in flight. It is written exactly once: by the response
/// body when it ends, or here on drop when the request is abandoned before a response exists
/// (the client reset the stream while cosmogate waited on Cosmos DB).
pub(super) struct Pending {
    record: Option<AuditRecord>,
    sink: crate::audit::AuditSink,
    metrics: Arc<crate::metrics::Metrics>,
    started: Instant,
    bytes_in: Arc<AtomicU64>,
    span: RequestSpan,
}

impl Pending {
    pub(super) fn new(
        shared: &Shared,
        record: AuditRecord,
        started: Instant,
        bytes_in: Arc<AtomicU64>,
        span: RequestSpan,
    ) -> Self {
        Pending {
            record: Some(record),
            sink: shared.audit.clone(),
            metrics: Arc::clone(&shared.metrics),
            started,
            bytes_in,
            span,
        }
    }

    pub(super) fn record(&mut self) -> &mut AuditRecord {
        self.record
            .as_mut()
            .expect("the audit record must be present until the request finishes")
    }

    /// Hands the record to the response body, which writes it when it ends.
    pub(super) fn finish(mut self, mut response: Response<ProxyBody>) -> Response<ProxyBody> {
        let Some(mut record) = self.record.take() else {
            return response;
        };
        record.status = response.status().as_u16();
        if let Ok(value) = HeaderValue::from_str(&record.request_id) {
            response.headers_mut().insert(&REQUEST_ID, value);
        }
        let (sink, metrics) = (self.sink.clone(), Arc::clone(&self.metrics));
        let (started, bytes_in) = (self.started, Arc::clone(&self.bytes_in));
        let span = self.span.clone();
        let (parts, body) = response.into_parts();
        let body = Finish::new(body, move |completed, bytes_out| {
            record.completed = completed;
            record.bytes_out = bytes_out;
            record.bytes_in = bytes_in.load(Ordering::Relaxed);
            record.latency_ms = audit::millis(started.elapsed());
            metrics.observe(&record);
            span.end(&record);
            sink.record(&record);
        });
        Response::from_parts(parts, body.boxed_unsync())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        // 499: the client closed the request before a response was ready.
        record.status = CLIENT_CLOSED;
        record.completed = false;
        record.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        record.latency_ms = audit::millis(self.started.elapsed());
        self.metrics.observe(&record);
        self.span.end(&record);
        self.sink.record(&record);
    }
}

/// The status recorded for a request its client abandoned before the response.
pub(super) const CLIENT_CLOSED: u16 = 499;
