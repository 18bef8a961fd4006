//! Per-issuer `required_claims`: presence and JSON type, checked after the signature.

mod common;

use common::*;
use cosmogate_validator::IssuerConfig;
use serde_json::{Value, json};

/// IdP-A's entry with `required_claims` set to `required` (a JSON object of name to type).
fn config_with(mock: &MockIdp, required: Value) -> IssuerConfig {
    let mut entry = json!({
        "issuer": ISSUER_A,
        "discovery_url": mock.discovery_url("a"),
        "audiences": [AUDIENCE],
        "algorithms": ["RS256"],
    });
    entry["required_claims"] = required;
    serde_json::from_value(entry).expect("test config parses")
}

async fn rig_requiring(required: Value) -> Rig {
    let mock = MockIdp::start_a_b().await;
    let issuers = vec![config_with(&mock, required)];
    let (validator, clock) = validator_for(issuers, cosmogate_validator::DEFAULT_MAX_TOKEN_BYTES)
        .await
        .expect("validator starts");
    Rig {
        mock,
        validator,
        clock,
    }
}

fn token_with(extra: Value) -> String {
    let mut payload = t0_payload();
    for (name, value) in extra.as_object().expect("object") {
        payload[name] = value.clone();
    }
    sign(&t0_header(), &payload, &key("rsa-1"))
}

#[tokio::test]
async fn a_token_missing_a_required_claim_is_refused_with_missing_claim() {
    let rig = rig_requiring(json!({"tid": "string"})).await;
    assert_eq!(rig.reason(&t0()).await, "missing_claim");
    let error = rig.validator.validate(&t0()).await.expect_err("refused");
    assert_eq!(error.to_string(), "token claim tid is missing");
}

#[tokio::test]
async fn a_required_claim_of_the_wrong_type_is_refused_with_invalid_claim() {
    let rig = rig_requiring(json!({"tid": "string", "roles": "string_array"})).await;
    let cases = [
        json!({"tid": 42, "roles": ["a"]}),
        json!({"tid": null, "roles": ["a"]}),
        json!({"tid": "t-1", "roles": "a"}),
        json!({"tid": "t-1", "roles": ["a", 7]}),
    ];
    for case in cases {
        let token = token_with(case.clone());
        assert_eq!(rig.reason(&token).await, "invalid_claim", "{case}");
        let error = rig.validator.validate(&token).await.expect_err("refused");
        assert!(!error.to_string().contains("42"), "{error}");
    }
}

#[tokio::test]
async fn required_claims_of_the_right_type_are_accepted() {
    let required = json!({"tid": "string", "roles": "string_array", "n": "number",
        "b": "boolean", "list": "array", "obj": "object"});
    let rig = rig_requiring(required).await;
    let token = token_with(json!({"tid": "t-1", "n": 1.5, "b": false, "list": [1, "x"],
        "obj": {}}));
    assert_eq!(rig.reason(&token).await, "ok");
}

#[tokio::test]
async fn nested_paths_and_dotted_member_names_are_found() {
    let rig = rig_requiring(json!({"realm_access.roles": "string_array",
        "kubernetes.io.namespace": "string", "https://example.com/tier": "string"}))
    .await;
    let good = token_with(json!({"realm_access": {"roles": ["reader"]},
        "kubernetes.io": {"namespace": "apps"}, "https://example.com/tier": "gold"}));
    assert_eq!(rig.reason(&good).await, "ok");

    let missing = token_with(json!({"realm_access": {"other": []},
        "kubernetes.io": {"namespace": "apps"}, "https://example.com/tier": "gold"}));
    assert_eq!(rig.reason(&missing).await, "missing_claim");
    let error = rig.validator.validate(&missing).await.expect_err("refused");
    assert_eq!(
        error.to_string(),
        "token claim realm_access.roles is missing"
    );

    let wrong = token_with(json!({"realm_access": {"roles": ["reader"]},
        "kubernetes.io": {"namespace": 3}, "https://example.com/tier": "gold"}));
    assert_eq!(rig.reason(&wrong).await, "invalid_claim");
}

#[tokio::test]
async fn a_badly_signed_token_is_refused_for_its_signature_before_required_claims() {
    let rig = rig_requiring(json!({"tid": "string"})).await;
    let forged = sign(&t0_header(), &t0_payload(), &key("evil-rsa"));
    assert_eq!(rig.reason(&forged).await, "bad_signature");
}

#[tokio::test]
async fn empty_names_and_empty_path_segments_fail_start_up() {
    for name in ["", "a..b", ".a", "a."] {
        let mock = MockIdp::start_a_b().await;
        let config = config_with(&mock, json!({name: "string"}));
        let problems = config.validate("issuers[0]");
        assert_eq!(problems.len(), 1, "{name:?}: {problems:?}");
        assert!(
            problems[0].starts_with("issuers[0].required_claims: "),
            "{problems:?}"
        );
        let error = validator_for(vec![config], 16_384)
            .await
            .expect_err("must not start");
        assert_eq!(error.reason_code(), "invalid_config", "{name:?}");
    }
}

#[test]
fn unknown_claim_types_are_refused_when_parsing() {
    let parsed: Result<IssuerConfig, _> = serde_json::from_value(json!({
        "issuer": ISSUER_A, "audiences": [AUDIENCE], "required_claims": {"tid": "guid"}}));
    assert!(parsed.is_err());
}
