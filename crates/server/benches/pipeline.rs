//! The request path in process, step by step and composed, so that the sum of the steps can be
//! read next to the load-run figures: the `Authorization` header is parsed, the token validated
//! (cached, or fresh RS256 and ES256), the request classified, the policy asked (with the
//! claims normalised first, as the server does) and the audit record built and serialised.
//! `pipeline/full_cached_rs256` adds the header work around it: a copy of the request's
//! header map (hyper hands the server one per request), hop-by-hop stripping and intent
//! canonicalisation. Nothing here touches a socket after start-up, so these figures leave out
//! TLS, HTTP framing and the upstream exchange.
//!
//! The request is an allowed point read as the JavaScript SDK sends it, the policy is
//! `config/policy.toml`, the token an RS256 or ES256 access token with the claims an Entra ID
//! token carries.
//!
//! Run with `cargo bench -p cosmogate-server --bench pipeline`. With
//! `COSMOGATE_BENCH_COUNT=<case>:<iterations>` set, the binary instead runs one case that many
//! times on a single-threaded runtime and exits, for counting instructions under
//! `valgrind --tool=callgrind` (see `bench/micro/counts.py`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_policy::{Decision, Policy, Subject};
use cosmogate_protocol::{
    Operation, RequestHead, canonicalize_intent, classify, parse_authorization,
};
use cosmogate_server::AUDIT_SCHEMA;
use cosmogate_server::audit::{self, AuditRecord, PrincipalView, ShadowRecord};
use cosmogate_validator::{
    Clock, IssuerConfig, Principal, SystemClock, Validator, ValidatorOptions,
};
use criterion::{Criterion, criterion_group};
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const ISSUER: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const AUDIENCE: &str = "api://cosmos-proxy";
const PATH: &str = "/dbs/shop/colls/orders/docs/order-1042";
const COUNT_VAR: &str = "COSMOGATE_BENCH_COUNT";

fn read(relative: &str) -> Vec<u8> {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path} must be readable: {err}"))
}

fn public_jwk(encoding: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let jwk = Jwk::from_encoding_key(encoding, alg).expect("jwk must derive");
    let mut value = serde_json::to_value(jwk).expect("jwk must serialize");
    value["kid"] = json!(kid);
    value
}

/// An access token with the claims Entra ID puts in one.
fn token(encoding: &EncodingKey, alg: Algorithm, kid: &str, now: i64) -> String {
    let header = json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": kid});
    let payload = json!({
        "aud": AUDIENCE, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
        "aio": "k2BgYJh2c6v3XbV0pM3xAjY1FgcA", "azp": "c0ffee00-1234-4abc-9def-001122334455",
        "azpacr": "1", "name": "orders-api", "oid": "5f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "rh": "1.AQABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.", "roles": ["cosmos.reader"],
        "sub": "0b2f3e7c-9a51-4d1e-8f6a-3c2b1a0d9e8f",
        "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "AbCdEfGhIjKlMnOpQrStUv",
        "ver": "2.0",
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), encoding, alg).expect("signs");
    format!("{input}.{signature}")
}

