//! Shared rig for the integration tests: test keys, a raw-bytes test signer, and a mock IdP
//! (discovery + JWKS, with hit counters) served by axum on 127.0.0.1:0.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_validator::{IssuerConfig, ManualClock, TokenError, Validator, ValidatorOptions};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// The fixed "now" of the tests (2027-01-15), far from the real clock on purpose: nothing may
/// depend on the system time.
pub const NOW: i64 = 1_800_000_000;

pub const ISSUER_A: &str = "https://idp-a.test/v2.0";
pub const ISSUER_B: &str = "https://idp-b.test/";
pub const AUDIENCE: &str = "api://cosmos-proxy";

// ---------------------------------------------------------------------------------------------
// Keys

/// A test-only private key from `tests/fixtures/`.
pub struct TestKey {
    pub encoding: EncodingKey,
    pub alg: Algorithm,
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn key(name: &str) -> TestKey {
    let pem = fixture(&format!("{name}.pem"));
    let (encoding, alg) = if name.contains("rsa") {
        (EncodingKey::from_rsa_pem(&pem), Algorithm::RS256)
    } else if name.starts_with("ec384") {
        (EncodingKey::from_ec_pem(&pem), Algorithm::ES384)
    } else if name.contains("ec") {
        (EncodingKey::from_ec_pem(&pem), Algorithm::ES256)
    } else {
        (EncodingKey::from_ed_pem(&pem), Algorithm::EdDSA)
    };
    TestKey {
        encoding: encoding.expect("fixture key must load"),
        alg,
    }
}

impl TestKey {
    /// The public JWK of this key with `kid`, and `alg`/`use` only when given.
    pub fn jwk(&self, kid: &str, alg: Option<&str>, usage: Option<&str>) -> Value {
        let jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("jwk derives");
        let mut value = serde_json::to_value(jwk).expect("jwk serializes");
        let object = value.as_object_mut().expect("jwk is an object");
        object.remove("alg");
        object.insert("kid".into(), kid.into());
        if let Some(alg) = alg {
            object.insert("alg".into(), alg.into());
        }
        if let Some(usage) = usage {
            object.insert("use".into(), usage.into());
        }
        value
    }
}

pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// IdP-A's published set: `rsa-1` without `alg`/`use` (Entra style), `ec-1` ES256 sig.
pub fn jwks_a() -> String {
    jwks(&[
        key("rsa-1").jwk("rsa-1", None, None),
        key("ec-1").jwk("ec-1", Some("ES256"), Some("sig")),
    ])
}

/// IdP-A's set after it published the rotation key `rsa-2`.
pub fn jwks_a_with_rsa2() -> String {
    jwks(&[
        key("rsa-1").jwk("rsa-1", None, None),
        key("ec-1").jwk("ec-1", Some("ES256"), Some("sig")),
        key("rsa-2").jwk("rsa-2", None, None),
    ])
}

/// IdP-B's published set: `rsa-b1` with `alg: RS256`.
pub fn jwks_b() -> String {
    jwks(&[key("rsa-b1").jwk("rsa-b1", Some("RS256"), None)])
}

// ---------------------------------------------------------------------------------------------
// Test signer

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs raw header and payload bytes, so tests can send any JSON, valid or not.
pub fn sign_raw(header: &[u8], payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signs");
    format!("{input}.{signature}")
}

/// Signs JSON values with the key's own algorithm.
pub fn sign(header: &Value, payload: &Value, key: &TestKey) -> String {
    sign_raw(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
        &key.encoding,
        key.alg,
    )
}

/// The baseline payload T0 at time `now`.
pub fn t0_payload() -> Value {
    json!({"iss": ISSUER_A, "aud": AUDIENCE, "sub": "u-100", "iat": NOW - 10, "nbf": NOW - 10,
           "exp": NOW + 600, "roles": ["orders.read"]})
}

pub fn t0_header() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})
}

/// The baseline token T0, signed by IdP-A's `rsa-1`.
pub fn t0() -> String {
    sign(&t0_header(), &t0_payload(), &key("rsa-1"))
}

