//! cosmogate end to end: the real JavaScript and Python Cosmos SDKs, a real OpenID provider,
//! a Cosmos-compatible server that records what it receives, and cosmogate between them.
//!
//! The Cosmos-compatible server checks no credentials, so every test also proves what it
//! received: only cosmogate's own credential, and only requests that cosmogate audited as
//! allowed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosmogate_e2e::{ALL_OPS, OpResult, Sdk, Stack, StackOptions, UpstreamAuth, find_op, run_app};
use serde_json::Value;

const WRITER: (&str, &str) = ("app-writer", "writer-secret");
const READER: (&str, &str) = ("app-reader", "reader-secret");

async fn stack(upstream: UpstreamAuth) -> Stack {
    Stack::start(&StackOptions::new(upstream))
        .await
        .expect("the local stack starts")
}

fn assert_all_ok(results: &[OpResult]) {
    let failed: Vec<&OpResult> = results.iter().filter(|result| !result.ok).collect();
    assert!(
        failed.is_empty(),
        "operations failed through cosmogate: {failed:#?}"
    );
}

fn op<'a>(results: &'a [OpResult], name: &str) -> &'a OpResult {
    find_op(results, name).unwrap_or_else(|| panic!("the app reported no {name}"))
}

fn str_field<'a>(record: &'a Value, field: &str) -> &'a str {
    record[field].as_str().unwrap_or_default()
}

/// The issuer of every JWT-shaped string in `text`, decoded without verification.
fn jwt_issuers(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .filter_map(|candidate| {
            let mut parts = candidate.split('.');
            let (_, payload) = (parts.next()?, parts.next()?);
            parts.next()?;
            let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
            let claims: Value = serde_json::from_slice(&bytes).ok()?;
            Some(claims["iss"].as_str()?.to_owned())
        })
        .collect()
}

/// The upstream saw nothing but cosmogate's credential, never a token from the apps' IdP,
/// and exactly the requests cosmogate audited as allowed: nothing went around the proxy.
async fn assert_upstream_saw_only_cosmogate(stack: &Stack) {
    let requests = stack.cosmos.requests();
    let audit = stack.audit().await;
    assert!(!requests.is_empty(), "nothing reached the upstream");
    let issued: Vec<String> = match &stack.tokens {
        Some(tokens) => tokens
            .records()
            .iter()
            .filter_map(|record| record["token"].as_str().map(str::to_owned))
            .collect(),
        None => Vec::new(),
    };
    for request in &requests {
        let authorization = str_field(request, "authorization");
        match &stack.tokens {
            Some(_) => {
                let token = authorization
                    .strip_prefix("type=aad&ver=1.0&sig=")
                    .unwrap_or_else(|| panic!("not cosmogate's aad credential: {request}"));
                assert!(
                    issued.iter().any(|t| t == token),
                    "token not from the MI endpoint"
                );
            }
            None => {
                assert!(authorization.starts_with("type%3Dmaster"), "{request}");
                assert_eq!(request["master_sig_valid"], Value::Bool(true), "{request}");
            }
        }
        let headers = request["headers"].to_string();
        assert!(
            !jwt_issuers(&headers).contains(&stack.idp.issuer),
            "an app's token reached the upstream: {request}"
        );
    }
    let allowed: Vec<&Value> = audit.iter().filter(|r| r["decision"] == "allow").collect();
    assert_eq!(
        allowed.len(),
        requests.len(),
        "every upstream request is one allowed, audited request through cosmogate"
    );
    for request in &requests {
        let activity = request["headers"]["x-ms-activity-id"]
            .as_str()
            .unwrap_or_default();
        let matching = allowed
            .iter()
            .filter(|r| r["activity_id"] == activity)
            .count();
        assert_eq!(
            matching, 1,
            "upstream request without its audit record: {request}"
        );
    }
}

