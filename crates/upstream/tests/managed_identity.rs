//! The managed-identity credential against a loopback IMDS fake, mostly in paused time.

mod common;

use std::time::Duration;

use common::{Reply, TokenFake, eventually, http_client, imds_credential_config, mi_config};
use cosmogate_upstream::{Credential, CredentialConfig, MiSource, UpstreamError};
use http::Method;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

async fn header(credential: &Credential) -> Result<String, UpstreamError> {
    let value = credential
        .authorization(
            &Method::GET,
            "docs",
            "dbs/shop/colls/orders/docs/1",
            "ignored",
        )
        .await?;
    Ok(value.to_str().expect("ascii header").to_owned())
}

async fn imds_credential(fake: &TokenFake) -> Credential {
    Credential::new(&imds_credential_config(fake), http_client())
        .await
        .expect("credential must start")
}

#[tokio::test]
async fn fake_refuses_a_request_without_the_metadata_header() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let response = http_client()
        .get(fake.url.clone())
        .send()
        .await
        .expect("fake answers");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "bad_request_102");
}

#[tokio::test]
async fn imds_request_has_the_metadata_header_and_the_exact_query() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let selectors = [
        ("client_id", "client_id=c-1"),
        ("object_id", "object_id=o-1"),
        ("resource_id", "msi_res_id=%2Fsubscriptions%2Fs%2Fid"),
        ("none", ""),
    ];
    for (selector, _) in selectors {
        let mut mi = mi_config(MiSource::Imds, Some(&fake.url));
        match selector {
            "client_id" => mi.client_id = Some("c-1".into()),
            "object_id" => mi.object_id = Some("o-1".into()),
            "resource_id" => mi.resource_id = Some("/subscriptions/s/id".into()),
            _ => {}
        }
        Credential::new(&CredentialConfig::ManagedIdentity(mi), http_client())
            .await
            .expect("credential must start");
    }
    let seen = fake.seen();
    assert_eq!(seen.len(), selectors.len());
    for (request, (_, selector_param)) in seen.iter().zip(selectors) {
        let base = "api-version=2018-02-01&resource=https%3A%2F%2Fcosmos.azure.com";
        let expected = match selector_param {
            "" => base.to_owned(),
            param => format!("{base}&{param}"),
        };
        assert_eq!(request.path, common::IMDS_PATH);
        assert_eq!(request.query, expected);
        assert_eq!(
            request.headers.get("metadata").map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
        assert!(request.headers.get("x-identity-header").is_none());
    }
}

#[tokio::test]
async fn many_authorizations_share_one_token_request() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    for _ in 0..200 {
        assert_eq!(
            header(&credential).await.expect("token"),
            "type=aad&ver=1.0&sig=token-1"
        );
    }
    let clone = credential.clone();
    assert!(header(&clone).await.is_ok());
    assert_eq!(fake.requests(), 1);
    assert_eq!(credential.kind(), "managed_identity");
}

#[tokio::test]
async fn header_is_marked_sensitive_and_debug_shows_only_the_kind() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    let value = credential
        .authorization(&Method::POST, "docs", "dbs/a/colls/b", "d")
        .await
        .expect("token");
    assert!(value.is_sensitive());
    let debug = format!("{credential:?}");
    assert!(!debug.contains("token-1"), "{debug}");
    assert!(debug.contains("managed_identity"), "{debug}");
}

#[tokio::test(start_paused = true)]
async fn one_hour_token_is_refreshed_in_the_background_before_it_expires() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;

    tokio::time::sleep(45 * MIN).await;
    assert_eq!(fake.requests(), 1, "no refresh before the refresh window");
    assert!(
        header(&credential)
            .await
            .expect("token")
            .ends_with("token-1")
    );

    tokio::time::sleep(10 * MIN).await;
    eventually(|| fake.requests() == 2).await;
    assert!(
        header(&credential)
            .await
            .expect("token")
            .ends_with("token-2")
    );
}

#[tokio::test(start_paused = true)]
async fn long_lived_token_is_refreshed_at_half_life() {
    let fake = TokenFake::imds(vec![], Reply::Token(24 * 3600)).await;
    let credential = imds_credential(&fake).await;

    tokio::time::sleep(10 * HOUR).await;
    assert_eq!(fake.requests(), 1);
    tokio::time::sleep(2 * HOUR).await;
    eventually(|| fake.requests() == 2).await;
    assert!(
        header(&credential)
            .await
            .expect("token")
            .ends_with("token-2")
    );
}

