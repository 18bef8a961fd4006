//! The forwarder against recording upstreams on loopback, over plain HTTP and HTTPS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::{Recorded, Recorder, Reply, TokenFake, UpstreamReply, http_client};
use cosmogate_upstream::{Credential, CredentialConfig, Forwarder, UpstreamBody, UpstreamConfig};
use futures_util::StreamExt as _;
use http::{Method, Request, Version};
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use url::Url;

const RAW_TARGET: &str = "/dbs/a%20b/colls/c/docs/x%2Fy?x=1";

fn cosmos_reply() -> UpstreamReply {
    UpstreamReply {
        status: 201,
        headers: vec![
            ("x-ms-request-charge", "5.71"),
            ("x-ms-session-token", "0:-1#12"),
            ("x-ms-continuation", "{\"token\":\"+RID:~abc\"}"),
            ("etag", "\"00000000-0000-0000-1234-000000000000\""),
            ("x-ms-substatus", "0"),
            ("x-ms-activity-id", "7a2f0b9e-0000-0000-0000-000000000000"),
            ("connection", "x-upstream-private"),
            ("x-upstream-private", "1"),
            ("keep-alive", "timeout=5"),
        ],
        body: "{\"id\":\"x/y\"}",
    }
}

fn config(endpoint: &str, credential: CredentialConfig) -> UpstreamConfig {
    UpstreamConfig {
        endpoint: Url::parse(endpoint).expect("endpoint url"),
        ca_file: None,
        connect_timeout_seconds: 5,
        response_timeout_seconds: 30,
        idle_timeout_seconds: 90,
        body_timeout_seconds: 60,
        regions: Vec::new(),
        credential,
    }
}

fn body(bytes: &'static [u8]) -> UpstreamBody {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An upstream on plain HTTP and a forwarder to it using an IMDS-fake managed identity.
async fn http_setup(reply: UpstreamReply) -> (Forwarder, Recorder, std::net::SocketAddr) {
    let recorder = Recorder::new(reply);
    let addr = common::serve_http(recorder.router()).await;
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = Credential::new(&common::imds_credential_config(&fake), http_client())
        .await
        .expect("credential");
    let cfg = config(
        &format!("http://{addr}/"),
        common::imds_credential_config(&fake),
    );
    let forwarder = Forwarder::new(&cfg, credential).expect("forwarder");
    (forwarder, recorder, addr)
}

fn only(recorder: &Recorder) -> Recorded {
    let seen = recorder.seen();
    assert_eq!(seen.len(), 1, "exactly one upstream request");
    seen.into_iter().next().expect("one request")
}

#[tokio::test]
async fn request_reaches_upstream_with_our_credential_and_the_exact_target() {
    let (forwarder, recorder, addr) = http_setup(cosmos_reply()).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(RAW_TARGET)
        .header("host", "cosmogate.example")
        .header("x-first", "1")
        .header("authorization", "type=aad&ver=1.0&sig=client-jwt")
        .header("connection", "keep-alive, X-Drop-Me")
        .header("x-drop-me", "secret-hop")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-ms-date", "Thu, 01 Jan 2015 00:00:00 GMT")
        .header("date", "garbage")
        .header("x-ms-documentdb-partitionkey", "[\"tenant-1\"]")
        .header("x-ms-session-token", "0:-1#11")
        .header("x-ms-version", "2020-07-15")
        .header("x-last", "2")
        .body(body(b"{\"id\":\"x/y\"}"))
        .expect("request");
    let response = forwarder
        .forward(request, "docs", "dbs/a b/colls/c")
        .await
        .expect("forwarded");
    assert_eq!(response.status(), 201);

    let seen = only(&recorder);
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.target, RAW_TARGET);
    assert_eq!(
        seen.header("host").as_deref(),
        Some(addr.to_string().as_str())
    );
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("type=aad&ver=1.0&sig=token-1")
    );
    let date = seen.header("x-ms-date").expect("x-ms-date set");
    let sent = httpdate::parse_http_date(&date).expect("rfc 7231 date");
    assert!(
        sent > std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        "{date}"
    );
    for gone in [
        "x-drop-me",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "date",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} must not be forwarded");
    }
    // Every end-to-end header arrives once; the order between names is not kept (nor meant).
    let mut kept: Vec<&str> = seen
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("x-") && *name != "x-ms-date")
        .collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        [
            "x-first",
            "x-last",
            "x-ms-documentdb-partitionkey",
            "x-ms-session-token",
            "x-ms-version",
        ]
    );
    assert_eq!(seen.body, b"{\"id\":\"x/y\"}");
}

