//! Cases C16, C17, C19 and C22 of the security case list, with its policy fixture: every
//! input of each case, classified by the protocol crate and decided by the policy. None may
//! ever reach `payroll`, and none may widen what the principal holds.

mod support;

use cosmogate_protocol::ProtocolError;
use http::Method;
use serde_json::{Value, json};
use support::{decide, request};

/// The fixture: `orders.read` reads `orders`, `orders.write` also writes it, `tenant.rw` reads
/// and writes it inside the partition of the `tenant` claim; nobody may touch `payroll`.
const FIXTURE: &str = r#"
version = 1

[[roles]]
name = "orders-read"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "orders-write"
builtin = "data-contributor"
scopes = ["/dbs/shop/colls/orders"]

[[roles]]
name = "tenant-rw"
builtin = "data-contributor"
scopes = ["/dbs/shop/colls/orders"]
partition_key = ["{claims.tenant}"]

[[roles]]
name = "lookalike"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/XP0mAA=="]

[[bindings]]
role = "orders-read"
claim = "roles"
contains = "orders.read"

[[bindings]]
role = "orders-write"
claim = "roles"
contains = "orders.write"

[[bindings]]
role = "tenant-rw"
all = [{ claim = "roles", contains = "tenant.rw" }, { claim = "tenant", glob = "*" }]

[[bindings]]
role = "lookalike"
claim = "roles"
contains = "lookalike.read"

[[deny]]
name = "payroll-is-off-limits"
actions = ["readMetadata", "containers/*"]
scopes = ["/dbs/shop/colls/payroll"]
"#;

fn t0() -> Value {
    json!({"sub": "u-100", "roles": ["orders.read"]})
}

/// Never a forwarded request into payroll: refused by the classifier, or denied.
fn assert_never_allowed(token: Value, request: &support::Request<'_>) -> Option<ProtocolError> {
    match decide(&support::policy(FIXTURE), token, request) {
        Ok(decision) => {
            assert!(!decision.allowed, "{request:?} was allowed: {decision:?}");
            None
        }
        Err(error) => Some(error),
    }
}

