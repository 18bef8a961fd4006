//! Scheduled key set refreshes (C15): ahead of expiry and off the request path, bounded
//! staleness through IdP outages, and what `key_status` reports meanwhile.

mod common;

use std::sync::Arc;

use common::*;
use cosmogate_validator::{IssuerConfig, KeyStatus, Validator, ValidatorOptions};
use serde_json::json;
use tokio::sync::Semaphore;

fn long_lived() -> String {
    t0_with("exp", Some(json!(NOW + 2 * 86_400)))
}

fn status_a(rig: &Rig) -> KeyStatus {
    rig.validator
        .key_status()
        .into_iter()
        .find(|status| status.issuer == ISSUER_A)
        .expect("issuer a has a status")
}

/// A rig whose IdP-A entry has `max_stale_seconds` set.
async fn rig_with_max_stale(max_stale: u64) -> Rig {
    let mock = MockIdp::start_a_b().await;
    let mut config = mock.config("a", ISSUER_A, &["RS256", "ES256"]);
    config.max_stale_seconds = max_stale;
    let (validator, clock) = validator_for(vec![config], 16_384)
        .await
        .expect("validator starts");
    Rig {
        mock,
        validator,
        clock,
    }
}

#[tokio::test]
async fn the_background_task_refreshes_a_set_before_it_expires_without_any_request() {
    let mock = MockIdp::start_a_b().await;
    let (options, clock) = test_options(16_384);
    let options = ValidatorOptions {
        background_refresh: true,
        ..options
    };
    let config = mock.config("a", ISSUER_A, &["RS256"]);
    let validator = Validator::with_options(vec![config], http(), options)
        .await
        .expect("validator starts");
    assert_eq!(mock.jwks_hits("a"), 1);

    // Four fifths of the default 300 s lifetime.
    clock.advance(240);
    eventually("a background refresh", || mock.jwks_hits("a") == 2).await;
    let status = &validator.key_status()[0];
    assert!(!status.refresh_failing && !status.serving_stale && status.usable);
    assert_eq!(status.fetches, 2);
}

#[tokio::test]
async fn requests_are_served_while_a_refresh_waits_on_a_slow_idp() {
    let rig = rig().await;
    let gate = Arc::new(Semaphore::new(0));
    rig.mock
        .set_jwks("a", Reply::ok(jwks_a_with_rsa2()).gated(gate.clone()));
    rig.clock.advance(240);
    let validator = rig.validator.clone();
    let refresh = tokio::spawn(async move { validator.refresh_keys().await });
    eventually("the refresh reaching the IdP", || {
        rig.mock.jwks_hits("a") == 2
    })
    .await;

    for n in 0..20 {
        let token = t0_with("jti", Some(json!(format!("fresh-{n}"))));
        assert_eq!(rig.reason(&token).await, "ok");
    }
    rig.refresh().await;
    assert!(
        !refresh.is_finished(),
        "the IdP is still holding its answer"
    );
    assert_eq!(
        rig.mock.jwks_hits("a"),
        2,
        "one fetch in flight, no second one"
    );

    gate.add_permits(1);
    refresh.await.expect("refresh completes");
    let rotated = t0_header_with("kid", Some(json!("rsa-2")), &key("rsa-2"));
    assert_eq!(
        rig.reason(&rotated).await,
        "ok",
        "the refreshed set is in use"
    );
    assert_eq!(rig.mock.jwks_hits("a"), 2);
}

#[tokio::test]
async fn a_removed_key_stops_working_at_the_next_scheduled_refresh() {
    let rig = rig().await;
    let token = t0();
    assert_eq!(rig.reason(&token).await, "ok");
    assert_eq!(rig.reason(&token).await, "ok");
    assert_eq!(
        rig.validator.stats().token_cache_hits,
        1,
        "the token is cached"
    );

    rig.mock.set_jwks(
        "a",
        Reply::ok(jwks(&[key("rsa-2").jwk("rsa-2", None, None)])),
    );
    rig.clock.advance(239);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 1, "not due yet");
    assert_eq!(rig.reason(&token).await, "ok");
    rig.clock.advance(1);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 2);
    assert_eq!(
        rig.reason(&token).await,
        "unknown_key",
        "the cached entry went with its key"
    );
}

#[tokio::test]
async fn cache_control_max_age_sets_the_lifetime_within_bounds() {
    let mock = MockIdp::start_a_b().await;
    mock.set_jwks(
        "a",
        Reply::ok(jwks_a()).header("cache-control", "public, max-age=1200"),
    );
    let rig = rig_on(mock).await;
    rig.clock.advance(959);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 1);
    rig.clock.advance(1);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 2, "refreshed at 4/5 of 1200 s");

    // A tiny max-age is raised to 60 s, refreshed after 48 s.
    rig.mock.set_jwks(
        "a",
        Reply::ok(jwks_a()).header("cache-control", "max-age=5"),
    );
    rig.clock.advance(960);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 3);
    rig.clock.advance(47);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 3);
    rig.clock.advance(1);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 4);
    assert_eq!(rig.reason(&long_lived()).await, "ok");
}

