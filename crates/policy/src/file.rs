//! The entries of a policy file, as written, and how each becomes a compiled role, binding or
//! deny rule.

use std::collections::HashMap;

use cosmogate_protocol::DataAction;
use serde::Deserialize;
use toml::Table;

use crate::action::{self, ActionSet};
use crate::partition::PartitionRule;
use crate::policy::{Binding, DenyRule, Role};
use crate::scope::Scope;

pub(crate) mod condition;

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
    /// Where the actions apply: `/`, `/dbs/{db}` or `/dbs/{db}/colls/{container}`, names
    /// exact or `*` patterns. Required, non-empty.
    scopes: Vec<String>,
    /// Restricts every action but `readMetadata` to one logical partition: one template per
    /// key component, with `{claims.<path>}` placeholders. Default: no restriction.
    partition_key: Option<Vec<String>>,
    /// `enforce` (default) or `audit`: an audit-only partition binding lets a request from
    /// another partition through and reports it as a shadow hit.
    partition_key_mode: Option<String>,
}

/// One `[[deny]]` entry. Its condition fields (see [`condition`]) say whom it applies to;
/// without any it applies to everyone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenySpec {
    /// The rule's name, reported in decisions. Required, unique among deny rules.
    name: String,
    /// The actions refused, as for roles. Required, non-empty.
    actions: Vec<String>,
    /// Where they are refused, as for roles. Required, non-empty.
    scopes: Vec<String>,
    /// `enforce` (default) or `audit`: an audit-only rule refuses nothing and reports what it
    /// would have refused as a shadow hit.
    mode: Option<String>,
}

/// One `[[bindings]]` entry: the role, plus condition fields (see [`condition`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingSpec {
    /// The name of the role granted. Required.
    role: String,
}

impl RoleSpec {
    /// The keys a `[[roles]]` table may have and their types; must list every field above.
    pub(crate) const FIELDS: &[(&str, Kind)] = &[
        ("name", Kind::Text),
        ("actions", Kind::TextList),
        ("builtin", Kind::Text),
        ("scopes", Kind::TextList),
        ("partition_key", Kind::TextList),
        ("partition_key_mode", Kind::Text),
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
        let scopes = scopes(&self.scopes, path, &mut problems);
        let audit = mode(
            self.partition_key_mode.as_deref(),
            path,
            "partition_key_mode",
        );
        let audit = audit.unwrap_or_else(|problem| {
            problems.push(problem);
            false
        });
        let partition = match &self.partition_key {
            None => {
                if self.partition_key_mode.is_some() {
                    problems.push(format!(
                        "{path}.partition_key_mode: only meaningful with partition_key"
                    ));
                }
                None
            }
            Some(templates) => {
                let at = format!("{path}.partition_key");
                match PartitionRule::parse(templates, audit, &at) {
                    Ok(rule) => Some(rule),
                    Err(found) => {
                        problems.extend(found);
                        None
                    }
                }
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Role {
            name: self.name.clone(),
            actions: ActionSet::of(actions),
            scopes,
            partition,
        })
    }

    fn actions(&self, path: &str, problems: &mut Vec<String>) -> Vec<DataAction> {
        match (&self.actions, &self.builtin) {
            (Some(_), Some(_)) => {
                problems.push(format!("{path}: set either actions or builtin, not both"));
                Vec::new()
            }
            (None, None) => {
                problems.push(format!("{path}: one of actions or builtin is required"));
                Vec::new()
            }
            (None, Some(name)) => action::builtin(name).unwrap_or_else(|| {
                problems.push(format!(
                    "{path}.builtin: unknown built-in role {name:?}, expected {}",
                    action::BUILTIN_NAMES
                ));
                Vec::new()
            }),
            (Some(names), None) => actions(names, path, problems),
        }
    }
}

impl DenySpec {
    /// The keys a `[[deny]]` table may have besides condition fields, and their types.
    pub(crate) const FIELDS: &[(&str, Kind)] = &[
        ("name", Kind::Text),
        ("actions", Kind::TextList),
        ("scopes", Kind::TextList),
        ("mode", Kind::Text),
    ];

