//! How the cost of one decision grows with the size of the policy: 10, 100, 1,000 and 10,000
//! roles (each with its binding), with pattern scopes, partition-bound roles and deny rules
//! mixed in. The bindings test exact claim values, so they are found through the binding index
//! by value; the `prefix_bindings` case runs the same policy with `prefix` bindings, which the
//! index files by their prefix. Run with `cargo bench -p cosmogate-policy`.

use std::fmt::Write as _;
use std::hint::black_box;

use cosmogate_policy::{Policy, Subject};
use cosmogate_protocol::{Operation, RequestHead, classify, classify_batch_body};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// A policy of `n` roles spread over 50 databases: mostly exact container scopes, every tenth
/// a container pattern, every twentieth bound to the `tenant` claim's partition, and a deny
/// rule per hundred roles. With `prefix`, each binding tests `roles` by prefix instead of by an
/// exact value.
fn policy_text(n: usize, prefix: bool) -> String {
    let test = if prefix { "prefix" } else { "contains" };
    let mut text = String::from("version = 1\n");
    for i in 0..n {
        let db = i % 50;
        let scope = if i % 10 == 9 {
            format!("/dbs/db-{db}/colls/p-{i}-*")
        } else {
            format!("/dbs/db-{db}/colls/c-{i}")
        };
        let _ = writeln!(
            text,
            "[[roles]]\nname = \"role-{i}\"\nbuiltin = \"data-contributor\"\nscopes = [\"{scope}\"]"
        );
        if i % 20 == 19 {
            text.push_str("partition_key = [\"{claims.tenant}\"]\n");
        }
        let _ = writeln!(
            text,
            "[[bindings]]\nrole = \"role-{i}\"\nclaim = \"roles\"\n{test} = \"r-{i}\""
        );
        if i % 100 == 99 {
            let _ = writeln!(
                text,
                "[[deny]]\nname = \"deny-{i}\"\nactions = [\"items/delete\"]\n\
                 scopes = [\"/dbs/db-{db}\"]\nunless = {{ claim = \"roles\", contains = \"glass\" }}"
            );
        }
    }
    text
}

fn operation(method: Method, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Operation {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("bench header names are valid");
        map.append(
            name,
            HeaderValue::from_str(value).expect("bench values are valid"),
        );
    }
    let head = RequestHead {
        method: &method,
        path,
        headers: &map,
    };
    let mut op = classify(&head).expect("bench requests classify");
    classify_batch_body(&mut op, body).expect("bench bodies classify");
    op
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("bench claims are objects"),
    }
}

fn bench_decisions(c: &mut Criterion) {
    let pk = [("x-ms-documentdb-partitionkey", r#"["t1"]"#)];
    let bulk_headers = [
        ("x-ms-cosmos-is-batch-request", "true"),
        ("x-ms-cosmos-batch-atomic", "false"),
    ];
    let bulk_body: String = {
        let ops: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"operationType":"Upsert","partitionKey":"[\"t1\"]","resourceBody":{{"id":"{i}"}}}}"#))
            .collect();
        format!("[{}]", ops.join(","))
    };
    let cases = [
        (
            "point_read_allowed",
            operation(Method::GET, "/dbs/db-3/colls/c-3/docs/o1", &pk, b""),
        ),
        (
            "point_read_other_container",
            operation(Method::GET, "/dbs/db-3/colls/c-53/docs/o1", &pk, b""),
        ),
        ("read_account", operation(Method::GET, "/", &[], b"")),
        (
            "bulk_of_10_allowed",
            operation(
                Method::POST,
                "/dbs/db-3/colls/c-3/docs",
                &bulk_headers,
                bulk_body.as_bytes(),
            ),
        ),
    ];
    let member = claims(json!({"sub": "app", "roles": ["r-3", "r-7", "r-19"], "tenant": "t1"}));
    let stranger = claims(json!({"sub": "app", "roles": ["nobody"]}));

    let mut group = c.benchmark_group("decide_rules");
    for n in SIZES {
        let policy =
            Policy::from_toml(&policy_text(n, false), "bench").expect("bench policy loads");
        let member_subject = Subject {
            issuer: "http://127.0.0.1:9400",
            claims: &member,
        };
        for (name, op) in &cases {
            let allowed = policy.decide(&member_subject, op).allowed;
            assert_eq!(
                allowed,
                *name != "point_read_other_container",
                "{name} with {n} roles"
            );
            group.bench_with_input(BenchmarkId::new(*name, n), op, |b, op| {
                b.iter(|| black_box(policy.decide(black_box(&member_subject), black_box(op))))
            });
        }
        // What the gateway pays for a cached token: its roles under this policy were worked
        // out by its first request and kept (`held`), so only the decision itself remains.
        let held = policy.held(&member_subject);
        let read = &cases[0].1;
        assert_eq!(
            format!("{:?}", policy.decide_holding(&member_subject, read, &held)),
            format!("{:?}", policy.decide(&member_subject, read)),
            "held roles decide as a fresh decision does"
        );
        group.bench_with_input(
            BenchmarkId::new("point_read_held_roles", n),
            read,
            |b, op| {
                b.iter(|| {
                    black_box(policy.decide_holding(
                        black_box(&member_subject),
                        black_box(op),
                        black_box(&held),
                    ))
                })
            },
        );

        let subject = Subject {
            issuer: "http://127.0.0.1:9400",
            claims: &stranger,
        };
        group.bench_with_input(BenchmarkId::new("no_role", n), &cases[0].1, |b, op| {
            b.iter(|| black_box(policy.decide(black_box(&subject), black_box(op))))
        });

        let prefixed =
            Policy::from_toml(&policy_text(n, true), "bench").expect("bench policy loads");
        let decision = prefixed.decide(&member_subject, &cases[0].1);
        assert!(
            decision.allowed,
            "the prefix policy must allow the point read"
        );
        group.bench_with_input(
            BenchmarkId::new("prefix_bindings_point_read", n),
            &cases[0].1,
            |b, op| {
                b.iter(|| black_box(prefixed.decide(black_box(&member_subject), black_box(op))))
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
