//! Accounting around the SDK's batch processor: an admission gate in front of its queue and a
//! counting wrapper around the OTLP exporter behind it.
//!
//! The SDK drops spans when its queue is full but only says so once, in its own log. The gate
//! keeps the number of spans admitted and not yet through the exporter below the queue's
//! capacity, so the SDK's queue never overflows and every span that is turned away, or lost
//! because the collector failed, is counted here.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// What happened to the spans handed to the exporter, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExportStats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans turned away because the queue was full.
    pub dropped_queue_full: u64,
    /// Spans lost because their export failed or timed out.
    pub dropped_export_failed: u64,
    /// Spans admitted and not yet through the exporter.
    pub queued: u64,
}

/// The counters the gate and the exporter share.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    queued: AtomicU64,
    exported: AtomicU64,
    queue_full: AtomicU64,
    export_failed: AtomicU64,
    failing: AtomicBool,
}

impl Counters {
    pub(crate) fn stats(&self) -> ExportStats {
        ExportStats {
            exported: self.exported.load(Ordering::Relaxed),
            dropped_queue_full: self.queue_full.load(Ordering::Relaxed),
            dropped_export_failed: self.export_failed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// Admits an ended span to the inner processor while fewer than `capacity` are waiting;
/// otherwise counts it as dropped. Never blocks.
#[derive(Debug)]
pub(crate) struct Gate<P> {
    inner: P,
    counters: Arc<Counters>,
    capacity: u64,
}

impl<P> Gate<P> {
    pub(crate) fn new(inner: P, counters: Arc<Counters>, capacity: usize) -> Self {
        Gate {
            inner,
            counters,
            capacity: capacity as u64,
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for Gate<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let waiting = self.counters.queued.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.capacity {
            self.counters.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts each batch as exported or lost, releases its places in the gate, and logs when
/// export starts and stops failing (once each, not per batch).
#[derive(Debug)]
pub(crate) struct Counted<E> {
    inner: E,
    counters: Arc<Counters>,
}

impl<E> Counted<E> {
    pub(crate) fn new(inner: E, counters: Arc<Counters>) -> Self {
        Counted { inner, counters }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            let counters = &self.counters;
            counters.queued.fetch_sub(spans, Ordering::AcqRel);
            match &result {
                Ok(()) => {
                    counters.exported.fetch_add(spans, Ordering::Relaxed);
                    if counters.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("Span export recovered");
                    }
                }
                Err(err) => {
                    counters.export_failed.fetch_add(spans, Ordering::Relaxed);
                    if !counters.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %err, spans, "Span export failed, spans dropped");
                    }
                }
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkError;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
    use std::sync::Mutex;

    /// Holds every export until released, then succeeds or fails as told.
    #[derive(Debug, Clone, Default)]
    struct Held {
        release: Arc<Mutex<Option<bool>>>,
    }

    impl SpanExporter for Held {
        fn export(&self, _batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            let release = Arc::clone(&self.release);
            async move {
                loop {
                    let outcome = *release.lock().expect("lock");
                    match outcome {
                        Some(true) => return Ok(()),
                        Some(false) => return Err(OTelSdkError::InternalFailure("no".into())),
                        None => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        }
    }

    fn provider(exporter: Held, counters: &Arc<Counters>, capacity: usize) -> SdkTracerProvider {
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
            .with_max_export_batch_size(capacity)
            .with_scheduled_delay(Duration::from_millis(10))
            .build();
        let batch = BatchSpanProcessor::new(Counted::new(exporter, Arc::clone(counters)), config);
        SdkTracerProvider::builder()
            .with_span_processor(Gate::new(batch, Arc::clone(counters), capacity))
            .build()
    }

    fn eventually(check: impl Fn() -> bool) {
        for _ in 0..1000 {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("condition not reached in 10 s");
    }

    #[test]
    fn spans_beyond_the_queue_are_counted_not_waited_for() {
        let counters = Arc::new(Counters::default());
        let exporter = Held::default();
        let provider = provider(exporter.clone(), &counters, 4);
        let tracer = provider.tracer("test");
        for _ in 0..10 {
            tracer.start("request").end();
        }
        let stats = counters.stats();
        assert_eq!(stats.dropped_queue_full, 6, "{stats:?}");
        assert_eq!(stats.queued, 4);

        *exporter.release.lock().expect("lock") = Some(true);
        eventually(|| counters.stats().exported == 4);
        assert_eq!(counters.stats().queued, 0, "the places are free again");
        tracer.start("request").end();
        eventually(|| counters.stats().exported == 5);
        let _ = provider.shutdown();
    }

    #[test]
    fn spans_of_a_failed_export_are_counted_as_lost() {
        let counters = Arc::new(Counters::default());
        let exporter = Held::default();
        *exporter.release.lock().expect("lock") = Some(false);
        let provider = provider(exporter, &counters, 4);
        let tracer = provider.tracer("test");
        for _ in 0..3 {
            tracer.start("request").end();
        }
        eventually(|| counters.stats().dropped_export_failed == 3);
        let stats = counters.stats();
        assert_eq!((stats.exported, stats.queued), (0, 0));
        let _ = provider.shutdown();
    }
}
