use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::test_support::claims;

const IDP: &str = "http://127.0.0.1:9400";

fn test(path: &str, matcher: Matcher) -> ClaimTest {
    ClaimTest {
        path: ClaimPath::new(path),
        matcher,
    }
}

fn contains(path: &str, word: &str) -> ClaimTest {
    test(path, Matcher::Contains(word.to_owned()))
}

fn leaf(test: ClaimTest) -> Condition {
    Condition {
        test: Some(test),
        ..Condition::default()
    }
}

#[test]
fn equals_matches_only_an_identical_string() {
    let rule = test("tid", Matcher::Equals("t1".into()));
    assert!(rule.matches(&claims(json!({"tid": "t1"}))));
    assert!(!rule.matches(&claims(json!({"tid": "T1"}))));
    assert!(!rule.matches(&claims(json!({"tid": "t1 "}))));
    assert!(!rule.matches(&claims(json!({"tid": ["t1"]}))));
    assert!(!rule.matches(&claims(json!({"other": "t1"}))));
}

#[test]
fn contains_matches_an_array_element() {
    let rule = contains("roles", "orders.read");
    assert!(rule.matches(&claims(json!({"roles": ["x", "orders.read"]}))));
    assert!(!rule.matches(&claims(json!({"roles": ["orders.readwrite"]}))));
    assert!(!rule.matches(&claims(json!({"roles": [["orders.read"]]}))));
    assert!(!rule.matches(&claims(json!({"roles": []}))));
}

#[test]
fn contains_matches_a_word_of_a_space_separated_scope_string() {
    let rule = contains("scp", "cosmos.read");
    assert!(rule.matches(&claims(json!({"scp": "cosmos.read"}))));
    assert!(rule.matches(&claims(json!({"scp": "openid cosmos.read cosmos.write"}))));
    assert!(!rule.matches(&claims(json!({"scp": "cosmos.readwrite"}))));
    assert!(!rule.matches(&claims(json!({"scp": "xcosmos.read"}))));
    assert!(!rule.matches(&claims(json!({"scp": ""}))));
}

#[test]
fn one_of_matches_a_string_equal_to_any_option() {
    let rule = test("azp", Matcher::OneOf(vec!["app-a".into(), "app-b".into()]));
    assert!(rule.matches(&claims(json!({"azp": "app-b"}))));
    assert!(!rule.matches(&claims(json!({"azp": "app-c"}))));
    assert!(!rule.matches(&claims(json!({"azp": ["app-a"]}))));
}

#[test]
fn prefix_matches_a_string_or_an_array_element_that_starts_with_it() {
    let rule = test("groups", Matcher::Prefix("team-".into()));
    assert!(rule.matches(&claims(json!({"groups": "team-a"}))));
    assert!(rule.matches(&claims(json!({"groups": ["x", "team-b"]}))));
    assert!(!rule.matches(&claims(json!({"groups": ["Team-b", "xteam-"]}))));
    assert!(!rule.matches(&claims(json!({"groups": "a team-b"}))));
}

#[test]
fn glob_matches_a_string_or_an_array_element_as_a_whole() {
    let rule = test("groups", Matcher::Glob(Glob::new("team-*-admins")));
    assert!(rule.matches(&claims(json!({"groups": ["team-orders-admins"]}))));
    assert!(rule.matches(&claims(json!({"groups": "team--admins"}))));
    assert!(!rule.matches(&claims(json!({"groups": ["team-orders-admins-x"]}))));
    assert!(!rule.matches(&claims(json!({"groups": [1, null]}))));
}

#[test]
fn nested_claim_paths_walk_objects() {
    let rule = contains("realm_access.roles", "orders.read");
    assert!(rule.matches(&claims(json!({"realm_access": {"roles": ["orders.read"]}}))));
    assert!(!rule.matches(&claims(json!({"realm_access": ["orders.read"]}))));
    assert!(!rule.matches(&claims(
        json!({"realm_access": {"groups": ["orders.read"]}})
    )));
    assert!(!rule.matches(&claims(json!({"roles": ["orders.read"]}))));
}

#[test]
fn a_namespaced_claim_with_dots_in_its_name_can_be_named() {
    let rule = contains("https://example.com/roles", "orders.read");
    let token = claims(json!({"https://example.com/roles": ["orders.read"]}));
    assert!(rule.matches(&token));
}

#[test]
fn absent_claims_and_wrong_types_never_match() {
    let rules = [
        contains("roles", "1"),
        test("roles", Matcher::Equals("1".into())),
        test("roles", Matcher::OneOf(vec!["1".into()])),
        test("roles", Matcher::Prefix("1".into())),
        test("roles", Matcher::Glob(Glob::new("*"))),
        contains("roles.inner", "1"),
    ];
    let tokens = [
        json!({}),
        json!({"roles": null}),
        json!({"roles": 1}),
        json!({"roles": true}),
        json!({"roles": [1, null, {"a": "1"}]}),
        json!({"roles": {"inner": 1}}),
        json!({"roles": {"1": "1"}}),
    ];
    for token in tokens {
        for rule in &rules {
            assert!(!rule.matches(&claims(token.clone())), "{rule:?} vs {token}");
        }
    }
}

