use super::*;

fn parse(text: &str) -> IssuerConfig {
    serde_json::from_str(text).expect("test config must parse")
}

fn minimal() -> IssuerConfig {
    parse(r#"{"issuer":"https://idp.test/v2.0","audiences":["api://x"]}"#)
}

#[test]
fn defaults_are_applied_and_valid() {
    let config = minimal();
    assert_eq!(config.algorithms, ["RS256", "ES256"]);
    assert_eq!(config.leeway_seconds, 60);
    assert_eq!(config.typ, ["JWT", "at+jwt"]);
    assert_eq!(config.jwks_cache_seconds, 300);
    assert_eq!(config.unknown_kid_cooldown_seconds, 30);
    assert_eq!(config.max_token_lifetime_seconds, None);
    assert_eq!(config.max_stale_seconds, 3600);
    assert!(config.tenants.is_empty());
    assert!(config.validate("issuers[0]").is_empty());
}

#[test]
fn unknown_fields_are_refused() {
    let text = r#"{"issuer":"https://a","audiences":["x"],"audience":"y"}"#;
    assert!(serde_json::from_str::<IssuerConfig>(text).is_err());
}

#[test]
fn default_discovery_url_drops_the_issuer_trailing_slash() {
    let mut config = minimal();
    config.issuer = "https://tenant.auth0.test/".into();
    let expected = "https://tenant.auth0.test/.well-known/openid-configuration";
    assert_eq!(
        config.key_source(),
        Some(KeySource::Discovery(
            expected.parse().expect("test url parses")
        ))
    );
}

#[test]
fn symmetric_and_none_algorithms_are_refused() {
    let mut config = minimal();
    config.algorithms = vec![
        "HS256".into(),
        "none".into(),
        "ES512".into(),
        "RS256".into(),
    ];
    let problems = config.validate("i");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().all(|p| p.starts_with("i.algorithms: ")));
}

#[test]
fn empty_audience_list_fails_validation() {
    let mut config = minimal();
    config.audiences.clear();
    assert_eq!(
        config.validate("i"),
        ["i.audiences: must list at least one audience"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut config = minimal();
    config.leeway_seconds = 301;
    config.jwks_cache_seconds = 10;
    config.unknown_kid_cooldown_seconds = 0;
    config.typ.clear();
    config.max_token_lifetime_seconds = Some(0);
    config.max_stale_seconds = MAX_STALE_LIMIT_SECONDS + 1;
    assert_eq!(config.validate("i").len(), 6);
}

#[test]
fn plain_http_is_only_allowed_for_loopback() {
    let mut config = minimal();
    config.jwks_uri = Some("http://127.0.0.1:9/jwks".parse().expect("test url parses"));
    assert!(config.validate("i").is_empty());
    config.jwks_uri = Some("http://idp.test/jwks".parse().expect("test url parses"));
    assert_eq!(config.validate("i").len(), 1);
    config.jwks_uri = Some(
        "https://user:pw@idp.test/jwks"
            .parse()
            .expect("test url parses"),
    );
    assert_eq!(
        config.validate("i"),
        ["i.jwks_uri: must not contain credentials"]
    );
}

#[test]
fn a_non_url_issuer_needs_an_explicit_key_source() {
    let mut config = minimal();
    config.issuer = "accounts.google.test".into();
    assert_eq!(config.validate("i").len(), 1);
    config.jwks_uri = Some(
        "https://keys.google.test/certs"
            .parse()
            .expect("test url parses"),
    );
    assert!(config.validate("i").is_empty());
}

#[test]
fn an_issuer_configured_twice_is_reported() {
    let problems = validate_issuers(&[minimal(), minimal()], "issuers");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("issuers[1].issuer: "));
    assert_eq!(
        validate_issuers(&[], "issuers"),
        ["issuers: must list at least one issuer"]
    );
}

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn multi_tenant() -> IssuerConfig {
    let mut config = minimal();
    config.issuer = "https://login.microsoftonline.com/{tenantid}/v2.0".into();
    config.tenants = vec![TENANT.into()];
    config.discovery_url = Some(
        "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
            .parse()
            .expect("test url parses"),
    );
    config
}

#[test]
fn a_multi_tenant_issuer_with_tenants_and_discovery_is_valid() {
    assert!(multi_tenant().validate("i").is_empty());
}

#[test]
fn a_multi_tenant_issuer_needs_an_explicit_key_source() {
    let mut config = multi_tenant();
    config.discovery_url = None;
    assert_eq!(
        config.validate("i"),
        ["i.discovery_url: a multi-tenant issuer needs discovery_url or jwks_uri"]
    );
}

#[test]
fn tenants_without_a_template_are_refused() {
    let mut config = minimal();
    config.tenants = vec![TENANT.into()];
    assert_eq!(config.validate("i").len(), 1);
}

#[test]
fn a_tenant_configured_both_plainly_and_in_a_template_is_reported() {
    let mut plain = minimal();
    plain.issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let problems = validate_issuers(&[plain.clone(), multi_tenant()], "issuers");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("issuers[1].tenants: "));
    let problems = validate_issuers(&[multi_tenant(), plain], "issuers");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("issuers[1].issuer: "));
}
