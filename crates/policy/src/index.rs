//! Indexes that keep a decision's cost independent of the number of rules: rules by scope, and
//! bindings by the exact claim values they test.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::claims::{self, ClaimPath, Condition};
use crate::scope::{Name, Scope, Target};

/// Rule numbers by the scopes they apply to.
///
/// Exact names are hash lookups. A pattern is filed under its literal prefix (the text before
/// its first `*`); a lookup probes the prefixes of the requested name at the lengths in use,
/// then checks each candidate pattern in full. Only patterns that start with `*` are checked
/// on every lookup of their level.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeIndex {
    account: Vec<u32>,
    databases: HashMap<String, Vec<u32>>,
    containers: HashMap<String, HashMap<String, Vec<u32>>>,
    /// Container patterns inside an exactly named database.
    container_patterns: HashMap<String, Patterns>,
    /// Scopes whose database name is a pattern (with or without a container part).
    database_patterns: Patterns,
}

/// Pattern scopes filed by literal prefix, each with its rule.
type Patterns = PrefixMap<(Scope, u32)>;

/// Items filed under literal prefixes. [`PrefixMap::each_prefix_of`] finds every prefix a text
/// starts with by probing the text's prefixes at the lengths in use: one hash lookup per
/// distinct prefix length no longer than the text, whatever the number of items.
#[derive(Debug, Clone)]
struct PrefixMap<T> {
    /// Distinct prefix lengths in bytes, ascending.
    lengths: Vec<usize>,
    by_prefix: HashMap<String, Vec<T>>,
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            lengths: Vec::new(),
            by_prefix: HashMap::new(),
        }
    }
}

impl<T> PrefixMap<T> {
    fn insert(&mut self, prefix: &str, item: T) {
        if let Err(at) = self.lengths.binary_search(&prefix.len()) {
            self.lengths.insert(at, prefix.len());
        }
        self.by_prefix
            .entry(prefix.to_owned())
            .or_default()
            .push(item);
    }

    /// Calls `each` with the items of every prefix `text` starts with, shortest first.
    fn each_prefix_of(&self, text: &str, mut each: impl FnMut(&[T])) {
        for &len in &self.lengths {
            let Some(prefix) = text.get(..len) else {
                // Past the text's end (or inside a character): no longer prefix exists.
                if len > text.len() {
                    break;
                }
                continue;
            };
            if let Some(items) = self.by_prefix.get(prefix) {
                each(items);
            }
        }
    }
}

impl ScopeIndex {
    pub(crate) fn insert(&mut self, scope: &Scope, rule: u32) {
        match scope {
            Scope::Account => self.account.push(rule),
            Scope::Database(Name::Exact(db)) => {
                self.databases.entry(db.clone()).or_default().push(rule);
            }
            Scope::Container {
                database: Name::Exact(db),
                container: Name::Exact(container),
            } => self
                .containers
                .entry(db.clone())
                .or_default()
                .entry(container.clone())
                .or_default()
                .push(rule),
            Scope::Container {
                database: Name::Exact(db),
                container: Name::Pattern(glob),
            } => self
                .container_patterns
                .entry(db.clone())
                .or_default()
                .insert(glob.literal_prefix(), (scope.clone(), rule)),
            Scope::Database(Name::Pattern(glob))
            | Scope::Container {
                database: Name::Pattern(glob),
                ..
            } => self
                .database_patterns
                .insert(glob.literal_prefix(), (scope.clone(), rule)),
        }
    }

    /// Every rule whose scope covers `target`, ascending and without duplicates.
    pub(crate) fn lookup(&self, target: Target<'_>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.account);
        match target {
            Target::Account => {}
            Target::Database(db) => {
                extend(out, self.databases.get(db));
                covering(&self.database_patterns, db, target, out);
            }
            Target::Container {
                database,
                container,
            } => {
                extend(out, self.databases.get(database));
                let exact = self.containers.get(database).and_then(|c| c.get(container));
                extend(out, exact);
                if let Some(patterns) = self.container_patterns.get(database) {
                    covering(patterns, container, target, out);
                }
                covering(&self.database_patterns, database, target, out);
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

fn extend(out: &mut Vec<u32>, rules: Option<&Vec<u32>>) {
    if let Some(rules) = rules {
        out.extend_from_slice(rules);
    }
}

/// The rules of the patterns filed under a prefix of `name` that cover `target`.
fn covering(patterns: &Patterns, name: &str, target: Target<'_>, out: &mut Vec<u32>) {
    patterns.each_prefix_of(name, |candidates| {
        for (scope, rule) in candidates {
            if scope.covers(target) {
                out.push(*rule);
            }
        }
    });
}

/// Binding numbers by the exact claim values that can make them match.
///
/// A binding whose condition guarantees that some `(claim, value)` pair is present (an
/// `equals`, `contains` or `one_of` test, directly or in `all`, or in every branch of `any`)
/// is filed under those pairs. The others (prefix and glob tests, issuer-only conditions) are
/// evaluated on every decision.
#[derive(Debug, Clone, Default)]
pub(crate) struct BindingIndex {
    by_claim: Vec<(ClaimPath, HashMap<String, Vec<u32>>)>,
    always: Vec<u32>,
}

impl BindingIndex {
    pub(crate) fn insert(&mut self, condition: &Condition, binding: u32) {
        let Some(keys) = condition.index_keys() else {
            self.always.push(binding);
            return;
        };
        for (path, value) in keys {
            let at = match self.by_claim.iter().position(|(p, _)| p == path) {
                Some(at) => at,
                None => {
                    self.by_claim.push((path.clone(), HashMap::new()));
                    self.by_claim.len() - 1
                }
            };
            self.by_claim[at]
                .1
                .entry(value.to_owned())
                .or_default()
                .push(binding);
        }
    }

    /// Bindings that may match a principal with `claims`: a superset of those that do.
    /// Ascending and without duplicates.
    pub(crate) fn candidates(&self, claims: &Map<String, Value>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        for (path, values) in &self.by_claim {
            let Some(value) = path.lookup(claims) else {
                continue;
            };
            claims::index_values(value, |s| {
                if let Some(bindings) = values.get(s) {
                    out.extend_from_slice(bindings);
                }
            });
        }
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests;
