//! Provider shapes: Entra ID v1, v2 and multi-tenant issuers, and claims normalised for the
//! policy whatever the provider's spelling.

mod common;

use common::*;
use cosmogate_validator::{IssuerConfig, TokenError};
use serde_json::{Value, json};

const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const T1: &str = "a1b2c3d4-1111-4111-8111-11111111abcd";
const T2: &str = "22222222-2222-4222-8222-222222222222";
const T3: &str = "33333333-3333-4333-8333-333333333333";

fn v2(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/v2.0")
}

/// Entra's common key set: keys without `alg`, each naming the issuer it serves; `fixed-t2`
/// is a tenant's own signing key.
fn entra_common_jwks() -> String {
    let mut templated = key("rsa-1").jwk("rsa-1", None, Some("sig"));
    templated["issuer"] = json!(TEMPLATE);
    let mut fixed = key("rsa-2").jwk("fixed-t2", None, Some("sig"));
    fixed["issuer"] = json!(v2(T2));
    let plain = key("ec-1").jwk("plain", None, None);
    jwks(&[templated, fixed, plain])
}

async fn multi_tenant() -> Rig {
    let mock = MockIdp::start(&[("mt", TEMPLATE, entra_common_jwks())]).await;
    let config: IssuerConfig = serde_json::from_value(json!({
        "issuer": TEMPLATE,
        "tenants": [T1, T2],
        "discovery_url": mock.discovery_url("mt"),
        "audiences": [AUDIENCE],
    }))
    .expect("config parses");
    let (validator, clock) = validator_for(vec![config], 16_384)
        .await
        .expect("validator starts");
    Rig {
        mock,
        validator,
        clock,
    }
}

fn entra_token(iss: &str, tid: Option<&str>, kid: &str, signer: &str) -> String {
    let mut payload = t0_payload();
    payload["iss"] = json!(iss);
    payload["ver"] = json!("2.0");
    if let Some(tid) = tid {
        payload["tid"] = json!(tid);
    }
    let signer = key(signer);
    let alg = if kid == "plain" { "ES256" } else { "RS256" };
    sign(
        &json!({"alg": alg, "typ": "JWT", "kid": kid}),
        &payload,
        &signer,
    )
}

#[tokio::test]
async fn a_multi_tenant_issuer_accepts_listed_tenants_whose_tid_matches_iss() {
    let rig = multi_tenant().await;
    for tenant in [T1, T2] {
        let token = entra_token(&v2(tenant), Some(tenant), "rsa-1", "rsa-1");
        let principal = rig.validator.validate(&token).await.expect("accepted");
        assert_eq!(principal.issuer, v2(tenant));
        assert_eq!(principal.claim("tid"), Some(&json!(tenant)));
    }
    let keyless_issuer = entra_token(&v2(T1), Some(T1), "plain", "ec-1");
    assert_eq!(rig.reason(&keyless_issuer).await, "ok");
}

#[tokio::test]
async fn a_tenant_outside_the_allow_list_is_refused() {
    let rig = multi_tenant().await;
    let token = entra_token(&v2(T3), Some(T3), "rsa-1", "rsa-1");
    assert_eq!(rig.reason(&token).await, "tenant_not_allowed");
    let literal = entra_token(TEMPLATE, Some(T1), "rsa-1", "rsa-1");
    assert_eq!(rig.reason(&literal).await, "tenant_not_allowed");
    let other_cloud = entra_token(
        &format!("https://login.partner.microsoftonline.cn/{T1}/v2.0"),
        Some(T1),
        "rsa-1",
        "rsa-1",
    );
    assert_eq!(rig.reason(&other_cloud).await, "unknown_issuer");
}

#[tokio::test]
async fn tid_must_name_the_tenant_of_iss() {
    let rig = multi_tenant().await;
    let crossed = entra_token(&v2(T1), Some(T2), "rsa-1", "rsa-1");
    assert_eq!(rig.reason(&crossed).await, "invalid_claim");
    let missing = entra_token(&v2(T1), None, "rsa-1", "rsa-1");
    assert_eq!(rig.reason(&missing).await, "missing_claim");
    let uppercase = entra_token(&v2(T1), Some(&T1.to_uppercase()), "rsa-1", "rsa-1");
    assert_eq!(rig.reason(&uppercase).await, "invalid_claim");
}

#[tokio::test]
async fn a_key_fixed_to_one_tenant_verifies_only_that_tenants_tokens() {
    let rig = multi_tenant().await;
    let own = entra_token(&v2(T2), Some(T2), "fixed-t2", "rsa-2");
    assert_eq!(rig.reason(&own).await, "ok");
    let borrowed = entra_token(&v2(T1), Some(T1), "fixed-t2", "rsa-2");
    assert_eq!(rig.reason(&borrowed).await, "key_issuer_mismatch");
}

