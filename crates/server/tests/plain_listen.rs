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

[log]
format = "json"
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

/// The stand-ins a gateway needs (identity provider, upstream, token endpoint), a
/// configuration for them with the listener `listen` in a temporary folder, and a reader
/// token.
struct Rig {
    config: std::path::PathBuf,
    token: String,
    seen: Seen,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start(listen: &str) -> Rig {
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
            listen,
            &issuer,
            &format!("http://{upstream}/"),
            &format!("http://{token_endpoint}"),
        );
        std::fs::write(&path, text).expect("config");

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
        Rig {
            config: path,
            token,
            seen,
            dir,
        }
    }

    /// The audit records the gateway wrote, one JSON object per line.
    fn audit_records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).expect("audit");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect()
    }
}

/// A gateway on a plain listener, in this process, with its [`Rig`].
struct PlainGateway {
    address: SocketAddr,
    rig: Rig,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), cosmogate_server::StartupError>>,
}

impl PlainGateway {
    async fn start() -> PlainGateway {
        let rig = Rig::start("address = \"127.0.0.1:0\"\ntls = false").await;
        let loaded = Config::load(&rig.config).expect("valid config");
        let gateway = Gateway::build(loaded).await.expect("gateway starts");
        let listener = gateway.bind().await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        PlainGateway {
            address,
            rig,
            stop,
            server,
        }
    }

    /// Stops the gateway (which writes every queued audit record) and returns the records.
    async fn stop(self) -> Vec<serde_json::Value> {
        let _ = self.stop.send(());
        self.server.await.expect("join").expect("clean shutdown");
        self.rig.audit_records()
    }
}

#[tokio::test]
async fn a_plain_listener_serves_the_whole_request_path_over_http1_and_h2() {
    let gateway = PlainGateway::start().await;
    let (address, token, seen) = (
        gateway.address,
        gateway.rig.token.clone(),
        gateway.rig.seen.clone(),
    );
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

    gateway.stop().await;
}

