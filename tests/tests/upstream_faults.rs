//! What the app sees when the Cosmos DB account misbehaves: cosmogate's own credential refused,
//! throttling, an account that is down or stalls. The stand-in upstream speaks plain HTTP on
//! loopback (allowed for loopback hosts only) and answers as scripted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cosmogate_e2e::{RefusingPort, Stack, StackOptions, UpstreamAuth};
use serde_json::{Value, json};

/// Answers by path: the account document on `/`, and a scripted failure per item id.
async fn scripted(uri: Uri, headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let path = uri.path();
    if path == "/" {
        let endpoint = format!("http://{host}/");
        let location = json!([{"name": "Local", "databaseAccountEndpoint": endpoint}]);
        let body =
            json!({"id": "acct", "writableLocations": location, "readableLocations": location});
        return axum::Json(body).into_response();
    }
    let cosmos_error = |status: StatusCode, substatus: &str, message: &str| {
        let body = json!({"code": status.canonical_reason(), "message": message});
        (
            status,
            [("x-ms-substatus", substatus.to_owned())],
            axum::Json(body),
        )
            .into_response()
    };
    match path.rsplit('/').next().unwrap_or_default() {
        "unauthorized" => cosmos_401(),
        "rbac" => cosmos_error(
            StatusCode::FORBIDDEN,
            "5301",
            "Request blocked by Auth acct : principal does not have required RBAC permissions",
        ),
        "write-forbidden" => cosmos_error(StatusCode::FORBIDDEN, "3", "WriteForbidden"),
        "throttled" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ms-retry-after-ms", "100"), ("x-ms-substatus", "3200")],
            "{}",
        )
            .into_response(),
        "stall" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        "stall-body" => {
            // The headers and a first piece of the document, then nothing.
            let pieces = futures_util::stream::unfold(0u32, |n| async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Some((
                    Ok::<_, std::io::Error>(&b"{\"id\":\"stall-body\","[..]),
                    n + 1,
                ))
            });
            (StatusCode::OK, axum::body::Body::from_stream(pieces)).into_response()
        }
        _ => (StatusCode::OK, "{}").into_response(),
    }
}

