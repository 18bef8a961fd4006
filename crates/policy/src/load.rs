//! Reading a policy file: TOML syntax, the top-level table, and every entry, reporting all
//! problems at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::{Table, Value};

use crate::error::PolicyError;
use crate::file::{BindingSpec, DenySpec, Kind, RoleSpec};
use crate::policy::Policy;

const TOP_FIELDS: &[&str] = &["version", "roles", "bindings", "deny"];

impl Policy {
    /// Reads and checks a policy file. Problems are reported with the file's path as origin.
    /// A file that cannot be read (missing, unreadable, not UTF-8) is
    /// [`PolicyError::Unreadable`]; nothing is ever loaded from it.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Policy::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks policy text. On failure, [`PolicyError::Invalid`] lists every problem
    /// found, each as `"origin: path: message"`.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let mut problems = Vec::new();
        let policy = compile(text, &mut problems);
        problems.sort_by_key(|problem| position(problem));
        match policy {
            Some(policy) if problems.is_empty() => Ok(policy),
            _ => Err(PolicyError::Invalid {
                problems: problems
                    .into_iter()
                    .map(|problem| format!("{origin}: {problem}"))
                    .collect(),
            }),
        }
    }
}

/// Builds the policy, pushing `"path: message"` problems. The result is only meaningful when
/// no problem was pushed.
fn compile(text: &str, problems: &mut Vec<String>) -> Option<Policy> {
    let table = match toml::from_str::<Table>(text) {
        Ok(table) => table,
        Err(error) => {
            problems.push(syntax_problem(text, &error));
            return None;
        }
    };
    unknown_keys(&table, TOP_FIELDS, "", problems);
    check_version(table.get("version"), problems);

    let role_specs: Vec<Entry<RoleSpec>> =
        entries(&table, "roles", RoleSpec::FIELDS, &[], problems);
    let binding_specs: Vec<Entry<BindingSpec>> = entries(
        &table,
        "bindings",
        BindingSpec::FIELDS,
        BindingSpec::EXTRA,
        problems,
    );
    let deny_specs: Vec<Entry<DenySpec>> =
        entries(&table, "deny", DenySpec::FIELDS, DenySpec::EXTRA, problems);

    // Names of every parsed role, valid or not, so that a binding to a role with its own
    // problems is not also reported as naming an unknown role.
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut roles = Vec::new();
    for (path, spec, _) in &role_specs {
        if names.insert(spec.name(), roles.len()).is_some() {
            problems.push(format!(
                "{path}.name: duplicate role name {:?}",
                spec.name()
            ));
        }
        match spec.compile(path) {
            Ok(role) => roles.push(role),
            Err(found) => problems.extend(found),
        }
    }

    let declared = declared_names(&table, "roles");
    let mut bindings = Vec::new();
    for (path, spec, raw) in &binding_specs {
        match spec.compile(path, raw, &names, &declared) {
            Ok(binding) => bindings.push(binding),
            Err(found) => problems.extend(found),
        }
    }

    let mut deny_names: HashMap<&str, ()> = HashMap::new();
    let mut denies = Vec::new();
    for (path, spec, raw) in &deny_specs {
        if deny_names.insert(spec.name(), ()).is_some() {
            problems.push(format!(
                "{path}.name: duplicate deny rule name {:?}",
                spec.name()
            ));
        }
        match spec.compile(path, raw) {
            Ok(rule) => denies.push(rule),
            Err(found) => problems.extend(found),
        }
    }
    Some(Policy::new(roles, bindings, denies, fingerprint(text)))
}

/// Where in the file a problem lies, for reporting in file order: top-level problems first,
/// then each array's entries by index. Problems found at different stages for one entry keep
/// their order.
fn position(problem: &str) -> (usize, usize) {
    for (rank, key) in TOP_FIELDS.iter().enumerate() {
        let Some(rest) = problem.strip_prefix(key).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let index = rest.split(']').next().and_then(|i| i.parse().ok());
        return (rank, index.unwrap_or(0));
    }
    (0, 0)
}

/// The first 16 hex characters of the SHA-256 of the policy text.
fn fingerprint(text: &str) -> Arc<str> {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Arc::from(hex)
}

/// The `name` of every table of the array `key` that has a string one, parsed or not.
fn declared_names<'t>(table: &'t Table, key: &str) -> Vec<&'t str> {
    let Some(Value::Array(items)) = table.get(key) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| item.get("name")?.as_str())
        .collect()
}

/// A parsed entry: its path (`roles[0]`), its typed fields, and the raw table.
type Entry<T> = (String, T, Table);

fn check_version(version: Option<&Value>, problems: &mut Vec<String>) {
    match version {
        Some(Value::Integer(1)) => {}
        Some(Value::Integer(other)) => {
            problems.push(format!("version: unsupported version {other}, must be 1"));
        }
        Some(_) => problems.push("version: must be the integer 1".to_owned()),
        None => problems.push("version: missing, must be 1".to_owned()),
    }
}

/// Deserializes each table of the array `key`. Unknown keys and fields of the wrong type are
/// reported one by one before serde sees the entry, since serde would stop at the first and
/// would not name the field. `extra` keys are allowed but left out of the typed fields; the
/// caller reads them from the raw table.
fn entries<T: DeserializeOwned>(
    table: &Table,
    key: &str,
    fields: &[(&str, Kind)],
    extra: &[&str],
    problems: &mut Vec<String>,
) -> Vec<Entry<T>> {
    let items = match table.get(key) {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(format!("{key}: must be an array of tables ([[{key}]])"));
            return Vec::new();
        }
    };
    let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    let allowed: Vec<&str> = names.iter().chain(extra).copied().collect();
    let mut parsed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let Value::Table(entry) = item else {
            problems.push(format!("{path}: must be a table"));
            continue;
        };
        unknown_keys(entry, &allowed, &path, problems);
        let wrong_types = type_problems(entry, fields, &path);
        if !wrong_types.is_empty() {
            problems.extend(wrong_types);
            continue;
        }
        let mut known = entry.clone();
        known.retain(|name, _| names.contains(&name));
        match Value::Table(known).try_into::<T>() {
            Ok(spec) => parsed.push((path, spec, entry.clone())),
            Err(error) => problems.push(format!("{path}: {}", error.message())),
        }
    }
    parsed
}

fn type_problems(entry: &Table, fields: &[(&str, Kind)], path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, kind) in fields {
        let Some(value) = entry.get(*name) else {
            continue;
        };
        match (kind, value) {
            (Kind::Text, Value::String(_)) => {}
            (Kind::Text, _) => problems.push(format!("{path}.{name}: must be a string")),
            (Kind::TextList, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_str() {
                        problems.push(format!("{path}.{name}[{i}]: must be a string"));
                    }
                }
            }
            (Kind::TextList, _) => {
                problems.push(format!("{path}.{name}: must be an array of strings"));
            }
        }
    }
    problems
}

fn unknown_keys(table: &Table, fields: &[&str], path: &str, problems: &mut Vec<String>) {
    for key in table.keys() {
        if !fields.contains(&key.as_str()) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            problems.push(format!(
                "{at}: unknown field, expected one of {}",
                fields.join(", ")
            ));
        }
    }
}

/// `"line L, column C: message"` for a TOML syntax error.
fn syntax_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return format!("invalid toml: {message}");
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: invalid toml: {message}")
}

#[cfg(test)]
mod tests;