#[tokio::test]
async fn a_template_issuer_needs_the_template_in_discovery() {
    let mock = MockIdp::start(&[("mt", &v2(T1), entra_common_jwks())]).await;
    let config: IssuerConfig = serde_json::from_value(json!({
        "issuer": TEMPLATE, "tenants": [T1],
        "discovery_url": mock.discovery_url("mt"), "audiences": [AUDIENCE],
    }))
    .expect("config parses");
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("discovery names a concrete issuer");
    assert_eq!(error.reason_code(), "discovery_issuer_mismatch");
}

#[tokio::test]
async fn a_template_without_tenants_or_key_source_fails_start_up() {
    let config: IssuerConfig =
        serde_json::from_value(json!({"issuer": TEMPLATE, "audiences": [AUDIENCE]}))
            .expect("config parses");
    let error = validator_for(vec![config], 16_384)
        .await
        .expect_err("refused");
    let TokenError::InvalidConfig { problems } = error else {
        panic!("expected a configuration error, got {error}");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[tokio::test]
async fn entra_v1_and_v2_issuers_of_one_tenant_are_matched_exactly() {
    let v1 = format!("https://sts.windows.net/{T1}/");
    let mock = MockIdp::start(&[("v1", &v1, jwks_a()), ("v2", &v2(T1), jwks_a())]).await;
    let configs = vec![
        mock.config("v1", &v1, &["RS256"]),
        mock.config("v2", &v2(T1), &["RS256"]),
    ];
    let (validator, clock) = validator_for(configs, 16_384)
        .await
        .expect("validator starts");
    let rig = Rig {
        mock,
        validator,
        clock,
    };
    let token = |iss: &str, ver: &str| {
        let mut payload = t0_payload();
        payload["iss"] = json!(iss);
        payload["ver"] = json!(ver);
        sign(&t0_header(), &payload, &key("rsa-1"))
    };
    assert_eq!(rig.reason(&token(&v1, "1.0")).await, "ok");
    assert_eq!(rig.reason(&token(&v2(T1), "2.0")).await, "ok");
    let v1_without_slash = v1.trim_end_matches('/').to_owned();
    assert_eq!(
        rig.reason(&token(&v1_without_slash, "1.0")).await,
        "unknown_issuer"
    );
    assert_eq!(
        rig.reason(&token(&format!("{}/", v2(T1)), "2.0")).await,
        "unknown_issuer"
    );
}

// Claim normalisation -------------------------------------------------------------------------

async fn principal_with(claims: Value) -> std::sync::Arc<cosmogate_validator::Principal> {
    let rig = rig().await;
    let mut payload = t0_payload();
    for (name, value) in claims.as_object().expect("object") {
        payload[name] = value.clone();
    }
    let token = sign(&t0_header(), &payload, &key("rsa-1"));
    rig.validator.validate(&token).await.expect("accepted")
}

#[tokio::test]
async fn entra_and_okta_scopes_normalise_to_the_same_array() {
    let entra = principal_with(json!({"scp": "orders.read orders.write"})).await;
    let okta = principal_with(json!({"scp": ["orders.read", "orders.write"]})).await;
    let expected = json!(["orders.read", "orders.write"]);
    assert_eq!(entra.normalized_claims()["scp"], expected);
    assert_eq!(okta.normalized_claims()["scp"], expected);
    assert_eq!(entra.scopes(), okta.scopes());
    assert_eq!(
        entra.claim("scp"),
        Some(&json!("orders.read orders.write")),
        "raw claims kept"
    );
}

#[tokio::test]
async fn keycloak_and_kubernetes_nested_claims_are_reachable() {
    let principal = principal_with(json!({
        "scope": "profile email",
        "realm_access": {"roles": ["admin"]},
        "resource_access": {"cosmos": {"roles": "reader"}},
        "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "api"}},
    }))
    .await;
    assert_eq!(principal.claim_strings("realm_access.roles"), ["admin"]);
    assert_eq!(principal.claim_strings("kubernetes.io.namespace"), ["prod"]);
    assert_eq!(principal.scopes(), ["profile", "email"]);
    let normalized = principal.normalized_claims();
    assert_eq!(
        normalized["resource_access"]["cosmos"]["roles"],
        json!(["reader"])
    );
    assert_eq!(normalized["roles"], json!(["orders.read"]));
}
