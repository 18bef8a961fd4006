//! `Policy::explain`: the same decision as `decide`, with the bindings, roles, deny rules and
//! claims behind it.

mod support;

use cosmogate_policy::Subject;
use cosmogate_protocol::{RequestHead, classify};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::json;

const POLICY: &str = r#"
version = 1

[[roles]]
name = "tenant-rw"
builtin = "data-contributor"
scopes = ["/dbs/shop/colls/orders"]
partition_key = ["{claims.tenant}"]

[[roles]]
name = "unused"
builtin = "data-reader"
scopes = ["/dbs/other"]

[[bindings]]
role = "tenant-rw"
any = [{ claim = "roles", contains = "tenant.rw" }, { claim = "groups", contains = "g" }]

[[bindings]]
role = "unused"
claim = "roles"
contains = "other"

[[deny]]
name = "no-deletes"
actions = ["items/delete"]
scopes = ["/dbs/shop"]
unless = { claim = "roles", contains = "break-glass" }
"#;

#[test]
fn explain_reports_the_matches_behind_a_decision() {
    let policy = support::policy(POLICY);
    let token = support::claims(json!({
        "roles": ["tenant.rw", "break-glass"], "tenant": "t1", "groups": ["x"], "name": "n"
    }));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ms-documentdb-partitionkey",
        HeaderValue::from_static(r#"["t2"]"#),
    );
    let op = classify(&RequestHead {
        method: &Method::DELETE,
        path: "/dbs/shop/colls/orders/docs/o1",
        headers: &headers,
    })
    .expect("classifies");
    let subject = Subject {
        issuer: support::IDP,
        claims: &token,
    };

    let explanation = policy.explain(&subject, &op);
    let decision = policy.decide(&subject, &op);
    assert_eq!(explanation.decision.allowed, decision.allowed);
    assert_eq!(explanation.decision.reason, "partition_key_mismatch");

    assert_eq!(explanation.bindings.len(), 1);
    assert_eq!(explanation.bindings[0].binding, "bindings[0]");
    assert_eq!(explanation.bindings[0].role, "tenant-rw");

    assert_eq!(explanation.roles.len(), 1);
    let role = &explanation.roles[0];
    assert_eq!(role.grants, [cosmogate_protocol::DataAction::ItemsDelete]);
    assert_eq!(
        role.partition_key.as_deref(),
        Some(&["{claims.tenant}".to_owned()][..])
    );
    assert_eq!(role.resolved_partition_key, Some(vec![json!("t1")]));

    assert_eq!(explanation.denies.len(), 1);
    assert!(explanation.denies[0].lifted_by_unless);

    let claims: Vec<&str> = explanation
        .claims
        .iter()
        .map(|c| c.claim.as_str())
        .collect();
    assert_eq!(claims, ["roles", "tenant"]);
    assert_eq!(explanation.claims[1].value, Some(json!("t1")));
}
