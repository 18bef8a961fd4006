//! The verified-token cache: what a cached token costs, and when an entry stops being used.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use cosmogate_validator::{Validator, ValidatorOptions};
use serde_json::json;

#[tokio::test]
async fn a_repeated_token_is_answered_without_the_idp_or_signature_work() {
    let rig = rig().await;
    let token = t0();
    let first = rig.validator.validate(&token).await.expect("valid");
    let stats = rig.validator.stats();
    assert_eq!(
        (stats.token_cache_misses, stats.signature_verifications),
        (1, 1)
    );
    let hits_before = (rig.mock.jwks_hits("a"), discovery_hits(&rig));

    for _ in 0..50 {
        let again = rig.validator.validate(&token).await.expect("valid");
        assert_eq!(again.subject, first.subject);
        assert_eq!(again.token_fingerprint, first.token_fingerprint);
        assert_eq!(again.claims_as_sent(), first.claims_as_sent());
    }
    let stats = rig.validator.stats();
    assert_eq!(stats.token_cache_hits, 50);
    assert_eq!(
        stats.signature_verifications, 1,
        "no signature work when cached"
    );
    assert_eq!(
        (rig.mock.jwks_hits("a"), discovery_hits(&rig)),
        hits_before,
        "no request to the IdP"
    );
}

fn discovery_hits(rig: &Rig) -> usize {
    rig.mock.idp("a").discovery_hits.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_cached_entry_ends_at_exp_and_never_extends_the_leeway() {
    let rig = rig().await;
    let token = t0();
    assert_eq!(rig.reason(&token).await, "ok");
    rig.clock.set(NOW + 599);
    assert_eq!(rig.reason(&token).await, "ok");
    assert_eq!(rig.validator.stats().signature_verifications, 1);

    // From `exp` on the token is validated in full again, which still grants the leeway...
    rig.clock.set(NOW + 600);
    assert_eq!(rig.reason(&token).await, "ok");
    assert_eq!(rig.validator.stats().signature_verifications, 2);
    // ... and no more than the leeway.
    rig.clock.set(NOW + 660);
    assert_eq!(rig.reason(&token).await, "expired");
}

#[tokio::test]
async fn an_entry_is_dropped_when_an_unknown_kid_refetch_removes_its_key() {
    let rig = rig().await;
    let old = t0();
    assert_eq!(rig.reason(&old).await, "ok");
    rig.mock.set_jwks(
        "a",
        Reply::ok(jwks(&[key("rsa-2").jwk("rsa-2", None, None)])),
    );
    let rotated = t0_header_with("kid", Some(json!("rsa-2")), &key("rsa-2"));
    assert_eq!(
        rig.reason(&rotated).await,
        "ok",
        "refetched for the new kid"
    );
    assert_eq!(rig.reason(&old).await, "unknown_key");
}

#[tokio::test]
async fn refused_tokens_are_verified_every_time() {
    let rig = rig().await;
    let forged = sign(&t0_header(), &t0_payload(), &key("evil-rsa"));
    for _ in 0..3 {
        assert_eq!(rig.reason(&forged).await, "bad_signature");
    }
    let stats = rig.validator.stats();
    assert_eq!(stats.token_cache_hits, 0);
    assert_eq!(stats.signature_verifications, 3);
}

#[tokio::test]
async fn an_oversized_token_is_refused_before_the_cache_is_consulted() {
    let rig = rig().await;
    let huge = format!("{}.{}", "a".repeat(20_000), "b");
    assert_eq!(rig.reason(&huge).await, "token_too_large");
    assert_eq!(rig.validator.stats().token_cache_misses, 0);
}

/// A validator for IdP-A whose token cache holds `entries` tokens; keep the mock alive.
async fn validator_caching(entries: u64) -> (Validator, MockIdp) {
    let mock = MockIdp::start_a_b().await;
    let (options, _clock) = test_options(16_384);
    let options = ValidatorOptions {
        token_cache_entries: entries,
        ..options
    };
    let config = mock.config("a", ISSUER_A, &["RS256"]);
    let validator = Validator::with_options(vec![config], http(), options)
        .await
        .expect("validator starts");
    (validator, mock)
}

#[tokio::test]
async fn a_cache_of_zero_entries_verifies_every_time() {
    let (validator, _mock) = validator_caching(0).await;
    let token = t0();
    for _ in 0..3 {
        validator.validate(&token).await.expect("valid");
    }
    let stats = validator.stats();
    assert_eq!(
        (stats.token_cache_hits, stats.signature_verifications),
        (0, 3)
    );
    assert_eq!(stats.token_cache_entries, 0);
}

#[tokio::test]
async fn a_full_cache_caches_a_new_token_only_when_it_comes_back() {
    let (validator, _mock) = validator_caching(20).await;
    let token_for = |n: usize| t0_with("sub", Some(json!(format!("u-{n}"))));

    // Distinct tokens fill the cache; moka counts its entries lazily, so the doorkeeper takes
    // over some tokens after the cache is nearly full. Each token is still accepted.
    let mut deferred = None;
    for n in 0..500 {
        let before = validator.stats().token_cache_deferred;
        validator.validate(&token_for(n)).await.expect("valid");
        if validator.stats().token_cache_deferred > before {
            deferred = Some(n);
            break;
        }
    }
    let n = deferred.expect("a token was deferred once the cache was nearly full");
    assert!(
        n >= 18,
        "deferred at token {n}, before the cache was nearly full"
    );

    // Its second sighting verifies it again and caches it; the third is a hit.
    let before = validator.stats();
    validator.validate(&token_for(n)).await.expect("valid");
    validator.validate(&token_for(n)).await.expect("valid");
    let after = validator.stats();
    assert_eq!(
        after.signature_verifications - before.signature_verifications,
        1
    );
    assert_eq!(after.token_cache_hits - before.token_cache_hits, 1);
    assert_eq!(after.token_cache_deferred, before.token_cache_deferred);
}

#[tokio::test]
async fn tokens_of_one_issuer_are_not_served_from_entries_of_another() {
    let rig = rig().await;
    let a = t0();
    let mut payload = t0_payload();
    payload["iss"] = json!(ISSUER_B);
    let b = sign(
        &json!({"alg": "RS256", "kid": "rsa-b1"}),
        &payload,
        &key("rsa-b1"),
    );
    assert_eq!(rig.reason(&a).await, "ok");
    assert_eq!(rig.reason(&b).await, "ok");
    let principal = rig.validator.validate(&b).await.expect("valid");
    assert_eq!(principal.issuer, ISSUER_B);
    assert_eq!(rig.validator.stats().signature_verifications, 2);
}
