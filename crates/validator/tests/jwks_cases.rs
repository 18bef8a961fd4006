//! Key set cases C14 and C15 (unknown `kid`s), start-up readiness and key set parsing against a
//! live mock IdP. Scheduled refreshes and outages are in `refresh_cases.rs`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use cosmogate_validator::TokenError;
use rand::Rng;
use serde_json::json;

fn random_kid_token() -> String {
    let kid = format!("{:032x}", rand::rng().random::<u128>());
    t0_header_with("kid", Some(json!(kid)), &key("evil-rsa"))
}

fn rsa2_token() -> String {
    t0_header_with("kid", Some(json!("rsa-2")), &key("rsa-2"))
}

// C14 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_storm_of_unknown_kids_causes_one_fetch_per_cooldown() {
    let rig = rig().await;
    let before = rig.mock.jwks_hits("a");
    // A slow IdP makes the concurrent misses overlap the one fetch in flight.
    rig.mock
        .set_jwks("a", Reply::ok(jwks_a()).delayed(Duration::from_millis(200)));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let validator = rig.validator.clone();
            let token = random_kid_token();
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("task completes");
        assert_eq!(result.err().map(|e| e.reason_code()), Some("unknown_key"));
    }
    assert_eq!(rig.mock.jwks_hits("a"), before + 1);

    for _ in 0..100 {
        assert_eq!(rig.reason(&random_kid_token()).await, "unknown_key");
    }
    assert_eq!(
        rig.mock.jwks_hits("a"),
        before + 1,
        "no fetch within the cooldown"
    );

    rig.clock.advance(30);
    assert_eq!(rig.reason(&random_kid_token()).await, "unknown_key");
    assert_eq!(
        rig.mock.jwks_hits("a"),
        before + 2,
        "one fetch after the cooldown"
    );
    assert_eq!(
        rig.reason(&t0()).await,
        "ok",
        "known keys keep working throughout"
    );
}

// C15 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_newly_published_key_is_accepted_after_one_refetch() {
    let rig = rig().await;
    let before = rig.mock.jwks_hits("a");
    rig.mock.set_jwks("a", Reply::ok(jwks_a_with_rsa2()));
    assert_eq!(rig.reason(&rsa2_token()).await, "ok");
    assert_eq!(rig.mock.jwks_hits("a"), before + 1);
    assert_eq!(rig.reason(&rsa2_token()).await, "ok");
    assert_eq!(rig.reason(&t0()).await, "ok");
    assert_eq!(rig.mock.jwks_hits("a"), before + 1);
}

#[tokio::test]
async fn a_key_published_during_the_cooldown_is_accepted_once_it_ends() {
    let rig = rig().await;
    assert_eq!(rig.reason(&random_kid_token()).await, "unknown_key");
    rig.mock.set_jwks("a", Reply::ok(jwks_a_with_rsa2()));
    assert_eq!(rig.reason(&rsa2_token()).await, "unknown_key");
    rig.clock.advance(30);
    assert_eq!(rig.reason(&rsa2_token()).await, "ok");
}

