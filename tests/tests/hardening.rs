//! Requests built to make cosmogate and the gateway behind it disagree, or to slip past the
//! audit stream. Each test checks what the client got, what the upstream received, and that
//! every upstream request has exactly one audit record.

use std::time::Duration;

use cosmogate_e2e::{Stack, StackOptions, UpstreamAuth};
use serde_json::Value;

async fn stack() -> Stack {
    Stack::start(&StackOptions::new(UpstreamAuth::ManagedIdentity))
        .await
        .expect("the local stack starts")
}

async fn token(stack: &Stack, client: &str, secret: &str) -> String {
    let token = stack.idp.token(client, secret).await.expect("a token");
    format!("type=aad&ver=1.0&sig={token}")
}

fn docs_url(stack: &Stack) -> String {
    format!("{}dbs/shop/colls/orders/docs", stack.gateway_url)
}

/// Every request the upstream received carries an activity id that exactly one audit record
/// names, and that record allowed it.
async fn assert_every_upstream_request_is_audited(stack: &Stack) {
    let audit = stack.audit().await;
    for request in stack.cosmos.requests() {
        let activity = request["headers"]["x-ms-activity-id"]
            .as_str()
            .unwrap_or_default();
        let records: Vec<&Value> = audit
            .iter()
            .filter(|r| r["activity_id"] == activity)
            .collect();
        assert_eq!(
            records.len(),
            1,
            "upstream request without one audit record: {request}"
        );
        assert_eq!(records[0]["decision"], "allow", "{request}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_cannot_create_by_dressing_a_create_as_a_query() {
    let stack = stack().await;
    let http = stack.https_client().expect("client");
    let reader = token(&stack, "app-reader", "reader-secret").await;
    let disguises: [&[(&str, &str)]; 4] = [
        &[
            ("x-ms-cosmos-is-query-plan-request", "true"),
            ("content-type", "application/json"),
        ],
        &[("content-type", "application/query+json; charset=utf-8")],
        &[("content-type", "Application/Query+JSON")],
        &[("content-type", "application/query+json;")],
    ];
    for (index, headers) in disguises.iter().enumerate() {
        let mut request = http
            .post(docs_url(&stack))
            .header("authorization", &reader)
            .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
            .body(format!(
                "{{\"id\":\"disguised-{index}\",\"tenant\":\"t1\"}}"
            ));
        for (name, value) in headers.iter() {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("a response");
        assert_ne!(
            response.status(),
            201,
            "disguise {index} created a document"
        );
    }
    for request in stack.cosmos.requests() {
        let content_type = request["headers"]["content-type"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            content_type, "application/query+json",
            "intent reached upstream ambiguous"
        );
    }
    // The emulator answers a read of a missing item with a 500, so look with a query instead.
    let query = http
        .post(docs_url(&stack))
        .header(
            "authorization",
            token(&stack, "app-writer", "writer-secret").await,
        )
        .header("x-ms-documentdb-isquery", "true")
        .header("x-ms-documentdb-query-enablecrosspartition", "true")
        .header("content-type", "application/query+json")
        .body(r#"{"query":"SELECT * FROM c","parameters":[]}"#);
    let found: Value = query
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    let documents = found["Documents"].as_array().expect("documents");
    assert!(
        documents.is_empty(),
        "a disguised create wrote: {documents:?}"
    );
    assert_every_upstream_request_is_audited(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_abandoned_by_their_client_are_still_audited() {
    let stack = stack().await;
    let writer = token(&stack, "app-writer", "writer-secret").await;
    for attempt in 0..20u64 {
        let http = stack.https_client().expect("client");
        let request = http
            .post(docs_url(&stack))
            .header("authorization", &writer)
            .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
            .header("content-type", "application/json")
            .body(format!(
                "{{\"id\":\"abandoned-{attempt}\",\"tenant\":\"t1\"}}"
            ))
            .timeout(Duration::from_millis(1 + attempt % 7));
        let _ = request.send().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_every_upstream_request_is_audited(&stack).await;
    let audit = stack.audit().await;
    assert!(
        audit.len() <= 20,
        "one record per request at most: {}",
        audit.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_non_ascii_headers_are_refused_before_the_token_is_read() {
    let stack = stack().await;
    let http = stack.https_client().expect("client");
    let writer = token(&stack, "app-writer", "writer-secret").await;
    let url = format!("{}/x", docs_url(&stack));

    let mut big = http.get(&url).header("authorization", &writer);
    for index in 0..10 {
        big = big.header(format!("x-padding-{index}"), "p".repeat(8 * 1024));
    }
    assert_eq!(big.send().await.expect("response").status(), 431);

    // Case C27(d): 500 small headers get cosmogate's own Cosmos-shaped 431 (and a record),
    // not the HTTP layer's bare one.
    let mut many = http.get(&url).header("authorization", &writer);
    for index in 0..500 {
        many = many.header(format!("x-h-{index}"), "v");
    }
    let refused = many.send().await.expect("response");
    assert_eq!(refused.status(), 431);
    let body: serde_json::Value = refused.json().await.expect("a JSON error body");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );

    let raw = http::HeaderValue::from_bytes(b"abc\x80\xe9def").expect("obs-text");
    let encoded = http
        .get(&url)
        .header("authorization", &writer)
        .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
        .header("x-ms-continuation", raw);
    assert_eq!(encoded.send().await.expect("response").status(), 400);

    let a_large_token_beside_a_large_continuation = http
        .get(&url)
        .header("authorization", &writer)
        .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
        .header("x-ms-continuation", "c".repeat(12 * 1024));
    let response = a_large_token_beside_a_large_continuation
        .send()
        .await
        .expect("response");
    assert_ne!(response.status(), 431);
    let upstream = stack.cosmos.requests();
    assert_eq!(upstream.len(), 1, "only the last request was forwarded");
    let continuation = upstream[0]["headers"]["x-ms-continuation"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        continuation.len(),
        12 * 1024,
        "the continuation arrived intact"
    );

    let audit = stack.audit().await;
    let reasons: Vec<&str> = audit.iter().filter_map(|r| r["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        [
            "headers_too_large",
            "too_many_headers",
            "invalid_header_encoding",
            "allowed"
        ]
    );
    for record in &audit[..3] {
        assert!(
            record["principal"].is_null(),
            "refused before the token was read"
        );
    }
    assert_every_upstream_request_is_audited(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_id_cosmos_receives_is_the_one_audited() {
    let stack = stack().await;
    let http = stack.https_client().expect("client");
    let writer = token(&stack, "app-writer", "writer-secret").await;
    let given = "22222222-2222-2222-2222-222222222222";
    let cases = [
        ("x-ms-activity-id", given),
        ("connection", "x-ms-activity-id"),
    ];
    let mut request = http
        .get(format!("{}/x", docs_url(&stack)))
        .header("authorization", &writer)
        .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
        .header("x-cosmogate-request-id", "forged");
    for (name, value) in cases {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("response");
    assert_ne!(response.headers()["x-cosmogate-request-id"], "forged");
    let upstream = stack.cosmos.requests();
    assert_eq!(upstream.len(), 1);
    assert!(
        upstream[0]["headers"]
            .get("x-cosmogate-request-id")
            .is_none()
    );
    let sent = upstream[0]["headers"]["x-ms-activity-id"]
        .as_str()
        .expect("an activity id");
    assert_ne!(
        sent, given,
        "a header named in Connection is not forwarded, nor audited"
    );
    assert_every_upstream_request_is_audited(&stack).await;
}
