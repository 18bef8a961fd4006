//! Condition fields, shared by bindings, deny rules and their `unless`:
//!
//! ```toml
//! issuer = "https://idp.example/"        # the token's iss is exactly this
//! claim = "roles"                        # a claim (dotted path) and one matcher:
//! contains = "orders.read"               #   equals, contains, one_of, prefix, glob
//! all = [{ claim = "tid", equals = "t1" }]            # every one holds
//! any = [{ claim = "groups", contains = "a" }, { … }] # at least one holds
//! ```
//!
//! Every field that is set must hold. `all` and `any` hold tables of the same fields, nested
//! at most [`MAX_DEPTH`] deep. Problems are reported with their full path, such as
//! `bindings[2].any[1].glob`.

use toml::{Table, Value};

use crate::claims::{ClaimPath, ClaimTest, Condition, Matcher};
use crate::glob::Glob;

/// The condition fields.
pub(crate) const KEYS: &[&str] = &[
    "issuer", "claim", "equals", "contains", "one_of", "prefix", "glob", "all", "any",
];

const MATCHERS: &str = "equals, contains, one_of, prefix or glob";

/// How deep `all` and `any` may nest.
pub(crate) const MAX_DEPTH: usize = 8;

/// Parses the condition fields of `table` (other keys are the caller's). `nested` tables
/// hold nothing but condition fields, so their unknown keys are reported here.
pub(crate) fn parse(table: &Table, path: &str, nested: bool) -> Result<Condition, Vec<String>> {
    let mut problems = Vec::new();
    let condition = parse_at(table, path, nested, 0, &mut problems);
    if problems.is_empty() {
        Ok(condition)
    } else {
        Err(problems)
    }
}

/// Like [`parse`], and the condition must not be empty.
pub(crate) fn parse_required(
    table: &Table,
    path: &str,
    nested: bool,
) -> Result<Condition, Vec<String>> {
    let condition = parse(table, path, nested)?;
    if is_empty(&condition) {
        return Err(vec![format!(
            "{path}: a condition is required: claim with one of {MATCHERS}, issuer, all or any"
        )]);
    }
    Ok(condition)
}

fn is_empty(condition: &Condition) -> bool {
    condition.issuer.is_none()
        && condition.test.is_none()
        && condition.all.is_empty()
        && condition.any.is_empty()
}

fn parse_at(
    table: &Table,
    path: &str,
    nested: bool,
    depth: usize,
    problems: &mut Vec<String>,
) -> Condition {
    if nested {
        for key in table.keys().filter(|key| !KEYS.contains(&key.as_str())) {
            problems.push(format!(
                "{path}.{key}: unknown field, expected one of {}",
                KEYS.join(", ")
            ));
        }
    }
    let issuer = text(table, path, "issuer", problems);
    Condition {
        issuer,
        test: test(table, path, problems),
        all: list(table, path, "all", depth, problems),
        any: list(table, path, "any", depth, problems),
    }
}

/// The claim test, if `claim` or a matcher is set.
fn test(table: &Table, path: &str, problems: &mut Vec<String>) -> Option<ClaimTest> {
    let present: Vec<&str> = MATCHER_KEYS
        .into_iter()
        .filter(|key| table.contains_key(*key))
        .collect();
    let has_claim = table.contains_key("claim");
    if present.is_empty() && !has_claim {
        return None;
    }
    let mut found = Vec::new();
    let claim = text(table, path, "claim", &mut found);
    if !has_claim {
        found.push(format!("{path}: {MATCHERS} needs claim"));
    }
    if let Some(claim) = claim.as_deref().filter(|c| !ClaimPath::is_valid(c)) {
        found.push(format!(
            "{path}.claim: {claim:?} must be a claim name or dotted path such as \
             \"realm_access.roles\""
        ));
    }
    if present.len() != 1 {
        found.push(format!("{path}: exactly one of {MATCHERS} is required"));
    }
    let mut matchers: Vec<Matcher> = present
        .into_iter()
        .filter_map(|key| matcher(table, path, key, &mut found))
        .collect();
    if !found.is_empty() {
        problems.extend(found);
        return None;
    }
    Some(ClaimTest {
        path: ClaimPath::new(&claim?),
        matcher: matchers.pop()?,
    })
}

const MATCHER_KEYS: [&str; 5] = ["equals", "contains", "one_of", "prefix", "glob"];

fn matcher(table: &Table, path: &str, key: &str, problems: &mut Vec<String>) -> Option<Matcher> {
    if key == "one_of" {
        return text_list(table, path, key, problems).map(Matcher::OneOf);
    }
    let value = text(table, path, key, problems)?;
    Some(match key {
        "equals" => Matcher::Equals(value),
        "contains" => Matcher::Contains(value),
        "prefix" => Matcher::Prefix(value),
        _ => Matcher::Glob(Glob::new(&value)),
    })
}

fn list(
    table: &Table,
    path: &str,
    key: &str,
    depth: usize,
    problems: &mut Vec<String>,
) -> Vec<Condition> {
    let items = match table.get(key) {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(format!(
                "{path}.{key}: must be an array of condition tables"
            ));
            return Vec::new();
        }
    };
    if items.is_empty() {
        problems.push(format!("{path}.{key}: must not be empty"));
    }
    if depth + 1 >= MAX_DEPTH {
        problems.push(format!(
            "{path}.{key}: conditions nest more than {MAX_DEPTH} deep"
        ));
        return Vec::new();
    }
    let mut conditions = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}.{key}[{i}]");
        let Value::Table(inner) = item else {
            problems.push(format!("{at}: must be a table"));
            continue;
        };
        if inner.is_empty() {
            problems.push(format!("{at}: must not be empty"));
        }
        conditions.push(parse_at(inner, &at, true, depth + 1, problems));
    }
    conditions
}

/// A non-empty string field, if present.
fn text(table: &Table, path: &str, key: &str, problems: &mut Vec<String>) -> Option<String> {
    match table.get(key)? {
        Value::String(value) if value.is_empty() => {
            problems.push(format!("{path}.{key}: must not be empty"));
            None
        }
        Value::String(value) => Some(value.clone()),
        _ => {
            problems.push(format!("{path}.{key}: must be a string"));
            None
        }
    }
}

/// A non-empty array of non-empty strings, if present.
fn text_list(
    table: &Table,
    path: &str,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<Vec<String>> {
    let Value::Array(items) = table.get(key)? else {
        problems.push(format!("{path}.{key}: must be an array of strings"));
        return None;
    };
    if items.is_empty() {
        problems.push(format!("{path}.{key}: must not be empty"));
    }
    let mut values = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(value) if value.is_empty() => {
                problems.push(format!("{path}.{key}[{i}]: must not be empty"));
            }
            Value::String(value) => values.push(value.clone()),
            _ => problems.push(format!("{path}.{key}[{i}]: must be a string")),
        }
    }
    Some(values)
}
