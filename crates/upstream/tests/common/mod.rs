//! Loopback fakes shared by the integration tests: a managed-identity token endpoint that
//! follows the IMDS and App Service protocols, and a recording Cosmos upstream.
#![allow(dead_code)]

pub mod entra;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use cosmogate_upstream::{CredentialConfig, ManagedIdentityConfig, MiSource};
use tokio::net::TcpListener;
use url::Url;

pub const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
pub const APP_SERVICE_PATH: &str = "/msi/token";

/// Which protocol the fake token endpoint enforces.
#[derive(Clone)]
pub enum Protocol {
    /// Requires `Metadata: true`, answers with every value as a JSON string.
    Imds,
    /// Requires `X-IDENTITY-HEADER: <secret>`, answers without `expires_in`.
    AppService { secret: String },
}

/// How `expires_on` is written in successful answers.
#[derive(Clone, Copy)]
pub enum ExpiresOn {
    EpochString,
    /// Epoch seconds as a JSON number, as some hosts send it.
    EpochNumber,
    /// An RFC 3339 date string.
    Rfc3339,
    /// The legacy App Service form, `M/D/YYYY h:mm:ss AM +00:00`.
    LegacyDate,
}

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    /// A token living this many seconds, named `token-<n>` with n counting from 1.
    Token(u64),
    /// The same, after holding the request this many seconds.
    SlowToken { delay: u64, lifetime: u64 },
    /// An error status with an OAuth error code and an optional `Retry-After`.
    Error {
        status: u16,
        code: &'static str,
        retry_after: Option<u64>,
    },
}

impl Reply {
    pub fn error(status: u16, code: &'static str) -> Reply {
        Reply::Error {
            status,
            code,
            retry_after: None,
        }
    }
}

/// A request as the token endpoint saw it.
#[derive(Clone, Debug)]
pub struct SeenTokenRequest {
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
}

pub struct TokenFake {
    protocol: Protocol,
    expires_on: ExpiresOn,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    seen: Mutex<Vec<SeenTokenRequest>>,
    issued: AtomicUsize,
    pub url: Url,
}

impl TokenFake {
    /// Starts the fake on 127.0.0.1:0; `script` answers first, then `fallback` forever.
    pub async fn start(
        protocol: Protocol,
        expires_on: ExpiresOn,
        script: Vec<Reply>,
        fallback: Reply,
    ) -> Arc<TokenFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let path = match protocol {
            Protocol::Imds => IMDS_PATH,
            Protocol::AppService { .. } => APP_SERVICE_PATH,
        };
        let fake = Arc::new(TokenFake {
            protocol,
            expires_on,
            script: Mutex::new(script.into()),
            fallback: Mutex::new(fallback),
            seen: Mutex::new(Vec::new()),
            issued: AtomicUsize::new(0),
            url: Url::parse(&format!("http://{addr}{path}")).expect("url"),
        });
        let app = Router::new()
            .fallback(token_handler)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        fake
    }

    pub async fn imds(script: Vec<Reply>, fallback: Reply) -> Arc<TokenFake> {
        Self::start(Protocol::Imds, ExpiresOn::EpochString, script, fallback).await
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub fn seen(&self) -> Vec<SeenTokenRequest> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn set_fallback(&self, reply: Reply) {
        *self.fallback.lock().expect("lock") = reply;
    }

    fn next_reply(&self) -> Reply {
        let scripted = self.script.lock().expect("lock").pop_front();
        scripted.unwrap_or_else(|| self.fallback.lock().expect("lock").clone())
    }
}

async fn token_handler(
    State(fake): State<Arc<TokenFake>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    fake.seen.lock().expect("lock").push(SeenTokenRequest {
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.clone(),
    });
    match &fake.protocol {
        Protocol::Imds if headers.get("metadata").map(|v| v.as_bytes()) != Some(b"true") => {
            return oauth_error(
                400,
                "bad_request_102",
                "Required metadata header not specified",
            );
        }
        Protocol::AppService { secret }
            if headers.get("x-identity-header").map(|v| v.as_bytes())
                != Some(secret.as_bytes()) =>
        {
            return oauth_error(401, "unauthorized", "identity header missing or wrong");
        }
        _ => {}
    }
    match fake.next_reply() {
        Reply::SlowToken { delay, lifetime } => {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            let n = fake.issued.fetch_add(1, Ordering::SeqCst) + 1;
            token_body(&fake, n, lifetime)
        }
        Reply::Token(lifetime) => {
            let n = fake.issued.fetch_add(1, Ordering::SeqCst) + 1;
            token_body(&fake, n, lifetime)
        }
        Reply::Error {
            status,
            code,
            retry_after,
        } => {
            let mut response = oauth_error(status, code, "scripted failure");
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", secs.to_string().parse().expect("header"));
            }
            response
        }
    }
}