#[test]
fn the_fixture_reader_reaches_orders_so_the_denials_below_mean_something() {
    let read = request(Method::GET, "/dbs/shop/colls/orders/docs/o1").pk(r#"["o1"]"#);
    assert!(support::allowed(&support::policy(FIXTURE), t0(), &read));
}

#[test]
fn c16_dot_segments_encoded_slashes_backslashes_and_case_never_reach_payroll() {
    let refused = [
        "/dbs/shop/colls/orders/../payroll/docs/p1",
        "/dbs/shop/colls/orders/%2E%2E/payroll/docs/p1",
        "/dbs/shop/colls/orders/..%2Fpayroll/docs/p1",
        "/dbs/shop/colls/orders%2F..%2Fpayroll/docs/p1",
        "/dbs/shop/colls/./payroll/docs/p1",
        "/DBS/shop/COLLS/payroll/docs/p1",
        "/dbs/shop/colls/payroll%5Cdocs/p1",
        "/dbs/shop/colls/payroll\\docs\\p1",
        "/dbs/shop/colls/orders%252F..%252Fpayroll/docs/p1",
        "/dbs/shop/colls/orders;x=/../payroll/docs/p1",
        "/dbs/shop/colls/orders/docs/%00",
        "/dbs/shop/colls/%6Frders/docs/o1",
    ];
    for path in refused {
        let read = request(Method::GET, path).pk(r#"["p1"]"#);
        let error = assert_never_allowed(t0(), &read);
        assert_eq!(error, Some(ProtocolError::MalformedPath), "{path}");
    }
}

#[test]
fn c16_empty_segments_and_another_case_address_payroll_itself_and_are_denied() {
    // Cosmos drops empty segments as the classifier does, so these name payroll (or a
    // container called Payroll), and the policy denies them.
    for path in [
        "//dbs/shop/colls/payroll/docs/p1",
        "/dbs//shop/colls/payroll/docs/p1",
        "/dbs/shop/colls/Payroll/docs/p1",
    ] {
        let read = request(Method::GET, path).pk(r#"["p1"]"#);
        assert_eq!(assert_never_allowed(t0(), &read), None, "{path} classifies");
    }
    let admin = json!({"roles": ["orders.read", "orders.write", "tenant.rw"], "tenant": "t"});
    let read = request(Method::GET, "//dbs/shop/colls/payroll/docs/p1").pk(r#"["t"]"#);
    assert_eq!(assert_never_allowed(admin, &read), None);
}

#[test]
fn c17_query_strings_and_fragments_never_widen_or_narrow_a_rule() {
    for path in [
        "/dbs/shop/colls/payroll/docs/p1?/healthz",
        "/healthz?x=/dbs/shop/colls/payroll",
        "/dbs/shop/colls/payroll/docs/p1#/healthz",
        "/dbs/shop/colls/orders/docs/o1?p=../../payroll",
        "/dbs/shop/colls/orders%3F/../payroll/docs/p1",
        "/?x=/dbs/shop/colls/payroll",
    ] {
        for token in [json!({}), t0()] {
            let read = request(Method::GET, path).pk(r#"["o1"]"#);
            let error = assert_never_allowed(token, &read);
            assert!(error.is_some(), "{path} must be refused before the policy");
        }
    }
}

#[test]
fn c19_rid_addressing_never_reaches_payroll_data() {
    let rid_docs = "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs";
    let self_link = "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs/XP0mAJ3H-AABAAAAAAAAA==/";
    for request in [
        request(Method::GET, rid_docs),
        request(Method::POST, rid_docs).query(),
        request(Method::GET, self_link).pk(r#"["p1"]"#),
    ] {
        let error = assert_never_allowed(t0(), &request);
        assert_eq!(error, Some(ProtocolError::RidAddressing), "{request:?}");
    }
    // The mixed form is name-based: a container named like a RID, which nobody is granted.
    let mixed = request(Method::GET, "/dbs/shop/colls/XP0mAJ3H-AA=/docs");
    assert_eq!(assert_never_allowed(t0(), &mixed), None);
}

#[test]
fn c19_rid_metadata_reads_need_account_wide_metadata_and_lookalike_names_follow_their_rule() {
    let pkranges = request(Method::GET, "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/pkranges");
    assert_eq!(assert_never_allowed(t0(), &pkranges), None);

    let lookalike = json!({"roles": ["lookalike.read"]});
    let named = request(Method::GET, "/dbs/shop/colls/XP0mAA==/docs/x").pk(r#"["x"]"#);
    let policy = support::policy(FIXTURE);
    assert!(support::allowed(&policy, lookalike.clone(), &named));
    assert!(!support::allowed(&policy, t0(), &named));
}

#[test]
fn c22_forwarding_rewrite_and_identity_headers_never_change_a_decision() {
    let spoofed: [(&str, &str); 12] = [
        ("x-forwarded-for", "10.0.0.1, 127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("forwarded", "for=10.0.0.1"),
        ("x-forwarded-uri", "/dbs/shop/colls/orders/docs/o1"),
        ("x-original-url", "/dbs/shop/colls/orders/docs/o1"),
        ("x-rewrite-url", "/dbs/shop/colls/orders/docs/o1"),
        ("x-http-method-override", "GET"),
        ("x-forwarded-user", "admin"),
        ("x-ms-client-principal-name", "admin"),
        ("x-auth-request-email", "admin@example.test"),
        ("x-forwarded-host", "evil.test"),
        ("x-ms-thinclient-proxy-operation-type", "Read"),
    ];
    let cases = [
        request(Method::GET, "/dbs/shop/colls/payroll/docs/p1").pk(r#"["p1"]"#),
        request(Method::DELETE, "/dbs/shop/colls/orders/docs/o1").pk(r#"["o1"]"#),
        request(Method::POST, "/dbs/shop/colls/orders/docs")
            .query()
            .header("x-ms-documentdb-query-enablecrosspartition", "false"),
    ];
    let tenant = json!({"roles": ["orders.read", "tenant.rw"], "tenant": "t1"});
    let policy = support::policy(FIXTURE);
    for case in cases {
        for token in [t0(), tenant.clone()] {
            let plain = decide(&policy, token.clone(), &case).expect("classifies");
            let mut noisy = case.clone();
            for (name, value) in spoofed {
                noisy = noisy.header(name, value);
            }
            let noisy = decide(&policy, token, &noisy).expect("classifies");
            assert_eq!(plain.allowed, noisy.allowed, "{case:?}");
            assert_eq!(plain.reason, noisy.reason, "{case:?}");
            assert_eq!(plain.rule, noisy.rule, "{case:?}");
        }
    }
}

#[test]
fn c22_the_tenant_role_decides_on_the_real_partition_key_only() {
    let tenant = json!({"roles": ["tenant.rw"], "tenant": "t1"});
    let policy = support::policy(FIXTURE);
    let delete = request(Method::DELETE, "/dbs/shop/colls/orders/docs/o1")
        .pk(r#"["t2"]"#)
        .header("x-ms-thinclient-proxy-operation-type", "Read")
        .header("x-ms-cosmos-intended-collection-rid", "XP0mAJ3H-AA=");
    let decision = decide(&policy, tenant, &delete).expect("classifies");
    assert_eq!(decision.reason, "partition_key_mismatch");
}