/// `cosmogate serve` as a process on the CPUs `cpus` (`taskset`), with `worker_threads` as
/// `TOKIO_WORKER_THREADS` if given: the scheduler and worker count its start-up log names.
/// Fails unless it serves a reader's point read with its own credential and, on SIGTERM,
/// stops cleanly with that request's audit record written.
async fn serve_on(cpus: &str, worker_threads: Option<&str>) -> (String, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free port")
        .port();
    let rig = Rig::start(&format!("address = \"127.0.0.1:{port}\"\ntls = false")).await;
    let log = rig.dir.path().join("stderr.log");
    let mut command = Command::new("taskset");
    command
        .args(["-c", cpus])
        .arg(env!("CARGO_BIN_EXE_cosmogate"))
        .args(["serve", "--config"])
        .arg(&rig.config)
        .current_dir(rig.dir.path())
        .env_remove("TOKIO_WORKER_THREADS")
        .env_remove("COSMOGATE_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    if let Some(count) = worker_threads {
        command.env("TOKIO_WORKER_THREADS", count);
    }
    let mut child = command.spawn().expect("taskset runs cosmogate");

    let url = format!("http://127.0.0.1:{port}/dbs/shop/colls/orders/docs/o1");
    let client = reqwest::Client::new();
    let mut status = None;
    for _ in 0..100 {
        let sent = client
            .get(&url)
            .header(
                "authorization",
                format!("type=aad&ver=1.0&sig={}", rig.token),
            )
            .header("x-ms-documentdb-partitionkey", r#"["o1"]"#)
            .send()
            .await;
        if let Ok(response) = sent {
            status = Some(response.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|status| status.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(status, Some(StatusCode::OK), "{text}");
    assert!(terminated, "kill -TERM");
    assert!(
        exit.is_some_and(|status| status.success()),
        "a clean stop on SIGTERM within ten seconds: {exit:?}\n{text}"
    );
    let records = rig.audit_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow", "{records:?}");
    assert_eq!(records[0]["status"], 200, "{records:?}");
    let seen = rig.seen.0.lock().expect("seen").clone();
    assert!(
        seen.len() == 1 && seen[0].contains(MI_TOKEN),
        "the upstream saw cosmogate's credential: {seen:?}"
    );

    let started = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["message"] == "Async runtime started")
        .unwrap_or_else(|| panic!("no start-up line: {text}"));
    let fields = &started["fields"];
    (
        fields["scheduler"].as_str().unwrap_or("").to_owned(),
        fields["workers"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_core_the_binary_serves_on_the_current_thread_scheduler() {
    assert_eq!(
        serve_on("0", None).await,
        ("current_thread".to_owned(), 1),
        "one usable core"
    );
    // A worker count in the environment is tokio's, and is obeyed.
    assert_eq!(
        serve_on("0", Some("1")).await,
        ("multi_thread".to_owned(), 1),
        "TOKIO_WORKER_THREADS=1"
    );
}

/// Reads from `stream` until `done` says the bytes so far are complete, the peer closes, or
/// five seconds pass. Returns the bytes and whether the peer closed.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    done: impl Fn(&str) -> bool,
) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
        let text = String::from_utf8_lossy(&seen);
        if done(&text) {
            return (text.into_owned(), false);
        }
    }
}

/// The number of complete HTTP/1.1 responses in `text` (each has a Content-Length body).
fn responses(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

/// Sends `head` and then `size` body bytes on `stream` (stopping once the peer stops reading),
/// and returns what came back up to the first response body.
async fn send_large(mut stream: tokio::net::TcpStream, head: String, size: usize) -> String {
    use tokio::io::AsyncWriteExt;
    stream.write_all(head.as_bytes()).await.expect("head");
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..size / chunk.len() {
            if stream.write_all(&chunk).await.is_err() {
                break;
            }
        }
        stream
    });
    let mut stream = writer.await.expect("writer");
    read_until(&mut stream, |text| text.contains("\r\n\r\n{"))
        .await
        .0
}

fn write_head(token: &str, content_length: usize) -> String {
    format!(
        "POST /dbs/shop/colls/orders/docs HTTP/1.1\r\nhost: gw\r\n\
         authorization: type=aad&ver=1.0&sig={token}\r\n\
         x-ms-documentdb-partitionkey: [\"o1\"]\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_refused_write_whose_body_arrives_late_leaves_the_connection_usable() {
    use tokio::io::AsyncWriteExt;
    let gateway = PlainGateway::start().await;
    let mut stream = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    // The head of a write the reader may not make, then its body a moment later (the refusal
    // is decided in between), as Python's http.client sends them; then a read on the same
    // connection.
    let body = r#"{"id":"o2","tenant":"o1","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    stream
        .write_all(write_head(&gateway.rig.token, body.len()).as_bytes())
        .await
        .expect("head");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stream.write_all(body.as_bytes()).await.expect("body");
    let read = format!(
        "GET /dbs/shop/colls/orders/docs/o1 HTTP/1.1\r\nhost: gw\r\n\
         authorization: type=aad&ver=1.0&sig={}\r\n\
         x-ms-documentdb-partitionkey: [\"o1\"]\r\n\r\n",
        gateway.rig.token
    );
    stream
        .write_all(read.as_bytes())
        .await
        .expect("second request");
    let (text, closed) = read_until(&mut stream, |text| text.contains(r#""id":"o1""#)).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(!closed, "the refusal must not close the connection: {text}");
    assert!(
        !text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(responses(&text), 2, "the next request is served: {text}");
    assert!(text.contains("HTTP/1.1 200"), "{text}");

    let audit = gateway.stop().await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["reason"], "action_not_granted", "{}", audit[0]);
    assert_eq!(
        audit[0]["bytes_in"],
        body.len(),
        "the drained body is counted"
    );
    assert_eq!(audit[1]["status"], 200);
}

#[tokio::test]
async fn a_refused_body_that_stalls_is_too_large_or_awaits_100_continue_closes_the_connection() {
    use tokio::io::AsyncWriteExt;
    let gateway = PlainGateway::start().await;

    // Declares 100 bytes and sends 10: the refusal comes after the drain timeout, and says
    // the connection closes.
    let mut stalled = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    stalled
        .write_all(format!("{}0123456789", write_head(&gateway.rig.token, 100)).as_bytes())
        .await
        .expect("partial request");
    let (text, closed) = read_until(&mut stalled, |_| false).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(closed, "{text}");

    // No token, and a body over the drain bound: refused with `Connection: close`.
    let large = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    let size = 5 << 20;
    let head = write_head("", size).replace("sig=", "sig=not-a-token");
    let text = send_large(large, head, size).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(responses(&text), 1);

    // A client waiting for `100 Continue` is not asked for a body that would be thrown away:
    // the refusal comes at once, without a 100, and closes the connection.
    let mut waiting = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    let head = write_head(&gateway.rig.token, 100).replace(
        "content-length: 100\r\n",
        "content-length: 100\r\nexpect: 100-continue\r\n",
    );
    waiting.write_all(head.as_bytes()).await.expect("head");
    let (text, closed) = read_until(&mut waiting, |_| false).await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(closed, "{text}");

    let audit = gateway.stop().await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(audit[0]["status"], 403);
    assert_eq!(audit[0]["bytes_in"], 10);
    assert_eq!(audit[1]["status"], 401);
    assert_eq!(audit[2]["status"], 403);
    assert_eq!(audit[2]["bytes_in"], 0);
}

#[tokio::test]
async fn a_batch_over_its_limit_is_refused_with_the_bytes_read_counted_and_the_connection_closed() {
    let gateway = PlainGateway::start().await;
    let stream = tokio::net::TcpStream::connect(gateway.address)
        .await
        .expect("connect");
    // A transactional batch declaring 3 MiB, over the 2 MiB + 64 KiB default: cosmogate reads up
    // to its limit, refuses with 413, and cannot keep the connection (the rest is unread).
    let size = 3 << 20;
    let head = write_head(&gateway.rig.token, size).replace(
        "content-type: application/json\r\n",
        "content-type: application/json\r\nx-ms-cosmos-is-batch-request: true\r\n\
         x-ms-cosmos-batch-atomic: true\r\n",
    );
    let text = send_large(stream, head, size).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );

    let audit = gateway.stop().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["reason"], "batch_body_too_large");
    let read = audit[0]["bytes_in"].as_u64().expect("bytes_in");
    let limit = 2 * 1024 * 1024 + 64 * 1024;
    assert!(
        read > limit && read < size as u64,
        "the bytes read up to the limit are counted: {read}"
    );
}
