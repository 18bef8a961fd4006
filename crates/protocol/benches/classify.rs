//! What classifying a request costs: the head alone for point reads, queries, creates, the
//! account document and `_rid` paths; head plus body for batch and bulk requests, by number of
//! operations in the body; and the intent canonicalisation that follows classification.
//!
//! Every request carries the headers a Cosmos SDK sends (about fifteen), since the classifier
//! looks its headers up in that map. Run with `cargo bench -p cosmogate-protocol --bench classify`.

use std::hint::black_box;

use cosmogate_protocol::{
    Operation, OperationKind, RequestHead, canonicalize_intent, classify, classify_batch_body,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// The headers every SDK request carries, then `extra`.
fn sdk_headers(extra: &[(&str, &str)]) -> HeaderMap {
    let common = [
        (
            "authorization",
            "type=aad&ver=1.0&sig=eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        ),
        ("x-ms-date", "Thu, 03 Dec 2026 13:00:00 GMT"),
        ("x-ms-version", "2020-07-15"),
        (
            "user-agent",
            "azsdk-js-azure-cosmos/4.2.0 Linux/6.1 Node/v20.11.1",
        ),
        ("accept", "application/json"),
        ("cache-control", "no-cache"),
        ("x-ms-activity-id", "9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a"),
        ("x-ms-consistency-level", "Session"),
        ("x-ms-session-token", "0:-1#12345"),
        ("x-ms-cosmos-sdk-supportedcapabilities", "1"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("host", "cosmos-proxy.contoso.test"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in common.iter().chain(extra) {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("bench header names are valid");
        map.append(
            name,
            HeaderValue::from_str(value).expect("bench values are valid"),
        );
    }
    map
}

struct Request {
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    expect: OperationKind,
}

impl Request {
    fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            path: self.path,
            headers: &self.headers,
        }
    }

    fn classified(&self) -> Operation {
        let op = classify(&self.head()).expect("bench requests classify");
        assert_eq!(op.kind, self.expect, "{}", self.name);
        op
    }
}

const PK: (&str, &str) = ("x-ms-documentdb-partitionkey", r#"["tenant-7"]"#);

fn heads() -> Vec<Request> {
    let request = |name, method, path, extra: &[(&str, &str)], expect| Request {
        name,
        method,
        path,
        headers: sdk_headers(extra),
        expect,
    };
    vec![
        request(
            "point_read",
            Method::GET,
            "/dbs/shop/colls/orders/docs/order-1042",
            &[PK],
            OperationKind::ReadItem,
        ),
        request(
            "query",
            Method::POST,
            "/dbs/shop/colls/orders/docs",
            &[
                PK,
                ("x-ms-documentdb-isquery", "True"),
                ("content-type", "application/query+json"),
                ("x-ms-max-item-count", "100"),
            ],
            OperationKind::Query,
        ),
        request(
            "create",
            Method::POST,
            "/dbs/shop/colls/orders/docs",
            &[PK, ("content-type", "application/json")],
            OperationKind::CreateItem,
        ),
        request(
            "upsert",
            Method::POST,
            "/dbs/shop/colls/orders/docs",
            &[
                PK,
                ("content-type", "application/json"),
                ("x-ms-documentdb-is-upsert", "True"),
            ],
            OperationKind::UpsertItem,
        ),
        request(
            "rid_path",
            Method::GET,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/pkranges",
            &[],
            OperationKind::ReadPartitionKeyRanges,
        ),
        request(
            "account_document",
            Method::GET,
            "/",
            &[],
            OperationKind::ReadAccount,
        ),
    ]
}

fn bench_heads(c: &mut Criterion) {
    let requests = heads();
    let mut group = c.benchmark_group("classify");
    for request in &requests {
        request.classified();
        group.bench_function(request.name, |b| {
            let head = request.head();
            b.iter(|| black_box(classify(black_box(&head))))
        });
    }
    group.finish();
}

/// A bulk (or, with `atomic`, transactional batch) body of `n` upserts of a small order
/// document, about 200 bytes each, all in one partition.
fn batch_body(n: usize) -> String {
    let ops: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"operationType":"Upsert","partitionKey":"[\"tenant-7\"]","resourceBody":{{"id":"order-{i}","tenant":"tenant-7","status":"open","total":{i}.5,"lines":[{{"sku":"A-{i}","qty":2}},{{"sku":"B-{i}","qty":1}}],"note":"deliver to the back door"}}}}"#
            )
        })
        .collect();
    format!("[{}]", ops.join(","))
}

fn bench_bodies(c: &mut Criterion) {
    let bulk = Request {
        name: "bulk",
        method: Method::POST,
        path: "/dbs/shop/colls/orders/docs",
        headers: sdk_headers(&[
            ("x-ms-cosmos-is-batch-request", "True"),
            ("x-ms-cosmos-batch-atomic", "False"),
            ("content-type", "application/json"),
        ]),
        expect: OperationKind::Bulk,
    };
    let batch = Request {
        name: "batch",
        method: Method::POST,
        path: "/dbs/shop/colls/orders/docs",
        headers: sdk_headers(&[
            PK,
            ("x-ms-cosmos-is-batch-request", "True"),
            ("x-ms-cosmos-batch-atomic", "True"),
            ("content-type", "application/json"),
        ]),
        expect: OperationKind::Batch,
    };
    let mut group = c.benchmark_group("classify_batch_body");
    for (request, sizes) in [(&bulk, &[1usize, 10, 100][..]), (&batch, &[10, 100][..])] {
        for &n in sizes {
            let body = batch_body(n);
            let mut op = request.classified();
            classify_batch_body(&mut op, body.as_bytes()).expect("bench bodies classify");
            assert_eq!(op.batch.len(), n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(request.name, n), &body, |b, body| {
                let head = request.head();
                b.iter(|| {
                    let mut op = classify(black_box(&head)).expect("classified above");
                    black_box(classify_batch_body(&mut op, black_box(body.as_bytes())))
                })
            });
        }
    }
    group.finish();
}

fn bench_intent(c: &mut Criterion) {
    let requests = heads();
    let mut group = c.benchmark_group("canonicalize_intent");
    for name in ["query", "create", "point_read"] {
        let request = requests
            .iter()
            .find(|r| r.name == name)
            .expect("the request is defined above");
        let op = request.classified();
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || request.headers.clone(),
                |headers| canonicalize_intent(black_box(&op), headers),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_heads, bench_bodies, bench_intent);
criterion_main!(benches);
