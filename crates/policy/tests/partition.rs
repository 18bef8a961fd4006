//! Partition-key binding on classified requests: a tenant-bound role reaches its own logical
//! partition and nothing else, whatever shape the request takes.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{allowed, decided, request};

const POLICY: &str = r#"
version = 1

[[roles]]
name = "tenant-rw"
builtin = "data-contributor"
scopes = ["/dbs/shop/colls/orders"]
partition_key = ["{claims.tenant}"]

[[roles]]
name = "user-rw"
actions = ["readMetadata", "items/*", "executeQuery"]
scopes = ["/dbs/saas/colls/profiles"]
partition_key = ["{claims.tenant}", "{claims.oid}"]

[[roles]]
name = "tenant-trial"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/trial"]
partition_key = ["{claims.tenant}"]
partition_key_mode = "audit"

[[roles]]
name = "orders-reader"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]

[[bindings]]
role = "tenant-rw"
claim = "roles"
contains = "tenant.rw"

[[bindings]]
role = "user-rw"
claim = "roles"
contains = "user.rw"

[[bindings]]
role = "tenant-trial"
claim = "roles"
contains = "trial"

[[bindings]]
role = "orders-reader"
claim = "roles"
contains = "orders.read"
"#;

const DOCS: &str = "/dbs/shop/colls/orders/docs";
const ITEM: &str = "/dbs/shop/colls/orders/docs/o1";

fn policy() -> cosmogate_policy::Policy {
    support::policy(POLICY)
}

fn tenant(id: &str) -> Value {
    json!({"roles": ["tenant.rw"], "tenant": id})
}

