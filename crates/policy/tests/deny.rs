//! Deny rules win over every grant; audit-only rules report without refusing; scope patterns
//! and combined conditions decide who gets what.

mod support;

use http::Method;
use serde_json::json;
use support::{IDP, OTHER_IDP, allowed, claims, decide_as, decided, request};

const POLICY: &str = r#"
version = 1

[[roles]]
name = "admin"
builtin = "data-contributor"
scopes = ["/"]

[[roles]]
name = "tenant-orders"
builtin = "data-reader"
scopes = ["/dbs/tenant-*/colls/orders"]

[[roles]]
name = "ci-upsert"
actions = ["readMetadata", "items/upsert"]
scopes = ["/dbs/shop/colls/catalog"]

[[bindings]]
role = "admin"
issuer = "http://127.0.0.1:9400"
all = [
  { claim = "roles", contains = "admin" },
  { any = [{ claim = "amr", contains = "mfa" }, { claim = "acr", equals = "high" }] },
]

[[bindings]]
role = "tenant-orders"
claim = "groups"
glob = "tenant-*-readers"

[[bindings]]
role = "ci-upsert"
issuer = "http://127.0.0.1:9500"
claim = "sub"
prefix = "repo:contoso/catalog:"

[[deny]]
name = "audit-is-append-only"
actions = ["items/replace", "items/delete", "items/upsert"]
scopes = ["/dbs/audit"]

[[deny]]
name = "payroll-only-break-glass"
actions = ["readMetadata", "containers/*"]
scopes = ["/dbs/hr/colls/payroll"]
unless = { claim = "roles", contains = "break-glass" }

[[deny]]
name = "archive-freeze-trial"
actions = ["items/*"]
scopes = ["/dbs/*/colls/archive-*"]
mode = "audit"
"#;

fn policy() -> cosmogate_policy::Policy {
    support::policy(POLICY)
}

fn admin() -> serde_json::Value {
    json!({"roles": ["admin"], "amr": ["pwd", "mfa"]})
}

#[test]
fn a_deny_rule_wins_over_an_account_wide_grant() {
    let delete = request(Method::DELETE, "/dbs/audit/colls/events/docs/e1").pk(r#"["e"]"#);
    let decision = decided(&policy(), admin(), &delete);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "denied_by_rule");
    assert_eq!(decision.rule.as_deref(), Some("audit-is-append-only"));
    assert_eq!(
        decision.missing,
        [cosmogate_protocol::DataAction::ItemsDelete]
    );

    let create = request(Method::POST, "/dbs/audit/colls/events/docs").pk(r#"["e"]"#);
    assert!(
        allowed(&policy(), admin(), &create),
        "appending stays allowed"
    );
}

#[test]
fn unless_lifts_a_deny_for_the_break_glass_principal_only() {
    let read = request(Method::GET, "/dbs/hr/colls/payroll/docs/p1").pk(r#"["p"]"#);
    let decision = decided(&policy(), admin(), &read);
    assert_eq!(decision.reason, "denied_by_rule");
    assert_eq!(decision.rule.as_deref(), Some("payroll-only-break-glass"));

    let glass = json!({"roles": ["admin", "break-glass"], "amr": ["mfa"]});
    let decision = decided(&policy(), glass, &read);
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.rule.as_deref(), Some("admin"));
}

#[test]
fn a_deny_rule_refuses_a_whole_batch_and_points_at_the_operation() {
    let body = br#"[{"operationType":"Create","partitionKey":"[\"e\"]","resourceBody":{"id":"a"}},
                    {"operationType":"Replace","id":"b","partitionKey":"[\"e\"]"}]"#;
    let bulk = request(Method::POST, "/dbs/audit/colls/events/docs")
        .header("x-ms-cosmos-is-batch-request", "true")
        .header("x-ms-cosmos-batch-atomic", "false")
        .body(body);
    let decision = decided(&policy(), admin(), &bulk);
    assert_eq!(decision.reason, "denied_by_rule");
    assert_eq!(decision.batch_index, Some(1));
}

#[test]
fn a_deny_on_metadata_also_refuses_rid_addressed_metadata_reads() {
    let rid = request(Method::GET, "/dbs/gAAMAA==/colls/gAAMAIAAAAE=/pkranges");
    let decision = decided(&policy(), admin(), &rid);
    assert_eq!(decision.reason, "denied_by_rule");
    let glass = json!({"roles": ["admin", "break-glass"], "amr": ["mfa"]});
    assert!(allowed(&policy(), glass, &rid));
}