#[tokio::test]
async fn absolute_form_target_is_forwarded_as_its_path_and_query() {
    let (forwarder, recorder, _) = http_setup(cosmos_reply()).await;
    let request = Request::builder()
        .uri(format!("http://cosmogate.example{RAW_TARGET}"))
        .body(body(b""))
        .expect("request");
    forwarder
        .forward(request, "docs", "dbs/a b/colls/c/docs/x/y")
        .await
        .expect("forwarded");
    assert_eq!(only(&recorder).target, RAW_TARGET);
}

#[tokio::test]
async fn response_status_and_cosmos_headers_pass_through_without_hop_headers() {
    let (forwarder, _, _) = http_setup(cosmos_reply()).await;
    let request = Request::get(RAW_TARGET).body(body(b"")).expect("request");
    let response = forwarder
        .forward(request, "docs", "x")
        .await
        .expect("forwarded");
    assert_eq!(response.status(), 201);
    let headers = response.headers();
    for (name, value) in cosmos_reply().headers.iter().take(6) {
        assert_eq!(
            headers.get(*name).map(|v| v.as_bytes()),
            Some(value.as_bytes()),
            "{name}"
        );
    }
    for gone in [
        "connection",
        "x-upstream-private",
        "keep-alive",
        "transfer-encoding",
    ] {
        assert!(headers.get(gone).is_none(), "{gone} must not come back");
    }
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"{\"id\":\"x/y\"}");
}

/// A reply whose head carries `sizes.len()` Cosmos-looking headers of the given sizes.
fn reply_with_large_headers(sizes: &[(&'static str, usize)]) -> UpstreamReply {
    let headers = sizes
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let value: String = (0..*size)
                .map(|j| char::from(b'A' + ((i + j) % 26) as u8))
                .collect();
            (*name, &*value.leak())
        })
        .collect();
    UpstreamReply {
        status: 200,
        headers,
        body: "{}",
    }
}

/// A document feed read through a forwarder to an upstream answering with `reply`.
async fn read_container_feed(
    reply: UpstreamReply,
) -> Result<http::Response<cosmogate_upstream::ResponseBody>, cosmogate_upstream::UpstreamError> {
    let (forwarder, _, _) = http_setup(reply).await;
    let request = Request::get("/dbs/shop/colls/orders/docs")
        .body(body(b""))
        .expect("request");
    forwarder
        .forward(request, "docs", "dbs/shop/colls/orders")
        .await
}

#[tokio::test]
async fn a_response_head_of_64_kib_is_relayed_intact() {
    let reply = large_cosmos_head();
    let response = read_container_feed(reply.clone())
        .await
        .expect("a 65 KiB head is accepted");
    assert_relayed(&response, &reply);
}

/// Case C27(b): a 16 KiB continuation and a 15 KiB session token, and more, 65 KiB in all.
fn large_cosmos_head() -> UpstreamReply {
    reply_with_large_headers(&[
        ("x-ms-continuation", 16 * 1024),
        ("x-ms-session-token", 15 * 1024),
        ("x-ms-cosmos-index-utilization", 17 * 1024),
        ("x-ms-cosmos-query-execution-info", 17 * 1024),
    ])
}

fn assert_relayed(
    response: &http::Response<cosmogate_upstream::ResponseBody>,
    reply: &UpstreamReply,
) {
    assert_eq!(response.status(), 200);
    for (name, value) in &reply.headers {
        assert_eq!(
            response.headers().get(*name).map(|v| v.as_bytes()),
            Some(value.as_bytes()),
            "{name} relayed byte for byte"
        );
    }
}

#[tokio::test]
async fn a_response_head_beyond_the_buffer_bound_is_an_upstream_error() {
    let reply = reply_with_large_headers(&[
        ("x-ms-continuation", 100 * 1024),
        ("x-ms-session-token", 100 * 1024),
    ]);
    let error = read_container_feed(reply)
        .await
        .expect_err("a 200 KiB head is refused");
    assert!(
        matches!(error, cosmogate_upstream::UpstreamError::Protocol { .. }),
        "{error:?}"
    );
    // The cause is hyper refusing a head larger than its buffer, not some other failure.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut too_large = false;
    while let Some(current) = cause {
        if let Some(hyper_error) = current.downcast_ref::<hyper::Error>() {
            too_large |= hyper_error.is_parse_too_large();
        }
        cause = current.source();
    }
    assert!(too_large, "not a too-large head: {error:?}");
    let described = format!("{error} {error:?}");
    assert!(
        !described.contains("ABCDEFGHIJKLMNOP"),
        "no header value in the error: {described}"
    );
}

