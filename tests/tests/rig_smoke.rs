//! Self-test of the rig: each piece starts, speaks its protocol, and the sample apps run green
//! directly against the Cosmos-compatible server (no cosmogate in the middle).
//! Needs `scripts/setup.sh` to have been run.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cosmogate_e2e::{
    AppArgs, AppCredential, Certs, CosmosServer, Idp, OpResult, Sdk, TokenEndpoint, find_op,
    run_app,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The well-known emulator key; the rig's server only uses it to check signatures.
const MASTER_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("token has the part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("part is base64url");
    serde_json::from_slice(&bytes).expect("part is JSON")
}

fn https_client(certs: &Certs) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(certs.ca_pem().expect("ca").as_bytes()).expect("pem");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client")
}

fn master_auth(verb: &str, resource_type: &str, link: &str, date: &str) -> String {
    let text = format!(
        "{verb}\n{resource_type}\n{link}\n{}\n\n",
        date.to_lowercase()
    );
    let key = STANDARD.decode(MASTER_KEY).expect("key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac takes any key");
    mac.update(text.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let raw = format!("type=master&ver=1.0&sig={sig}");
    raw.replace('%', "%25")
        .replace('=', "%3D")
        .replace('&', "%26")
        .replace('+', "%2B")
        .replace('/', "%2F")
}

#[tokio::test]
async fn idp_issues_rfc9068_jwts_with_the_requested_audience() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = Idp::start(dir.path()).await.expect("idp starts");
    assert!(idp.issuer.starts_with("http://127.0.0.1:"));

    let token = idp
        .token("app-writer", "writer-secret")
        .await
        .expect("token");
    assert_eq!(token.split('.').count(), 3);
    let (header, claims) = (jwt_part(&token, 0), jwt_part(&token, 1));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], "api://cosmogate");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["tenant"], "t1");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["cosmos.reader", "cosmos.writer"])
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        300
    );

    let es = idp
        .token("app-es256", "es256-secret")
        .await
        .expect("es256 token");
    assert_eq!(jwt_part(&es, 0)["alg"], "ES256");
    let other = idp
        .token_for("app-reader", "reader-secret", "api://other")
        .await
        .expect("token");
    assert_eq!(jwt_part(&other, 1)["aud"], "api://other");
    assert_eq!(
        jwt_part(
            &idp.token("app-nobody", "nobody-secret").await.expect("t"),
            1
        )["roles"],
        serde_json::json!([])
    );
    assert!(idp.token("app-writer", "wrong").await.is_err());
}

#[tokio::test]
async fn idp_honours_a_custom_token_lifetime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = Idp::start_with_ttl(dir.path(), 5)
        .await
        .expect("idp starts");
    let claims = jwt_part(
        &idp.token("app-reader", "reader-secret")
            .await
            .expect("token"),
        1,
    );
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        5
    );
}

#[tokio::test]
async fn cosmos_server_serves_https_with_the_test_ca_and_logs_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::generate(dir.path()).expect("certs");
    let setup = [("db1", "items"), ("db1", "other"), ("db2", "items")];
    let server = CosmosServer::start(dir.path(), &certs, Some(MASTER_KEY), &setup)
        .await
        .expect("starts");
    let http = https_client(&certs);

    let account: Value = http
        .get(&server.endpoint)
        .send()
        .await
        .expect("GET /")
        .json()
        .await
        .expect("json");
    assert_eq!(
        account["writableLocations"][0]["databaseAccountEndpoint"],
        server.endpoint.as_str()
    );
    let url = format!("{}dbs/db2/colls/items", server.endpoint);
    let container: Value = http
        .get(url)
        .send()
        .await
        .expect("GET coll")
        .json()
        .await
        .expect("json");
    assert_eq!(
        container["partitionKey"],
        serde_json::json!({"paths":["/tenant"],"kind":"Hash","version":2})
    );

    let setup_records = server
        .all_records()
        .into_iter()
        .filter(|r| r["setup"] == true)
        .count();
    assert_eq!(setup_records, 5, "2 databases + 3 containers");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["url"], "/");
    assert_eq!(requests[1]["url"], "/dbs/db2/colls/items");
    assert!(
        requests[0].get("master_sig_valid").is_none(),
        "no Authorization, no check"
    );
}

#[tokio::test]
async fn cosmos_server_recomputes_master_key_signatures_independently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::generate(dir.path()).expect("certs");
    let server = CosmosServer::start(dir.path(), &certs, Some(MASTER_KEY), &[("db1", "items")])
        .await
        .expect("starts");
    let http = https_client(&certs);
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let url = format!("{}dbs/db1/colls/items/docs", server.endpoint);

    let good = master_auth("get", "docs", "dbs/db1/colls/items", &date);
    let bad = master_auth("get", "docs", "dbs/db1/colls/other", &date);
    for auth in [good, bad] {
        let res = http
            .get(&url)
            .header("authorization", auth)
            .header("x-ms-date", &date)
            .send()
            .await;
        assert_eq!(res.expect("request").status(), 200);
    }
    let checks: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r["master_sig_valid"].clone())
        .collect();
    assert_eq!(checks, vec![Value::Bool(true), Value::Bool(false)]);
    assert_eq!(server.requests()[0]["resource_link"], "dbs/db1/colls/items");
    assert!(
        server
            .all_records()
            .iter()
            .filter(|r| r["setup"] == true)
            .all(|r| r["master_sig_valid"] == true)
    );
}

