use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::test_support::{
    claims, container_op, database_op, list_containers, list_databases, op, read_account, rid_op,
};

const IDP: &str = "http://127.0.0.1:9400";
const OTHER_IDP: &str = "http://127.0.0.1:9500";

const POLICY: &str = r#"
version = 1

[[roles]]
name = "orders-reader"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "orders-creator"
actions = ["items/create"]
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "orders-deleter"
actions = ["items/delete"]
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "shop-contributor"
builtin = "data-contributor"
scopes = ["/dbs/shop"]

[[roles]]
name = "account-reader"
builtin = "data-reader"
scopes = ["/"]

[[roles]]
name = "item-reader-no-metadata"
actions = ["items/read"]
scopes = ["/dbs/shop/colls/orders"]

[[bindings]]
role = "orders-reader"
issuer = "http://127.0.0.1:9400"
claim = "roles"
contains = "orders.read"

[[bindings]]
role = "orders-creator"
claim = "scp"
contains = "orders.create"

[[bindings]]
role = "orders-deleter"
claim = "scp"
contains = "orders.delete"

[[bindings]]
role = "shop-contributor"
claim = "realm_access.roles"
contains = "shop.write"

[[bindings]]
role = "account-reader"
claim = "tid"
equals = "tenant-1"

[[bindings]]
role = "item-reader-no-metadata"
claim = "app"
one_of = ["batch-job", "report-job"]
"#;

fn policy() -> Policy {
    Policy::from_toml(POLICY, "test").expect("test policy is valid")
}

fn decide_as(issuer: &str, token: Value, operation: &Operation) -> Decision {
    let token = claims(token);
    policy().decide(
        &Subject {
            issuer,
            claims: &token,
        },
        operation,
    )
}

fn decide(token: Value, operation: &Operation) -> Decision {
    decide_as(IDP, token, operation)
}

fn reader() -> Value {
    json!({"roles": ["orders.read"]})
}

use DataAction::*;

#[test]
fn a_principal_without_a_matching_binding_is_denied_with_no_role() {
    let decision = decide(
        json!({"roles": ["other"]}),
        &container_op(&[ItemsRead], "shop", "orders"),
    );
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no_role");
    assert!(decision.roles.is_empty());
    assert_eq!(decision.missing, [ItemsRead]);
}

#[test]
fn a_container_reader_may_read_and_query_its_container() {
    for actions in [
        &[ItemsRead][..],
        &[ExecuteQuery, ReadChangeFeed],
        &[ReadMetadata],
    ] {
        let decision = decide(reader(), &container_op(actions, "shop", "orders"));
        assert!(decision.allowed, "{actions:?}");
        assert_eq!(decision.reason, "allowed");
        assert_eq!(decision.roles, ["orders-reader"]);
        assert!(decision.missing.is_empty());
    }
}

#[test]
fn a_container_reader_may_not_write() {
    let decision = decide(reader(), &container_op(&[ItemsCreate], "shop", "orders"));
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "action_not_granted");
    assert!(decision.roles.is_empty());
    assert_eq!(decision.missing, [ItemsCreate]);
}

#[test]
fn a_container_grant_does_not_cover_a_container_whose_name_extends_it() {
    for container in ["orders-archive", "order", "Orders", "payroll"] {
        let decision = decide(reader(), &container_op(&[ItemsRead], "shop", container));
        assert!(!decision.allowed, "{container}");
        assert_eq!(decision.reason, "action_not_granted");
    }
    let other_db = decide(reader(), &container_op(&[ItemsRead], "shop2", "orders"));
    assert!(!other_db.allowed);
}

#[test]
fn a_database_grant_covers_every_container_of_that_database_only() {
    let writer = json!({"realm_access": {"roles": ["shop.write"]}});
    for container in ["orders", "payroll", "orders-archive"] {
        let operation = container_op(
            &[ItemsCreate, ItemsDelete, ManageConflicts],
            "shop",
            container,
        );
        let decision = decide(writer.clone(), &operation);
        assert!(decision.allowed, "{container}");
        assert_eq!(decision.roles, ["shop-contributor"]);
    }
    assert!(decide(writer.clone(), &database_op(&[ReadMetadata], "shop")).allowed);
    assert!(
        !decide(
            writer.clone(),
            &container_op(&[ItemsRead], "shopping", "orders")
        )
        .allowed
    );
    assert!(!decide(writer, &list_databases()).allowed);
}