/// T0 with payload member `name` set to `value` (or removed when `value` is `None`).
pub fn t0_with(name: &str, value: Option<Value>) -> String {
    let mut payload = t0_payload();
    match value {
        Some(value) => payload[name] = value,
        None => {
            payload.as_object_mut().expect("object").remove(name);
        }
    }
    sign(&t0_header(), &payload, &key("rsa-1"))
}

/// T0 with header member `name` set to `value` (or removed), signed by `signer`.
pub fn t0_header_with(name: &str, value: Option<Value>, signer: &TestKey) -> String {
    let mut header = t0_header();
    match value {
        Some(value) => header[name] = value,
        None => {
            header.as_object_mut().expect("object").remove(name);
        }
    }
    sign(&header, &t0_payload(), signer)
}

// ---------------------------------------------------------------------------------------------
// Mock IdP

/// What one IdP of the mock serves, and how often it was asked.
pub struct Idp {
    pub issuer: Mutex<String>,
    pub discovery_status: Mutex<u16>,
    pub jwks: Mutex<Reply>,
    pub discovery_hits: AtomicUsize,
    pub jwks_hits: AtomicUsize,
}

/// A scripted response.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    /// When set, the response waits for a permit of this semaphore: a test holds the IdP's
    /// answer back for exactly as long as it wants.
    pub gate: Option<Arc<Semaphore>>,
}

impl Reply {
    pub fn ok(body: String) -> Reply {
        Reply {
            status: 200,
            body,
            headers: Vec::new(),
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
            gate: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn gated(mut self, gate: Arc<Semaphore>) -> Reply {
        self.gate = Some(gate);
        self
    }
}

/// A mock serving several IdPs under `/{name}/...`, plus a canary that counts any hit.
#[derive(Clone)]
pub struct MockIdp {
    pub base: String,
    idps: Arc<HashMap<String, Arc<Idp>>>,
    pub canary_hits: Arc<AtomicUsize>,
}

impl MockIdp {
    /// Starts the mock with `(name, issuer, jwks body)` entries.
    pub async fn start(entries: &[(&str, &str, String)]) -> MockIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let base = format!("http://{}", listener.local_addr().expect("has address"));
        let idps: HashMap<String, Arc<Idp>> = entries
            .iter()
            .map(|(name, issuer, body)| {
                let idp = Idp {
                    issuer: Mutex::new((*issuer).to_owned()),
                    discovery_status: Mutex::new(200),
                    jwks: Mutex::new(Reply::ok(body.clone())),
                    discovery_hits: AtomicUsize::new(0),
                    jwks_hits: AtomicUsize::new(0),
                };
                ((*name).to_owned(), Arc::new(idp))
            })
            .collect();
        let mock = MockIdp {
            base,
            idps: Arc::new(idps),
            canary_hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/{name}/.well-known/openid-configuration", get(discovery))
            .route("/{name}/jwks", get(jwks_handler))
            .route("/canary/{*rest}", get(canary))
            .with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("mock serves") });
        mock
    }

    /// IdP-A at `/a` and IdP-B at `/b`, as in the case fixtures.
    pub async fn start_a_b() -> MockIdp {
        MockIdp::start(&[("a", ISSUER_A, jwks_a()), ("b", ISSUER_B, jwks_b())]).await
    }

    pub fn idp(&self, name: &str) -> &Idp {
        self.idps.get(name).expect("idp exists")
    }

    pub fn discovery_url(&self, name: &str) -> String {
        format!("{}/{name}/.well-known/openid-configuration", self.base)
    }

    pub fn jwks_url(&self, name: &str) -> String {
        format!("{}/{name}/jwks", self.base)
    }

    pub fn jwks_hits(&self, name: &str) -> usize {
        self.idp(name).jwks_hits.load(Ordering::SeqCst)
    }

    pub fn set_jwks(&self, name: &str, reply: Reply) {
        *self.idp(name).jwks.lock().expect("lock") = reply;
    }

