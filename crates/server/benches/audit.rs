//! What one audit record costs on the request's task: building it from the request's facts
//! (the bounded copies, the request id, the timestamp; the principal's view and the client
//! address are shared, as the gateway keeps them per token and per connection), writing its JSON
//! line (`serde_json_allowed`: the same line through `serde_json`, for comparison), and handing
//! it to the audit stream's writer (`AuditSink::record`: the line plus a queue append; the writer
//! thread writes to `/dev/null` here).
//!
//! The records are the ones a point read produces, allowed and denied, with the fields a real
//! request fills. Run with `cargo bench -p cosmogate-server --bench audit`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cosmogate_server::audit::{self, AuditSink};
use cosmogate_server::{AUDIT_SCHEMA, AuditOutput, AuditPrincipal, AuditRecord, PrincipalView};
use criterion::{Criterion, criterion_group, criterion_main};

/// What the gateway keeps per verified token and per connection, not per request.
struct Kept {
    principal: Arc<PrincipalView>,
    client_address: Arc<str>,
}

fn kept() -> Kept {
    Kept {
        principal: Arc::new(
            AuditPrincipal {
                iss: audit::capped(
                    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
                ),
                sub: audit::capped("0b2f3e7c-9a51-4d1e-8f6a-3c2b1a0d9e8f"),
                oid: Some(audit::capped("5f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b")),
                tid: Some(audit::capped("72f988bf-86f1-41af-91ab-2d7cd011db47")),
                client_id: Some(audit::capped("c0ffee00-1234-4abc-9def-001122334455")),
                token_fingerprint: "3f9a0c1b2d4e5f60".to_owned(),
            }
            .into(),
        ),
        client_address: "10.1.2.3:53122".into(),
    }
}

/// The record of an allowed point read, built the way the request path builds it.
fn allowed_read(kept: &Kept) -> AuditRecord {
    AuditRecord {
        schema: AUDIT_SCHEMA,
        time: audit::timestamp(SystemTime::now()),
        request_id: uuid::Uuid::new_v4().to_string(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        activity_id: "9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a".to_owned(),
        client_address: Arc::clone(&kept.client_address),
        forwarded_for: None,
        user_agent: Some(audit::capped(
            "azsdk-js-azure-cosmos/4.2.0 Linux/6.1 Node/v20.11.1",
        )),
        principal: Some(Arc::clone(&kept.principal)),
        method: audit::capped("GET"),
        path: audit::capped("/dbs/shop/colls/orders/docs/order-1042"),
        operation: Some("read_item"),
        actions: vec!["Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read"],
        database: Some(audit::capped_shared("shop")),
        container: Some(audit::capped_shared("orders")),
        item_id: Some(audit::capped("order-1042")),
        partition_key: Some(audit::capped(r#"["tenant-7"]"#)),
        decision: "allow",
        reason: "allowed",
        rule: Some(audit::capped("orders-reader")),
        policy_version: Some("1c9e4f0a2b3d4e5f".into()),
        roles: vec!["orders-reader".to_owned()],
        shadow: Vec::new(),
        status: 200,
        substatus: Some("0".to_owned()),
        request_charge: Some(1.0),
        bytes_in: 0,
        bytes_out: 512,
        upstream_status: Some(200),
        upstream_latency_ms: Some(audit::millis(Duration::from_micros(1830))),
        upstream_region: None,
        completed: true,
        latency_ms: audit::millis(Duration::from_micros(1950)),
    }
}

fn denied_read(kept: &Kept) -> AuditRecord {
    let mut record = allowed_read(kept);
    record.decision = "deny";
    record.reason = "no_role";
    record.rule = None;
    record.roles = Vec::new();
    record.status = 403;
    record.substatus = None;
    record.request_charge = None;
    record.upstream_status = None;
    record.upstream_latency_ms = None;
    record
}

/// What `AuditSink::record` does before the queue: the JSON line.
fn line(record: &AuditRecord) -> Vec<u8> {
    let mut line = Vec::new();
    audit::write_line(record, &mut line);
    line
}

/// The same line through `serde_json` and the record's `Serialize` derive, for comparison.
fn serde_line(record: &AuditRecord) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("records serialise");
    line.push(b'\n');
    line
}

fn bench_audit(c: &mut Criterion) {
    let kept = kept();
    let allowed = allowed_read(&kept);
    let denied = denied_read(&kept);
    let text = String::from_utf8(line(&allowed)).expect("utf-8");
    assert!(text.starts_with('{') && text.ends_with("}\n"));
    assert_eq!(line(&allowed), serde_line(&allowed));

    let mut group = c.benchmark_group("audit");
    group.bench_function("build_record", |b| {
        b.iter(|| black_box(allowed_read(&kept)))
    });
    group.bench_function("serialise_allowed", |b| {
        b.iter(|| black_box(line(black_box(&allowed))))
    });
    group.bench_function("serialise_denied", |b| {
        b.iter(|| black_box(line(black_box(&denied))))
    });
    group.bench_function("serde_json_allowed", |b| {
        b.iter(|| black_box(serde_line(black_box(&allowed))))
    });

    let runtime = tokio::runtime::Runtime::new().expect("runtime starts");
    let sink = runtime
        .block_on(AuditSink::open(&AuditOutput::File(PathBuf::from(
            "/dev/null",
        ))))
        .expect("/dev/null opens");
    group.bench_function("sink_record_allowed", |b| {
        let _guard = runtime.enter();
        b.iter(|| sink.record(black_box(&allowed)))
    });
    group.finish();
    // A full queue drops records instead of waiting, which would make the figure above the
    // cost of a drop: say so.
    let dropped = sink.dropped();
    if dropped > 0 {
        eprintln!("audit/sink_record_allowed: {dropped} records dropped (queue full)");
    }
}

criterion_group!(benches, bench_audit);
criterion_main!(benches);