#[test]
fn an_account_grant_covers_everything() {
    let token = json!({"tid": "tenant-1"});
    assert!(decide(token.clone(), &list_databases()).allowed);
    assert!(decide(token.clone(), &database_op(&[ReadMetadata], "any")).allowed);
    assert!(decide(token.clone(), &container_op(&[ItemsRead], "any", "thing")).allowed);
    assert!(!decide(token, &container_op(&[ItemsUpsert], "any", "thing")).allowed);
}

#[test]
fn a_batch_with_one_action_not_granted_is_denied_and_names_it() {
    let creator = json!({"scp": "openid orders.create"});
    let batch = container_op(&[ItemsCreate, ItemsDelete], "shop", "orders");
    let decision = decide(creator, &batch);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "action_not_granted");
    assert_eq!(decision.roles, ["orders-creator"]);
    assert_eq!(decision.missing, [ItemsDelete]);
}

#[test]
fn actions_granted_by_different_roles_combine() {
    let token = json!({"scp": "orders.create orders.delete"});
    let batch = container_op(&[ItemsDelete, ItemsCreate], "shop", "orders");
    let decision = decide(token, &batch);
    assert!(decision.allowed);
    assert_eq!(decision.roles, ["orders-creator", "orders-deleter"]);
}

#[test]
fn read_account_is_allowed_with_read_metadata_on_any_scope() {
    let decision = decide(reader(), &read_account());
    assert!(decision.allowed);
    assert_eq!(decision.roles, ["orders-reader"]);
    assert!(
        decide(
            json!({"realm_access": {"roles": ["shop.write"]}}),
            &read_account()
        )
        .allowed
    );
}

#[test]
fn read_account_needs_read_metadata_somewhere() {
    let decision = decide(json!({"app": "batch-job"}), &read_account());
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "action_not_granted");
    assert_eq!(decision.missing, [ReadMetadata]);
    assert_eq!(decide(json!({}), &read_account()).reason, "no_role");
}

#[test]
fn listing_databases_needs_read_metadata_at_account_scope() {
    let decision = decide(reader(), &list_databases());
    assert!(!decision.allowed);
    assert_eq!(decision.missing, [ReadMetadata]);
}

#[test]
fn a_container_reader_may_read_its_database_but_no_other() {
    assert!(decide(reader(), &database_op(&[ReadMetadata], "shop")).allowed);
    assert!(!decide(reader(), &database_op(&[ReadMetadata], "shop2")).allowed);
    assert!(!decide(reader(), &database_op(&[ReadMetadata], "Shop")).allowed);
    let no_metadata = decide(
        json!({"app": "batch-job"}),
        &database_op(&[ReadMetadata], "shop"),
    );
    assert!(!no_metadata.allowed);
}

#[test]
fn a_container_reader_may_not_list_the_containers_of_its_database() {
    let decision = decide(reader(), &list_containers("shop"));
    assert!(!decision.allowed);
    assert_eq!(decision.missing, [ReadMetadata]);
    let writer = json!({"realm_access": {"roles": ["shop.write"]}});
    assert!(decide(writer, &list_containers("shop")).allowed);
}

#[test]
fn the_database_exception_covers_only_read_metadata() {
    let decision = decide(reader(), &database_op(&[ItemsRead], "shop"));
    assert!(!decision.allowed);
    assert_eq!(decision.missing, [ItemsRead]);
}

#[test]
fn rid_addressed_metadata_reads_need_read_metadata_at_account_scope() {
    let account_reader = decide(json!({"tid": "tenant-1"}), &rid_op(&[ReadMetadata]));
    assert!(account_reader.allowed);
    assert_eq!(account_reader.roles, ["account-reader"]);

    let db_contributor = json!({"realm_access": {"roles": ["shop.write"]}});
    assert!(!decide(db_contributor, &rid_op(&[ReadMetadata])).allowed);
    assert!(!decide(reader(), &rid_op(&[ReadMetadata])).allowed);
}

#[test]
fn rid_addressed_data_operations_are_denied_even_for_account_readers() {
    let decision = decide(
        json!({"tid": "tenant-1"}),
        &rid_op(&[ReadMetadata, ItemsRead]),
    );
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "action_not_granted");
    assert_eq!(decision.missing, [ItemsRead]);
}

