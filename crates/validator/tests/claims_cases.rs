//! Claim cases (C06, C07, C09) and token size (C27).

mod common;

use common::*;
use serde_json::{Value, json};

// C06 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn audience_shapes_and_types_are_judged_strictly() {
    let rig = rig().await;
    let accepted = [
        json!(AUDIENCE),
        json!(["other-api", AUDIENCE]),
        json!([AUDIENCE, "other-api"]),
    ];
    for aud in accepted {
        assert_eq!(
            rig.reason(&t0_with("aud", Some(aud.clone()))).await,
            "ok",
            "{aud}"
        );
    }
    let refused: [(Option<Value>, &str); 11] = [
        (Some(json!([])), "bad_audience"),
        (None, "missing_claim"),
        (Some(Value::Null), "invalid_claim"),
        (Some(json!(42)), "invalid_claim"),
        (Some(json!({"v": AUDIENCE})), "invalid_claim"),
        (Some(json!([AUDIENCE, 7])), "invalid_claim"),
        (Some(json!("API://COSMOS-PROXY")), "bad_audience"),
        (Some(json!("api://cosmos-proxy/")), "bad_audience"),
        (Some(json!(" api://cosmos-proxy")), "bad_audience"),
        (Some(json!("api://cosmos-proxy\u{0}")), "bad_audience"),
        (
            Some(json!("6e74172b-be56-4843-9ff4-e66a39bb12e3")),
            "bad_audience",
        ),
    ];
    for (aud, expected) in refused {
        assert_eq!(
            rig.reason(&t0_with("aud", aud.clone())).await,
            expected,
            "{aud:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_audience_list_fails_start_up() {
    let mock = MockIdp::start_a_b().await;
    let mut config = mock.config("a", ISSUER_A, &["RS256"]);
    config.audiences.clear();
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("must not start");
    assert_eq!(error.reason_code(), "invalid_config");
    assert_eq!(
        mock.idp("a")
            .discovery_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

// C07 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn issuers_are_matched_byte_for_byte() {
    let rig = rig().await;
    let b_key = key("rsa-b1");
    let b_header = json!({"alg":"RS256","kid":"rsa-b1"});
    let mut b_payload = t0_payload();
    b_payload["iss"] = json!("https://idp-b.test");
    assert_eq!(
        rig.reason(&sign(&b_header, &b_payload, &b_key)).await,
        "unknown_issuer"
    );
    b_payload["iss"] = json!(ISSUER_B);
    assert_eq!(rig.reason(&sign(&b_header, &b_payload, &b_key)).await, "ok");

    let cases: [(Option<Value>, &str); 5] = [
        (Some(json!("https://idp-a.test/v2.0/")), "unknown_issuer"),
        (Some(json!("https://idp-c.test")), "unknown_issuer"),
        (Some(json!([ISSUER_A])), "invalid_claim"),
        (None, "missing_claim"),
        (Some(json!(42)), "invalid_claim"),
    ];
    for (iss, expected) in cases {
        assert_eq!(
            rig.reason(&t0_with("iss", iss.clone())).await,
            expected,
            "{iss:?}"
        );
    }
    let evil = sign(
        &t0_header(),
        &json!({"iss":"https://idp-c.test","aud":AUDIENCE,"sub":"x",
        "exp":NOW + 600}),
        &key("evil-rsa"),
    );
    assert_eq!(rig.reason(&evil).await, "unknown_issuer");
}

#[tokio::test]
async fn a_key_of_issuer_a_does_not_verify_a_token_claiming_issuer_b() {
    let rig = rig().await;
    let mut payload = t0_payload();
    payload["iss"] = json!(ISSUER_B);
    let token = sign(&t0_header(), &payload, &key("rsa-1"));
    assert_eq!(rig.reason(&token).await, "unknown_key");
}

#[tokio::test]
async fn a_kid_shared_across_issuers_resolves_only_in_the_claimed_issuer() {
    let jwks_b = jwks(&[key("rsa-b1").jwk("rsa-1", None, None)]);
    let mock = MockIdp::start(&[("a", ISSUER_A, jwks_a()), ("b", ISSUER_B, jwks_b)]).await;
    let rig = rig_on(mock).await;
    let mut payload = t0_payload();
    payload["iss"] = json!(ISSUER_B);
    let token = sign(&t0_header(), &payload, &key("rsa-1"));
    assert_eq!(rig.reason(&token).await, "bad_signature");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_fails_start_up() {
    let mock = MockIdp::start_a_b().await;
    *mock.idp("a").issuer.lock().expect("lock") = "https://idp-a.test/v2.0/".to_owned();
    let config = mock.config("a", ISSUER_A, &["RS256"]);
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("must not start");
    assert_eq!(error.reason_code(), "discovery_issuer_mismatch");
    assert!(!error.is_unavailable());
}

// C09 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn time_claims_are_checked_with_the_leeway() {
    let rig = rig().await;
    let cases: [(&str, Option<Value>, &str); 9] = [
        ("exp", None, "missing_claim"),
        ("exp", Some(json!(NOW - 61)), "expired"),
        ("exp", Some(json!(NOW - 59)), "ok"),
        ("exp", Some(json!((NOW + 600).to_string())), "invalid_claim"),
        ("nbf", Some(json!(NOW + 61)), "not_yet_valid"),
        ("nbf", Some(json!(NOW + 59)), "ok"),
        ("iat", Some(json!(NOW + 3600)), "issued_in_future"),
        ("iat", Some(json!(NOW - 30 * 86_400)), "ok"),
        ("nbf", Some(json!("soon")), "invalid_claim"),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            rig.reason(&t0_with(name, value.clone())).await,
            expected,
            "{name}={value:?}"
        );
    }
}

#[tokio::test]
async fn an_expired_forgery_is_reported_as_a_bad_signature() {
    let rig = rig().await;
    let mut payload = t0_payload();
    payload["exp"] = json!(NOW - 3600);
    let token = sign(&t0_header(), &payload, &key("evil-rsa"));
    assert_eq!(rig.reason(&token).await, "bad_signature");
}

#[tokio::test]
async fn tokens_expire_as_the_injected_clock_moves() {
    let rig = rig().await;
    let token = t0();
    assert_eq!(rig.reason(&token).await, "ok");
    rig.clock.advance(600 + 59);
    assert_eq!(rig.reason(&token).await, "ok");
    rig.clock.advance(1);
    assert_eq!(rig.reason(&token).await, "expired");
}

#[tokio::test]
async fn leeway_and_lifetime_follow_the_issuer_configuration() {
    let mock = MockIdp::start_a_b().await;
    let mut config = mock.config("a", ISSUER_A, &["RS256"]);
    config.leeway_seconds = 0;
    config.max_token_lifetime_seconds = Some(3600);
    let (validator, _clock) = validator_for(vec![config], 16_384).await.expect("starts");
    let reason = |token: String| {
        let validator = validator.clone();
        async move {
            validator
                .validate(&token)
                .await
                .err()
                .map(|e| e.reason_code())
        }
    };
    assert_eq!(reason(t0_with("exp", Some(json!(NOW + 1)))).await, None);
    assert_eq!(
        reason(t0_with("exp", Some(json!(NOW)))).await,
        Some("expired")
    );
    assert_eq!(
        reason(t0_with("nbf", Some(json!(NOW + 1)))).await,
        Some("not_yet_valid")
    );
    assert_eq!(
        reason(t0_with("iat", Some(json!(NOW - 7200)))).await,
        Some("lifetime_too_long")
    );
    assert_eq!(reason(t0_with("iat", None)).await, Some("missing_claim"));
}

// C27 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_large_but_allowed_token_is_accepted_and_an_oversized_one_refused_unparsed() {
    let rig = rig().await;
    let groups: Vec<String> = (0..150)
        .map(|n| format!("9f6c1d2e-0000-4000-8000-{n:012}"))
        .collect();
    let big = t0_with("groups", Some(json!(groups)));
    assert!(big.len() > 8_000, "{}", big.len());
    assert_eq!(rig.reason(&big).await, "ok");

    let hits = rig.mock.jwks_hits("a");
    let huge = format!("{}.{}", "x".repeat(20_000), "y");
    let error = rig.validator.validate(&huge).await.expect_err("too large");
    assert_eq!(error.reason_code(), "token_too_large");
    assert_eq!(rig.mock.jwks_hits("a"), hits);
}

