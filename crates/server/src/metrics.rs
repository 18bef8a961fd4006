//! Prometheus metrics, served on the admin listener.
//!
//! Request metrics are updated as each audit record is written, so metrics and audit always
//! agree. Key-set and token state is read from the validator and the credential at scrape
//! time, and so are trace export's counts.

mod upstream;

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit::{AuditRecord, PrincipalView};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    action: &'static str,
    decision: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChargeLabels {
    principal: PrincipalLabel,
    container: ContainerLabel,
}

/// `<issuer> <subject>`, written out only when the series are rendered: counting a charge
/// shares the record's principal instead of formatting a key.
///
/// Two principals are the same series exactly when that text is the same (an issuer may hold a
/// space, so `a b` + `c` and `a` + `b c` are one series, as they would be with the text as key).
#[derive(Clone, Debug)]
struct PrincipalLabel(Arc<PrincipalView>);

impl PrincipalLabel {
    /// The bytes of the label text, without building it.
    fn text(&self) -> impl Iterator<Item = u8> + '_ {
        let principal = &*self.0;
        principal
            .iss
            .bytes()
            .chain(std::iter::once(b' '))
            .chain(principal.sub.bytes())
    }
}

impl PartialEq for PrincipalLabel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.text().eq(other.text())
    }
}

impl Eq for PrincipalLabel {}

impl Hash for PrincipalLabel {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // FNV-1a over the label text, so equal texts hash alike however they split into issuer
        // and subject (a `Hasher` need not give split writes the same result).
        let fnv = self.text().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        state.write_u64(fnv);
    }
}

impl EncodeLabelValue for PrincipalLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        write!(encoder, "{} {}", self.0.iss, self.0.sub)
    }
}

/// `<database>/<container>`, `<database>` or `/`, written out when rendered.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ContainerLabel {
    database: Option<Arc<str>>,
    container: Option<Arc<str>>,
}

impl EncodeLabelValue for ContainerLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        match (&self.database, &self.container) {
            (Some(db), Some(container)) => write!(encoder, "{db}/{container}"),
            (Some(db), None) => encoder.write_str(db),
            _ => encoder.write_str("/"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

/// Every series cosmogate exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    upstream_latency: Histogram,
    request_charge: Family<ChargeLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    audit_dropped: Counter,
    policy_reloads: Counter,
    policy_reloads_refused: Counter,
    jwks_fetches: Family<IssuerLabels, Gauge>,
    jwks_fetch_failures: Family<IssuerLabels, Gauge>,
    jwks_stale_seconds: Family<IssuerLabels, Gauge>,
    jwks_usable: Family<IssuerLabels, Gauge>,
    token_cache_hits: Gauge,
    token_cache_misses: Gauge,
    signature_verifications: Gauge,
    token_cache_deferred: Gauge,
    upstream: upstream::Series,
    reloads_seen: AtomicU64,
    refused_seen: AtomicU64,
    dropped_seen: AtomicU64,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cosmogate");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(latency_histogram);
        let upstream_latency = latency_histogram();
        let request_charge = Family::default();
        let audit_dropped = Counter::default();
        let policy_reloads = Counter::default();
        let policy_reloads_refused = Counter::default();
        let [
            jwks_fetches,
            jwks_fetch_failures,
            jwks_stale_seconds,
            jwks_usable,
        ] = std::array::from_fn(|_| Family::<IssuerLabels, Gauge>::default());
        registry.register(
            "requests",
            "Requests by data action, decision and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of its response",
            latency.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time until Cosmos DB's response headers",
            upstream_latency.clone(),
        );
        registry.register(
            "request_charge",
            "Request units charged by Cosmos DB, by principal and container",
            request_charge.clone(),
        );
        registry.register(
            "audit_dropped",
            "Audit records lost: the audit queue was full, or a write to the audit output failed",
            audit_dropped.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy files swapped in after a change",
            policy_reloads.clone(),
        );
        registry.register(
            "policy_reloads_refused",
            "Changed policy files refused as invalid",
            policy_reloads_refused.clone(),
        );
        registry.register(
            "jwks_fetches",
            "Key set fetches per issuer since start",
            jwks_fetches.clone(),
        );
        registry.register(
            "jwks_fetch_failures",
            "Failed key set fetches per issuer since start",
            jwks_fetch_failures.clone(),
        );
        registry.register(
            "jwks_stale_seconds",
            "Seconds an issuer's key set is past its lifetime",
            jwks_stale_seconds.clone(),
        );
        registry.register(
            "jwks_usable",
            "1 while an issuer's keys may be used",
            jwks_usable.clone(),
        );
        let [
            token_cache_hits,
            token_cache_misses,
            signature_verifications,
            token_cache_deferred,
        ] = std::array::from_fn(|_| Gauge::default());
        registry.register(
            "token_cache_hits",
            "Tokens answered from the verified-token cache since start",
            token_cache_hits.clone(),
        );
        registry.register(
            "token_cache_misses",
            "Tokens fully validated since start",
            token_cache_misses.clone(),
        );
        registry.register(
            "signature_verifications",
            "Token signatures verified since start",
            signature_verifications.clone(),
        );
        registry.register(
            "token_cache_deferred",
            "Verified tokens not cached since start: the cache was nearly full and they were \
             seen for the first time",
            token_cache_deferred.clone(),
        );
        let upstream = upstream::Series::register(&mut registry);
        Metrics {
            registry,
            requests,
            latency,
            upstream_latency,
            request_charge,
            audit_dropped,
            policy_reloads,
            policy_reloads_refused,
            jwks_fetches,
            jwks_fetch_failures,
            jwks_stale_seconds,
            jwks_usable,
            token_cache_hits,
            token_cache_misses,
            signature_verifications,
            token_cache_deferred,
            upstream,
            reloads_seen: AtomicU64::new(0),
            refused_seen: AtomicU64::new(0),
            dropped_seen: AtomicU64::new(0),
        }
    }