/// The headers of a point read as the JavaScript SDK sends it, with `token`.
fn request_headers(token: &str) -> HeaderMap {
    let authorization = format!("type=aad&ver=1.0&sig={token}");
    let pairs = [
        ("host", "cosmos-proxy.contoso.test"),
        ("authorization", authorization.as_str()),
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
        ("connection", "keep-alive"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("bench header names are valid");
        map.append(
            name,
            HeaderValue::from_str(value).expect("bench values are valid"),
        );
    }
    map
}

/// Everything the request path needs, built once.
struct Rig {
    cached: Validator,
    fresh: Validator,
    policy: Policy,
    policy_version: Arc<str>,
    /// Formatted once per connection, as the gateway does.
    client_address: Arc<str>,
    method: Method,
    rs256: HeaderMap,
    es256: HeaderMap,
    /// The headers of a bulk request and its body of 100 upserts.
    bulk: (HeaderMap, Vec<u8>),
}

/// Starts a loopback key server on `runtime` and builds the validators and the policy.
fn rig(runtime: &Runtime) -> Rig {
    let rsa = EncodingKey::from_rsa_pem(&read("../validator/tests/fixtures/rsa-1.pem"))
        .expect("rsa key loads");
    let ec = EncodingKey::from_ec_pem(&read("../validator/tests/fixtures/ec-1.pem"))
        .expect("ec key loads");
    let keys = json!({"keys": [
        public_jwk(&rsa, Algorithm::RS256, "rsa-1"),
        public_jwk(&ec, Algorithm::ES256, "ec-1"),
    ]})
    .to_string();
    let (cached, fresh) = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("has an address");
        let app = Router::new().route("/jwks", get(move || async move { keys }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config: IssuerConfig = serde_json::from_value(json!({
            "issuer": ISSUER, "jwks_uri": format!("http://{address}/jwks"),
            "audiences": [AUDIENCE],
        }))
        .expect("config parses");
        let build = |entries| {
            // No refresh task: key refresh is not part of a request, and it would add
            // instructions to the counted runs that depend on how long they take.
            let options = ValidatorOptions {
                token_cache_entries: entries,
                background_refresh: false,
                ..ValidatorOptions::default()
            };
            Validator::with_options(vec![config.clone()], reqwest::Client::new(), options)
        };
        let cached = build(10_000).await.expect("validator starts");
        let fresh = build(0).await.expect("validator starts");
        (cached, fresh)
    });
    let text = String::from_utf8(read("../../config/policy.toml")).expect("policy is utf-8");
    let policy = Policy::from_toml(&text, "config/policy.toml").expect("policy loads");
    let now = SystemClock.now();
    Rig {
        cached,
        fresh,
        policy_version: policy.fingerprint().into(),
        client_address: "10.1.2.3:53122".into(),
        policy,
        method: Method::GET,
        rs256: request_headers(&token(&rsa, Algorithm::RS256, "rsa-1", now)),
        es256: request_headers(&token(&ec, Algorithm::ES256, "ec-1", now)),
        bulk: bulk_request(100),
    }
}

/// A bulk request of `n` upserts of a small order document (about 200 bytes each).
fn bulk_request(n: usize) -> (HeaderMap, Vec<u8>) {
    let mut headers = request_headers("unused");
    for (name, value) in [
        ("x-ms-cosmos-is-batch-request", "True"),
        ("x-ms-cosmos-batch-atomic", "False"),
        ("content-type", "application/json"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.remove("x-ms-documentdb-partitionkey");
    let ops: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"operationType":"Upsert","partitionKey":"[\"tenant-7\"]","resourceBody":{{"id":"order-{i}","tenant":"tenant-7","status":"open","total":{i}.5,"lines":[{{"sku":"A-{i}","qty":2}}],"note":"deliver to the back door"}}}}"#
            )
        })
        .collect();
    (headers, format!("[{}]", ops.join(",")).into_bytes())
}

/// Classifies the bulk request, head and body.
fn classify_bulk(rig: &Rig) -> Result<Operation, &'static str> {
    let (headers, body) = &rig.bulk;
    let head = RequestHead {
        method: &Method::POST,
        path: "/dbs/shop/colls/orders/docs",
        headers,
    };
    let mut operation = classify(&head).map_err(|err| err.reason_code())?;
    cosmogate_protocol::classify_batch_body(&mut operation, body)
        .map_err(|err| err.reason_code())?;
    Ok(operation)
}

/// The one `Authorization` header's token, as the server takes it.
fn bearer_token(headers: &HeaderMap) -> Result<String, &'static str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or("missing_credential")?;
    if values.next().is_some() {
        return Err("duplicate_authorization");
    }
    let token = parse_authorization(value.as_bytes()).map_err(|err| err.reason_code())?;
    Ok(token.token.into_owned())
}

fn head<'a>(rig: &'a Rig, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead {
        method: &rig.method,
        path: PATH,
        headers,
    }
}

fn decide(rig: &Rig, principal: &Principal, operation: &Operation) -> Decision {
    let subject = Subject {
        issuer: &principal.issuer,
        claims: principal.normalized_claims(),
    };
    rig.policy.decide(&subject, operation)
}

