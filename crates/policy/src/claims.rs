//! Conditions on a verified token: tests on single claims, combined with `all` and `any`, and
//! optionally tied to an issuer.
//!
//! Every test is positive: a missing claim, or one of an unexpected JSON type, never matches,
//! and there is no negation, so nothing is ever granted because a claim is absent.

use serde_json::{Map, Value};

use crate::glob::Glob;

/// A claim named by a dotted path through nested objects, e.g. `realm_access.roles`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClaimPath {
    /// The path as written.
    text: String,
    /// `text` split on dots.
    segments: Vec<String>,
}

impl ClaimPath {
    /// `text` must be non-empty with no empty dot segments; the loader checks that.
    pub(crate) fn new(text: &str) -> ClaimPath {
        ClaimPath {
            text: text.to_owned(),
            segments: text.split('.').map(str::to_owned).collect(),
        }
    }

    /// Whether `text` can name a claim: non-empty, without empty dot segments.
    pub(crate) fn is_valid(text: &str) -> bool {
        !text.split('.').any(str::is_empty)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Walks the path through nested objects. When that finds nothing, a top-level claim whose
    /// name is the whole path is used instead, so that namespaced claims such as
    /// `https://example.com/roles` can be named.
    pub(crate) fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first.as_str());
        for segment in rest {
            value = value
                .and_then(Value::as_object)
                .and_then(|object| object.get(segment.as_str()));
        }
        value.or_else(|| claims.get(self.text.as_str()))
    }
}

/// How a claim's value must look.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// The claim is a string equal to this.
    Equals(String),
    /// The claim is an array with a string element equal to this, or a string in which this is
    /// one of the whitespace-separated words (`scp`, `scope`).
    Contains(String),
    /// The claim is a string equal to one of these.
    OneOf(Vec<String>),
    /// The claim is a string starting with this, or an array with such a string element.
    Prefix(String),
    /// The claim is a string matching this pattern, or an array with such a string element.
    Glob(Glob),
}

/// One claim and the matcher its value must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct ClaimTest {
    pub(crate) path: ClaimPath,
    pub(crate) matcher: Matcher,
}

/// A condition on a principal: every part that is set must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Condition {
    /// The token's `iss` must be exactly this.
    pub(crate) issuer: Option<String>,
    /// A test on one claim.
    pub(crate) test: Option<ClaimTest>,
    /// Every one of these must hold.
    pub(crate) all: Vec<Condition>,
    /// At least one of these must hold, when there are any.
    pub(crate) any: Vec<Condition>,
}

impl ClaimTest {
    /// Whether `claims` satisfy this test.
    pub(crate) fn matches(&self, claims: &Map<String, Value>) -> bool {
        self.path
            .lookup(claims)
            .is_some_and(|value| self.matcher.matches(value))
    }

    /// The exact strings this test can match, for indexing; `None` for prefix and glob tests.
    pub(crate) fn exact_values(&self) -> Option<Vec<&str>> {
        match &self.matcher {
            Matcher::Equals(value) | Matcher::Contains(value) => Some(vec![value.as_str()]),
            Matcher::OneOf(values) => Some(values.iter().map(String::as_str).collect()),
            Matcher::Prefix(_) | Matcher::Glob(_) => None,
        }
    }

    /// The text every string this test matches starts with, for indexing: a prefix test's
    /// prefix, a glob's literal prefix (empty when it starts with `*`); `None` for exact tests.
    pub(crate) fn literal_prefix(&self) -> Option<&str> {
        match &self.matcher {
            Matcher::Prefix(prefix) => Some(prefix),
            Matcher::Glob(glob) => Some(glob.literal_prefix()),
            Matcher::Equals(_) | Matcher::Contains(_) | Matcher::OneOf(_) => None,
        }
    }