#[test]
fn rid_addressing_is_not_matched_against_names() {
    // A RID operation whose database and container happen to be real names still gets no
    // name-based grant.
    let mut operation = container_op(&[ItemsRead], "shop", "orders");
    operation.rid_based = true;
    assert!(!decide(reader(), &operation).allowed);
}

#[test]
fn an_issuer_qualified_binding_ignores_tokens_from_other_issuers() {
    let operation = container_op(&[ItemsRead], "shop", "orders");
    let decision = decide_as(OTHER_IDP, reader(), &operation);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no_role");
    // Bindings without an issuer match any issuer.
    let creator = json!({"scp": "orders.create"});
    let creating = container_op(&[ItemsCreate], "shop", "orders");
    assert!(decide_as(OTHER_IDP, creator, &creating).allowed);
}

#[test]
fn one_of_bindings_match_any_listed_value() {
    let operation = container_op(&[ItemsRead], "shop", "orders");
    assert!(decide(json!({"app": "report-job"}), &operation).allowed);
    assert!(!decide(json!({"app": "Report-Job"}), &operation).allowed);
}

#[test]
fn claims_of_the_wrong_type_match_no_binding() {
    let operation = container_op(&[ItemsRead], "shop", "orders");
    for token in [
        json!({"roles": "orders.read-not"}),
        json!({"roles": 7}),
        json!({"roles": {"orders.read": true}}),
        json!({"realm_access": "shop.write"}),
        json!({"realm_access": {"roles": "shop.writer"}}),
        json!({"tid": ["tenant-1"]}),
        json!({"app": null}),
    ] {
        assert_eq!(
            decide(token.clone(), &operation).reason,
            "no_role",
            "{token}"
        );
    }
}

#[test]
fn an_operation_without_actions_is_denied() {
    let decision = decide(reader(), &container_op(&[], "shop", "orders"));
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "no_action");
}

#[test]
fn a_container_without_a_database_is_covered_by_no_scope() {
    let operation = op(OperationKind::ReadItem, &[ItemsRead], None, Some("orders"));
    assert!(!decide(json!({"tid": "tenant-1"}), &operation).allowed);
}

#[test]
fn duplicate_actions_are_reported_once() {
    let operation = container_op(&[ItemsUpsert, ItemsUpsert], "shop", "orders");
    assert_eq!(decide(reader(), &operation).missing, [ItemsUpsert]);
}

#[test]
fn deny_all_denies_everything() {
    let token = claims(json!({"roles": ["orders.read"], "tid": "tenant-1"}));
    let subject = Subject {
        issuer: IDP,
        claims: &token,
    };
    for operation in [
        read_account(),
        list_databases(),
        container_op(&[ItemsRead], "a", "b"),
    ] {
        let decision = Policy::deny_all().decide(&subject, &operation);
        assert!(!decision.allowed);
        assert_eq!(decision.reason, "no_role");
    }
}

#[test]
fn a_decision_serializes_with_short_action_names() {
    let decision = decide(
        reader(),
        &container_op(&[ItemsRead, ItemsDelete], "shop", "orders"),
    );
    let json = serde_json::to_value(&decision).expect("decisions serialize");
    assert_eq!(
        json,
        json!({
            "allowed": false,
            "reason": "action_not_granted",
            "rule": null,
            "roles": ["orders-reader"],
            "missing": ["items/delete"],
            "shadow": [],
            "policy_fingerprint": policy().fingerprint(),
        })
    );
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("orders.read".to_owned()),
            Just("shop.write tenant-1".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(claim_name(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn claim_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("roles".to_owned()),
        Just("scp".to_owned()),
        Just("tid".to_owned()),
        Just("app".to_owned()),
        Just("realm_access".to_owned()),
        ".{0,8}",
    ]
}

fn any_operation() -> impl Strategy<Value = Operation> {
    let name = prop_oneof![Just("shop".to_owned()), Just("orders".to_owned()), ".{0,8}"];
    (
        prop::collection::vec(prop::sample::select(DataAction::ALL.to_vec()), 0..5),
        prop::option::of(name.clone()),
        prop::option::of(name),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(actions, database, container, rid_based, account)| {
            let mut operation = if account {
                read_account()
            } else {
                op(
                    OperationKind::ReadItem,
                    &actions,
                    database.as_deref(),
                    container.as_deref(),
                )
            };
            operation.actions = actions;
            operation.rid_based = rid_based;
            operation
        })
}

proptest! {
    #[test]
    fn decide_never_panics_on_arbitrary_claims(
        token in prop::collection::btree_map(claim_name(), any_json(), 0..8),
        issuer in prop_oneof![Just(IDP.to_owned()), ".{0,16}"],
        operation in any_operation(),
    ) {
        let token: serde_json::Map<String, Value> = token.into_iter().collect();
        let decision = policy().decide(&Subject { issuer: &issuer, claims: &token }, &operation);
        if decision.allowed {
            prop_assert!(decision.missing.is_empty());
            prop_assert!(!decision.roles.is_empty());
            prop_assert!(!operation.actions.is_empty());
        } else {
            prop_assert!(decision.reason != "allowed");
        }
    }
}

/// A policy of `n` container readers `r0…`, each on its own container `c0…`, plus one reader
/// of the whole `shop` database.
fn many_roles(n: usize) -> Policy {
    let mut text = String::from("version = 1\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[roles]]\nname = \"r{i}\"\nbuiltin = \"data-reader\"\n\
             scopes = [\"/dbs/shop/colls/c{i}\"]\n\
             [[bindings]]\nrole = \"r{i}\"\nclaim = \"roles\"\ncontains = \"r{i}\"\n"
        ));
    }
    text.push_str(
        "[[roles]]\nname = \"shop\"\nbuiltin = \"data-reader\"\nscopes = [\"/dbs/shop\"]\n\
         [[bindings]]\nrole = \"shop\"\nclaim = \"roles\"\ncontains = \"shop\"\n",
    );
    Policy::from_toml(&text, "many").expect("generated policy is valid")
}

