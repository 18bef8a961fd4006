//! Token endpoint faults against the loopback IMDS stand-in, in paused time: every form of
//! `expires_on`, a slow endpoint, throttling, an outage while a token is cached, and the
//! forced refresh after the upstream refuses our token.

mod common;

use std::time::Duration;

use common::{
    ExpiresOn, Protocol, Recorder, Reply, TokenFake, UpstreamReply, http_client,
    imds_credential_config,
};
use cosmogate_upstream::{Credential, Forwarder, UpstreamConfig, screen_upstream_denial};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Empty};
use tokio::time::Instant;
use url::Url;

const MIN: Duration = Duration::from_secs(60);

async fn header(credential: &Credential) -> Option<String> {
    let value = credential
        .authorization(&Method::GET, "docs", "dbs/a/colls/b", "ignored")
        .await
        .ok()?;
    Some(value.to_str().expect("ascii").to_owned())
}

async fn imds_credential(fake: &TokenFake) -> Credential {
    Credential::new(&imds_credential_config(fake), http_client())
        .await
        .expect("credential must start")
}

#[tokio::test(start_paused = true)]
async fn every_expires_on_form_drives_the_same_refresh_schedule() {
    let forms = [
        ExpiresOn::EpochString,
        ExpiresOn::EpochNumber,
        ExpiresOn::LegacyDate,
        ExpiresOn::Rfc3339,
    ];
    for form in forms {
        let fake = TokenFake::start(Protocol::Imds, form, vec![], Reply::Token(3600)).await;
        let credential = imds_credential(&fake).await;
        tokio::time::sleep(45 * MIN).await;
        assert_eq!(fake.requests(), 1, "no early refresh");
        tokio::time::sleep(10 * MIN).await;
        common::eventually(|| fake.requests() == 2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            header(&credential).await.as_deref(),
            Some("type=aad&ver=1.0&sig=token-2")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn slow_token_endpoint_is_cut_off_after_fifteen_seconds_and_asked_again() {
    let slow = Reply::SlowToken {
        delay: 300,
        lifetime: 3600,
    };
    let fake = TokenFake::imds(vec![slow], Reply::Token(3600)).await;
    let begun = Instant::now();
    let credential = imds_credential(&fake).await;
    let waited = begun.elapsed();
    assert!(waited >= Duration::from_secs(15), "{waited:?}");
    assert!(waited < Duration::from_secs(300), "{waited:?}");
    assert_eq!(fake.requests(), 2);
    assert!(header(&credential).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn cold_start_throttling_costs_four_calls_and_then_none_per_request() {
    let throttled = |retry_after| Reply::Error {
        status: 429,
        code: "too_many_requests",
        retry_after,
    };
    let script = vec![throttled(Some(3)), throttled(None), throttled(Some(1))];
    let fake = TokenFake::imds(script, Reply::Token(3600)).await;
    let begun = Instant::now();
    let credential = imds_credential(&fake).await;
    // Waits of at least 3 s (Retry-After), 2 s and 4 s (backoff beats the 1 s Retry-After).
    assert!(
        begun.elapsed() >= Duration::from_secs(9),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(fake.requests(), 4);

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let credential = credential.clone();
        tasks.push(tokio::spawn(async move { header(&credential).await }));
    }
    for task in tasks {
        assert_eq!(
            task.await.expect("task").as_deref(),
            Some("type=aad&ver=1.0&sig=token-1")
        );
    }
    assert_eq!(fake.requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn outage_across_the_refresh_window_goes_unnoticed_while_the_token_lasts() {
    let fake = TokenFake::imds(vec![Reply::Token(3600)], Reply::error(503, "unavailable")).await;
    let credential = imds_credential(&fake).await;
    tokio::time::sleep(45 * MIN).await;
    assert_eq!(fake.requests(), 1);
    // Minutes 45 to 58: the refresh falls due and fails, again and again.
    for _ in 0..13 {
        assert!(
            header(&credential)
                .await
                .is_some_and(|h| h.ends_with("token-1"))
        );
        tokio::time::sleep(MIN).await;
    }
    let during = fake.requests();
    assert!(during >= 2, "refreshes were attempted during the outage");
    assert!(
        during <= 8,
        "attempts are spaced by backoff, not per request: {during}"
    );

    fake.set_fallback(Reply::Token(3600));
    let mut refreshed = false;
    for _ in 0..600 {
        if header(&credential)
            .await
            .is_some_and(|h| h.ends_with("token-2"))
        {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        refreshed,
        "the token was refreshed once the endpoint recovered"
    );
}

#[tokio::test(start_paused = true)]
async fn outage_without_a_usable_token_is_credential_unavailable_not_a_hang() {
    let fake = TokenFake::imds(vec![Reply::Token(120)], Reply::error(500, "unknown")).await;
    let credential = imds_credential(&fake).await;
    tokio::time::sleep(2 * MIN).await;
    let err = credential
        .authorization(&Method::GET, "docs", "x", "d")
        .await
        .expect_err("no usable token");
    assert_eq!(err.reason_code(), "credential_unavailable");
    assert_eq!(err.status(), 503);
}

fn upstream_config(addr: std::net::SocketAddr, fake: &TokenFake) -> UpstreamConfig {
    UpstreamConfig {
        endpoint: Url::parse(&format!("http://{addr}/")).expect("url"),
        ca_file: None,
        connect_timeout_seconds: 5,
        response_timeout_seconds: 30,
        idle_timeout_seconds: 90,
        body_timeout_seconds: 60,
        regions: Vec::new(),
        credential: imds_credential_config(fake),
    }
}

fn empty() -> cosmogate_upstream::UpstreamBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

#[tokio::test(start_paused = true)]
async fn upstream_401_forces_one_refresh_a_minute_and_is_screened_as_ours() {
    let refused = UpstreamReply {
        status: 401,
        headers: vec![("x-ms-substatus", "5008"), ("x-ms-activity-id", "a-1")],
        body: "{\"code\":\"Unauthorized\",\"message\":\"wrong audience\"}",
    };
    let recorder = Recorder::new(refused);
    let addr = common::serve_http(recorder.router()).await;
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    let forwarder = Forwarder::new(&upstream_config(addr, &fake), credential).expect("forwarder");

    for _ in 0..5 {
        let request = Request::get("/dbs/a/colls/b/docs/1")
            .body(empty())
            .expect("request");
        let response = forwarder
            .forward(request, "docs", "dbs/a/colls/b/docs/1")
            .await;
        let err = screen_upstream_denial(response.expect("forwarded"))
            .await
            .expect_err("our credential was refused");
        assert_eq!(err.reason_code(), "upstream_auth_failed");
        assert_eq!(err.status(), 502);
        let cosmogate_upstream::UpstreamError::UpstreamDenied {
            status, substatus, ..
        } = err
        else {
            panic!("expected an upstream denial");
        };
        assert_eq!((status, substatus), (401, Some(5008)));
    }
    assert_eq!(
        recorder.seen().len(),
        5,
        "each request went upstream exactly once"
    );
    common::eventually(|| fake.requests() == 2).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(fake.requests(), 2, "one forced refresh for five refusals");

    tokio::time::sleep(MIN).await;
    let request = Request::get("/").body(empty()).expect("request");
    forwarder.forward(request, "", "").await.expect("forwarded");
    common::eventually(|| fake.requests() == 3).await;
}

#[tokio::test(start_paused = true)]
async fn failover_403_passes_through_screening_byte_for_byte() {
    let failover = UpstreamReply {
        status: 403,
        headers: vec![
            ("x-ms-substatus", "3"),
            ("content-type", "application/json"),
        ],
        body: "{\"code\":\"Forbidden\",\"message\":\"write forbidden\"}",
    };
    let recorder = Recorder::new(failover);
    let addr = common::serve_http(recorder.router()).await;
    let fake = TokenFake::imds(vec![], Reply::Token(3600)).await;
    let credential = imds_credential(&fake).await;
    let forwarder = Forwarder::new(&upstream_config(addr, &fake), credential).expect("forwarder");
    let request = Request::post("/dbs/a/colls/b/docs")
        .body(empty())
        .expect("request");
    let response = forwarder.forward(request, "docs", "dbs/a/colls/b").await;
    let response = screen_upstream_denial(response.expect("forwarded"))
        .await
        .expect("the app's answer");
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-ms-substatus"], "3");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(
        &body[..],
        b"{\"code\":\"Forbidden\",\"message\":\"write forbidden\"}"
    );
    tokio::time::sleep(5 * MIN).await;
    assert_eq!(fake.requests(), 1, "a 403 forces no refresh");
}