    /// An issuer entry for IdP `name` using its discovery document.
    pub fn config(&self, name: &str, issuer: &str, algorithms: &[&str]) -> IssuerConfig {
        serde_json::from_value(json!({
            "issuer": issuer,
            "discovery_url": self.discovery_url(name),
            "audiences": [AUDIENCE],
            "algorithms": algorithms,
        }))
        .expect("test config parses")
    }
}

async fn discovery(State(mock): State<MockIdp>, Path(name): Path<String>) -> Response {
    let Some(idp) = mock.idps.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    idp.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let status = *idp.discovery_status.lock().expect("lock");
    let issuer = idp.issuer.lock().expect("lock").clone();
    let body = json!({"issuer": issuer, "jwks_uri": mock.jwks_url(&name)}).to_string();
    let status = StatusCode::from_u16(status).expect("valid status");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn jwks_handler(State(mock): State<MockIdp>, Path(name): Path<String>) -> Response {
    let Some(idp) = mock.idps.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let reply = idp.jwks.lock().expect("lock").clone();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(gate) = &reply.gate {
        let _permit = gate.acquire().await.expect("gate stays open");
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("valid"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        let value = HeaderValue::from_str(&value).expect("header value");
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    response
}

async fn canary(State(mock): State<MockIdp>) -> Response {
    mock.canary_hits.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::OK,
        jwks(&[key("evil-rsa").jwk("evil-1", None, None)]),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Validators

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// Options for tests: a manual clock at [`NOW`], and no background refresh, so key sets are
/// refreshed only when a test calls `refresh_keys` (or a `kid` is unknown).
pub fn test_options(max_token_bytes: usize) -> (ValidatorOptions, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let options = ValidatorOptions {
        max_token_bytes,
        background_refresh: false,
        clock: clock.clone(),
        ..ValidatorOptions::default()
    };
    (options, clock)
}

/// A validator for `issuers` with [`test_options`].
pub async fn validator_for(
    issuers: Vec<IssuerConfig>,
    max_token_bytes: usize,
) -> Result<(Validator, Arc<ManualClock>), TokenError> {
    let (options, clock) = test_options(max_token_bytes);
    let validator = Validator::with_options(issuers, http(), options).await?;
    Ok((validator, clock))
}

/// Polls `done` every 10 ms until it holds; panics after 10 s, which only a broken build reaches.
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// The standard rig: IdP-A (RS256, ES256) and IdP-B (RS256, PS256).
pub struct Rig {
    pub mock: MockIdp,
    pub validator: Validator,
    pub clock: Arc<ManualClock>,
}

pub async fn rig() -> Rig {
    let mock = MockIdp::start_a_b().await;
    rig_on(mock).await
}

pub async fn rig_on(mock: MockIdp) -> Rig {
    let issuers = vec![
        mock.config("a", ISSUER_A, &["RS256", "ES256"]),
        mock.config("b", ISSUER_B, &["RS256", "PS256"]),
    ];
    let (validator, clock) = validator_for(issuers, cosmogate_validator::DEFAULT_MAX_TOKEN_BYTES)
        .await
        .expect("rig validator starts");
    Rig {
        mock,
        validator,
        clock,
    }
}

impl Rig {
    /// Runs the refresh the background task would run now.
    pub async fn refresh(&self) {
        self.validator.refresh_keys().await;
    }

    /// The reason code of validating `token`, or `"ok"`.
    pub async fn reason(&self, token: &str) -> &'static str {
        match self.validator.validate(token).await {
            Ok(_) => "ok",
            Err(error) => {
                let text = error.to_string();
                let leaks = token.len() >= 8 && text.contains(token);
                assert!(!leaks, "error message must not contain the token");
                error.reason_code()
            }
        }
    }
}

/// A socket bound to a free loopback port and never listening, with its address: connections
/// are refused, and while the socket lives no other test can be handed the port (as it could
/// a port whose listener was dropped).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    (socket, addr)
}