#[test]
fn a_principal_holding_many_roles_is_decided_through_the_scope_index_alike() {
    let policy = many_roles(40);
    let held: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let token = claims(json!({ "roles": held }));
    let subject = Subject {
        issuer: IDP,
        claims: &token,
    };
    let read = |container: &str| container_op(&[ItemsRead], "shop", container);
    let decision = policy.decide(&subject, &read("c7"));
    assert!(decision.allowed);
    assert_eq!(decision.roles, ["r7"]);
    assert!(!policy.decide(&subject, &read("c30")).allowed);
    assert!(policy.decide(&subject, &read_account()).allowed);

    let mut with_shop = held.clone();
    with_shop.push("shop".to_owned());
    let token = claims(json!({ "roles": with_shop }));
    let subject = Subject {
        issuer: IDP,
        claims: &token,
    };
    let decision = policy.decide(&subject, &read("c30"));
    assert!(decision.allowed);
    assert_eq!(decision.rule.as_deref(), Some("shop"));
    let decision = policy.decide(&subject, &read("c3"));
    assert_eq!(
        decision.roles,
        ["r3"],
        "the first granting role in policy order decides"
    );
}

#[test]
fn a_batch_whose_body_was_not_read_is_refused() {
    let mut batch = container_op(&[ItemsCreate], "shop", "orders");
    batch.kind = OperationKind::Bulk;
    let decision = decide(json!({"realm_access": {"roles": ["shop.write"]}}), &batch);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "batch_body_unread");
}

fn any_binding() -> impl Strategy<Value = String> {
    let value = "[ab]{1,2}";
    let matcher = prop_oneof![
        value.prop_map(|v| format!("equals = \"{v}\"")),
        value.prop_map(|v| format!("contains = \"{v}\"")),
        value.prop_map(|v| format!("prefix = \"{v}\"")),
        value.prop_map(|v| format!("glob = \"{v}*\"")),
        (value, value).prop_map(|(a, b)| format!("one_of = [\"{a}\", \"{b}\"]")),
    ];
    let leaf = (prop_oneof![Just("c"), Just("d")], matcher)
        .prop_map(|(claim, matcher)| format!("{{ claim = \"{claim}\", {matcher} }}"));
    let issuer = prop_oneof![Just(""), Just("issuer = \"http://127.0.0.1:9400\"\n")];
    (issuer, any::<bool>(), prop::collection::vec(leaf, 1..3)).prop_map(|(issuer, all, leaves)| {
        let key = if all { "all" } else { "any" };
        format!("{issuer}{key} = [{}]", leaves.join(", "))
    })
}

fn any_claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ab]{0,3}".prop_map(Value::from),
        "[ab ]{0,5}".prop_map(Value::from),
        prop::collection::vec("[ab]{0,2}", 0..3).prop_map(Value::from),
        Just(Value::Null),
    ]
}