fn token_body(fake: &TokenFake, n: usize, lifetime: u64) -> Response {
    let now = epoch_now();
    let expires_on: serde_json::Value = match fake.expires_on {
        ExpiresOn::EpochString => (now + lifetime).to_string().into(),
        ExpiresOn::EpochNumber => (now + lifetime).into(),
        ExpiresOn::LegacyDate => legacy_date(now + lifetime).into(),
        ExpiresOn::Rfc3339 => rfc3339(now + lifetime).into(),
    };
    let mut body = serde_json::json!({
        "access_token": format!("token-{n}"),
        "expires_on": expires_on,
        "not_before": now.to_string(),
        "resource": "https://cosmos.azure.com",
        "token_type": "Bearer",
    });
    if matches!(fake.protocol, Protocol::Imds) {
        body["refresh_token"] = "".into();
        // Every other form of expires_on comes alone, so it is the only source of the expiry.
        if matches!(fake.expires_on, ExpiresOn::EpochString) {
            body["expires_in"] = lifetime.to_string().into();
            body["ext_expires_in"] = lifetime.to_string().into();
        }
    } else {
        body["client_id"] = "00000000-0000-0000-0000-000000000001".into();
    }
    json_response(StatusCode::OK, &body)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("json");
    (status, [("content-type", "application/json")], bytes).into_response()
}

fn oauth_error(status: u16, code: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).expect("status");
    let body = serde_json::json!({"error": code, "error_description": description});
    json_response(status, &body)
}

pub fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for an epoch second.
pub fn rfc3339(epoch: u64) -> String {
    let (year, month, day) = civil_from_days((epoch / 86_400) as i64);
    let secs = epoch % 86_400;
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `M/D/YYYY h:mm:ss AM +00:00` for an epoch second.
pub fn legacy_date(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (h12, meridiem) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    format!("{month}/{day}/{year} {h12}:{minute:02}:{second:02} {meridiem} +00:00")
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A managed-identity config pointing at `endpoint`, with the documented defaults.
pub fn mi_config(source: MiSource, endpoint: Option<&Url>) -> ManagedIdentityConfig {
    ManagedIdentityConfig {
        source,
        endpoint: endpoint.cloned(),
        identity_header_env: "IDENTITY_HEADER".to_owned(),
        resource: "https://cosmos.azure.com".to_owned(),
        client_id: None,
        object_id: None,
        resource_id: None,
    }
}

pub fn imds_credential_config(fake: &TokenFake) -> CredentialConfig {
    CredentialConfig::ManagedIdentity(mi_config(MiSource::Imds, Some(&fake.url)))
}

/// A token-endpoint client without proxy and redirects, as the server must build it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// Waits (in paused time, one virtual second per step) until `cond` holds.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("condition not met within 600 virtual seconds");
}

/// A request exactly as the recording upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// What the recording upstream answers with.
#[derive(Clone)]
pub struct UpstreamReply {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: &'static str,
}

/// Records every request and answers with a fixed reply.
#[derive(Clone)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Recorded>>>,
    reply: UpstreamReply,
}

impl Recorder {
    pub fn new(reply: UpstreamReply) -> Recorder {
        Recorder {
            seen: Arc::new(Mutex::new(Vec::new())),
            reply,
        }
    }

    pub fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .fallback(record_handler)
            .with_state(self.clone())
    }
}

async fn record_handler(State(recorder): State<Recorder>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    recorder.seen.lock().expect("lock").push(Recorded {
        method: parts.method,
        target: parts.uri.to_string(),
        version: parts.version,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    });
    let reply = &recorder.reply;
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (name, value) in &reply.headers {
        response
            .headers_mut()
            .append(*name, value.parse().expect("header"));
    }
    response
}

/// Serves `router` over plain HTTP on 127.0.0.1:0.
pub async fn serve_http(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// A socket bound to a free loopback port and never listening, with its address: connections
/// are refused, and while the socket lives no other test can be handed the port (as it could
/// a port whose listener was dropped).
pub fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    (socket, addr)
}