fn reason(token: Value, request: &support::Request<'_>) -> &'static str {
    decided(&policy(), token, request).reason
}

#[test]
fn point_operations_inside_the_tenant_partition_are_allowed() {
    let policy = policy();
    for request in [
        request(Method::GET, ITEM).pk(r#"["t1"]"#),
        request(Method::PUT, ITEM).pk(r#"["t1"]"#),
        request(Method::PATCH, ITEM).pk(r#"["t1"]"#),
        request(Method::DELETE, ITEM).pk(r#"["t1"]"#),
        request(Method::POST, DOCS).pk(r#"["t1"]"#),
        request(Method::POST, DOCS)
            .pk(r#"["t1"]"#)
            .header("x-ms-documentdb-is-upsert", "true"),
    ] {
        let decision = decided(&policy, tenant("t1"), &request);
        assert!(decision.allowed, "{request:?}: {decision:?}");
        assert_eq!(decision.rule.as_deref(), Some("tenant-rw"));
    }
}

#[test]
fn point_operations_in_another_partition_are_denied_as_a_mismatch() {
    for key in [
        r#"["t2"]"#,
        r#"["T1"]"#,
        "[]",
        "[null]",
        "[{}]",
        r#"["t1 "]"#,
    ] {
        let read = request(Method::GET, ITEM).pk(key);
        let decision = decided(&policy(), tenant("t1"), &read);
        assert!(!decision.allowed, "{key}");
        assert_eq!(decision.reason, "partition_key_mismatch", "{key}");
        assert_eq!(decision.rule.as_deref(), Some("tenant-rw"));
    }
}

#[test]
fn a_point_operation_without_a_partition_key_is_denied() {
    assert_eq!(
        reason(tenant("t1"), &request(Method::GET, ITEM)),
        "partition_key_required"
    );
}

#[test]
fn a_single_partition_query_is_allowed_and_a_cross_partition_one_is_not() {
    let query = request(Method::POST, DOCS).query();
    assert!(allowed(
        &policy(),
        tenant("t1"),
        &query.clone().pk(r#"["t1"]"#)
    ));
    assert_eq!(
        reason(tenant("t1"), &query.clone().pk(r#"["t2"]"#)),
        "partition_key_mismatch"
    );
    assert_eq!(reason(tenant("t1"), &query), "partition_key_required");
}

#[test]
fn the_cross_partition_flag_is_not_trusted_either_way() {
    let query = request(Method::POST, DOCS).query();
    let flagged = query
        .clone()
        .header("x-ms-documentdb-query-enablecrosspartition", "false");
    assert_eq!(reason(tenant("t1"), &flagged), "partition_key_required");
    let with_key = query
        .pk(r#"["t1"]"#)
        .header("x-ms-documentdb-query-enablecrosspartition", "true");
    assert!(allowed(&policy(), tenant("t1"), &with_key));
}

#[test]
fn a_query_plan_without_a_key_is_allowed_since_it_reads_no_items() {
    let plan = request(Method::POST, DOCS)
        .header("x-ms-cosmos-is-query-plan-request", "True")
        .header("content-type", "application/query+json");
    assert!(allowed(&policy(), tenant("t1"), &plan));
    assert_eq!(
        reason(tenant("t1"), &plan.clone().pk(r#"["t2"]"#)),
        "partition_key_mismatch"
    );
    let ranged = plan.header("x-ms-documentdb-partitionkeyrangeid", "0");
    assert_eq!(reason(tenant("t1"), &ranged), "partition_key_required");
}

#[test]
fn range_and_epk_scoped_requests_are_denied_even_with_the_right_key() {
    for (name, value) in [
        ("x-ms-documentdb-partitionkeyrangeid", "0"),
        ("x-ms-start-epk", "05C1"),
        ("x-ms-end-epk", "FF"),
    ] {
        let feed = request(Method::GET, DOCS)
            .header("a-im", "Incremental Feed")
            .header(name, value);
        assert_eq!(
            reason(tenant("t1"), &feed),
            "partition_key_required",
            "{name}"
        );
        let keyed = feed.pk(r#"["t1"]"#);
        assert_eq!(
            reason(tenant("t1"), &keyed),
            "partition_key_required",
            "{name}"
        );
        let query = request(Method::POST, DOCS)
            .query()
            .pk(r#"["t1"]"#)
            .header(name, value);
        assert_eq!(
            reason(tenant("t1"), &query),
            "partition_key_required",
            "{name}"
        );
    }
}

#[test]
fn change_feed_and_read_feed_are_allowed_for_the_tenant_partition_only() {
    let feed = request(Method::GET, DOCS).header("a-im", "Incremental Feed");
    assert!(allowed(
        &policy(),
        tenant("t1"),
        &feed.clone().pk(r#"["t1"]"#)
    ));
    assert_eq!(reason(tenant("t1"), &feed), "partition_key_required");
    let read_feed = request(Method::GET, DOCS);
    assert!(allowed(
        &policy(),
        tenant("t1"),
        &read_feed.clone().pk(r#"["t1"]"#)
    ));
    assert_eq!(reason(tenant("t1"), &read_feed), "partition_key_required");
}

#[test]
fn metadata_reads_are_not_partitioned() {
    for path in [
        "/",
        "/dbs/shop",
        "/dbs/shop/colls/orders",
        "/dbs/shop/colls/orders/pkranges",
    ] {
        let read = request(Method::GET, path);
        assert!(allowed(&policy(), tenant("t1"), &read), "{path}");
    }
}

#[test]
fn stored_procedures_and_partition_deletes_are_checked_against_the_header() {
    let sproc = request(Method::POST, "/dbs/shop/colls/orders/sprocs/bump").body(b"[]");
    assert!(allowed(
        &policy(),
        tenant("t1"),
        &sproc.clone().pk(r#"["t1"]"#)
    ));
    assert_eq!(
        reason(tenant("t1"), &sproc.pk(r#"["t2"]"#)),
        "partition_key_mismatch"
    );
    let wipe = request(
        Method::POST,
        "/dbs/shop/colls/orders/operations/partitionkeydelete",
    );
    assert!(allowed(
        &policy(),
        tenant("t1"),
        &wipe.clone().pk(r#"["t1"]"#)
    ));
    assert_eq!(reason(tenant("t1"), &wipe), "partition_key_required");
}

fn bulk(body: &'static [u8]) -> support::Request<'static> {
    request(Method::POST, DOCS)
        .header("x-ms-cosmos-is-batch-request", "true")
        .header("x-ms-cosmos-batch-atomic", "false")
        .header("x-ms-cosmos-batch-continue-on-error", "true")
        .header("x-ms-documentdb-partitionkeyrangeid", "0")
        .body(body)
}

#[test]
fn a_bulk_inside_the_tenant_partition_is_allowed_despite_its_range_header() {
    let body = br#"[
        {"operationType":"Create","partitionKey":"[\"t1\"]","resourceBody":{"id":"a"}},
        {"operationType":"Delete","id":"b","partitionKey":"[\"t1\"]"}
    ]"#;
    let decision = decided(&policy(), tenant("t1"), &bulk(body));
    assert!(decision.allowed, "{decision:?}");
}

#[test]
fn a_bulk_touching_another_partition_is_refused_whole_and_names_the_operation() {
    let body = br#"[
        {"operationType":"Create","partitionKey":"[\"t1\"]","resourceBody":{"id":"a"}},
        {"operationType":"Read","id":"b","partitionKey":"[\"t1\"]"},
        {"operationType":"Delete","id":"c","partitionKey":"[\"t2\"]"}
    ]"#;
    let decision = decided(&policy(), tenant("t1"), &bulk(body));
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "partition_key_mismatch");
    assert_eq!(decision.batch_index, Some(2));
    assert_eq!(
        decision.missing,
        [cosmogate_protocol::DataAction::ItemsDelete]
    );
}

#[test]
fn a_bulk_operation_without_a_partition_key_is_refused() {
    let body = br#"[
        {"operationType":"Read","id":"b","partitionKey":"[\"t1\"]"},
        {"operationType":"Read","id":"c"}
    ]"#;
    let decision = decided(&policy(), tenant("t1"), &bulk(body));
    assert_eq!(decision.reason, "partition_key_required");
    assert_eq!(decision.batch_index, Some(1));
}

#[test]
fn a_transactional_batch_is_checked_through_its_inherited_key() {
    let batch = |key: &'static str| {
        request(Method::POST, DOCS)
            .header("x-ms-cosmos-is-batch-request", "true")
            .header("x-ms-cosmos-batch-atomic", "true")
            .pk(key)
            .body(
                br#"[{"operationType":"Upsert","resourceBody":{"id":"a"}},
                       {"operationType":"Read","id":"b"}]"#,
            )
    };
    assert!(allowed(&policy(), tenant("t1"), &batch(r#"["t1"]"#)));
    assert_eq!(
        reason(tenant("t1"), &batch(r#"["t2"]"#)),
        "partition_key_mismatch"
    );
}

#[test]
fn each_operation_may_be_granted_by_a_different_role() {
    // The unrestricted reader covers the read of another tenant's item; the tenant role
    // covers the write in its own partition. Each operation is authorised on its own.
    let body = br#"[
        {"operationType":"Create","partitionKey":"[\"t1\"]","resourceBody":{"id":"a"}},
        {"operationType":"Read","id":"b","partitionKey":"[\"t2\"]"}
    ]"#;
    let token = json!({"roles": ["tenant.rw", "orders.read"], "tenant": "t1"});
    let decision = decided(&policy(), token.clone(), &bulk(body));
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.roles, ["tenant-rw", "orders-reader"]);

    let cross = request(Method::POST, DOCS).query();
    let decision = decided(&policy(), token, &cross);
    assert!(decision.allowed);
    assert_eq!(decision.rule.as_deref(), Some("orders-reader"));
}

#[test]
fn a_missing_or_unusable_tenant_claim_allows_no_partition() {
    for token in [
        json!({"roles": ["tenant.rw"]}),
        json!({"roles": ["tenant.rw"], "tenant": null}),
        json!({"roles": ["tenant.rw"], "tenant": ["t1"]}),
    ] {
        let read = request(Method::GET, ITEM).pk(r#"["t1"]"#);
        assert_eq!(
            reason(token.clone(), &read),
            "partition_key_claim_missing",
            "{token}"
        );
        let feed = request(Method::GET, DOCS).header("x-ms-documentdb-partitionkeyrangeid", "0");
        assert_eq!(
            reason(token.clone(), &feed),
            "partition_key_claim_missing",
            "{token}"
        );
    }
}

#[test]
fn hierarchical_keys_allow_the_users_own_sub_partition_only() {
    let token = json!({"roles": ["user.rw"], "tenant": "t1", "oid": "u1"});
    let item = "/dbs/saas/colls/profiles/docs/p1";
    assert!(allowed(
        &policy(),
        token.clone(),
        &request(Method::GET, item).pk(r#"["t1","u1"]"#)
    ));
    for key in [r#"["t1","u2"]"#, r#"["t1"]"#, r#"["u1","t1"]"#] {
        let read = request(Method::GET, item).pk(key);
        assert_eq!(
            reason(token.clone(), &read),
            "partition_key_mismatch",
            "{key}"
        );
    }
    let prefix_query = request(Method::POST, "/dbs/saas/colls/profiles/docs")
        .query()
        .pk(r#"["t1"]"#);
    assert_eq!(reason(token, &prefix_query), "partition_key_mismatch");
}

#[test]
fn an_audit_only_partition_binding_allows_and_reports_a_shadow_hit() {
    let token = json!({"roles": ["trial"], "tenant": "t1"});
    let other = request(Method::GET, "/dbs/shop/colls/trial/docs/x").pk(r#"["t2"]"#);
    let decision = decided(&policy(), token.clone(), &other);
    assert!(decision.allowed);
    assert_eq!(decision.shadow.len(), 1);
    assert_eq!(decision.shadow[0].rule, "tenant-trial");
    assert_eq!(decision.shadow[0].reason, "partition_key_mismatch");

    let own = request(Method::GET, "/dbs/shop/colls/trial/docs/x").pk(r#"["t1"]"#);
    let decision = decided(&policy(), token.clone(), &own);
    assert!(decision.allowed);
    assert!(decision.shadow.is_empty());

    let cross = request(Method::POST, "/dbs/shop/colls/trial/docs").query();
    let decision = decided(&policy(), token, &cross);
    assert!(decision.allowed);
    assert_eq!(decision.shadow[0].reason, "partition_key_required");
}