#[tokio::test]
async fn throttling_answer_is_passed_on_once_and_unchanged() {
    let reply = UpstreamReply {
        status: 429,
        headers: vec![("x-ms-retry-after-ms", "abc"), ("x-ms-substatus", "3200")],
        body: "{\"code\":\"TooManyRequests\"}",
    };
    let (forwarder, recorder, _) = http_setup(reply).await;
    let request = Request::post("/dbs/shop/colls/orders/docs")
        .body(body(b"{}"))
        .expect("request");
    let response = forwarder
        .forward(request, "docs", "dbs/shop/colls/orders")
        .await
        .expect("forwarded");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-ms-retry-after-ms"], "abc");
    assert_eq!(response.headers()["x-ms-substatus"], "3200");
    assert_eq!(recorder.seen().len(), 1, "no retry of a client request");
}

#[tokio::test]
async fn four_mebibyte_streamed_body_arrives_intact() {
    let (forwarder, recorder, _) = http_setup(cosmos_reply()).await;
    let chunks: Vec<Bytes> = (0..64u8)
        .map(|i| Bytes::from((0..65_536u32).map(|j| (j as u8) ^ i).collect::<Vec<u8>>()))
        .collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let stream = futures_util::stream::iter(chunks)
        .map(|chunk| Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(chunk)));
    let request = Request::post("/dbs/shop/colls/orders/docs")
        .header("transfer-encoding", "chunked")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("request");
    forwarder
        .forward(request, "docs", "dbs/shop/colls/orders")
        .await
        .expect("forwarded");
    let seen = only(&recorder);
    assert_eq!(seen.body.len(), 4 * 1024 * 1024);
    assert!(seen.body == expected, "body bytes differ");
}

#[tokio::test]
async fn master_key_signature_covers_method_type_link_and_the_date_sent() {
    let recorder = Recorder::new(cosmos_reply());
    let addr = common::serve_http(recorder.router()).await;
    let (credential, cred_cfg) = master_key_credential().await;
    assert_eq!(credential.kind(), "master_key");
    let cfg = config(&format!("http://{addr}/"), cred_cfg);
    let forwarder = Forwarder::new(&cfg, credential).expect("forwarder");
    let request = Request::delete("/dbs/Shop/colls/orders/docs/1")
        .body(body(b""))
        .expect("request");
    forwarder
        .forward(request, "docs", "dbs/Shop/colls/orders/docs/1")
        .await
        .expect("forwarded");

    let seen = only(&recorder);
    let date = seen.header("x-ms-date").expect("date sent");
    let payload = format!(
        "delete\ndocs\ndbs/Shop/colls/orders/docs/1\n{}\n\n",
        date.to_lowercase()
    );
    let expected = master_signature(b"secret-key", &payload);
    assert_eq!(seen.header("authorization"), Some(expected));
}

fn master_signature(key: &[u8], payload: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(payload.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let raw = format!("type=master&ver=1.0&sig={sig}");
    const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(&raw, UNRESERVED_KEPT).to_string()
}

#[tokio::test]
async fn bad_master_key_is_a_config_error_that_does_not_echo_the_key() {
    let key_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key_file.path(), "not-base64-$$$").expect("write key");
    let cfg = CredentialConfig::MasterKey {
        key_file: Some(key_file.path().to_owned()),
        key_env: None,
    };
    let err = Credential::new(&cfg, http_client())
        .await
        .expect_err("bad key");
    assert_eq!(err.reason_code(), "credential_config");
    assert!(!format!("{err} {err:?}").contains("not-base64"));
}

/// A self-signed certificate for 127.0.0.1 and a TLS upstream serving h2 and HTTP/1.1 with it,
/// counting the connections it accepts.
async fn tls_upstream(
    recorder: &Recorder,
) -> (
    std::net::SocketAddr,
    tempfile::NamedTempFile,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let ca_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(ca_file.path(), certified.cert.pem()).expect("write ca");
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

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = recorder.router();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
    (addr, ca_file, accepted)
}

