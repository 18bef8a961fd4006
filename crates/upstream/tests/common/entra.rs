//! A loopback stand-in for the Entra ID v2 token endpoint, over TLS with its own certificate
//! (the `azure_identity` crate accepts only `https` authorities).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use url::Url;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// One scripted answer of the Entra stand-in.
#[derive(Clone)]
pub enum EntraReply {
    /// A token named `entra-<n>`, `expires_in` as a JSON number, as Entra sends it.
    Token { expires_in: u64 },
    /// The same after holding the request this many seconds.
    Slow { delay: u64, expires_in: u64 },
    /// An OAuth error with Entra's numeric codes and an optional `Retry-After`.
    Error {
        status: u16,
        code: &'static str,
        error_codes: Vec<u32>,
        retry_after: Option<u64>,
    },
    /// A status with a body that is not JSON, as a front door might answer.
    Html(u16),
}

impl EntraReply {
    pub fn token() -> EntraReply {
        EntraReply::Token { expires_in: 3599 }
    }

    pub fn error(status: u16, code: &'static str, error_code: u32) -> EntraReply {
        EntraReply::Error {
            status,
            code,
            error_codes: vec![error_code],
            retry_after: None,
        }
    }
}

/// A token request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct SeenExchange {
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    pub form: HashMap<String, String>,
}

pub struct EntraFake {
    script: Mutex<VecDeque<EntraReply>>,
    fallback: Mutex<EntraReply>,
    seen: Mutex<Vec<SeenExchange>>,
    issued: AtomicUsize,
    /// `https://127.0.0.1:<port>/`
    pub authority: Url,
    /// The stand-in's self-signed certificate, the only root the test client trusts.
    pub ca_pem: String,
}

impl EntraFake {
    /// Starts the stand-in on 127.0.0.1:0; `script` answers first, then `fallback` forever.
    pub async fn start(script: Vec<EntraReply>, fallback: EntraReply) -> Arc<EntraFake> {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = Arc::new(EntraFake {
            script: Mutex::new(script.into()),
            fallback: Mutex::new(fallback),
            seen: Mutex::new(Vec::new()),
            issued: AtomicUsize::new(0),
            authority: Url::parse(&format!("https://{addr}/")).expect("url"),
            ca_pem: certified.cert.pem(),
        });
        let router = Router::new()
            .fallback(exchange_handler)
            .with_state(fake.clone());
        serve_tls(listener, router, certified);
        fake
    }

    /// A client that trusts only this stand-in's certificate, built as the server builds its
    /// token-endpoint client (no proxy, no redirects).
    pub fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("pem");
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only([ca])
            .build()
            .expect("reqwest client")
    }

    pub fn requests(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub fn seen(&self) -> Vec<SeenExchange> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn set_fallback(&self, reply: EntraReply) {
        *self.fallback.lock().expect("lock") = reply;
    }

    fn next_reply(&self) -> EntraReply {
        let scripted = self.script.lock().expect("lock").pop_front();
        scripted.unwrap_or_else(|| self.fallback.lock().expect("lock").clone())
    }
}

fn serve_tls(
    listener: TcpListener,
    router: Router,
    certified: rcgen::CertifiedKey<rcgen::KeyPair>,
) {
    let key = rustls_pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .expect("key der");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(router);
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
}

/// Follows the client-credentials grant: POST `/{tenant}/oauth2/v2.0/token`, a form with
/// `grant_type=client_credentials`, one `/.default` scope, and a secret or an assertion.
async fn exchange_handler(
    State(fake): State<Arc<EntraFake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    fake.seen.lock().expect("lock").push(SeenExchange {
        method: method.clone(),
        path: uri.path().to_owned(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        form: form.clone(),
    });
    if let Some(refusal) = protocol_refusal(&method, &uri, &form) {
        return refusal;
    }
    match fake.next_reply() {
        EntraReply::Token { expires_in } => token(&fake, expires_in),
        EntraReply::Slow { delay, expires_in } => {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            token(&fake, expires_in)
        }
        EntraReply::Error {
            status,
            code,
            error_codes,
            retry_after,
        } => {
            let mut response = entra_error(status, code, &error_codes);
            if let Some(secs) = retry_after {
                let value = secs.to_string().parse().expect("header");
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        EntraReply::Html(status) => {
            let status = StatusCode::from_u16(status).expect("status");
            (status, [("content-type", "text/html")], "<html>busy</html>").into_response()
        }
    }
}

fn protocol_refusal(
    method: &Method,
    uri: &Uri,
    form: &HashMap<String, String>,
) -> Option<Response> {
    let segments: Vec<&str> = uri.path().split('/').collect();
    if *method != Method::POST
        || segments.len() != 5
        || segments[2..] != ["oauth2", "v2.0", "token"]
    {
        return Some(entra_error(404, "not_found", &[90002]));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Some(entra_error(400, "unsupported_grant_type", &[70003]));
    }
    if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return Some(entra_error(400, "invalid_scope", &[70011]));
    }
    let assertion = form.get("client_assertion_type").map(String::as_str) == Some(ASSERTION_TYPE)
        && form.get("client_assertion").is_some_and(|a| !a.is_empty());
    let secret = form.get("client_secret").is_some_and(|s| !s.is_empty());
    if assertion == secret || form.get("client_id").is_none_or(|c| c.is_empty()) {
        return Some(entra_error(400, "invalid_client", &[7000215]));
    }
    None
}

fn token(fake: &EntraFake, expires_in: u64) -> Response {
    let n = fake.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": format!("entra-{n}"),
    });
    json(StatusCode::OK, &body)
}

fn entra_error(status: u16, code: &str, error_codes: &[u32]) -> Response {
    let codes: Vec<String> = error_codes.iter().map(|c| format!("AADSTS{c}")).collect();
    let body = serde_json::json!({
        "error": code,
        "error_description": format!("{}: scripted failure", codes.join(",")),
        "error_codes": error_codes,
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    });
    json(StatusCode::from_u16(status).expect("status"), &body)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("json");
    (status, [("content-type", "application/json")], bytes).into_response()
}

/// A bound-then-closed loopback port: connecting to it is refused.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}