proptest! {
    /// The binding index never loses a role: the roles held are exactly those a full scan of
    /// every binding finds.
    #[test]
    fn held_roles_through_the_index_equal_a_full_scan(
        bindings in prop::collection::vec(any_binding(), 1..8),
        c in any_claim_value(),
        d in any_claim_value(),
        issuer in prop_oneof![Just(IDP), Just(OTHER_IDP)],
    ) {
        let mut text = String::from("version = 1\n");
        for (i, binding) in bindings.iter().enumerate() {
            text.push_str(&format!(
                "[[roles]]\nname = \"r{i}\"\nactions = [\"items/read\"]\nscopes = [\"/\"]\n\
                 [[bindings]]\nrole = \"r{i}\"\n{binding}\n"
            ));
        }
        let policy = Policy::from_toml(&text, "prop").expect("generated policy is valid");
        let token = claims(json!({"c": c, "d": d}));
        let subject = Subject { issuer, claims: &token };
        let scanned: Vec<u32> = policy
            .bindings
            .iter()
            .filter(|b| b.condition.matches(issuer, &token))
            .map(|b| b.role as u32)
            .collect();
        prop_assert_eq!(policy.held_roles(&subject), scanned);
    }
}

fn held_by(policy: &Policy, token: &Map<String, Value>) -> HeldRoles {
    policy.held(&Subject {
        issuer: IDP,
        claims: token,
    })
}

#[test]
fn roles_held_under_one_policy_value_are_used_only_under_it() {
    let first = policy();
    let token = claims(reader());
    let subject = Subject {
        issuer: IDP,
        claims: &token,
    };
    let held = held_by(&first, &token);
    assert!(held.is_for(&first));
    assert!(held.is_for(&first.clone()), "a clone is the same policy");
    // The same text loaded again is another policy value (as after a reload).
    assert!(!held.is_for(&policy()));

    let read = container_op(&[ItemsRead], "shop", "orders");
    let allowed = first.decide_holding(&subject, &read, &held);
    assert!(allowed.allowed);
    assert_eq!(allowed.roles, ["orders-reader"]);

    // Under a policy that grants nothing, role indices from the first are never looked up
    // (they would be out of range): the decision is that policy's own.
    let denied = Policy::deny_all().decide_holding(&subject, &read, &held);
    assert!(!denied.allowed);
    assert_eq!(denied.reason, "no_role");
}

fn any_token() -> impl Strategy<Value = Value> {
    let pick = |names: &'static [&'static str]| prop::sample::subsequence(names, 0..=names.len());
    (
        pick(&["orders.read", "other"]),
        pick(&["orders.create", "orders.delete"]),
        pick(&["shop.write"]),
        prop::option::of(prop_oneof![Just("tenant-1"), Just("tenant-2")]),
        prop::option::of(prop_oneof![Just("batch-job"), Just("web")]),
    )
        .prop_map(|(roles, scp, realm, tid, app)| {
            let mut token = json!({
                "roles": roles,
                "scp": scp.join(" "),
                "realm_access": {"roles": realm},
            });
            if let Some(tid) = tid {
                token["tid"] = json!(tid);
            }
            if let Some(app) = app {
                token["app"] = json!(app);
            }
            token
        })
}

proptest! {
    /// Deciding with roles worked out once gives the same decision as deciding afresh, for
    /// every kind of operation.
    #[test]
    fn a_decision_with_held_roles_equals_a_fresh_one(
        token in any_token(),
        issuer in prop_oneof![Just(IDP), Just(OTHER_IDP)],
    ) {
        let policy = policy();
        let token = claims(token);
        let subject = Subject { issuer, claims: &token };
        let held = policy.held(&subject);
        let operations = [
            container_op(&[ItemsRead], "shop", "orders"),
            container_op(&[ItemsCreate], "shop", "orders"),
            container_op(&[ItemsDelete, ItemsRead], "shop", "orders"),
            container_op(&[ItemsRead], "shop", "carts"),
            database_op(&[ReadMetadata], "shop"),
            read_account(),
            list_databases(),
            list_containers("shop"),
            rid_op(&[ReadMetadata]),
        ];
        for operation in &operations {
            let fresh = serde_json::to_value(policy.decide(&subject, operation)).expect("json");
            let holding = serde_json::to_value(policy.decide_holding(&subject, operation, &held))
                .expect("json");
            prop_assert_eq!(fresh, holding);
        }
    }
}