#[tokio::test]
async fn the_size_cap_is_inclusive() {
    let mock = MockIdp::start_a_b().await;
    let token = t0();
    let configs = || vec![mock.config("a", ISSUER_A, &["RS256"])];
    let (exact, _) = validator_for(configs(), token.len()).await.expect("starts");
    assert!(exact.validate(&token).await.is_ok());
    let (tight, _) = validator_for(configs(), token.len() - 1)
        .await
        .expect("starts");
    let error = tight.validate(&token).await.expect_err("one byte over");
    assert_eq!(error.reason_code(), "token_too_large");
}

#[tokio::test]
async fn garbage_never_panics() {
    let rig = rig().await;
    let samples = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "\u{feff}",
        "é.é.é",
        "eyJ.eyJ.eyJ",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "eyJhbGciOiJSUzI1NiJ9.bnVsbA.c2ln",
    ];
    for sample in samples {
        assert_ne!(rig.reason(sample).await, "ok", "{sample:?}");
    }
}

#[tokio::test]
async fn a_signature_moved_onto_another_payload_or_altered_does_not_verify() {
    let rig = rig().await;
    let good = sign(&t0_header(), &t0_payload(), &key("rsa-1"));
    assert_eq!(rig.reason(&good).await, "ok");
    let mut payload = t0_payload();
    payload["sub"] = json!("someone-else");
    let other = sign(&t0_header(), &payload, &key("rsa-1"));
    let (other_input, _) = other.rsplit_once('.').expect("three parts");
    let (_, good_signature) = good.rsplit_once('.').expect("three parts");
    let spliced = format!("{other_input}.{good_signature}");
    assert_eq!(rig.reason(&spliced).await, "bad_signature");

    let mut altered = good.into_bytes();
    let at = altered.len() - 5;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    assert_eq!(rig.reason(&altered).await, "bad_signature");
}
