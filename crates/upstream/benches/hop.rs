//! What dropping hop-by-hop headers costs on a request as a Cosmos SDK sends it (about fifteen
//! headers, none of them hop-by-hop, so nothing is dropped), on
//! the same request with `Connection: keep-alive` and `TE`, and with a `Connection` header that
//! names two other headers. Run with `cargo bench -p cosmogate-upstream --bench hop`.

use std::hint::black_box;

use cosmogate_upstream::strip_hop_by_hop;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue};

fn headers(extra: &[(&str, &str)]) -> HeaderMap {
    let sdk = [
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
        ("x-ms-documentdb-partitionkey", r#"["tenant-7"]"#),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("host", "cosmos-proxy.contoso.test"),
        ("content-type", "application/json"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in sdk.iter().chain(extra) {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("bench header names are valid");
        map.append(
            name,
            HeaderValue::from_str(value).expect("bench values are valid"),
        );
    }
    map
}

fn bench_strip(c: &mut Criterion) {
    let cases = [
        ("sdk_request_nothing_to_drop", headers(&[])),
        (
            "keep_alive_and_te",
            headers(&[("connection", "keep-alive"), ("te", "trailers")]),
        ),
        (
            "connection_names_two",
            headers(&[
                ("connection", "x-private, x-debug"),
                ("x-private", "1"),
                ("x-debug", "1"),
            ]),
        ),
    ];
    let mut group = c.benchmark_group("strip_hop_by_hop");
    for (name, map) in &cases {
        let mut stripped = map.clone();
        strip_hop_by_hop(&mut stripped);
        assert!(stripped.get("connection").is_none() && stripped.len() >= 14);
        group.bench_function(*name, |b| {
            b.iter_batched_ref(
                || map.clone(),
                |headers| strip_hop_by_hop(black_box(headers)),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("clone_only_for_scale", |b| {
        b.iter(|| black_box(cases[0].1.clone()))
    });
    group.finish();
}

criterion_group!(benches, bench_strip);
criterion_main!(benches);
