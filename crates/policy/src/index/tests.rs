use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::claims::{ClaimTest, Matcher};
use crate::glob::Glob;
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
    let issuer_only = Condition {
        issuer: Some("https://idp.example/".into()),
        ..Condition::default()
    };
    index.insert(&issuer_only, 5);

    let mut out = Vec::new();
    let token = claims(json!({"roles": ["b"], "scp": "openid read", "tid": "t2"}));
    index.candidates(&token, &mut out);
    assert_eq!(out, [1, 2, 4, 5]);

    out.clear();
    let token = claims(json!({"roles": ["a"], "groups": ["team-eu"]}));
    index.candidates(&token, &mut out);
    assert_eq!(out, [0, 3, 5]);

    out.clear();
    index.candidates(&claims(json!({})), &mut out);
    assert_eq!(out, [5]);
}

fn candidates_of(index: &BindingIndex, token: Value) -> Vec<u32> {
    let mut out = Vec::new();
    index.candidates(&claims(token), &mut out);
    out
}

#[test]
fn a_claim_string_finds_every_prefix_binding_it_starts_with() {
    let mut index = BindingIndex::default();
    for (i, prefix) in ["t", "team-", "team-eu", "team-eu-x", "other"]
        .iter()
        .enumerate()
    {
        index.insert(&leaf("groups", Matcher::Prefix((*prefix).into())), i as u32);
    }
    assert_eq!(
        candidates_of(&index, json!({"groups": "team-eu-1"})),
        [0, 1, 2]
    );
    assert_eq!(
        candidates_of(&index, json!({"groups": ["x", "team-"]})),
        [0, 1]
    );
    assert!(candidates_of(&index, json!({"groups": "Team-eu"})).is_empty());
    assert!(candidates_of(&index, json!({"roles": "team-eu"})).is_empty());
    assert!(candidates_of(&index, json!({"groups": 7})).is_empty());
}

#[test]
fn prefix_lookups_use_whole_strings_not_their_words() {
    let mut index = BindingIndex::default();
    index.insert(&leaf("scp", Matcher::Prefix("write".into())), 0);
    index.insert(&leaf("scp", Matcher::Contains("write".into())), 1);
    // `contains` looks at words, `prefix` at the whole string.
    assert_eq!(candidates_of(&index, json!({"scp": "read write"})), [1]);
    assert_eq!(candidates_of(&index, json!({"scp": "write read"})), [0, 1]);
    assert_eq!(
        candidates_of(&index, json!({"scp": ["read", "write-all"]})),
        [0]
    );
}

#[test]
fn a_glob_is_filed_by_its_literal_prefix_and_a_leading_star_by_the_empty_one() {
    let mut index = BindingIndex::default();
    index.insert(
        &leaf("groups", Matcher::Glob(Glob::new("team-*-admins"))),
        0,
    );
    index.insert(&leaf("groups", Matcher::Glob(Glob::new("*-admins"))), 1);
    index.insert(&leaf("groups", Matcher::Glob(Glob::new("ops"))), 2);
    // Candidates only: the caller checks each glob in full.
    assert_eq!(candidates_of(&index, json!({"groups": ["team-x"]})), [0, 1]);
    assert_eq!(
        candidates_of(&index, json!({"groups": ["ops", "x"]})),
        [1, 2]
    );
    assert_eq!(
        candidates_of(&index, json!({"groups": []})),
        Vec::<u32>::new()
    );
    assert!(candidates_of(&index, json!({})).is_empty());
}

#[test]
fn prefix_lengths_that_fall_inside_a_character_are_skipped() {
    let mut index = BindingIndex::default();
    // "é" is two bytes: a one-byte prefix length lands inside it.
    index.insert(&leaf("roles", Matcher::Prefix("a".into())), 0);
    index.insert(&leaf("roles", Matcher::Prefix("é".into())), 1);
    index.insert(&leaf("roles", Matcher::Prefix("日本".into())), 2);
    assert_eq!(candidates_of(&index, json!({"roles": "éa"})), [1]);
    assert_eq!(candidates_of(&index, json!({"roles": "日本語"})), [2]);
    assert_eq!(
        candidates_of(&index, json!({"roles": "日"})),
        Vec::<u32>::new()
    );
}

#[test]
fn a_binding_with_an_exact_test_is_filed_by_value_even_beside_a_prefix() {
    let mut index = BindingIndex::default();
    let both = Condition {
        all: vec![
            leaf("groups", Matcher::Prefix("team-".into())),
            leaf("tid", Matcher::Equals("t1".into())),
        ],
        ..Condition::default()
    };
    index.insert(&both, 0);
    assert_eq!(candidates_of(&index, json!({"tid": "t1"})), [0]);
    assert!(candidates_of(&index, json!({"groups": ["team-a"]})).is_empty());
}

#[test]
fn an_any_with_exact_and_prefix_branches_is_filed_under_both() {
    let mut index = BindingIndex::default();
    let either = Condition {
        any: vec![
            leaf("roles", Matcher::Contains("admin".into())),
            leaf("groups", Matcher::Prefix("ops-".into())),
        ],
        ..Condition::default()
    };
    index.insert(&either, 0);
    let issuer_only = Condition {
        issuer: Some("https://idp.example/".into()),
        ..Condition::default()
    };
    index.insert(&issuer_only, 1);
    assert_eq!(candidates_of(&index, json!({"roles": ["admin"]})), [0, 1]);
    assert_eq!(candidates_of(&index, json!({"groups": "ops-eu"})), [0, 1]);
    assert_eq!(candidates_of(&index, json!({"groups": "dev"})), [1]);
}

fn any_piece() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("é"), Just("A"), Just(" ")],
        0..4,
    )
    .prop_map(|pieces| pieces.concat())
}

fn any_prefix_or_glob() -> impl Strategy<Value = Matcher> {
    prop_oneof![
        any_piece().prop_map(Matcher::Prefix),
        (any_piece(), any::<bool>(), any_piece()).prop_map(|(head, star, tail)| {
            let pattern = if star {
                format!("{head}*{tail}")
            } else {
                head + &tail
            };
            Matcher::Glob(Glob::new(&pattern))
        }),
        any_piece().prop_map(|tail| Matcher::Glob(Glob::new(&format!("*{tail}")))),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<u8>().prop_map(Value::from),
        any_piece().prop_map(Value::from),
        proptest::collection::vec(
            prop_oneof![any_piece().prop_map(Value::from), Just(Value::Null)],
            0..4
        )
        .prop_map(Value::Array),
    ]
}

proptest! {
    /// Every prefix or glob binding that matches is among the candidates.
    #[test]
    fn every_matching_prefix_or_glob_binding_is_a_candidate(
        matchers in proptest::collection::vec(any_prefix_or_glob(), 1..10),
        value in any_value(),
    ) {
        let mut index = BindingIndex::default();
        let conditions: Vec<Condition> = matchers.into_iter().map(|m| leaf("c", m)).collect();
        for (i, condition) in conditions.iter().enumerate() {
            index.insert(condition, i as u32);
        }
        let token = json!({"c": value});
        let found = candidates_of(&index, token.clone());
        let token = claims(token);
        for (i, condition) in conditions.iter().enumerate() {
            if condition.matches("iss", &token) {
                prop_assert!(found.contains(&(i as u32)), "{:?} on {:?}", condition, token);
            }
        }
    }
}