/// The audit record's JSON line, with the fields the request path fills before forwarding
/// (the response fields keep the values a completed read would have).
fn audit_line(
    rig: &Rig,
    headers: &HeaderMap,
    principal: &Principal,
    operation: &Operation,
    decision: &Decision,
) -> Vec<u8> {
    let record = AuditRecord {
        schema: AUDIT_SCHEMA,
        time: audit::timestamp(SystemTime::now()),
        request_id: uuid::Uuid::new_v4().to_string(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        activity_id: "9a2f3c46-1d4e-4b5f-8a7c-2b1e0d9c8f7a".to_owned(),
        client_address: rig.client_address.clone(),
        forwarded_for: None,
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(audit::capped),
        principal: Some(principal.derived(PrincipalView::of)),
        method: audit::capped(rig.method.as_str()),
        path: audit::capped(PATH),
        operation: Some(operation.kind.as_str()),
        actions: operation.actions.iter().map(|a| a.as_str()).collect(),
        database: operation.database.as_deref().map(audit::capped_shared),
        container: operation.container.as_deref().map(audit::capped_shared),
        item_id: operation.item_id.as_deref().map(audit::capped),
        partition_key: operation
            .partition_key
            .as_ref()
            .map(|k| audit::capped(&k.raw)),
        decision: if decision.allowed { "allow" } else { "deny" },
        reason: decision.reason,
        rule: decision.rule.as_deref().map(audit::capped),
        policy_version: Some(rig.policy_version.clone()),
        roles: decision.roles.clone(),
        shadow: decision
            .shadow
            .iter()
            .map(|hit| ShadowRecord {
                rule: audit::capped(&hit.rule),
                reason: hit.reason.to_owned(),
            })
            .collect(),
        status: 200,
        substatus: Some("0".to_owned()),
        request_charge: Some(1.0),
        bytes_in: 0,
        bytes_out: 512,
        upstream_status: Some(200),
        upstream_latency_ms: Some(1.83),
        upstream_region: None,
        completed: true,
        latency_ms: 1.95,
    };
    // The line as the audit stream writes it.
    let mut line = Vec::with_capacity(1024);
    audit::write_line(&record, &mut line);
    line
}

/// Parse, validate, classify, decide, audit: the steps between the request head and the
/// forwarding, in the server's order. Returns the audit line and the operation.
async fn pipeline(
    rig: &Rig,
    validator: &Validator,
    headers: &HeaderMap,
) -> Result<(Vec<u8>, Operation), &'static str> {
    let token = bearer_token(headers)?;
    let principal = validator
        .validate(&token)
        .await
        .map_err(|err| err.reason_code())?;
    let operation = classify(&head(rig, headers)).map_err(|err| err.reason_code())?;
    let decision = decide(rig, &principal, &operation);
    if !decision.allowed {
        return Err(decision.reason);
    }
    Ok((
        audit_line(rig, headers, &principal, &operation, &decision),
        operation,
    ))
}

/// [`pipeline`] with the header work around it: the per-request header map, hop-by-hop
/// stripping before anything reads it, intent canonicalisation after the decision.
async fn full_pipeline(rig: &Rig, validator: &Validator, headers: &HeaderMap) -> Vec<u8> {
    let mut headers = headers.clone();
    cosmogate_upstream::strip_hop_by_hop(&mut headers);
    let (line, operation) = pipeline(rig, validator, &headers)
        .await
        .expect("the bench request is allowed");
    canonicalize_intent(&operation, &mut headers);
    black_box(headers);
    line
}

/// The intermediate results of the cached RS256 request, for timing single steps.
struct Fixed {
    token: String,
    principal: Arc<Principal>,
    operation: Operation,
    decision: Decision,
}

fn fixed(runtime: &Runtime, rig: &Rig) -> Fixed {
    let token = token_of(&rig.rs256);
    let principal = runtime
        .block_on(rig.cached.validate(&token))
        .expect("the bench token validates");
    let operation = classify(&head(rig, &rig.rs256)).expect("the bench request classifies");
    let decision = decide(rig, &principal, &operation);
    assert!(decision.allowed, "the bench request must be allowed");
    Fixed {
        token,
        principal,
        operation,
        decision,
    }
}

/// The cases, by name, for the counted runs and the criterion groups alike.
async fn run_case(rig: &Rig, fixed: &Fixed, case: &str) {
    let ok = "the bench request is allowed";
    match case {
        "step_parse_authorization" => {
            black_box(bearer_token(&rig.rs256).expect(ok));
        }
        "step_classify" => {
            black_box(classify(&head(rig, &rig.rs256)).expect(ok));
        }
        "step_classify_bulk_100" => {
            black_box(classify_bulk(rig).expect(ok));
        }
        "step_decide" => {
            let subject = Subject {
                issuer: &fixed.principal.issuer,
                claims: fixed.principal.normalized_claims(),
            };
            black_box(rig.policy.decide(&subject, &fixed.operation));
        }
        "step_audit_record" => {
            let (principal, operation) = (&fixed.principal, &fixed.operation);
            black_box(audit_line(
                rig,
                &rig.rs256,
                principal,
                operation,
                &fixed.decision,
            ));
        }
        "pipeline_cached_rs256" => {
            black_box(pipeline(rig, &rig.cached, &rig.rs256).await.expect(ok));
        }
        "pipeline_full_cached_rs256" => {
            black_box(full_pipeline(rig, &rig.cached, &rig.rs256).await);
        }
        "pipeline_fresh_rs256" => {
            black_box(pipeline(rig, &rig.fresh, &rig.rs256).await.expect(ok));
        }
        "pipeline_fresh_es256" => {
            black_box(pipeline(rig, &rig.fresh, &rig.es256).await.expect(ok));
        }
        "validate_cached_rs256" => {
            black_box(rig.cached.validate(&fixed.token).await.expect(ok));
        }
        "validate_fresh_rs256" => {
            black_box(rig.fresh.validate(&token_of(&rig.rs256)).await.expect(ok));
        }
        "validate_fresh_es256" => {
            black_box(rig.fresh.validate(&token_of(&rig.es256)).await.expect(ok));
        }
        other => panic!("unknown case {other}"),
    }
}