    /// Keys handled outside serde: the condition fields and `unless`.
    pub(crate) const EXTRA: &[&str] = &[
        "issuer", "claim", "equals", "contains", "one_of", "prefix", "glob", "all", "any", "unless",
    ];

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Builds the rule from this entry and its raw table, or returns every problem.
    pub(crate) fn compile(&self, path: &str, raw: &Table) -> Result<DenyRule, Vec<String>> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(format!("{path}.name: must not be empty"));
        }
        let actions = actions(&self.actions, path, &mut problems);
        let scopes = scopes(&self.scopes, path, &mut problems);
        let audit = mode(self.mode.as_deref(), path, "mode").unwrap_or_else(|problem| {
            problems.push(problem);
            false
        });
        let who = condition::parse(raw, path, false);
        let unless = match raw.get("unless") {
            None => Ok(None),
            Some(toml::Value::Table(table)) => {
                condition::parse_required(table, &format!("{path}.unless"), true).map(Some)
            }
            Some(_) => Err(vec![format!(
                "{path}.unless: must be a table of conditions"
            )]),
        };
        let (who, unless) = match (who, unless) {
            (Ok(who), Ok(unless)) => (who, unless),
            (who, unless) => {
                problems.extend(who.err().into_iter().flatten());
                problems.extend(unless.err().into_iter().flatten());
                return Err(problems);
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(DenyRule {
            name: self.name.clone(),
            actions: ActionSet::of(actions),
            scopes,
            condition: who,
            unless,
            audit,
        })
    }
}

impl BindingSpec {
    /// The keys a `[[bindings]]` table may have besides condition fields, and their types.
    pub(crate) const FIELDS: &[(&str, Kind)] = &[("role", Kind::Text)];

    /// The condition fields, handled outside serde.
    pub(crate) const EXTRA: &[&str] = condition::KEYS;

    /// Builds the binding against the role names in the file, or returns every problem. A
    /// role that is `declared` but did not parse has its own problems and is not reported
    /// again as unknown.
    pub(crate) fn compile(
        &self,
        path: &str,
        raw: &Table,
        roles: &HashMap<&str, usize>,
        declared: &[&str],
    ) -> Result<Binding, Vec<String>> {
        let mut problems = Vec::new();
        let role = roles.get(self.role.as_str()).copied();
        if role.is_none() && !declared.contains(&self.role.as_str()) {
            problems.push(format!("{path}.role: unknown role {:?}", self.role));
        }
        let condition = condition::parse_required(raw, path, false);
        match (role, condition) {
            (Some(role), Ok(condition)) if problems.is_empty() => Ok(Binding { role, condition }),
            (_, condition) => {
                problems.extend(condition.err().into_iter().flatten());
                Err(problems)
            }
        }
    }
}

fn actions(names: &[String], path: &str, problems: &mut Vec<String>) -> Vec<DataAction> {
    if names.is_empty() {
        problems.push(format!("{path}.actions: must not be empty"));
    }
    let mut actions = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match action::expand(name) {
            Some(expanded) => actions.extend(expanded),
            None => problems.push(format!("{path}.actions[{i}]: unknown action {name:?}")),
        }
    }
    actions
}

fn scopes(texts: &[String], path: &str, problems: &mut Vec<String>) -> Vec<Scope> {
    if texts.is_empty() {
        problems.push(format!("{path}.scopes: must not be empty"));
    }
    let mut scopes = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match Scope::parse(text) {
            Ok(scope) => scopes.push(scope),
            Err(message) => problems.push(format!("{path}.scopes[{i}]: {message}")),
        }
    }
    scopes
}

/// `true` for `audit`, `false` for `enforce` or nothing.
fn mode(text: Option<&str>, path: &str, field: &str) -> Result<bool, String> {
    match text {
        None | Some("enforce") => Ok(false),
        Some("audit") => Ok(true),
        Some(other) => Err(format!(
            "{path}.{field}: unknown mode {other:?}, expected \"enforce\" or \"audit\""
        )),
    }
}