#[tokio::test]
async fn https_upstream_trusted_through_ca_file_is_reached_over_h2() {
    let recorder = Recorder::new(cosmos_reply());
    let (addr, ca_file, _) = tls_upstream(&recorder).await;
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let cred_cfg = common::imds_credential_config(&fake);
    let credential = Credential::new(&cred_cfg, http_client())
        .await
        .expect("credential");
    let mut cfg = config(&format!("https://{addr}/"), cred_cfg);
    cfg.ca_file = Some(ca_file.path().to_owned());
    let forwarder = Forwarder::new(&cfg, credential).expect("forwarder");

    let request = Request::get(RAW_TARGET)
        .version(Version::HTTP_2)
        .header("x-ms-version", "2020-07-15")
        .body(body(b""))
        .expect("request");
    let response = forwarder
        .forward(request, "docs", "x")
        .await
        .expect("forwarded");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-ms-session-token"], "0:-1#12");

    let seen = only(&recorder);
    assert_eq!(seen.version, Version::HTTP_2);
    // Kept on HTTP/2 as well, equal to :authority (RFC 9113 §8.3.1 allows that).
    assert_eq!(seen.header("host"), Some(addr.to_string()));
    assert_eq!(seen.target, format!("https://{addr}{RAW_TARGET}"));
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("type=aad&ver=1.0&sig=token-1")
    );
    assert!(seen.header("x-ms-date").is_some());
}

#[tokio::test]
async fn over_h2_a_response_head_of_64_kib_is_relayed_and_the_connection_shared() {
    // Case C27(b) again, on HTTP/2: hyper's client accepts 16 KiB header lists by default.
    let reply = large_cosmos_head();
    let recorder = Recorder::new(reply.clone());
    let (addr, ca_file, accepted) = tls_upstream(&recorder).await;
    let (credential, cred_cfg) = master_key_credential().await;
    let mut cfg = config(&format!("https://{addr}/"), cred_cfg);
    cfg.ca_file = Some(ca_file.path().to_owned());
    let forwarder = Forwarder::new(&cfg, credential).expect("forwarder");
    for _ in 0..3 {
        let request = Request::get("/dbs/shop/colls/orders/docs")
            .body(body(b""))
            .expect("request");
        let response = forwarder
            .forward(request, "docs", "dbs/shop/colls/orders")
            .await
            .expect("a 65 KiB head is accepted over h2");
        assert_relayed(&response, &reply);
    }
    let seen = recorder.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| r.version == Version::HTTP_2));
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one shared HTTP/2 connection"
    );
}

#[tokio::test]
async fn https_upstream_with_an_untrusted_certificate_is_a_tls_error() {
    let recorder = Recorder::new(cosmos_reply());
    let (addr, _ca_file, _) = tls_upstream(&recorder).await;
    let forwarder = master_key_forwarder(&format!("https://{addr}/")).await;
    let request = Request::get("/").body(body(b"")).expect("request");
    let err = forwarder
        .forward(request, "", "")
        .await
        .expect_err("untrusted");
    assert_eq!(err.reason_code(), "upstream_tls");
    assert_eq!(err.status(), 502);
    assert!(recorder.seen().is_empty());
}

/// A master-key credential and its config (the key file is read at once, then removed).
async fn master_key_credential() -> (Credential, CredentialConfig) {
    let key_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(key_file.path(), "c2VjcmV0LWtleQ==\n").expect("write key");
    let cfg = CredentialConfig::MasterKey {
        key_file: Some(key_file.path().to_owned()),
        key_env: None,
    };
    let credential = Credential::new(&cfg, http_client())
        .await
        .expect("master key");
    (credential, cfg)
}

async fn master_key_forwarder(endpoint: &str) -> Forwarder {
    let (credential, cred_cfg) = master_key_credential().await;
    let mut cfg = config(endpoint, cred_cfg);
    cfg.response_timeout_seconds = 2;
    Forwarder::new(&cfg, credential).expect("forwarder")
}

#[tokio::test]
async fn closed_port_is_a_connect_failure() {
    let (_reserved, addr) = common::refusing_port();
    let forwarder = master_key_forwarder(&format!("http://{addr}/")).await;
    let request = Request::get("/").body(body(b"")).expect("request");
    let err = forwarder
        .forward(request, "", "")
        .await
        .expect_err("refused");
    assert_eq!(err.reason_code(), "upstream_connect_failed");
    assert_eq!(err.status(), 502);
}

#[tokio::test(start_paused = true)]
async fn silent_upstream_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let forwarder = master_key_forwarder(&format!("http://{addr}/")).await;
    let request = Request::get("/").body(body(b"")).expect("request");
    let err = forwarder
        .forward(request, "", "")
        .await
        .expect_err("silent");
    assert_eq!(err.reason_code(), "upstream_timeout");
    assert_eq!(err.status(), 504);
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_at_construction() {
    let (credential, cred_cfg) = master_key_credential().await;
    let cfg = config("http://acct.documents.azure.com/", cred_cfg);
    let err = Forwarder::new(&cfg, credential).expect_err("http to a remote host");
    assert_eq!(err.reason_code(), "upstream_config");
}
