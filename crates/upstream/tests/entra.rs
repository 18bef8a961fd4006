//! Workload identity and client secret against a loopback Entra ID stand-in over TLS.
//!
//! These run in real time: under tokio's paused clock a TLS handshake on loopback lets the
//! clock jump ahead, which would fire our 15 s attempt timeout spuriously. The refresh
//! schedule itself is shared with managed identity and is tested there in paused time; here
//! a forced refresh (`request_refresh`) triggers the second exchange at once.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::entra::{ASSERTION_TYPE, EntraFake, EntraReply, closed_port};
use cosmogate_upstream::{
    ClientSecretConfig, Credential, CredentialConfig, UpstreamError, WorkloadIdentityConfig,
};
use http::Method;
use tokio::time::Instant;
use url::Url;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const COSMOS_SCOPE: &str = "https://cosmos.azure.com/.default";

fn workload(fake: &EntraFake, token_file: &Path) -> CredentialConfig {
    CredentialConfig::WorkloadIdentity(WorkloadIdentityConfig {
        tenant_id: Some(TENANT.to_owned()),
        client_id: Some("app-1".to_owned()),
        token_file: Some(token_file.to_owned()),
        authority_host: fake.authority.clone(),
        scope: COSMOS_SCOPE.to_owned(),
    })
}

fn secret_file_config(authority: &Url, secret_file: &Path) -> CredentialConfig {
    CredentialConfig::ClientSecret(ClientSecretConfig {
        tenant_id: TENANT.to_owned(),
        client_id: "app-2".to_owned(),
        secret_file: Some(secret_file.to_owned()),
        secret_env: None,
        authority_host: authority.clone(),
        scope: "https://cosmos.azure.us/.default".to_owned(),
    })
}

async fn header(credential: &Credential) -> String {
    let value = credential
        .authorization(&Method::GET, "docs", "dbs/a/colls/b", "ignored")
        .await
        .expect("token");
    value.to_str().expect("ascii").to_owned()
}

/// Waits (at most five seconds) until the credential serves `expected`.
async fn wait_for_header(credential: &Credential, expected: &str) {
    for _ in 0..500 {
        if header(credential).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the credential never served {expected}");
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), text).expect("write");
    file
}

async fn start(fake: &EntraFake, cfg: &CredentialConfig) -> Result<Credential, UpstreamError> {
    Credential::new(cfg, fake.client()).await
}

#[tokio::test]
async fn workload_identity_posts_the_token_file_as_a_client_assertion() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let token_file = file_with("sa-token-1\n");
    let credential = start(&fake, &workload(&fake, token_file.path()))
        .await
        .expect("credential must start");
    assert_eq!(credential.kind(), "workload_identity");
    assert_eq!(header(&credential).await, "type=aad&ver=1.0&sig=entra-1");

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let exchange = &seen[0];
    assert_eq!(exchange.method, Method::POST);
    assert_eq!(exchange.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = |name: &str| exchange.form.get(name).map(String::as_str);
    assert_eq!(form("client_id"), Some("app-1"));
    assert_eq!(form("grant_type"), Some("client_credentials"));
    assert_eq!(form("scope"), Some(COSMOS_SCOPE));
    assert_eq!(form("client_assertion_type"), Some(ASSERTION_TYPE));
    assert_eq!(form("client_assertion"), Some("sa-token-1"));
    assert_eq!(form("client_secret"), None);
}

#[tokio::test]
async fn federated_token_file_is_read_again_for_every_exchange() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let token_file = file_with("sa-token-1");
    let credential = start(&fake, &workload(&fake, token_file.path()))
        .await
        .expect("credential must start");

    std::fs::write(token_file.path(), "sa-token-2").expect("rotate");
    assert!(credential.request_refresh(), "a forced refresh is due");
    wait_for_header(&credential, "type=aad&ver=1.0&sig=entra-2").await;
    let assertions: Vec<String> = fake
        .seen()
        .iter()
        .map(|e| e.form["client_assertion"].clone())
        .collect();
    assert_eq!(assertions, ["sa-token-1", "sa-token-2"]);
    assert!(
        !credential.request_refresh(),
        "forced refreshes are rate-limited"
    );
}

#[tokio::test]
async fn client_secret_file_is_sent_and_can_be_rotated_in_place() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let secret = file_with("first-secret\n");
    let credential = start(&fake, &secret_file_config(&fake.authority, secret.path()))
        .await
        .expect("credential must start");
    assert_eq!(credential.kind(), "client_secret");

    std::fs::write(secret.path(), "second-secret").expect("rotate");
    assert!(credential.request_refresh());
    wait_for_header(&credential, "type=aad&ver=1.0&sig=entra-2").await;
    let seen = fake.seen();
    let secrets: Vec<&str> = seen
        .iter()
        .map(|e| e.form["client_secret"].as_str())
        .collect();
    assert_eq!(secrets, ["first-secret", "second-secret"]);
    for exchange in &seen {
        assert_eq!(exchange.form["client_id"], "app-2");
        assert_eq!(exchange.form["scope"], "https://cosmos.azure.us/.default");
        assert!(!exchange.form.contains_key("client_assertion"));
    }
    let debug = format!("{credential:?}");
    assert!(
        !debug.contains("first-secret") && !debug.contains("entra-"),
        "{debug}"
    );
}

