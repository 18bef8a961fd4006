//! Indexes that keep a decision's cost independent of the number of rules: rules by scope, and
//! bindings by the claim values (exact, or by literal prefix) they test.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::claims::{self, ClaimPath, Condition, IndexKey};
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

    fn is_empty(&self) -> bool {
        self.lengths.is_empty()
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

/// Binding numbers by the claim values that can make them match.
///
/// Each binding is filed under the [index keys](Condition::index_keys) of its condition: keys
/// a principal who satisfies the condition always has one of. An `equals`, `contains` or
/// `one_of` test gives exact keys, filed in a hash map per claim; a `prefix` test gives its
/// prefix and a `glob` its literal prefix (the text before its first `*`), filed in a
/// [`PrefixMap`] per claim. A lookup probes the claim's strings, so its cost depends on the
/// principal's claims and the distinct prefix lengths in use, not on the number of bindings.
///
/// Two kinds are still met on every decision. Globs that start with `*` have the empty prefix:
/// they are candidates whenever their claim holds a string, and are then checked in full.
/// Conditions with no key at all (issuer-only, or an `any` with a branch of that kind) are in
/// `always`. Candidates are a superset of the matches: the caller checks each condition.
#[derive(Debug, Clone, Default)]
pub(crate) struct BindingIndex {
    by_claim: Vec<(ClaimPath, ClaimKeys)>,
    always: Vec<u32>,
}

/// The bindings filed under one claim.
#[derive(Debug, Clone, Default)]
struct ClaimKeys {
    exact: HashMap<String, Vec<u32>>,
    prefixes: PrefixMap<u32>,
}

impl BindingIndex {
    pub(crate) fn insert(&mut self, condition: &Condition, binding: u32) {
        let Some(keys) = condition.index_keys() else {
            self.always.push(binding);
            return;
        };
        for key in keys {
            match key {
                IndexKey::Exact(path, value) => self
                    .claim(path)
                    .exact
                    .entry(value.to_owned())
                    .or_default()
                    .push(binding),
                IndexKey::Prefix(path, prefix) => self.claim(path).prefixes.insert(prefix, binding),
            }
        }
    }

    fn claim(&mut self, path: &ClaimPath) -> &mut ClaimKeys {
        let at = match self.by_claim.iter().position(|(p, _)| p == path) {
            Some(at) => at,
            None => {
                self.by_claim.push((path.clone(), ClaimKeys::default()));
                self.by_claim.len() - 1
            }
        };
        &mut self.by_claim[at].1
    }

    /// Bindings that may match a principal with `claims`: a superset of those that do.
    /// Ascending and without duplicates.
    pub(crate) fn candidates(&self, claims: &Map<String, Value>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        for (path, keys) in &self.by_claim {
            let Some(value) = path.lookup(claims) else {
                continue;
            };
            if !keys.exact.is_empty() {
                claims::index_values(value, |s| {
                    if let Some(bindings) = keys.exact.get(s) {
                        out.extend_from_slice(bindings);
                    }
                });
            }
            if !keys.prefixes.is_empty() {
                claims::string_values(value, |s| {
                    keys.prefixes
                        .each_prefix_of(s, |bindings| out.extend_from_slice(bindings));
                });
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    /// An index that files nothing: every binding is a candidate for every principal, as a
    /// plain scan would evaluate them. The reference the indexed decisions are tested against.
    #[cfg(test)]
    pub(crate) fn scanning(bindings: usize) -> BindingIndex {
        BindingIndex {
            by_claim: Vec::new(),
            always: (0..bindings as u32).collect(),
        }
    }
}

#[cfg(test)]
mod equivalence;
#[cfg(test)]
mod tests;