    /// Counts one finished request, from its audit record.
    pub fn observe(&self, record: &AuditRecord) {
        let action = record.actions.first().copied().unwrap_or("none");
        // The labels borrow static names: counting a request allocates nothing.
        self.requests
            .get_or_create(&RequestLabels {
                action,
                decision: record.decision,
                status: record.status,
            })
            .inc();
        let operation = record.operation.unwrap_or("none");
        self.latency
            .get_or_create(&OperationLabels { operation })
            .observe(record.latency_ms / 1000.0);
        if let Some(upstream) = record.upstream_latency_ms {
            self.upstream_latency.observe(upstream / 1000.0);
        }
        if let (Some(charge), Some(principal)) = (record.request_charge, &record.principal) {
            let container = ContainerLabel {
                database: record.database.clone(),
                container: record
                    .database
                    .as_ref()
                    .and_then(|_| record.container.clone()),
            };
            self.request_charge
                .get_or_create(&ChargeLabels {
                    principal: PrincipalLabel(Arc::clone(principal)),
                    container,
                })
                .inc_by(charge);
        }
    }

    /// Brings the state-derived series up to date and renders the text exposition format.
    pub fn render(&self, state: &State) -> String {
        for status in &state.keys {
            let labels = IssuerLabels {
                issuer: status.issuer.clone(),
            };
            let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            self.jwks_fetches
                .get_or_create(&labels)
                .set(as_i64(status.fetches));
            self.jwks_fetch_failures
                .get_or_create(&labels)
                .set(as_i64(status.fetch_failures));
            self.jwks_stale_seconds
                .get_or_create(&labels)
                .set(as_i64(status.stale_seconds));
            self.jwks_usable
                .get_or_create(&labels)
                .set(i64::from(status.usable));
        }
        let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.token_cache_hits
            .set(as_i64(state.tokens.token_cache_hits));
        self.token_cache_misses
            .set(as_i64(state.tokens.token_cache_misses));
        self.signature_verifications
            .set(as_i64(state.tokens.signature_verifications));
        self.token_cache_deferred
            .set(as_i64(state.tokens.token_cache_deferred));
        catch_up(&self.policy_reloads, &self.reloads_seen, state.reloads.0);
        catch_up(
            &self.policy_reloads_refused,
            &self.refused_seen,
            state.reloads.1,
        );
        catch_up(&self.audit_dropped, &self.dropped_seen, state.audit_dropped);
        self.upstream
            .update(&state.credential, state.export.as_ref());
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("Metrics could not be encoded");
        }
        text
    }
}

/// What the state-derived series are read from at scrape time.
#[derive(Debug)]
pub(crate) struct State {
    pub keys: Vec<cosmogate_validator::KeyStatus>,
    pub tokens: cosmogate_validator::ValidatorStats,
    /// Policy reloads and refused reloads.
    pub reloads: (u64, u64),
    pub audit_dropped: u64,
    pub credential: cosmogate_upstream::CredentialStatus,
    /// Trace export's counts, when it is on.
    pub export: Option<crate::otel::ExportStats>,
}

/// Advances a counter to a total kept elsewhere.
fn catch_up(counter: &Counter, seen: &AtomicU64, total: u64) {
    let before = seen.swap(total, Ordering::Relaxed);
    if total > before {
        counter.inc_by(total - before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditPrincipal;

    fn charge_lines(metrics: &Metrics) -> Vec<String> {
        let mut text = String::new();
        encode(&mut text, &metrics.registry).expect("encodes");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with("cosmogate_request_charge_total{"))
            .map(str::to_owned)
            .collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn request_charge_is_counted_per_principal_and_container() {
        let metrics = Metrics::new();
        let read = crate::otel::tests::record(200, "allowed");
        metrics.observe(&read);
        // The same principal from another token (another shared view) is the same series.
        let mut again = read.clone();
        again.principal = read
            .principal
            .as_deref()
            .map(|principal| Arc::new(principal.clone()));
        metrics.observe(&again);
        let mut account = read.clone();
        account.database = None;
        account.container = Some("ignored without a database".into());
        metrics.observe(&account);
        let mut database = read.clone();
        database.container = None;
        metrics.observe(&database);
        // The same record from another principal.
        let from = |iss: &str, sub: &str| {
            let mut record = read.clone();
            record.principal = read.principal.as_deref().map(|principal| {
                Arc::new(PrincipalView::new(AuditPrincipal {
                    iss: iss.to_owned(),
                    sub: sub.to_owned(),
                    ..AuditPrincipal::clone(principal)
                }))
            });
            record
        };
        let issuer = read.principal.as_ref().map_or("", |p| p.iss.as_str());
        metrics.observe(&from(issuer, "app-reader"));
        // An issuer may hold a space: the same label text is the same series.
        let split_one_way = from("a b", "c");
        let split_other_way = from("a", "b c");
        metrics.observe(&split_one_way);
        metrics.observe(&split_other_way);
        assert_eq!(
            charge_lines(&metrics),
            [
                r#"cosmogate_request_charge_total{principal="a b c",container="shop/orders"} 3.0"#,
                r#"cosmogate_request_charge_total{principal="https://idp.example app-reader",container="shop/orders"} 1.5"#,
                r#"cosmogate_request_charge_total{principal="https://idp.example app-writer",container="/"} 1.5"#,
                r#"cosmogate_request_charge_total{principal="https://idp.example app-writer",container="shop"} 1.5"#,
                r#"cosmogate_request_charge_total{principal="https://idp.example app-writer",container="shop/orders"} 3.0"#,
            ]
        );
    }
}