#[tokio::test(start_paused = true)]
async fn failing_refresh_keeps_serving_the_cached_token_until_just_before_expiry() {
    let fake = TokenFake::imds(vec![Reply::Token(3600)], Reply::error(500, "unknown")).await;
    let credential = imds_credential(&fake).await;

    tokio::time::sleep(57 * MIN).await;
    assert!(fake.requests() >= 2, "a refresh must have been attempted");
    assert!(
        header(&credential)
            .await
            .expect("cached")
            .ends_with("token-1")
    );

    tokio::time::sleep(2 * MIN + Duration::from_secs(1)).await;
    let err = header(&credential)
        .await
        .expect_err("token within a minute of expiry");
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert_eq!(err.status(), 503);

    // Attempts are spaced by backoff, not made per request.
    let attempts = fake.requests();
    for _ in 0..50 {
        let _ = header(&credential).await;
    }
    assert_eq!(fake.requests(), attempts);

    // Once the endpoint recovers, the next scheduled attempt brings a token back.
    fake.set_fallback(Reply::Token(3600));
    let mut recovered = None;
    for _ in 0..600 {
        if let Ok(value) = header(&credential).await {
            recovered = Some(value);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(recovered.as_deref(), Some("type=aad&ver=1.0&sig=token-2"));
}

#[tokio::test(start_paused = true)]
async fn date_string_expires_on_alone_drives_the_refresh_schedule() {
    let fake = TokenFake::start(
        common::Protocol::Imds,
        common::ExpiresOn::LegacyDate,
        vec![],
        Reply::Token(3600),
    )
    .await;
    let credential = imds_credential(&fake).await;

    tokio::time::sleep(45 * MIN).await;
    assert_eq!(fake.requests(), 1);
    tokio::time::sleep(10 * MIN).await;
    eventually(|| fake.requests() == 2).await;
    assert!(
        header(&credential)
            .await
            .expect("token")
            .ends_with("token-2")
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_first_request_is_retried_then_succeeds() {
    let throttled = Reply::Error {
        status: 429,
        code: "too_many_requests",
        retry_after: Some(2),
    };
    let fake = TokenFake::imds(vec![throttled], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    assert_eq!(fake.requests(), 2);
    assert!(
        header(&credential)
            .await
            .expect("token")
            .ends_with("token-1")
    );
}

#[tokio::test(start_paused = true)]
async fn updating_and_server_errors_are_retried_at_start_up() {
    let script = vec![
        Reply::error(410, "gone"),
        Reply::error(404, "not_found"),
        Reply::error(503, "unavailable"),
    ];
    let fake = TokenFake::imds(script, Reply::Token(3600)).await;
    imds_credential(&fake).await;
    assert_eq!(fake.requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn bad_request_is_not_retried() {
    let fake = TokenFake::imds(vec![], Reply::error(400, "invalid_resource")).await;
    let err = Credential::new(&imds_credential_config(&fake), http_client())
        .await
        .expect_err("a 400 must fail start-up");
    assert_eq!(fake.requests(), 1);
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert!(err.to_string().contains("400: invalid_resource"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_give_up_after_a_bounded_number_of_attempts() {
    let fake = TokenFake::imds(vec![], Reply::error(500, "unknown")).await;
    let err = Credential::new(&imds_credential_config(&fake), http_client())
        .await
        .expect_err("must give up");
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert_eq!(fake.requests(), 5);
}

#[tokio::test(start_paused = true)]
async fn unreachable_token_endpoint_is_credential_unavailable() {
    let (_reserved, addr) = common::refusing_port();
    let url = url::Url::parse(&format!("http://{addr}/token")).expect("url");
    let cfg = CredentialConfig::ManagedIdentity(mi_config(MiSource::Imds, Some(&url)));
    let err = Credential::new(&cfg, http_client())
        .await
        .expect_err("nothing listens");
    assert_eq!(err.reason_code(), "credential_unavailable");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_clone_stops_the_refresh_task() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    let clone = credential.clone();
    drop(credential);
    tokio::time::sleep(2 * HOUR).await;
    assert!(fake.requests() >= 2, "a live clone keeps refreshing");
    drop(clone);
    let after = fake.requests();
    tokio::time::sleep(5 * HOUR).await;
    assert_eq!(fake.requests(), after);
}

#[tokio::test]
async fn app_service_without_its_header_variable_is_a_config_error() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let mut mi = mi_config(MiSource::AppService, Some(&fake.url));
    mi.identity_header_env = "COSMOGATE_TEST_VARIABLE_THAT_IS_NEVER_SET".into();
    let err = Credential::new(&CredentialConfig::ManagedIdentity(mi), http_client())
        .await
        .expect_err("missing variable");
    assert_eq!(err.reason_code(), "credential_config");
    assert_eq!(err.status(), 500);
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn resource_with_a_trailing_slash_is_refused_before_any_token_request() {
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let mut mi = mi_config(MiSource::Imds, Some(&fake.url));
    mi.resource = "https://acct.documents.azure.com/".into();
    let err = Credential::new(&CredentialConfig::ManagedIdentity(mi), http_client())
        .await
        .expect_err("trailing slash");
    assert_eq!(err.reason_code(), "credential_config");
    assert_eq!(fake.requests(), 0);
}
