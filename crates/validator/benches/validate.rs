//! What one `validate` call costs: a cached token, fresh RS256 and ES256 tokens (cache off, so
//! every call parses and verifies the signature), and invalid tokens.
//!
//! The key set is served once, at start-up, by a loopback server; no benchmark touches it
//! afterwards.

use std::hint::black_box;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_validator::{Clock, IssuerConfig, SystemClock, Validator, ValidatorOptions};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const ISSUER: &str = "https://idp.bench/";
const AUDIENCE: &str = "api://cosmos-proxy";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("fixture must be readable")
}

fn public_jwk(encoding: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let jwk = Jwk::from_encoding_key(encoding, alg).expect("jwk must derive");
    let mut value = serde_json::to_value(jwk).expect("jwk must serialize");
    value["kid"] = json!(kid);
    value
}

fn token(encoding: &EncodingKey, alg: Algorithm, kid: &str, now: i64) -> String {
    let header = json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": kid});
    let payload = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "iat": now,
        "nbf": now, "exp": now + 3600, "scp": "orders.read orders.write",
        "roles": ["orders.read"], "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), encoding, alg).expect("signs");
    format!("{input}.{signature}")
}

struct Setup {
    runtime: Runtime,
    cached: Validator,
    uncached: Validator,
    rs256: String,
    es256: String,
    forged: String,
}

fn setup() -> Setup {
    let runtime = Runtime::new().expect("runtime must start");
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-1.pem")).expect("rsa key loads");
    let ec = EncodingKey::from_ec_pem(&fixture("ec-1.pem")).expect("ec key loads");
    let evil = EncodingKey::from_rsa_pem(&fixture("evil-rsa.pem")).expect("rsa key loads");
    let keys = json!({"keys": [
        public_jwk(&rsa, Algorithm::RS256, "rsa-1"),
        public_jwk(&ec, Algorithm::ES256, "ec-1"),
    ]})
    .to_string();
    let (cached, uncached) = runtime.block_on(async move {
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
            let options = ValidatorOptions {
                token_cache_entries: entries,
                ..ValidatorOptions::default()
            };
            Validator::with_options(vec![config.clone()], reqwest::Client::new(), options)
        };
        let cached = build(10_000).await.expect("validator starts");
        let uncached = build(0).await.expect("validator starts");
        (cached, uncached)
    });
    let now = SystemClock.now();
    Setup {
        rs256: token(&rsa, Algorithm::RS256, "rsa-1", now),
        es256: token(&ec, Algorithm::ES256, "ec-1", now),
        forged: token(&evil, Algorithm::RS256, "rsa-1", now),
        runtime,
        cached,
        uncached,
    }
}

fn benchmarks(c: &mut Criterion) {
    let setup = setup();
    let run = |validator: &Validator, token: &str, ok: bool| {
        let result = setup.runtime.block_on(validator.validate(token));
        assert_eq!(result.is_ok(), ok, "benchmark token has the wrong outcome");
    };
    run(&setup.cached, &setup.rs256, true);
    run(&setup.uncached, &setup.es256, true);
    run(&setup.uncached, &setup.forged, false);

    let mut group = c.benchmark_group("validate");
    group.bench_function("cached_rs256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.cached.validate(black_box(&setup.rs256)))
    });
    group.bench_function("fresh_rs256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.uncached.validate(black_box(&setup.rs256)))
    });
    group.bench_function("fresh_es256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.uncached.validate(black_box(&setup.es256)))
    });
    group.bench_function("invalid_malformed", |b| {
        b.to_async(&setup.runtime).iter(|| {
            setup
                .uncached
                .validate(black_box("eyJhbGciOiJSUzI1NiJ9.e30.!!"))
        })
    });
    group.bench_function("invalid_bad_signature", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.uncached.validate(black_box(&setup.forged)))
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
