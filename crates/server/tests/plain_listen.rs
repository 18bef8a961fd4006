//! `listen.tls = false`: a plain-HTTP listener only when the configuration says so, checked by
//! `cosmogate check`, and serving the whole request path (token, policy, credential swap) over
//! HTTP/1.1 and h2 with prior knowledge.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_server::{Config, Gateway};
use tokio::net::TcpListener;

const AUDIENCE: &str = "api://cosmogate-plain";
const MI_TOKEN: &str = "mi-token-for-the-upstream";

fn cosmogate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cosmogate"))
}

const POLICY: &str = r#"version = 1

[[roles]]
name = "orders-reader"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]

[[bindings]]
role = "orders-reader"
claim = "roles"
contains = "cosmos.reader"
"#;

/// A configuration whose `[listen]` section is `listen`; everything else is valid and on
/// loopback.
fn config_text(listen: &str, issuer: &str, upstream: &str, token_endpoint: &str) -> String {
    format!(
        r#"[listen]
{listen}

[[issuers]]
issuer = "{issuer}"
jwks_uri = "{issuer}/jwks"
audiences = ["{AUDIENCE}"]

[policy]
file = "policy.toml"

[upstream]
endpoint = "{upstream}"

[upstream.credential]
kind = "managed_identity"
endpoint = "{token_endpoint}/metadata/identity/oauth2/token"

[audit]
output = "audit.jsonl"
"#
    )
}

fn check(dir: &Path, listen: &str) -> (bool, String) {
    std::fs::write(dir.join("policy.toml"), POLICY).expect("write policy");
    let path = dir.join("cosmogate.toml");
    let text = config_text(
        listen,
        "http://127.0.0.1:9400",
        "http://127.0.0.1:9401/",
        "http://127.0.0.1:9402",
    );
    std::fs::write(&path, text).expect("write config");
    let output = cosmogate()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run cosmogate check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn check_accepts_plain_http_only_when_written_and_warns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = check(dir.path(), "address = \"127.0.0.1:0\"\ntls = false");
    assert!(ok, "{text}");
    assert!(text.contains("warning: listen.tls"), "{text}");
    assert!(text.contains("plain HTTP"), "{text}");
}

#[test]
fn check_refuses_a_listener_without_certificate_unless_tls_is_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Omitting the certificate and key is not a way to turn TLS off.
    let (ok, text) = check(dir.path(), "address = \"127.0.0.1:0\"");
    assert!(!ok, "{text}");
    assert!(text.contains("listen.tls_cert_file: required"), "{text}");
    assert!(text.contains("listen.tls_key_file: required"), "{text}");
    assert!(text.contains("listen.tls = false"), "{text}");
}

#[test]
fn check_refuses_certificates_on_a_plain_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text) = check(
        dir.path(),
        "address = \"127.0.0.1:0\"\ntls = false\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"",
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("listen.tls_cert_file: must not be set when `listen.tls = false`"),
        "{text}"
    );
    assert!(
        text.contains("listen.tls_key_file: must not be set"),
        "{text}"
    );
}

#[test]
fn an_http_public_url_needs_a_plain_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
    let (ok, text) = check(
        dir.path(),
        "address = \"127.0.0.1:0\"\npublic_url = \"http://gw.example/\"\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"",
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("listen.public_url: must be an https URL"),
        "{text}"
    );

    // Behind a TLS-terminating ingress the public URL stays https, or may be http.
    for url in ["https://gw.example/", "http://gw.example:8080/"] {
        let (ok, text) = check(
            dir.path(),
            &format!("address = \"127.0.0.1:0\"\ntls = false\npublic_url = \"{url}\""),
        );
        assert!(ok, "{url}: {text}");
    }
    let (ok, text) = check(
        dir.path(),
        "address = \"127.0.0.1:0\"\ntls = false\npublic_url = \"ftp://gw.example/\"",
    );
    assert!(!ok, "{text}");
    assert!(text.contains("listen.public_url"), "{text}");
}