#[tokio::test]
async fn token_endpoint_follows_the_imds_and_app_service_protocols() {
    let dir = tempfile::tempdir().expect("tempdir");
    let te = TokenEndpoint::start(dir.path(), "rig-secret-header")
        .await
        .expect("starts");
    let http = reqwest::Client::new();
    let imds = format!(
        "{}?api-version=2018-02-01&resource=https://cosmos.azure.com",
        te.imds_url()
    );

    let res = http.get(&imds).send().await.expect("imds");
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Required metadata header not specified"
    );

    let body: Value = http
        .get(&imds)
        .header("Metadata", "true")
        .send()
        .await
        .expect("imds")
        .json()
        .await
        .expect("json");
    for field in [
        "access_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
        "client_id",
    ] {
        assert!(body[field].is_string(), "{field} is a JSON string: {body}");
    }
    assert_eq!(body["expires_in"], "3600");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(jwt_part(token, 1)["aud"], "https://cosmos.azure.com");

    let app = format!(
        "{}?api-version=2019-08-01&resource=https://acct.documents.azure.com",
        te.app_service_url()
    );
    assert_eq!(
        http.get(&app).send().await.expect("app service").status(),
        401
    );
    let res = http
        .get(&app)
        .header("X-IDENTITY-HEADER", "wrong")
        .send()
        .await
        .expect("app service");
    assert_eq!(res.status(), 401);
    let body: Value = http
        .get(&app)
        .header("X-IDENTITY-HEADER", "rig-secret-header")
        .send()
        .await
        .expect("ok")
        .json()
        .await
        .expect("json");
    assert_eq!(body["resource"], "https://acct.documents.azure.com");
    assert!(body["expires_on"].is_string() && body.get("expires_in").is_none());

    te.fail_next(1, 503).await.expect("control");
    assert_eq!(
        http.get(&imds)
            .header("Metadata", "true")
            .send()
            .await
            .expect("imds")
            .status(),
        503
    );
    let statuses: Vec<u64> = te
        .records()
        .iter()
        .filter(|r| r["protocol"] != "control")
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, vec![400, 200, 401, 401, 200, 503]);
    assert_eq!(te.records()[1]["token"], token);
}

fn assert_all_ok(results: &[OpResult]) {
    let failed: Vec<&OpResult> = results.iter().filter(|r| !r.ok).collect();
    assert!(failed.is_empty(), "failed ops: {failed:#?}");
}

#[tokio::test]
async fn both_sample_apps_run_green_directly_against_the_cosmos_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::generate(dir.path()).expect("certs");
    let server = CosmosServer::start(dir.path(), &certs, Some(MASTER_KEY), &[("db1", "items")])
        .await
        .expect("starts");
    for sdk in [Sdk::Js, Sdk::Python] {
        let cred = AppCredential::MasterKey(MASTER_KEY.to_string());
        let args = AppArgs::new(&server.endpoint, &certs.ca, "db1", "items", cred);
        let results = run_app(sdk, &args).await.expect("app runs");
        assert_eq!(results.len(), cosmogate_e2e::ALL_OPS.len());
        assert!(results.iter().all(|r| r.sdk == sdk.name()));
        assert_all_ok(&results);
        assert_eq!(find_op(&results, "query_pk").and_then(|r| r.count), Some(1));
    }
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r["master_sig_valid"] == true),
        "every SDK signature verifies"
    );
}

#[tokio::test]
async fn sample_apps_send_idp_tokens_as_aad_authorization() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::generate(dir.path()).expect("certs");
    let idp = Idp::start(dir.path()).await.expect("idp");
    let server = CosmosServer::start(dir.path(), &certs, None, &[("db1", "items")])
        .await
        .expect("starts");
    for sdk in [Sdk::Js, Sdk::Python] {
        let cred = AppCredential::Idp {
            issuer: idp.issuer.clone(),
            client: "app-reader".into(),
            secret: "reader-secret".into(),
        };
        let args = AppArgs::new(&server.endpoint, &certs.ca, "db1", "items", cred)
            .with_ops(&["create", "read"]);
        assert_all_ok(&run_app(sdk, &args).await.expect("app runs"));
    }
    let auths: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r["authorization"].as_str().map(String::from))
        .collect();
    assert!(!auths.is_empty());
    for auth in auths {
        let jwt = auth
            .strip_prefix("type=aad&ver=1.0&sig=")
            .expect("raw aad header");
        assert_eq!(jwt_part(jwt, 1)["aud"], "api://cosmogate");
    }
}

#[tokio::test]
async fn a_static_token_reaches_the_server_verbatim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::generate(dir.path()).expect("certs");
    let server = CosmosServer::start(dir.path(), &certs, None, &[("db1", "items")])
        .await
        .expect("starts");
    let cred = AppCredential::StaticToken("not.a.token".into());
    let args =
        AppArgs::new(&server.endpoint, &certs.ca, "db1", "items", cred).with_ops(&["query_cross"]);
    let results = run_app(Sdk::Js, &args).await.expect("app runs");
    assert_all_ok(&results);
    let last = server.requests().pop().expect("a request");
    assert_eq!(last["authorization"], "type=aad&ver=1.0&sig=not.a.token");
}

#[tokio::test]
async fn a_dead_child_reports_its_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs {
        key: dir.path().join("missing.pem"),
        ..Certs::generate(dir.path()).expect("certs")
    };
    let err = CosmosServer::start(dir.path(), &certs, None, &[])
        .await
        .expect_err("cannot start");
    let text = format!("{err:#}");
    assert!(
        text.contains("did not become ready") && text.contains("missing.pem"),
        "{text}"
    );
}