#[test]
fn an_audit_only_deny_records_a_shadow_hit_and_refuses_nothing() {
    let write = request(Method::PUT, "/dbs/shop/colls/archive-2020/docs/x").pk(r#"["x"]"#);
    let decision = decided(&policy(), admin(), &write);
    assert!(decision.allowed);
    assert_eq!(decision.shadow.len(), 1);
    assert_eq!(decision.shadow[0].rule, "archive-freeze-trial");
    assert_eq!(decision.shadow[0].reason, "denied_by_rule");

    let elsewhere = request(Method::PUT, "/dbs/shop/colls/archive/docs/x").pk(r#"["x"]"#);
    assert!(decided(&policy(), admin(), &elsewhere).shadow.is_empty());
}

#[test]
fn combined_conditions_need_every_part() {
    let read = request(Method::GET, "/dbs/shop/colls/orders/docs/o1").pk(r#"["o"]"#);
    assert!(allowed(&policy(), admin(), &read));
    let acr = json!({"roles": ["admin"], "acr": "high"});
    assert!(allowed(&policy(), acr, &read));
    let no_mfa = json!({"roles": ["admin"], "amr": ["pwd"]});
    assert_eq!(decided(&policy(), no_mfa, &read).reason, "no_role");
    let token = claims(admin());
    let other = decide_as(&policy(), OTHER_IDP, &token, &read).expect("classifies");
    assert_eq!(
        other.reason, "no_role",
        "the admin binding names its issuer"
    );
}

#[test]
fn a_scope_pattern_grants_every_matching_database_and_nothing_near_it() {
    let token = json!({"groups": ["tenant-7-readers"]});
    let read = |path| request(Method::GET, path).pk(r#"["o"]"#);
    assert!(allowed(
        &policy(),
        token.clone(),
        &read("/dbs/tenant-7/colls/orders/docs/o1")
    ));
    assert!(allowed(
        &policy(),
        token.clone(),
        &read("/dbs/tenant-8/colls/orders/docs/o1")
    ));
    for path in [
        "/dbs/tenant/colls/orders/docs/o1",
        "/dbs/Tenant-7/colls/orders/docs/o1",
        "/dbs/tenant-7/colls/orders-archive/docs/o1",
        "/dbs/tenant-7/colls/payroll/docs/o1",
    ] {
        assert!(!allowed(&policy(), token.clone(), &read(path)), "{path}");
    }
    assert!(allowed(
        &policy(),
        token,
        &request(Method::GET, "/dbs/tenant-7")
    ));
}

#[test]
fn a_ci_job_may_only_upsert_into_its_container() {
    let token = claims(json!({"sub": "repo:contoso/catalog:ref:refs/heads/main"}));
    let upsert = request(Method::POST, "/dbs/shop/colls/catalog/docs")
        .pk(r#"["sku"]"#)
        .header("x-ms-documentdb-is-upsert", "true");
    let decision = decide_as(&policy(), OTHER_IDP, &token, &upsert).expect("classifies");
    assert!(decision.allowed, "{decision:?}");

    for other in [
        request(Method::POST, "/dbs/shop/colls/catalog/docs").pk(r#"["sku"]"#),
        request(Method::DELETE, "/dbs/shop/colls/catalog/docs/a").pk(r#"["sku"]"#),
        request(Method::GET, "/dbs/shop/colls/catalog/docs/a").pk(r#"["sku"]"#),
        request(Method::POST, "/dbs/shop/colls/orders/docs")
            .pk(r#"["sku"]"#)
            .header("x-ms-documentdb-is-upsert", "true"),
    ] {
        let decision = decide_as(&policy(), OTHER_IDP, &token, &other).expect("classifies");
        assert!(!decision.allowed, "{other:?}");
    }
    let wrong_issuer = decide_as(&policy(), IDP, &token, &upsert).expect("classifies");
    assert_eq!(wrong_issuer.reason, "no_role");
    let fork = claims(json!({"sub": "repo:contoso/catalog-fork:ref:refs/heads/main"}));
    let decision = decide_as(&policy(), OTHER_IDP, &fork, &upsert).expect("classifies");
    assert_eq!(decision.reason, "no_role");
}

#[test]
fn every_decision_carries_the_policy_fingerprint() {
    let policy = policy();
    let read = request(Method::GET, "/");
    let decision = decided(&policy, admin(), &read);
    assert_eq!(&*decision.policy_fingerprint, policy.fingerprint());
    let denied = decided(&policy, json!({}), &read);
    assert_eq!(&*denied.policy_fingerprint, policy.fingerprint());
}