#[tokio::test]
async fn client_secret_is_read_from_the_named_environment_variable() {
    // PATH is set in every test process; its value stands in for a secret.
    let expected = std::env::var("PATH").expect("PATH is set");
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let cfg = CredentialConfig::ClientSecret(ClientSecretConfig {
        tenant_id: TENANT.to_owned(),
        client_id: "app-3".to_owned(),
        secret_file: None,
        secret_env: Some("PATH".to_owned()),
        authority_host: fake.authority.clone(),
        scope: COSMOS_SCOPE.to_owned(),
    });
    start(&fake, &cfg).await.expect("credential must start");
    assert_eq!(fake.seen()[0].form["client_secret"], expected.trim());
}

#[tokio::test]
async fn missing_secret_variable_fails_start_up_without_any_request() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let cfg = CredentialConfig::ClientSecret(ClientSecretConfig {
        tenant_id: TENANT.to_owned(),
        client_id: "app".to_owned(),
        secret_file: None,
        secret_env: Some("COSMOGATE_TEST_VARIABLE_THAT_IS_NEVER_SET".to_owned()),
        authority_host: fake.authority.clone(),
        scope: COSMOS_SCOPE.to_owned(),
    });
    let err = start(&fake, &cfg).await.expect_err("no secret");
    assert_eq!(err.reason_code(), "credential_config");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn throttled_exchange_waits_for_retry_after_then_succeeds() {
    // Start-up's own first backoff is one second; Retry-After asks for more.
    let throttled = EntraReply::Error {
        status: 429,
        code: "temporarily_unavailable",
        error_codes: vec![50196],
        retry_after: Some(2),
    };
    let fake = EntraFake::start(vec![throttled], EntraReply::token()).await;
    let token_file = file_with("sa");
    let begun = Instant::now();
    let credential = start(&fake, &workload(&fake, token_file.path()))
        .await
        .expect("credential must start");
    assert!(
        begun.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert_eq!(fake.requests(), 2);
    assert!(header(&credential).await.ends_with("entra-1"));
}

#[tokio::test]
async fn refused_client_is_not_retried_and_the_error_names_only_codes() {
    let fake = EntraFake::start(vec![], EntraReply::error(401, "invalid_client", 7000215)).await;
    let secret = file_with("do-not-print-me");
    let err = start(&fake, &secret_file_config(&fake.authority, secret.path()))
        .await
        .expect_err("a refused client must fail start-up");
    assert_eq!(fake.requests(), 1);
    assert_eq!(err.reason_code(), "credential_unavailable");
    let text = format!("{err} {err:?}");
    assert!(text.contains("401: AADSTS7000215"), "{text}");
    assert!(!text.contains("do-not-print-me"), "{text}");
    assert!(!text.contains("scripted failure"), "{text}");
}

#[tokio::test]
async fn server_errors_and_unreadable_answers_are_retried() {
    let script = vec![
        EntraReply::error(503, "temporarily_unavailable", 50196),
        EntraReply::Html(502),
    ];
    let fake = EntraFake::start(script, EntraReply::token()).await;
    let token_file = file_with("sa");
    start(&fake, &workload(&fake, token_file.path()))
        .await
        .expect("credential must start");
    assert_eq!(fake.requests(), 3);
}

#[tokio::test]
async fn failed_forced_refresh_keeps_serving_the_cached_entra_token() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let token_file = file_with("sa");
    let credential = start(&fake, &workload(&fake, token_file.path()))
        .await
        .expect("credential must start");
    fake.set_fallback(EntraReply::error(503, "temporarily_unavailable", 50196));
    assert!(credential.request_refresh());
    for _ in 0..500 {
        if fake.requests() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.requests(), 2, "the forced refresh was attempted");
    assert!(header(&credential).await.ends_with("entra-1"));
}

#[tokio::test(start_paused = true)]
async fn unreachable_authority_is_credential_unavailable_after_bounded_attempts() {
    let authority = Url::parse(&format!("https://{}/", closed_port())).expect("url");
    let secret = file_with("s");
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let err = Credential::new(
        &secret_file_config(&authority, secret.path()),
        fake.client(),
    )
    .await
    .expect_err("nothing listens");
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn missing_token_file_is_reported_without_reaching_the_authority() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = workload(&fake, &dir.path().join("absent"));
    let err = start(&fake, &cfg).await.expect_err("no token file");
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert!(err.to_string().contains("federated token file"), "{err}");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn credential_clones_share_one_exchange() {
    let fake = EntraFake::start(vec![], EntraReply::token()).await;
    let token_file = file_with("sa");
    let credential = Arc::new(
        start(&fake, &workload(&fake, token_file.path()))
            .await
            .expect("credential must start"),
    );
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let credential = credential.as_ref().clone();
        tasks.push(tokio::spawn(async move { header(&credential).await }));
    }
    for task in tasks {
        assert!(task.await.expect("task").ends_with("entra-1"));
    }
    assert_eq!(fake.requests(), 1);
}