async fn every_operation_succeeds(sdk: Sdk, upstream: UpstreamAuth) {
    let stack = stack(upstream).await;
    let results = run_app(sdk, &stack.app(WRITER.0, WRITER.1))
        .await
        .expect("the sample app runs");
    assert_eq!(results.len(), ALL_OPS.len());
    assert_all_ok(&results);
    assert_upstream_saw_only_cosmogate(&stack).await;

    let audit = stack.audit().await;
    let actions: Vec<&str> = audit
        .iter()
        .flat_map(|record| record["actions"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for action in ["readMetadata", "items/create", "items/read", "items/upsert"] {
        assert!(
            actions.contains(&action),
            "no audited {action} in {audit:#?}"
        );
    }
    for record in &audit {
        assert_eq!(record["principal"]["sub"], WRITER.0);
        assert_eq!(record["principal"]["iss"], stack.idp.issuer.as_str());
        assert!(
            record["activity_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_completes_every_operation_through_cosmogate_with_managed_identity() {
    every_operation_succeeds(Sdk::Js, UpstreamAuth::ManagedIdentity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_completes_every_operation_through_cosmogate_with_managed_identity() {
    every_operation_succeeds(Sdk::Python, UpstreamAuth::ManagedIdentity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_completes_every_operation_through_cosmogate_with_the_account_key() {
    every_operation_succeeds(Sdk::Js, UpstreamAuth::MasterKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_completes_every_operation_through_cosmogate_with_the_account_key() {
    every_operation_succeeds(Sdk::Python, UpstreamAuth::MasterKey).await;
}

async fn reader_is_refused_writes_but_reads(sdk: Sdk) {
    let stack = stack(UpstreamAuth::ManagedIdentity).await;
    let item = format!("seeded-{}", sdk.name());
    let mut seed = stack.app(WRITER.0, WRITER.1).with_ops(&["create"]);
    seed.item_id = Some(item.clone());
    assert_all_ok(&run_app(sdk, &seed).await.expect("the writer runs"));

    let mut reader = stack
        .app(READER.0, READER.1)
        .with_ops(&["read", "query_pk", "read_all", "create", "upsert", "delete"]);
    reader.item_id = Some(item);
    let results = run_app(sdk, &reader).await.expect("the reader runs");
    for name in ["read", "query_pk", "read_all"] {
        assert!(
            op(&results, name).ok,
            "{name} should be allowed: {results:#?}"
        );
    }
    for name in ["create", "upsert", "delete"] {
        let result = op(&results, name);
        assert!(!result.ok, "{name} should be refused");
        assert_eq!(result.status, Some(403), "{result:?}");
        assert_eq!(result.code.as_deref(), Some("Forbidden"), "{result:?}");
    }
    assert_upstream_saw_only_cosmogate(&stack).await;

    let audit = stack.audit().await;
    let denials: Vec<&Value> = audit
        .iter()
        .filter(|r| r["decision"] == "deny" && r["principal"]["sub"] == READER.0)
        .collect();
    assert_eq!(denials.len(), 3, "one denial per refused write: {audit:#?}");
    for denial in denials {
        assert_eq!(denial["status"], 403);
        assert_eq!(denial["reason"], "action_not_granted");
        assert_eq!(denial["database"], "shop");
        assert_eq!(denial["container"], "orders");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_reader_token_gets_403_on_writes_and_still_reads() {
    reader_is_refused_writes_but_reads(Sdk::Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reader_token_gets_403_on_writes_and_still_reads() {
    reader_is_refused_writes_but_reads(Sdk::Python).await;
}

/// A real token with its signature swapped for another real token's.
fn forged(token: &str, other: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let other_signature = other.rsplit('.').next().expect("a signature");
    parts[2] = other_signature;
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_forged_tokens_get_401_from_both_sdks() {
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.token_ttl = 1;
    options.leeway_seconds = 0;
    let stack = Stack::start(&options)
        .await
        .expect("the local stack starts");
    let expired = stack.idp.token(WRITER.0, WRITER.1).await.expect("a token");
    let other = stack.idp.token(READER.0, READER.1).await.expect("a token");
    let forged = forged(&other, &expired);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    for sdk in [Sdk::Js, Sdk::Python] {
        for token in [&expired, &forged] {
            let args = stack.app_with_token(token).with_ops(&["read", "create"]);
            let results = run_app(sdk, &args).await.expect("the app runs");
            for result in &results {
                assert_eq!(result.status, Some(401), "{sdk:?}: {result:?}");
                assert_eq!(result.code.as_deref(), Some("Unauthorized"), "{result:?}");
            }
        }
    }
    assert!(
        stack.cosmos.requests().is_empty(),
        "a refused request reached the upstream"
    );

    let audit = stack.audit().await;
    let reasons: Vec<&str> = audit.iter().map(|r| str_field(r, "reason")).collect();
    assert!(reasons.contains(&"expired"), "{reasons:?}");
    assert!(reasons.contains(&"bad_signature"), "{reasons:?}");
    for record in &audit {
        assert_eq!(record["decision"], "deny");
        assert_eq!(record["status"], 401);
        assert!(
            record["principal"].is_null(),
            "an unverified principal was recorded"
        );
    }
    let audit_text = std::fs::read_to_string(&stack.audit_path).expect("audit file");
    for secret in [&expired, &forged] {
        let signature = secret.rsplit('.').next().expect("a signature");
        assert!(
            !audit_text.contains(signature),
            "a token reached the audit log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_an_access_token_get_401() {
    let stack = stack(UpstreamAuth::ManagedIdentity).await;
    let http = stack.https_client().expect("client");
    let url = format!("{}dbs/shop/colls/orders/docs/x", stack.gateway_url);
    let cases = [
        (None, "missing_credential", "Bearer"),
        (
            Some("type%3Dmaster%26ver%3D1.0%26sig%3DYD98TEaAJst"),
            "key_credential_refused",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("type=resource&ver=1.0&sig=abc"),
            "key_credential_refused",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("Basic dXNlcjpwYXNz"),
            "malformed_authorization",
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for (authorization, reason, challenge) in cases {
        let mut request = http
            .get(&url)
            .header("x-ms-documentdb-partitionkey", "[\"t1\"]");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("a response");
        assert_eq!(response.status(), 401, "{reason}");
        assert_eq!(
            response.headers()["www-authenticate"],
            challenge,
            "{reason}"
        );
        assert!(response.headers().contains_key("x-ms-activity-id"));
        let body: Value = response.json().await.expect("a Cosmos-shaped body");
        assert_eq!(body["code"], "Unauthorized");
    }
    let audit = stack.audit().await;
    let reasons: Vec<&str> = audit.iter().map(|r| str_field(r, "reason")).collect();
    assert_eq!(
        reasons,
        [
            "missing_credential",
            "key_credential_refused",
            "key_credential_refused",
            "malformed_authorization"
        ]
    );
    assert!(stack.cosmos.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_document_advertises_cosmogate_and_refusals_are_cosmos_shaped() {
    let stack = stack(UpstreamAuth::ManagedIdentity).await;
    let http = stack.https_client().expect("client");
    let token = stack.idp.token(WRITER.0, WRITER.1).await.expect("a token");
    let authorization = format!("type=aad&ver=1.0&sig={token}");
    let get = |path: &str| http.get(format!("{}{path}", stack.gateway_url));

    let account: Value = get("")
        .header("authorization", &authorization)
        .send()
        .await
        .expect("GET /")
        .json()
        .await
        .expect("json");
    for list in ["writableLocations", "readableLocations"] {
        let locations = account[list].as_array().expect("locations");
        assert!(!locations.is_empty());
        for location in locations {
            assert_eq!(
                location["databaseAccountEndpoint"],
                stack.gateway_url.as_str()
            );
        }
    }

    let cases = [
        (
            http.post(format!("{}dbs", stack.gateway_url)),
            "control_plane_operation",
        ),
        (
            get("addresses/?$resolveFor=dbs%2Fx"),
            "direct_mode_unsupported",
        ),
        (get("dbs/shop/colls/payroll/docs/x"), "action_not_granted"),
    ];
    for (request, reason) in cases {
        let response = request
            .header("authorization", &authorization)
            .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
            .body("{\"id\":\"x\"}")
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 403, "{reason}");
        assert!(response.headers().contains_key("x-ms-activity-id"));
        let substatus = response.headers().get("x-ms-substatus").cloned();
        assert!(
            substatus.is_none(),
            "a 403 must not carry a failover substatus"
        );
        let body: Value = response.json().await.expect("a Cosmos-shaped body");
        assert_eq!(body["code"], "Forbidden", "{reason}");
        if reason == "direct_mode_unsupported" {
            let message = body["message"].as_str().unwrap_or_default().to_lowercase();
            assert!(
                message.contains("gateway mode") || message.contains("connection mode to gateway"),
                "{message}"
            );
        }
    }
    let audit = stack.audit().await;
    let reasons: Vec<&str> = audit.iter().map(|r| str_field(r, "reason")).collect();
    assert_eq!(
        reasons,
        [
            "allowed",
            "control_plane_operation",
            "direct_mode_unsupported",
            "action_not_granted"
        ]
    );
    assert_upstream_saw_only_cosmogate(&stack).await;
}
