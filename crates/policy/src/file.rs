//! The entries of a policy file, as written, and how each becomes a compiled role or binding.

use std::collections::HashMap;

use cosmogate_protocol::DataAction;
use serde::Deserialize;

use crate::action;
use crate::claims::{ClaimRule, Matcher};
use crate::policy::{Binding, Role};
use crate::scope::Scope;

/// The TOML type a field must have, for error messages naming the field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text,
    TextList,
}

/// One `[[roles]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleSpec {
    /// The role's name; unique in the file, bindings refer to it. Required.
    name: String,
    /// Data actions, short (`items/read`) or full (`Microsoft.DocumentDB/...`) names, or the
    /// wildcards `items/*` and `containers/*`. No default: exactly one of `actions` and
    /// `builtin` is required.
    actions: Option<Vec<String>>,
    /// `data-reader` or `data-contributor`, the Cosmos DB built-in data roles. No default.
    builtin: Option<String>,
    /// Where the actions apply: `/`, `/dbs/{db}` or `/dbs/{db}/colls/{container}`. Required,
    /// non-empty.
    scopes: Vec<String>,
}

/// One `[[bindings]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingSpec {
    /// The name of the role granted. Required.
    role: String,
    /// When set, only tokens from exactly this issuer match. Default: any configured issuer.
    issuer: Option<String>,
    /// Dotted path of the claim to test, e.g. `realm_access.roles`. Required.
    claim: String,
    /// The claim is this string. Exactly one of `equals`, `contains`, `one_of` is required.
    equals: Option<String>,
    /// The claim is an array holding this string, or a space-separated string with this word.
    contains: Option<String>,
    /// The claim is a string equal to one of these.
    one_of: Option<Vec<String>>,
}

impl RoleSpec {
    /// The keys a `[[roles]]` table may have and their types; must list every field above.
    pub(crate) const FIELDS: &[(&str, Kind)] = &[
        ("name", Kind::Text),
        ("actions", Kind::TextList),
        ("builtin", Kind::Text),
        ("scopes", Kind::TextList),
    ];

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Builds the role, or returns every problem as `"path.field: message"`.
    pub(crate) fn compile(&self, path: &str) -> Result<Role, Vec<String>> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(format!("{path}.name: must not be empty"));
        }
        let actions = self.actions(path, &mut problems);

        let mut scopes = Vec::new();
        if self.scopes.is_empty() {
            problems.push(format!("{path}.scopes: must not be empty"));
        }
        for (i, text) in self.scopes.iter().enumerate() {
            match Scope::parse(text) {
                Ok(scope) => scopes.push(scope),
                Err(message) => problems.push(format!("{path}.scopes[{i}]: {message}")),
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Role::new(self.name.clone(), actions, scopes))
    }

    fn actions(&self, path: &str, problems: &mut Vec<String>) -> Vec<DataAction> {
        let mut actions = Vec::new();
        match (&self.actions, &self.builtin) {
            (Some(_), Some(_)) => {
                problems.push(format!("{path}: set either actions or builtin, not both"));
            }
            (None, None) => problems.push(format!("{path}: one of actions or builtin is required")),
            (None, Some(name)) => match action::builtin(name) {
                Some(expanded) => actions = expanded,
                None => problems.push(format!(
                    "{path}.builtin: unknown built-in role {name:?}, expected {}",
                    action::BUILTIN_NAMES
                )),
            },
            (Some(names), None) => {
                if names.is_empty() {
                    problems.push(format!("{path}.actions: must not be empty"));
                }
                for (i, name) in names.iter().enumerate() {
                    match action::expand(name) {
                        Some(expanded) => actions.extend(expanded),
                        None => {
                            problems.push(format!("{path}.actions[{i}]: unknown action {name:?}"))
                        }
                    }
                }
            }
        }
        actions
    }
}

impl BindingSpec {
    /// The keys a `[[bindings]]` table may have and their types; must list every field above.
    pub(crate) const FIELDS: &[(&str, Kind)] = &[
        ("role", Kind::Text),
        ("issuer", Kind::Text),
        ("claim", Kind::Text),
        ("equals", Kind::Text),
        ("contains", Kind::Text),
        ("one_of", Kind::TextList),
    ];

    /// Builds the binding against the role names in the file, or returns every problem.
    pub(crate) fn compile(
        &self,
        path: &str,
        roles: &HashMap<&str, usize>,
    ) -> Result<Binding, Vec<String>> {
        let mut problems = Vec::new();
        let role = roles.get(self.role.as_str()).copied();
        if role.is_none() {
            problems.push(format!("{path}.role: unknown role {:?}", self.role));
        }
        if self.issuer.as_deref() == Some("") {
            problems.push(format!("{path}.issuer: must not be empty when set"));
        }
        if self.claim.split('.').any(str::is_empty) {
            problems.push(format!(
                "{path}.claim: must be a claim name or dotted path such as \"realm_access.roles\""
            ));
        }
        let matcher = self.matcher(path, &mut problems);

        match (role, matcher) {
            (Some(role), Some(matcher)) if problems.is_empty() => Ok(Binding {
                role,
                issuer: self.issuer.clone(),
                rule: ClaimRule::new(&self.claim, matcher),
            }),
            _ => Err(problems),
        }
    }

    fn matcher(&self, path: &str, problems: &mut Vec<String>) -> Option<Matcher> {
        let matcher = match (&self.equals, &self.contains, &self.one_of) {
            (Some(value), None, None) => {
                Matcher::Equals(non_empty(value, path, "equals", problems)?)
            }
            (None, Some(value), None) => {
                Matcher::Contains(non_empty(value, path, "contains", problems)?)
            }
            (None, None, Some(values)) => {
                if values.is_empty() {
                    problems.push(format!("{path}.one_of: must not be empty"));
                }
                let mut options = Vec::new();
                for (i, value) in values.iter().enumerate() {
                    options.extend(non_empty(value, path, &format!("one_of[{i}]"), problems));
                }
                Matcher::OneOf(options)
            }
            _ => {
                problems.push(format!(
                    "{path}: exactly one of equals, contains or one_of is required"
                ));
                return None;
            }
        };
        Some(matcher)
    }
}

fn non_empty(value: &str, path: &str, field: &str, problems: &mut Vec<String>) -> Option<String> {
    if value.is_empty() {
        problems.push(format!("{path}.{field}: must not be empty"));
        return None;
    }
    Some(value.to_owned())
}
