//! What one `validate` call costs: cached RS256 and ES256 tokens, fresh RS256 and ES256 tokens
//! (cache off, so every call parses and verifies the signature), and invalid tokens.
//!
//! The `issuers` group shows how the cost grows with the number of configured issuers (1, 5,
//! 10, 25, 50), the token's issuer being the last one configured: plain issuers, and one Entra
//! multi-tenant `{tenantid}` issuer with that many tenants, the token's tenant listed last.
//!
//! Key sets are served once, at start-up, by a loopback server; no benchmark touches it
//! afterwards. Run with `cargo bench -p cosmogate-validator --bench validate`.

use std::hint::black_box;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_validator::{Clock, IssuerConfig, SystemClock, Validator, ValidatorOptions};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const ISSUER: &str = "https://idp.bench/";
const AUDIENCE: &str = "api://cosmos-proxy";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ENTRA_TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";

/// Numbers of configured issuers (or tenants of one multi-tenant issuer) for the growth group.
const ISSUER_COUNTS: [usize; 5] = [1, 5, 10, 25, 50];

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
    token_of(encoding, alg, kid, now, ISSUER, TENANT)
}

fn token_of(
    encoding: &EncodingKey,
    alg: Algorithm,
    kid: &str,
    now: i64,
    iss: &str,
    tid: &str,
) -> String {
    let header = json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": kid});
    let payload = json!({"iss": iss, "aud": AUDIENCE, "sub": "bench-user", "iat": now,
        "nbf": now, "exp": now + 3600, "scp": "orders.read orders.write",
        "roles": ["orders.read"], "tid": tid});
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
    jwks_uri: String,
    rsa: EncodingKey,
    rsa_jwk: Jwk,
    ec_jwk: Jwk,
    cached: Validator,
    uncached: Validator,
    rs256: String,
    es256: String,
    forged: String,
}

/// A validator for `issuers`, all served the bench key set, with the token cache on or off.
fn validator(runtime: &Runtime, issuers: Vec<IssuerConfig>, cache_entries: u64) -> Validator {
    let options = ValidatorOptions {
        token_cache_entries: cache_entries,
        ..ValidatorOptions::default()
    };
    runtime
        .block_on(Validator::with_options(
            issuers,
            reqwest::Client::new(),
            options,
        ))
        .expect("validator starts")
}

fn issuer_config(issuer: &str, tenants: &[String], jwks_uri: &str) -> IssuerConfig {
    serde_json::from_value(json!({
        "issuer": issuer, "tenants": tenants, "jwks_uri": jwks_uri, "audiences": [AUDIENCE],
    }))
    .expect("config parses")
}

fn setup() -> Setup {
    let runtime = Runtime::new().expect("runtime must start");
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-1.pem")).expect("rsa key loads");
    let ec = EncodingKey::from_ec_pem(&fixture("ec-1.pem")).expect("ec key loads");
    let evil = EncodingKey::from_rsa_pem(&fixture("evil-rsa.pem")).expect("rsa key loads");
    let rsa_public = public_jwk(&rsa, Algorithm::RS256, "rsa-1");
    let ec_public = public_jwk(&ec, Algorithm::ES256, "ec-1");
    let rsa_jwk: Jwk = serde_json::from_value(rsa_public.clone()).expect("jwk parses");
    let ec_jwk: Jwk = serde_json::from_value(ec_public.clone()).expect("jwk parses");
    let keys = json!({"keys": [rsa_public, ec_public]}).to_string();
    let jwks_uri = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("has an address");
        let app = Router::new().route("/jwks", get(move || async move { keys }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/jwks")
    });
    let config = issuer_config(ISSUER, &[], &jwks_uri);
    let cached = validator(&runtime, vec![config.clone()], 10_000);
    let uncached = validator(&runtime, vec![config], 0);
    let now = SystemClock.now();
    Setup {
        rs256: token(&rsa, Algorithm::RS256, "rsa-1", now),
        es256: token(&ec, Algorithm::ES256, "ec-1", now),
        forged: token(&evil, Algorithm::RS256, "rsa-1", now),
        runtime,
        jwks_uri,
        rsa,
        rsa_jwk,
        ec_jwk,
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
    run(&setup.cached, &setup.es256, true);
    run(&setup.uncached, &setup.es256, true);
    run(&setup.uncached, &setup.forged, false);

    let mut group = c.benchmark_group("validate");
    group.bench_function("cached_rs256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.cached.validate(black_box(&setup.rs256)))
    });
    group.bench_function("cached_es256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.cached.validate(black_box(&setup.es256)))
    });
    group.bench_function("fresh_rs256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.uncached.validate(black_box(&setup.rs256)))
    });
    group.bench_function("fresh_es256", |b| {
        b.to_async(&setup.runtime)
            .iter(|| setup.uncached.validate(black_box(&setup.es256)))
    });
    // The crypto floor: the signature check alone, without parsing the token or checking a
    // claim. `floor_signature_*` verifies with a key parsed once, as the validator does;
    // `jsonwebtoken_verify_*` with `jsonwebtoken::crypto::verify`, which builds the key from
    // the JWK on every call (what the validator did before it kept parsed keys).
    for (suffix, token, jwk, alg) in [
        ("rs256", &setup.rs256, &setup.rsa_jwk, Algorithm::RS256),
        ("es256", &setup.es256, &setup.ec_jwk, Algorithm::ES256),
    ] {
        let (message, signature) = token.rsplit_once('.').expect("a compact JWS");
        let key = DecodingKey::from_jwk(jwk).expect("the bench key converts");
        let verify = || jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg);
        assert!(verify().expect("verifies"), "{suffix} must verify");
        group.bench_function(format!("jsonwebtoken_verify_{suffix}"), |b| {
            b.iter(|| black_box(verify()))
        });

        let parsed = parsed_key(jwk);
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let verify = || parsed.verify_sig(message.as_bytes(), &signature);
        assert!(verify().is_ok(), "{suffix} must verify with the parsed key");
        group.bench_function(format!("floor_signature_{suffix}"), |b| {
            b.iter(|| black_box(verify()))
        });
    }
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
    bench_issuer_growth(c, &setup);
}

