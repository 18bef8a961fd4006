use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::claims::{ClaimTest, Matcher};
use crate::test_support::claims;

fn scope(text: &str) -> Scope {
    Scope::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn index_of(scopes: &[Scope]) -> ScopeIndex {
    let mut index = ScopeIndex::default();
    for (i, scope) in scopes.iter().enumerate() {
        index.insert(scope, i as u32);
    }
    index
}

fn looked_up(index: &ScopeIndex, target: Target<'_>) -> Vec<u32> {
    let mut out = Vec::new();
    index.lookup(target, &mut out);
    out
}

#[test]
fn lookups_find_exact_and_pattern_scopes_at_every_level() {
    let scopes: Vec<Scope> = [
        "/",
        "/dbs/shop",
        "/dbs/shop/colls/orders",
        "/dbs/shop/colls/orders-*",
        "/dbs/tenant-*/colls/orders",
        "/dbs/*",
        "/dbs/shop/colls/payroll",
    ]
    .iter()
    .map(|t| scope(t))
    .collect();
    let index = index_of(&scopes);
    let orders = Target::Container {
        database: "shop",
        container: "orders",
    };
    assert_eq!(looked_up(&index, orders), [0, 1, 2, 5]);
    let archive = Target::Container {
        database: "shop",
        container: "orders-2024",
    };
    assert_eq!(looked_up(&index, archive), [0, 1, 3, 5]);
    let tenant = Target::Container {
        database: "tenant-9",
        container: "orders",
    };
    assert_eq!(looked_up(&index, tenant), [0, 4, 5]);
    assert_eq!(looked_up(&index, Target::Database("shop")), [0, 1, 5]);
    assert_eq!(looked_up(&index, Target::Account), [0]);
}

fn any_name() -> impl Strategy<Value = String> {
    "[ab]{1,3}"
}

fn any_pattern() -> impl Strategy<Value = String> {
    "[ab*]{1,4}"
}

fn any_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        any_pattern().prop_map(|db| format!("/dbs/{db}")),
        (any_pattern(), any_pattern()).prop_map(|(db, c)| format!("/dbs/{db}/colls/{c}")),
    ]
}

proptest! {
    /// The index returns exactly the rules a full scan would.
    #[test]
    fn lookup_agrees_with_a_scan(
        texts in proptest::collection::vec(any_scope(), 0..12),
        db in any_name(),
        container in proptest::option::of(any_name()),
    ) {
        let scopes: Vec<Scope> = texts.iter().map(|t| scope(t)).collect();
        let index = index_of(&scopes);
        let target = match &container {
            Some(container) => Target::Container { database: &db, container },
            None => Target::Database(&db),
        };
        let scanned: Vec<u32> = scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.covers(target))
            .map(|(i, _)| i as u32)
            .collect();
        prop_assert_eq!(looked_up(&index, target), scanned);
    }
}

fn leaf(path: &str, matcher: Matcher) -> Condition {
    Condition {
        test: Some(ClaimTest {
            path: ClaimPath::new(path),
            matcher,
        }),
        ..Condition::default()
    }
}

#[test]
fn binding_candidates_come_from_claim_values_plus_the_unindexed_ones() {
    let mut index = BindingIndex::default();
    index.insert(&leaf("roles", Matcher::Contains("a".into())), 0);
    index.insert(&leaf("roles", Matcher::Contains("b".into())), 1);
    index.insert(&leaf("scp", Matcher::Contains("read".into())), 2);
    index.insert(&leaf("groups", Matcher::Prefix("team-".into())), 3);
    index.insert(
        &leaf("tid", Matcher::OneOf(vec!["t1".into(), "t2".into()])),
        4,
    );

    let mut out = Vec::new();
    let token = claims(json!({"roles": ["b"], "scp": "openid read", "tid": "t2"}));
    index.candidates(&token, &mut out);
    assert_eq!(out, [1, 2, 3, 4]);

    out.clear();
    index.candidates(&claims(json!({})), &mut out);
    assert_eq!(out, [3]);
}
