//! Matching a binding's claim condition against a token's claims.

use serde_json::{Map, Value};

/// A condition on one claim of a verified token.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRule {
    /// The claim path as written, e.g. `realm_access.roles`.
    path: String,
    /// `path` split on dots.
    segments: Vec<String>,
    matcher: Matcher,
}

/// How the claim's value must look.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// The claim is a string equal to this.
    Equals(String),
    /// The claim is an array with a string element equal to this, or a string in which this is
    /// one of the whitespace-separated words (`scp`, `scope`).
    Contains(String),
    /// The claim is a string equal to one of these.
    OneOf(Vec<String>),
}

impl ClaimRule {
    /// `path` must be non-empty with no empty dot segments; the loader checks that.
    pub(crate) fn new(path: &str, matcher: Matcher) -> ClaimRule {
        ClaimRule {
            path: path.to_owned(),
            segments: path.split('.').map(str::to_owned).collect(),
            matcher,
        }
    }

    /// Whether `claims` satisfy this rule. A missing claim or one of an unexpected JSON type
    /// never matches.
    pub(crate) fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.lookup(claims)
            .is_some_and(|value| self.matcher.matches(value))
    }

    /// Walks the dotted path through nested objects. When that finds nothing, a top-level claim
    /// whose name is the whole path is used instead, so that namespaced claims such as
    /// `https://example.com/roles` can be named.
    fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first.as_str());
        for segment in rest {
            value = value
                .and_then(Value::as_object)
                .and_then(|object| object.get(segment.as_str()));
        }
        value.or_else(|| claims.get(self.path.as_str()))
    }
}

impl Matcher {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Matcher::Equals(expected) => value.as_str() == Some(expected.as_str()),
            Matcher::OneOf(options) => value
                .as_str()
                .is_some_and(|actual| options.iter().any(|option| option == actual)),
            Matcher::Contains(expected) => match value {
                Value::Array(items) => items
                    .iter()
                    .any(|item| item.as_str() == Some(expected.as_str())),
                Value::String(words) => words.split_ascii_whitespace().any(|w| w == expected),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test claims must be an object"),
        }
    }

    fn contains(path: &str, word: &str) -> ClaimRule {
        ClaimRule::new(path, Matcher::Contains(word.to_owned()))
    }

    #[test]
    fn equals_matches_only_an_identical_string() {
        let rule = ClaimRule::new("tid", Matcher::Equals("t1".into()));
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
        let rule = ClaimRule::new("azp", Matcher::OneOf(vec!["app-a".into(), "app-b".into()]));
        assert!(rule.matches(&claims(json!({"azp": "app-b"}))));
        assert!(!rule.matches(&claims(json!({"azp": "app-c"}))));
        assert!(!rule.matches(&claims(json!({"azp": ["app-a"]}))));
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
            ClaimRule::new("roles", Matcher::Equals("1".into())),
            ClaimRule::new("roles", Matcher::OneOf(vec!["1".into()])),
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
}