#[test]
fn an_issuer_qualified_condition_never_matches_a_token_from_another_issuer() {
    let condition = Condition {
        issuer: Some(IDP.to_owned()),
        ..leaf(contains("groups", "admins"))
    };
    let token = claims(json!({"groups": ["admins"]}));
    assert!(condition.matches(IDP, &token));
    assert!(!condition.matches("http://127.0.0.1:9500", &token));
    assert!(!condition.matches("http://127.0.0.1:9400/", &token));
}

#[test]
fn all_needs_every_part_and_any_needs_one() {
    let condition = Condition {
        all: vec![leaf(contains("roles", "tenant.rw"))],
        any: vec![
            leaf(test("tenant", Matcher::Prefix("t-".into()))),
            leaf(test("tier", Matcher::Equals("gold".into()))),
        ],
        ..Condition::default()
    };
    let token = |value| claims(value);
    assert!(condition.matches(
        IDP,
        &token(json!({"roles": ["tenant.rw"], "tenant": "t-1"}))
    ));
    assert!(condition.matches(IDP, &token(json!({"roles": ["tenant.rw"], "tier": "gold"}))));
    assert!(!condition.matches(IDP, &token(json!({"roles": ["tenant.rw"], "tenant": "x"}))));
    assert!(!condition.matches(IDP, &token(json!({"tenant": "t-1", "tier": "gold"}))));
}

#[test]
fn an_empty_condition_matches_everyone_and_is_not_indexed() {
    let condition = Condition::default();
    assert!(condition.matches(IDP, &claims(json!({}))));
    assert!(condition.index_keys().is_none());
}

#[test]
fn index_keys_prefer_exact_values_and_any_needs_every_branch_indexable() {
    let exact = leaf(contains("roles", "a"));
    let keys = exact.index_keys().expect("an exact test is indexable");
    let roles = ClaimPath::new("roles");
    assert_eq!(keys, [IndexKey::Exact(&roles, "a")]);

    let glob_first = Condition {
        all: vec![
            leaf(test("g", Matcher::Glob(Glob::new("x*")))),
            leaf(test("tid", Matcher::OneOf(vec!["t1".into(), "t2".into()]))),
        ],
        ..Condition::default()
    };
    assert_eq!(glob_first.index_keys().map(|k| k.len()), Some(2));

    let mixed_any = Condition {
        any: vec![
            leaf(contains("roles", "a")),
            leaf(test("g", Matcher::Prefix("x".into()))),
        ],
        ..Condition::default()
    };
    let g = ClaimPath::new("g");
    let keys = mixed_any.index_keys().expect("each branch gives a key");
    assert_eq!(
        keys,
        [IndexKey::Exact(&roles, "a"), IndexKey::Prefix(&g, "x")]
    );

    let leading_star = leaf(test("g", Matcher::Glob(Glob::new("*-admins"))));
    assert_eq!(
        leading_star.index_keys(),
        Some(vec![IndexKey::Prefix(&g, "")])
    );

    let issuer_branch = Condition {
        any: vec![
            leaf(test("g", Matcher::Prefix("x".into()))),
            Condition {
                issuer: Some(IDP.into()),
                ..Condition::default()
            },
        ],
        ..Condition::default()
    };
    assert!(issuer_branch.index_keys().is_none());
}

#[test]
fn holding_tests_lists_only_the_claims_that_matched() {
    let condition = Condition {
        any: vec![leaf(contains("roles", "a")), leaf(contains("groups", "g"))],
        ..Condition::default()
    };
    let token = claims(json!({"roles": ["a"], "groups": ["other"]}));
    let mut out = Vec::new();
    condition.holding_tests(IDP, &token, &mut out);
    let paths: Vec<&str> = out.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(paths, ["roles"]);
}

fn any_claim_value() -> impl Strategy<Value = Value> {
    let word = "[ab]{0,2}";
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        word.prop_map(Value::from),
        proptest::collection::vec(word, 0..3).prop_map(|words| Value::from(words.join(" "))),
        proptest::collection::vec(
            prop_oneof![word.prop_map(Value::from), Just(Value::Null)],
            0..4
        )
        .prop_map(Value::Array),
    ]
}

fn any_exact_matcher() -> impl Strategy<Value = Matcher> {
    let word = "[ab]{1,2}";
    prop_oneof![
        word.prop_map(Matcher::Equals),
        word.prop_map(Matcher::Contains),
        proptest::collection::vec(word, 1..3).prop_map(Matcher::OneOf),
    ]
}

proptest! {
    /// The binding index is sound: whenever an exact test matches a claim, one of the test's
    /// index keys is among the strings the claim is looked up under.
    #[test]
    fn a_matching_exact_test_is_always_found_through_the_index(
        value in any_claim_value(),
        matcher in any_exact_matcher(),
    ) {
        let rule = test("c", matcher);
        let token = claims(json!({"c": value.clone()}));
        if rule.matches(&token) {
            let keys = rule.exact_values().expect("exact matchers are indexable");
            let mut found = false;
            index_values(&value, |s| found |= keys.contains(&s));
            prop_assert!(found, "{:?} vs {}", rule, value);
        }
    }

    #[test]
    fn matching_never_panics_on_any_claims(value in any_claim_value(), path in "[a.]{0,4}") {
        if ClaimPath::is_valid(&path) {
            let token = claims(json!({"a": value.clone(), "a.a": {"a": value}}));
            for matcher in [
                Matcher::Prefix("a".into()),
                Matcher::Glob(Glob::new("*a*")),
                Matcher::Contains("a".into()),
            ] {
                let _ = test(&path, matcher).matches(&token);
            }
        }
    }
}