#[tokio::test]
async fn a_bad_key_and_an_encryption_key_do_not_spoil_the_good_key() {
    let keys = jwks(&[
        json!({"kty":"RSA","kid":"enc-1","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}),
        key("rsa-2").jwk("enc-2", None, Some("enc")),
        json!({"kty":"RSA","kid":"broken","n":5,"e":"AQAB"}),
        json!({"kty":"EC","kid":"bad-curve","crv":"P-521","x":"AA","y":"AA"}),
        json!({"kid":"no-kty"}),
        key("rsa-1").jwk("rsa-1", None, None),
    ]);
    let mock = MockIdp::start(&[("a", ISSUER_A, keys), ("b", ISSUER_B, jwks_b())]).await;
    let rig = rig_on(mock).await;
    assert_eq!(rig.reason(&t0()).await, "ok");
    let enc = t0_header_with("kid", Some(json!("enc-2")), &key("rsa-2"));
    assert_eq!(rig.reason(&enc).await, "unknown_key");
}

// Start-up readiness --------------------------------------------------------------------------

#[tokio::test]
async fn start_up_fails_when_the_idp_is_unreachable() {
    let (_reserved, address) = refusing_port();
    let config = serde_json::from_value(json!({
        "issuer": ISSUER_A,
        "discovery_url": format!("http://{address}/a/.well-known/openid-configuration"),
        "audiences": [AUDIENCE],
    }))
    .expect("config parses");
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("must not start");
    assert!(
        matches!(error, TokenError::KeysUnavailable { .. }),
        "{error}"
    );
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn start_up_fails_when_discovery_or_keys_are_unusable() {
    let mock = MockIdp::start_a_b().await;
    *mock.idp("a").discovery_status.lock().expect("lock") = 404;
    let error = validator_for(vec![mock.config("a", ISSUER_A, &["RS256"])], 16_384)
        .await
        .expect_err("discovery 404");
    assert_eq!(error.reason_code(), "keys_unavailable");

    mock.set_jwks(
        "b",
        Reply::ok(jwks(&[json!({"kty":"oct","kid":"h","k":"c2VjcmV0"})])),
    );
    let error = validator_for(vec![mock.config("b", ISSUER_B, &["RS256"])], 16_384)
        .await
        .expect_err("no usable key");
    assert_eq!(error.reason_code(), "keys_unavailable");
}

#[tokio::test]
async fn start_up_waits_for_every_issuer_and_fetches_each_once() {
    let rig = rig().await;
    for name in ["a", "b"] {
        assert_eq!(
            rig.mock.idp(name).discovery_hits.load(Ordering::SeqCst),
            1,
            "{name}"
        );
        assert_eq!(rig.mock.jwks_hits(name), 1, "{name}");
    }
}

#[tokio::test]
async fn an_explicit_jwks_uri_skips_discovery() {
    let mock = MockIdp::start_a_b().await;
    let config = serde_json::from_value(json!({
        "issuer": ISSUER_A, "jwks_uri": mock.jwks_url("a"), "audiences": [AUDIENCE],
    }))
    .expect("config parses");
    let (validator, _clock) = validator_for(vec![config], 16_384).await.expect("starts");
    assert!(validator.validate(&t0()).await.is_ok());
    assert_eq!(mock.idp("a").discovery_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirecting_key_set_endpoint_is_refused_even_by_a_redirect_following_client() {
    let mock = MockIdp::start_a_b().await;
    let elsewhere = mock.jwks_url("b");
    mock.set_jwks("a", Reply::status(302, "").header("location", &elsewhere));
    let config = mock.config("a", ISSUER_A, &["RS256"]);
    let clock = std::sync::Arc::new(cosmogate_validator::ManualClock::new(NOW));
    let following = reqwest::Client::new();
    let error = cosmogate_validator::Validator::with_clock(vec![config], 16_384, following, clock)
        .await
        .expect_err("redirect refused");
    assert_eq!(error.reason_code(), "keys_unavailable");
    assert_eq!(
        mock.jwks_hits("b"),
        1,
        "the redirect was followed by the client, then refused"
    );
}

#[tokio::test]
async fn an_oversized_key_set_is_refused() {
    let mock = MockIdp::start_a_b().await;
    let filler = "x".repeat(600 * 1024);
    let body = json!({"keys": [key("rsa-1").jwk("rsa-1", None, None)], "filler": filler});
    mock.set_jwks("a", Reply::ok(body.to_string()));
    let error = validator_for(vec![mock.config("a", ISSUER_A, &["RS256"])], 16_384)
        .await
        .expect_err("too large");
    assert_eq!(error.reason_code(), "keys_unavailable");
}

#[tokio::test]
async fn validator_debug_output_names_issuers_without_keys() {
    let rig = rig().await;
    let printed = format!("{:?}", rig.validator);
    assert!(printed.contains(ISSUER_A) && printed.contains(ISSUER_B));
    let n = key("rsa-1").jwk("rsa-1", None, None)["n"]
        .as_str()
        .expect("n")
        .to_owned();
    assert!(!printed.contains(&n[..40]));
}
