//! Series read at scrape time from cosmogate's own upstream credential and from trace export.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::UNIX_EPOCH;

use cosmogate_upstream::CredentialStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::otel::ExportStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

type Seconds = Gauge<f64, AtomicU64>;

/// A counter family advanced to totals kept elsewhere, so it stays a true counter.
#[derive(Debug)]
struct Totals<L> {
    family: Family<L, Counter>,
    seen: Mutex<HashMap<L, u64>>,
}

impl<L: Clone + Hash + Eq + EncodeLabelSet + Debug + Send + Sync + 'static> Totals<L> {
    fn new() -> Self {
        Totals {
            family: Family::default(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn set(&self, labels: L, total: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let before = seen.insert(labels.clone(), total).unwrap_or(0);
        let counter = self.family.get_or_create(&labels);
        if total > before {
            counter.inc_by(total - before);
        }
    }
}

/// The upstream credential's series and trace export's.
#[derive(Debug)]
pub(super) struct Series {
    credential: Family<KindLabels, Gauge>,
    token_age: Family<KindLabels, Seconds>,
    token_expires_in: Family<KindLabels, Seconds>,
    token_obtained: Family<KindLabels, Seconds>,
    refreshes: Totals<KindLabels>,
    refresh_failures: Totals<FailureLabels>,
    spans_exported: Counter,
    exported_seen: AtomicU64,
    spans_dropped: Totals<DropLabels>,
    spans_queued: Gauge,
}

impl Series {
    pub(super) fn register(registry: &mut Registry) -> Series {
        let series = Series {
            credential: Family::default(),
            token_age: Family::default(),
            token_expires_in: Family::default(),
            token_obtained: Family::default(),
            refreshes: Totals::new(),
            refresh_failures: Totals::new(),
            spans_exported: Counter::default(),
            exported_seen: AtomicU64::new(0),
            spans_dropped: Totals::new(),
            spans_queued: Gauge::default(),
        };
        registry.register(
            "upstream_credential",
            "1 for the kind of credential cosmogate uses towards Cosmos DB",
            series.credential.clone(),
        );
        registry.register(
            "upstream_token_age_seconds",
            "Seconds since the current upstream token was obtained",
            series.token_age.clone(),
        );
        registry.register(
            "upstream_token_expires_in_seconds",
            "Seconds until the current upstream token expires",
            series.token_expires_in.clone(),
        );
        registry.register(
            "upstream_token_last_refresh_timestamp_seconds",
            "Unix time the current upstream token was obtained (start-up or last refresh)",
            series.token_obtained.clone(),
        );
        registry.register(
            "upstream_token_refreshes",
            "Background upstream token requests since start",
            series.refreshes.family.clone(),
        );
        registry.register(
            "upstream_token_refresh_failures",
            "Failed background upstream token requests since start, by reason",
            series.refresh_failures.family.clone(),
        );
        registry.register(
            "otlp_spans_exported",
            "Spans the OTLP collector accepted",
            series.spans_exported.clone(),
        );
        registry.register(
            "otlp_spans_dropped",
            "Spans not exported: queue full, or the export failed or timed out",
            series.spans_dropped.family.clone(),
        );
        registry.register(
            "otlp_spans_queued",
            "Ended spans waiting for export",
            series.spans_queued.clone(),
        );
        series
    }

    pub(super) fn update(&self, credential: &CredentialStatus, export: Option<&ExportStats>) {
        self.update_credential(credential);
        if let Some(export) = export {
            super::catch_up(&self.spans_exported, &self.exported_seen, export.exported);
            for (reason, total) in [
                ("queue_full", export.dropped_queue_full),
                ("export_failed", export.dropped_export_failed),
            ] {
                self.spans_dropped.set(DropLabels { reason }, total);
            }
            self.spans_queued
                .set(i64::try_from(export.queued).unwrap_or(i64::MAX));
        }
    }

    fn update_credential(&self, status: &CredentialStatus) {
        let kind = KindLabels { kind: status.kind };
        self.credential.get_or_create(&kind).set(1);
        let Some(token) = &status.token else {
            return;
        };
        self.token_age
            .get_or_create(&kind)
            .set(token.age.as_secs_f64());
        self.token_expires_in
            .get_or_create(&kind)
            .set(token.expires_in.as_secs_f64());
        let obtained = token
            .obtained_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.token_obtained
            .get_or_create(&kind)
            .set(obtained.as_secs_f64());
        self.refreshes.set(kind.clone(), token.refresh_attempts);
        for (reason, total) in token.refresh_failures {
            let labels = FailureLabels {
                kind: status.kind,
                reason,
            };
            self.refresh_failures.set(labels, total);
        }
    }
}