/// What the upstream stand-in saw: the Authorization header of every request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn serve_router(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// A point read answered like Cosmos DB, recording the credential it was sent.
async fn upstream_document(State(seen): State<Seen>, headers: HeaderMap) -> impl IntoResponse {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if let Ok(mut seen) = seen.0.lock() {
        seen.push(auth);
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("x-ms-request-charge"), "1"),
        ],
        r#"{"id":"o1","_rid":"abc","_etag":"\"1\""}"#,
    )
}

/// The IMDS protocol, as the documented endpoint answers it.
async fn imds(headers: HeaderMap) -> impl IntoResponse {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (StatusCode::BAD_REQUEST, String::new());
    }
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    (
        StatusCode::OK,
        format!(
            r#"{{"access_token":"{MI_TOKEN}","expires_in":"3600","expires_on":"{expires_on}","resource":"https://cosmos.azure.com","token_type":"Bearer"}}"#
        ),
    )
}

#[tokio::test]
async fn a_plain_listener_serves_the_whole_request_path_over_http1_and_h2() {
    // The identity provider's key, and a token signed with it.
    let key = rcgen::KeyPair::generate().expect("key pair");
    let point = key.public_key_raw();
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"k1","x":"{}","y":"{}"}}]}}"#,
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..65])
    );
    let idp = serve_router(Router::new().route(
        "/jwks",
        get(move || {
            let jwks = jwks.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], jwks) }
        }),
    ))
    .await;
    let issuer = format!("http://{idp}");
    let seen = Seen::default();
    let upstream = serve_router(
        Router::new()
            .route("/dbs/shop/colls/orders/docs/o1", get(upstream_document))
            .with_state(seen.clone()),
    )
    .await;
    let token_endpoint =
        serve_router(Router::new().route("/metadata/identity/oauth2/token", get(imds))).await;

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("policy.toml"), POLICY).expect("policy");
    let path = dir.path().join("cosmogate.toml");
    let text = config_text(
        "address = \"127.0.0.1:0\"\ntls = false",
        &issuer,
        &format!("http://{upstream}/"),
        &format!("http://{token_endpoint}"),
    );
    std::fs::write(&path, text).expect("config");
    let loaded = Config::load(&path).expect("valid config");
    let gateway = Gateway::build(loaded).await.expect("gateway starts");
    let listener = gateway.bind().await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.serve(listener, async move {
        let _ = stopped.await;
    }));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "app-reader", "iat": now, "exp": now + 600,
        "roles": ["cosmos.reader"],
    });
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jwt_header.kid = Some("k1".to_owned());
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
        .expect("signing key");
    let token = jsonwebtoken::encode(&jwt_header, &claims, &signing).expect("token");

    let url = format!("http://{address}/dbs/shop/colls/orders/docs/o1");
    let h1 = reqwest::Client::builder().build().expect("h1 client");
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2 client");
    for (name, client, version) in [
        ("HTTP/1.1", &h1, reqwest::Version::HTTP_11),
        ("h2", &h2, reqwest::Version::HTTP_2),
    ] {
        let allowed = client
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("x-ms-documentdb-partitionkey", r#"["o1"]"#)
            .send()
            .await
            .expect("request");
        assert_eq!(allowed.version(), version, "{name}");
        assert_eq!(allowed.status(), 200, "{name}");
        let body = allowed.text().await.expect("body");
        assert!(body.contains(r#""id":"o1""#), "{name}: {body}");

        let refused = client.get(&url).send().await.expect("request");
        assert_eq!(refused.status(), 401, "{name}: no token");
    }

    // The upstream saw cosmogate's own credential for both allowed requests, never the app's.
    let seen = seen.0.lock().expect("seen").clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for auth in &seen {
        assert!(auth.contains(MI_TOKEN), "{auth}");
        assert!(
            !auth.contains(&token),
            "the app's token reached the upstream"
        );
    }

    let _ = stop.send(());
    server.await.expect("join").expect("clean shutdown");
}