    fn index_keys(&self, kinds: KeyKinds) -> Option<Vec<IndexKey<'_>>> {
        if let Some(values) = self.exact_values() {
            let keys = values.into_iter().map(|v| IndexKey::Exact(&self.path, v));
            return Some(keys.collect());
        }
        if kinds == KeyKinds::ExactOnly {
            return None;
        }
        let prefix = self.literal_prefix()?;
        Some(vec![IndexKey::Prefix(&self.path, prefix)])
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
            Matcher::Prefix(prefix) => any_string(value, |s| s.starts_with(prefix.as_str())),
            Matcher::Glob(glob) => any_string(value, |s| glob.matches(s)),
        }
    }
}

/// Whether `value` is a string passing `test`, or an array with a string element passing it.
fn any_string(value: &Value, test: impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(s) => test(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).any(test),
        _ => false,
    }
}

impl Condition {
    /// Whether a principal from `issuer` with `claims` satisfies this condition.
    pub(crate) fn matches(&self, issuer: &str, claims: &Map<String, Value>) -> bool {
        self.issuer.as_deref().is_none_or(|iss| iss == issuer)
            && self.test.as_ref().is_none_or(|test| test.matches(claims))
            && self.all.iter().all(|c| c.matches(issuer, claims))
            && (self.any.is_empty() || self.any.iter().any(|c| c.matches(issuer, claims)))
    }

    /// Index keys such that a principal satisfying this condition has at least one of them;
    /// `None` when no such list exists (an issuer-only or empty condition). Exact values are
    /// preferred: prefix keys are used only where no list of exact keys exists.
    pub(crate) fn index_keys(&self) -> Option<Vec<IndexKey<'_>>> {
        self.keys(KeyKinds::ExactOnly)
            .or_else(|| self.keys(KeyKinds::ExactOrPrefix))
    }

    fn keys(&self, kinds: KeyKinds) -> Option<Vec<IndexKey<'_>>> {
        if let Some(keys) = self.test.as_ref().and_then(|t| t.index_keys(kinds)) {
            return Some(keys);
        }
        if let Some(keys) = self.all.iter().find_map(|c| c.keys(kinds)) {
            return Some(keys);
        }
        if self.any.is_empty() {
            return None;
        }
        // Every branch must give keys, since any one of them may be the one that holds.
        let mut keys = Vec::new();
        for condition in &self.any {
            let branch = match kinds {
                KeyKinds::ExactOnly => condition.keys(kinds),
                KeyKinds::ExactOrPrefix => condition.index_keys(),
            };
            keys.extend(branch?);
        }
        Some(keys)
    }

    /// The claim tests of this condition that hold for the principal, for explanations.
    pub(crate) fn holding_tests<'a>(
        &'a self,
        issuer: &str,
        claims: &Map<String, Value>,
        out: &mut Vec<&'a ClaimTest>,
    ) {
        if let Some(test) = &self.test
            && test.matches(claims)
        {
            out.push(test);
        }
        for condition in self.all.iter().chain(&self.any) {
            if condition.matches(issuer, claims) {
                condition.holding_tests(issuer, claims, out);
            }
        }
    }
}

/// A way a condition can be found in the binding index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKey<'a> {
    /// The claim has this string among its [`index_values`].
    Exact(&'a ClaimPath, &'a str),
    /// The claim has a string starting with this among its [`string_values`].
    Prefix(&'a ClaimPath, &'a str),
}

/// Which index keys a condition may be filed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKinds {
    ExactOnly,
    ExactOrPrefix,
}

/// The strings a `prefix` or `glob` test looks at: the string itself, or the string elements
/// of an array.
pub(crate) fn string_values(value: &Value, mut each: impl FnMut(&str)) {
    match value {
        Value::String(s) => each(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(each),
        _ => {}
    }
}

/// The strings under which a claim value is looked up in an index of exact values: the string
/// itself and its whitespace-separated words, or the string elements of an array. A value
/// matched by an `equals`, `contains` or `one_of` test is always among them.
pub(crate) fn index_values(value: &Value, mut each: impl FnMut(&str)) {
    match value {
        Value::String(s) => {
            each(s);
            s.split_ascii_whitespace()
                .filter(|word| *word != s.as_str())
                .for_each(&mut each);
        }
        Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(each),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
