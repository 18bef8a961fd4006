//! The policy against operations classified by the real protocol crate, request by request.

use cosmogate_policy::{Decision, Policy, Subject};
use cosmogate_protocol::{DataAction, RequestHead, classify, classify_batch_body};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Value, json};

const POLICY: &str = r#"
version = 1

[[roles]]
name = "orders-reader"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "orders-creator"
actions = ["readMetadata", "items/create"]
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "account-metadata"
actions = ["readMetadata"]
scopes = ["/"]

[[bindings]]
role = "orders-reader"
claim = "roles"
contains = "orders.read"

[[bindings]]
role = "orders-creator"
claim = "roles"
contains = "orders.create"

[[bindings]]
role = "account-metadata"
claim = "roles"
contains = "metadata.read"
"#;

fn decide(
    role: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Decision> {
    let policy = Policy::from_toml(POLICY, "test").expect("test policy is valid");
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
        let value = HeaderValue::from_str(value).expect("test header values are valid");
        map.insert(name, value);
    }
    let head = RequestHead {
        method: &method,
        path,
        headers: &map,
    };
    let mut operation = classify(&head).ok()?;
    classify_batch_body(&mut operation, body).ok()?;

    let Value::Object(claims) = json!({"roles": [role]}) else {
        unreachable!("a json object literal is an object")
    };
    Some(policy.decide(
        &Subject {
            issuer: "http://127.0.0.1:9400",
            claims: &claims,
        },
        &operation,
    ))
}

fn get(role: &str, path: &str) -> Option<Decision> {
    decide(
        role,
        Method::GET,
        path,
        &[("x-ms-documentdb-partitionkey", "[\"p1\"]")],
        b"",
    )
}

fn allowed(decision: Option<Decision>) -> bool {
    decision.is_some_and(|decision| decision.allowed)
}

#[test]
fn a_container_reader_can_start_an_sdk_and_read_its_container() {
    for path in [
        "/",
        "/dbs/shop",
        "/dbs/shop/colls/orders",
        "/dbs/shop/colls/orders/pkranges",
    ] {
        assert!(allowed(get("orders.read", path)), "{path}");
    }
    assert!(allowed(get(
        "orders.read",
        "/dbs/shop/colls/orders/docs/o1"
    )));
}

#[test]
fn a_container_reader_cannot_reach_other_containers_or_list_metadata() {
    for path in [
        "/dbs/shop/colls/payroll/docs/p1",
        "/dbs/shop/colls/Payroll/docs/p1",
        "/dbs/shop/colls/orders-archive/docs/o1",
        "/dbs/shop/colls/payroll",
        "/dbs/shop/colls",
        "/dbs",
        "/dbs/shop2",
    ] {
        assert!(!allowed(get("orders.read", path)), "{path}");
    }
}

#[test]
fn rid_paths_are_limited_to_account_wide_metadata_reads() {
    let pkranges = "/dbs/gAAMAA==/colls/gAAMAIAAAAE=/pkranges";
    let docs = "/dbs/gAAMAA==/colls/gAAMAIAAAAE=/docs";
    assert!(!allowed(get("orders.read", pkranges)));
    assert!(allowed(get("metadata.read", pkranges)));
    assert!(!allowed(get("metadata.read", docs)));
    assert!(!allowed(get("orders.read", docs)));
}

#[test]
fn a_batch_is_denied_when_one_of_its_operations_is_not_granted() {
    let headers = [
        ("x-ms-cosmos-is-batch-request", "true"),
        ("x-ms-cosmos-batch-atomic", "true"),
        ("x-ms-documentdb-partitionkey", "[\"p1\"]"),
    ];
    let path = "/dbs/shop/colls/orders/docs";
    let create = br#"[{"operationType":"Create","resourceBody":{"id":"a"}}]"#;
    let mixed = br#"[{"operationType":"Create","resourceBody":{"id":"a"}},
                    {"operationType":"Delete","id":"b"}]"#;

    let decision = decide("orders.create", Method::POST, path, &headers, create);
    assert!(allowed(decision), "a create-only batch is allowed");

    let decision =
        decide("orders.create", Method::POST, path, &headers, mixed).expect("the batch classifies");
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "action_not_granted");
    assert_eq!(decision.missing, [DataAction::ItemsDelete]);
}