fn cosmos_401() -> Response {
    let body = json!({"code": "Unauthorized", "message": "The input authorization token can't serve the request."});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

async fn start_upstream(hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        hits.fetch_add(1, Ordering::SeqCst);
        scripted(uri, headers)
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/")
}

/// A stack whose cosmogate forwards to `endpoint` with a short response timeout.
async fn gateway_for(endpoint: &str) -> Stack {
    let mut stack = Stack::prepare(&StackOptions::new(UpstreamAuth::ManagedIdentity))
        .await
        .expect("the local stack starts");
    let text = std::fs::read_to_string(&stack.config_path).expect("config");
    let text = text.replace(
        &format!("endpoint = \"{}\"", stack.cosmos.endpoint),
        &format!(
            "endpoint = \"{endpoint}\"\nresponse_timeout_seconds = 2\nbody_timeout_seconds = 1"
        ),
    );
    std::fs::write(&stack.config_path, text).expect("config");
    let loaded = cosmogate_server::Config::load(&stack.config_path).expect("config");
    let gateway = cosmogate_server::Gateway::build(loaded)
        .await
        .expect("gateway");
    let listener = gateway.bind().await.expect("listener");
    stack.gateway_url = format!("https://{}/", listener.local_addr().expect("address"));
    tokio::spawn(gateway.serve_with_admin(listener, None, std::future::pending()));
    stack
}

/// The writer reads `item` through cosmogate; the response as soon as its headers arrive.
async fn get_item(stack: &Stack, item: &str) -> reqwest::Response {
    let token = stack
        .idp
        .token("app-writer", "writer-secret")
        .await
        .expect("token");
    stack
        .https_client()
        .expect("client")
        .get(format!(
            "{}dbs/shop/colls/orders/docs/{item}",
            stack.gateway_url
        ))
        .header("authorization", format!("type=aad&ver=1.0&sig={token}"))
        .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
        .send()
        .await
        .expect("a response")
}

async fn read(stack: &Stack, item: &str) -> (u16, HeaderMap, Value) {
    let response = get_item(stack, item).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refusals_of_cosmogates_credential_are_gateway_errors_and_the_rest_pass_through() {
    let hits = Arc::new(AtomicUsize::new(0));
    let endpoint = start_upstream(Arc::clone(&hits)).await;
    let stack = gateway_for(&endpoint).await;

    let (status, _, body) = read(&stack, "unauthorized").await;
    assert_eq!(
        status, 502,
        "cosmogate's own credential was refused: not the app's fault"
    );
    assert_eq!(body["code"], "BadGateway");
    let (status, _, _) = read(&stack, "rbac").await;
    assert_eq!(status, 502);
    let (status, headers, _) = read(&stack, "write-forbidden").await;
    assert_eq!(status, 403, "a failover 403 is Cosmos DB's answer, relayed");
    assert_eq!(headers["x-ms-substatus"], "3");
    let before = hits.load(Ordering::SeqCst);
    let (status, headers, _) = read(&stack, "throttled").await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-ms-retry-after-ms"], "100");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before + 1,
        "cosmogate does not retry for the app"
    );
    let (status, _, _) = read(&stack, "stall").await;
    assert_eq!(
        status, 504,
        "a stalled account answers within the response timeout"
    );

    let audit = stack.audit().await;
    let outcome: Vec<(&str, u64, Option<u64>)> = audit
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default(),
                r["status"].as_u64().unwrap_or(0),
                r["upstream_status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("upstream_auth_failed", 502, Some(401)),
            ("upstream_auth_failed", 502, Some(403)),
            ("allowed", 403, Some(403)),
            ("allowed", 429, Some(429)),
            ("upstream_timeout", 504, None),
        ]
    );
    for record in &audit {
        assert_eq!(
            record["decision"], "allow",
            "the policy allowed each of them"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_is_down_gives_a_quick_502() {
    let reserved = RefusingPort::new().expect("a refused port");
    let endpoint = format!("{}/", reserved.url());
    let stack = gateway_for(&endpoint).await;
    let (status, _, body) = read(&stack, "anything").await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "BadGateway");
    let audit = stack.audit().await;
    assert_eq!(audit[0]["reason"], "upstream_connect_failed");
    drop(reserved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_that_stalls_after_its_headers_is_cut_off() {
    let hits = Arc::new(AtomicUsize::new(0));
    let endpoint = start_upstream(Arc::clone(&hits)).await;
    let stack = gateway_for(&endpoint).await;
    let response = get_item(&stack, "stall-body").await;
    assert_eq!(response.status(), 200, "the headers arrive");
    let body = tokio::time::timeout(Duration::from_secs(20), response.bytes())
        .await
        .expect("cosmogate ends the body rather than holding it open");
    assert!(
        body.is_err(),
        "a cut-off body must not look complete: {body:?}"
    );

    let audit = stack.audit().await;
    assert_eq!(audit.len(), 1, "{audit:#?}");
    let record = &audit[0];
    assert_eq!(record["status"], 200);
    assert_eq!(record["upstream_status"], 200);
    assert_eq!(record["completed"], false, "{record:#}");
    assert_eq!(
        record["bytes_out"], 19,
        "the piece that did arrive was passed on"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

fn schema_validator() -> jsonschema::Validator {
    let path = cosmogate_e2e::repo_root().join("docs/audit-log.schema.json");
    let text = std::fs::read_to_string(path).expect("the schema file is readable");
    let schema: Value = serde_json::from_str(&text).expect("the schema file is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

/// Allowed, denied, unauthenticated, failed upstream (three ways), cut off and abandoned by
/// the client: one session, and each request leaves exactly one record, valid under the
/// published schema, that says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_of_a_session_leaves_exactly_one_valid_record() {
    let hits = Arc::new(AtomicUsize::new(0));
    let endpoint = start_upstream(Arc::clone(&hits)).await;
    let stack = gateway_for(&endpoint).await;
    let http = stack.https_client().expect("client");
    let writer = format!(
        "type=aad&ver=1.0&sig={}",
        stack
            .idp
            .token("app-writer", "writer-secret")
            .await
            .expect("token")
    );
    let reader = format!(
        "type=aad&ver=1.0&sig={}",
        stack
            .idp
            .token("app-reader", "reader-secret")
            .await
            .expect("token")
    );
    let docs = format!("{}dbs/shop/colls/orders/docs", stack.gateway_url);
    // (activity id, what was sent, expected status, decision, reason, completed)
    let cases: [(&str, &str, u16, &str, &str, bool); 7] = [
        (
            "00000000-0000-4000-8000-000000000001",
            "allowed read",
            200,
            "allow",
            "allowed",
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000002",
            "reader creates",
            403,
            "deny",
            "action_not_granted",
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000003",
            "no token",
            401,
            "deny",
            "missing_credential",
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000004",
            "account stalls",
            504,
            "allow",
            "upstream_timeout",
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000005",
            "our credential refused",
            502,
            "allow",
            "upstream_auth_failed",
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000006",
            "body stalls",
            200,
            "allow",
            "allowed",
            false,
        ),
        (
            "00000000-0000-4000-8000-000000000007",
            "client gives up",
            499,
            "allow",
            "allowed",
            false,
        ),
    ];
    for (activity, what, _, _, _, _) in cases {
        let request = match what {
            "allowed read" => http
                .get(format!("{docs}/ok"))
                .header("authorization", &writer),
            "reader creates" => http
                .post(&docs)
                .header("authorization", &reader)
                .header("content-type", "application/json")
                .body(r#"{"id":"x","tenant":"t1"}"#),
            "no token" => http.get(format!("{docs}/ok")),
            "account stalls" => http
                .get(format!("{docs}/stall"))
                .header("authorization", &writer),
            "our credential refused" => http
                .get(format!("{docs}/unauthorized"))
                .header("authorization", &writer),
            "body stalls" => http
                .get(format!("{docs}/stall-body"))
                .header("authorization", &writer),
            _ => http
                .get(format!("{docs}/stall"))
                .header("authorization", &writer)
                .timeout(Duration::from_millis(300)),
        };
        let sent = request
            .header("x-ms-activity-id", activity)
            .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
            .send()
            .await;
        if let Ok(response) = sent {
            // Read to the end (or to the cut), so the record can be written.
            let _ = response.bytes().await;
        }
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = stack.audit().await;
    let validator = schema_validator();
    for record in &records {
        let problems: Vec<String> = validator
            .iter_errors(record)
            .map(|err| format!("{}: {err}", err.instance_path()))
            .collect();
        assert!(problems.is_empty(), "{problems:#?}\n{record:#}");
    }
    assert_eq!(records.len(), cases.len(), "{records:#?}");
    for (activity, what, status, decision, reason, completed) in cases {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["activity_id"] == activity)
            .collect();
        assert_eq!(mine.len(), 1, "{what}: {records:#?}");
        let record = mine[0];
        let seen = (
            record["status"].as_u64(),
            record["decision"].as_str(),
            record["reason"].as_str(),
            record["completed"].as_bool(),
        );
        assert_eq!(
            seen,
            (
                Some(u64::from(status)),
                Some(decision),
                Some(reason),
                Some(completed)
            ),
            "{what}: {record:#}"
        );
    }
}

/// `/readyz` turns 503 once cosmogate's own upstream token is too close to its expiry to be
/// served and no refresh has replaced it: from then on every forwarded request would fail.
/// The stand-in issues 63-second tokens, served for their first 3 seconds; every refresh is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_upstream_token_after_startup() {
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.admin = true;
    options.upstream_token_lifetime = 63;
    let stack = Stack::start(&options)
        .await
        .expect("the local stack starts");
    let tokens = stack.tokens.as_ref().expect("a token endpoint");
    tokens
        .fail_next(1_000, 500)
        .await
        .expect("scripted failures");
    let admin = stack.admin_url.clone().expect("an admin listener");
    let http = reqwest::Client::new();

    let mut seen = Vec::new();
    for _ in 0..60 {
        let response = http
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .expect("readyz");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        if seen.last().map(|(last, _)| *last) != Some(status) {
            seen.push((status, body));
        }
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let statuses: Vec<u16> = seen.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 503], "{seen:?}");
    let (_, body) = &seen[1];
    assert!(
        body.contains("the upstream managed_identity token is expiring or expired"),
        "{body}"
    );
    let (status, _, body) = read(&stack, "nothing").await;
    assert_eq!(status, 503, "a request meanwhile is refused: {body}");
}