/// The bench JWK as an aws-lc key parsed once (RS256 or ES256).
fn parsed_key(jwk: &Jwk) -> ParsedPublicKey {
    let decode = |member: &str| URL_SAFE_NO_PAD.decode(member).expect("base64url");
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => RsaPublicKeyComponents {
            n: decode(&rsa.n),
            e: decode(&rsa.e),
        }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
        .expect("the rsa key parses"),
        AlgorithmParameters::EllipticCurve(ec) => {
            let mut point = vec![4];
            point.extend(decode(&ec.x));
            point.extend(decode(&ec.y));
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .expect("the ec key parses")
        }
        _ => panic!("the bench keys are RSA and P-256"),
    }
}

/// A tenant id in the lowercase GUID form the configuration requires.
fn tenant(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

/// `n` plain issuers, the token's the last; and one `{tenantid}` issuer with `n` tenants, the
/// token's tenant the last. Each with its token, the validators built once per `n` and dropped
/// before the next, so that only one `n`'s refresh tasks are alive at a time.
fn bench_issuer_growth(c: &mut Criterion, setup: &Setup) {
    let now = SystemClock.now();
    let mut group = c.benchmark_group("issuers");
    for n in ISSUER_COUNTS {
        let plain: Vec<IssuerConfig> = (0..n)
            .map(|i| issuer_config(&format!("https://idp-{i}.bench/"), &[], &setup.jwks_uri))
            .collect();
        let plain_iss = format!("https://idp-{}.bench/", n - 1);
        let tenants: Vec<String> = (0..n).map(tenant).collect();
        let last = &tenants[n - 1];
        let entra = vec![issuer_config(ENTRA_TEMPLATE, &tenants, &setup.jwks_uri)];
        let entra_iss = ENTRA_TEMPLATE.replace("{tenantid}", last);

        let cases = [
            (
                "plain",
                plain,
                token_of(
                    &setup.rsa,
                    Algorithm::RS256,
                    "rsa-1",
                    now,
                    &plain_iss,
                    TENANT,
                ),
            ),
            (
                "tenant",
                entra,
                token_of(&setup.rsa, Algorithm::RS256, "rsa-1", now, &entra_iss, last),
            ),
        ];
        for (kind, issuers, token) in cases {
            let cached = validator(&setup.runtime, issuers.clone(), 10_000);
            let fresh = validator(&setup.runtime, issuers, 0);
            for v in [&cached, &fresh] {
                let result = setup.runtime.block_on(v.validate(&token));
                assert!(
                    result.is_ok(),
                    "{kind} token with {n} issuers must validate"
                );
            }
            group.bench_with_input(
                BenchmarkId::new(format!("{kind}_cached_rs256"), n),
                &token,
                |b, token| {
                    b.to_async(&setup.runtime)
                        .iter(|| cached.validate(black_box(token)))
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{kind}_fresh_rs256"), n),
                &token,
                |b, token| {
                    b.to_async(&setup.runtime)
                        .iter(|| fresh.validate(black_box(token)))
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