#[tokio::test]
async fn the_last_good_keys_serve_through_an_outage_for_max_stale_seconds_then_503() {
    let rig = rig_with_max_stale(600).await;
    let token = long_lived();
    assert_eq!(rig.reason(&token).await, "ok");
    rig.mock.set_jwks("a", Reply::status(500, "down"));

    rig.clock.advance(240);
    rig.refresh().await;
    rig.refresh().await;
    assert_eq!(
        rig.mock.jwks_hits("a"),
        2,
        "a failed refresh waits a cooldown"
    );
    let status = status_a(&rig);
    assert!(status.refresh_failing && !status.serving_stale && status.usable);
    assert_eq!((status.fetches, status.fetch_failures), (2, 1));
    assert!(status.last_error.is_some_and(|e| e.contains("status")));

    // An HTML page or a redirect never replaces the good set either.
    rig.mock
        .set_jwks("a", Reply::ok("<html>maintenance</html>".into()));
    rig.clock.advance(30);
    rig.refresh().await;
    let elsewhere = format!("{}/b/jwks", rig.mock.base);
    rig.mock
        .set_jwks("a", Reply::status(302, "").header("location", &elsewhere));
    rig.clock.advance(30);
    rig.refresh().await;
    assert_eq!(rig.mock.jwks_hits("a"), 4);

    rig.clock.set(NOW + 301);
    assert_eq!(rig.reason(&token).await, "ok");
    let new_token = t0_with("jti", Some(json!("after-expiry")));
    assert_eq!(rig.reason(&new_token).await, "ok");
    let status = status_a(&rig);
    assert!(status.serving_stale && status.usable, "{status:?}");
    assert_eq!((status.stale_seconds, status.max_stale_seconds), (1, 600));

    rig.clock.set(NOW + 300 + 599);
    assert_eq!(rig.reason(&token).await, "ok");
    rig.clock.set(NOW + 300 + 600);
    for candidate in [
        &token,
        &new_token,
        &t0_with("jti", Some(json!("never-seen"))),
    ] {
        let error = rig
            .validator
            .validate(candidate)
            .await
            .expect_err("keys too stale, cached or not");
        assert!(error.is_unavailable(), "{error}");
        assert!(
            error
                .retry_after_seconds()
                .is_some_and(|s| (1..=30).contains(&s))
        );
    }
    let status = status_a(&rig);
    assert!(!status.usable && !status.serving_stale);

    rig.mock.set_jwks("a", Reply::ok(jwks_a()));
    rig.refresh().await;
    assert_eq!(
        rig.reason(&token).await,
        "ok",
        "recovers once the IdP is back"
    );
    let status = status_a(&rig);
    assert!(!status.refresh_failing && status.usable && status.last_error.is_none());
}

#[tokio::test]
async fn max_stale_seconds_defaults_to_an_hour_and_zero_means_no_stale_keys() {
    let rig = rig().await;
    assert_eq!(status_a(&rig).max_stale_seconds, 3600);

    let rig = rig_with_max_stale(0).await;
    rig.mock.set_jwks("a", Reply::status(500, "down"));
    rig.clock.advance(240);
    rig.refresh().await;
    rig.clock.set(NOW + 299);
    assert_eq!(rig.reason(&long_lived()).await, "ok");
    rig.clock.set(NOW + 300);
    assert_eq!(rig.reason(&long_lived()).await, "keys_unavailable");
}

#[tokio::test]
async fn an_empty_key_set_replaces_good_keys_only_when_seen_twice() {
    let rig = rig().await;
    let token = long_lived();
    rig.mock.set_jwks("a", Reply::ok(jwks(&[])));
    rig.clock.advance(240);
    rig.refresh().await;
    assert_eq!(rig.reason(&token).await, "ok", "first empty set is ignored");
    assert!(status_a(&rig).refresh_failing);
    rig.clock.advance(30);
    rig.refresh().await;
    assert_eq!(
        rig.reason(&token).await,
        "unknown_key",
        "second empty set is believed"
    );
}

#[tokio::test]
async fn a_too_large_max_stale_seconds_fails_start_up() {
    let mock = MockIdp::start_a_b().await;
    let mut config: IssuerConfig = mock.config("a", ISSUER_A, &["RS256"]);
    config.max_stale_seconds = 86_401;
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("refused");
    assert_eq!(error.reason_code(), "invalid_config");
    assert!(error.to_string().contains("max_stale_seconds"), "{error}");
}