fn token_of(headers: &HeaderMap) -> String {
    bearer_token(headers).expect("the bench header parses")
}

const COUNTED: [&str; 12] = [
    "step_parse_authorization",
    "step_classify",
    "step_classify_bulk_100",
    "step_decide",
    "step_audit_record",
    "pipeline_cached_rs256",
    "pipeline_full_cached_rs256",
    "pipeline_fresh_rs256",
    "pipeline_fresh_es256",
    "validate_cached_rs256",
    "validate_fresh_rs256",
    "validate_fresh_es256",
];

fn bench_steps(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime starts");
    let rig = rig(&runtime);
    let fixed = fixed(&runtime, &rig);
    for case in COUNTED {
        runtime.block_on(run_case(&rig, &fixed, case));
    }
    let Fixed {
        token,
        principal,
        operation,
        decision,
    } = &fixed;

    let mut group = c.benchmark_group("steps");
    group.bench_function("parse_authorization", |b| {
        b.iter(|| black_box(bearer_token(black_box(&rig.rs256))))
    });
    group.bench_function("validate_cached_rs256", |b| {
        b.to_async(&runtime)
            .iter(|| rig.cached.validate(black_box(token)))
    });
    group.bench_function("classify", |b| {
        b.iter(|| black_box(classify(black_box(&head(&rig, &rig.rs256)))))
    });
    group.bench_function("classify_bulk_100", |b| {
        b.iter(|| black_box(classify_bulk(&rig)))
    });
    group.bench_function("decide", |b| {
        let subject = Subject {
            issuer: &principal.issuer,
            claims: principal.normalized_claims(),
        };
        b.iter(|| black_box(rig.policy.decide(black_box(&subject), black_box(operation))))
    });
    group.bench_function("audit_record", |b| {
        b.iter(|| black_box(audit_line(&rig, &rig.rs256, principal, operation, decision)))
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    for case in [
        "pipeline_cached_rs256",
        "pipeline_full_cached_rs256",
        "pipeline_fresh_rs256",
        "pipeline_fresh_es256",
    ] {
        let name = case.trim_start_matches("pipeline_");
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| run_case(&rig, &fixed, case))
        });
    }
    group.finish();
}

/// `COSMOGATE_BENCH_COUNT=<case>:<iterations>`: runs the case once to warm up, then that many
/// times inside [`counted_iterations`], on one thread, so that callgrind can count the
/// instructions of exactly those iterations (`--toggle-collect=*counted_iterations*`).
fn count(spec: &str) {
    let (case, iterations) = spec
        .split_once(':')
        .unwrap_or_else(|| panic!("{COUNT_VAR} must be <case>:<iterations>, not {spec:?}"));
    let iterations: u64 = iterations
        .parse()
        .unwrap_or_else(|_| panic!("{COUNT_VAR}: {iterations:?} is not a number"));
    assert!(
        COUNTED.contains(&case),
        "{COUNT_VAR}: unknown case {case:?}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime starts");
    let rig = rig(&runtime);
    let fixed = fixed(&runtime, &rig);
    runtime.block_on(run_case(&rig, &fixed, case));
    counted_iterations(&runtime, &rig, &fixed, case, iterations);
}

/// The iterations callgrind counts; kept out of line so that its name marks them.
#[inline(never)]
fn counted_iterations(runtime: &Runtime, rig: &Rig, fixed: &Fixed, case: &str, n: u64) {
    runtime.block_on(async {
        for _ in 0..n {
            run_case(rig, fixed, case).await;
        }
    });
}

criterion_group!(benches, bench_steps);

fn main() {
    if let Ok(spec) = std::env::var(COUNT_VAR) {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
