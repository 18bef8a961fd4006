//! The compiled policy: roles (actions on scopes, optionally bound to a partition key), the
//! bindings that hand them to principals, deny rules, and the indexes over them.

use std::sync::Arc;

use cosmogate_protocol::DataAction;

use crate::action::ActionSet;
use crate::claims::Condition;
use crate::index::{BindingIndex, ScopeIndex};
use crate::partition::PartitionRule;
use crate::scope::{Scope, Target};

/// A loaded, checked policy. Build one with [`Policy::from_toml`], [`Policy::load`] or
/// [`Policy::deny_all`], then ask it with [`Policy::decide`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) roles: Vec<Role>,
    pub(crate) bindings: Vec<Binding>,
    pub(crate) denies: Vec<DenyRule>,
    pub(crate) indexes: Indexes,
    /// The first 16 hex characters of the SHA-256 of the policy text.
    pub(crate) fingerprint: Arc<str>,
}

/// Lookups built once at load time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Indexes {
    pub(crate) roles: ScopeIndex,
    pub(crate) denies: ScopeIndex,
    /// Deny rules naming `readMetadata`, which RID-addressed requests (whose names are unknown)
    /// must also answer to.
    pub(crate) rid_denies: Vec<u32>,
    pub(crate) bindings: BindingIndex,
    /// For each role, the bindings that grant it.
    pub(crate) bindings_of: Vec<Vec<u32>>,
}

/// A named set of data actions granted on a set of scopes.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) actions: ActionSet,
    pub(crate) scopes: Vec<Scope>,
    /// When set, every action but `readMetadata` is granted only inside this partition.
    pub(crate) partition: Option<PartitionRule>,
}

/// Grants `roles[role]` to principals satisfying `condition`.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) role: usize,
    pub(crate) condition: Condition,
}

/// Refuses `actions` on `scopes` to principals satisfying `condition` unless they satisfy
/// `unless`, whatever the roles grant.
#[derive(Debug, Clone)]
pub(crate) struct DenyRule {
    pub(crate) name: String,
    pub(crate) actions: ActionSet,
    pub(crate) scopes: Vec<Scope>,
    /// Who the rule applies to; the empty condition applies to everyone.
    pub(crate) condition: Condition,
    pub(crate) unless: Option<Condition>,
    /// When true, a match is recorded as a shadow hit instead of refusing.
    pub(crate) audit: bool,
}

impl Policy {
    /// A policy with no rules: every operation is denied. Its fingerprint is `deny-all`.
    pub fn deny_all() -> Policy {
        Policy::new(Vec::new(), Vec::new(), Vec::new(), Arc::from("deny-all"))
    }

    pub(crate) fn new(
        roles: Vec<Role>,
        bindings: Vec<Binding>,
        denies: Vec<DenyRule>,
        fingerprint: Arc<str>,
    ) -> Policy {
        let mut indexes = Indexes {
            bindings_of: vec![Vec::new(); roles.len()],
            ..Indexes::default()
        };
        for (i, role) in roles.iter().enumerate() {
            for scope in &role.scopes {
                indexes.roles.insert(scope, i as u32);
            }
        }
        for (i, binding) in bindings.iter().enumerate() {
            indexes.bindings.insert(&binding.condition, i as u32);
            if let Some(list) = indexes.bindings_of.get_mut(binding.role) {
                list.push(i as u32);
            }
        }
        for (i, deny) in denies.iter().enumerate() {
            for scope in &deny.scopes {
                indexes.denies.insert(scope, i as u32);
            }
            if deny.actions.contains(DataAction::ReadMetadata) {
                indexes.rid_denies.push(i as u32);
            }
        }
        Policy {
            roles,
            bindings,
            denies,
            indexes,
            fingerprint,
        }
    }

    /// A short fingerprint of the policy text (the first 16 hex characters of its SHA-256),
    /// for audit records and reload logs; `deny-all` for [`Policy::deny_all`].
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The number of roles defined, for start-up summaries.
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// The number of bindings defined, for start-up summaries.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }

    /// The number of deny rules defined, audit-only ones included.
    pub fn deny_count(&self) -> usize {
        self.denies.len()
    }

    /// Every issuer the policy names, with where: `("bindings[2].issuer", "https://…")`. A
    /// configuration check can warn about issuers it does not accept, whose conditions can
    /// never match.
    pub fn issuers(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            issuers_in(&binding.condition, &format!("bindings[{i}]"), &mut found);
        }
        for (i, deny) in self.denies.iter().enumerate() {
            let path = format!("deny[{i}]");
            issuers_in(&deny.condition, &path, &mut found);
            if let Some(unless) = &deny.unless {
                issuers_in(unless, &format!("{path}.unless"), &mut found);
            }
        }
        found
    }
}

fn issuers_in(condition: &Condition, path: &str, found: &mut Vec<(String, String)>) {
    if let Some(issuer) = &condition.issuer {
        found.push((format!("{path}.issuer"), issuer.clone()));
    }
    for (key, list) in [("all", &condition.all), ("any", &condition.any)] {
        for (i, inner) in list.iter().enumerate() {
            issuers_in(inner, &format!("{path}.{key}[{i}]"), found);
        }
    }
}

impl Role {
    /// Whether this role grants `action` on `target`, partition aside.
    pub(crate) fn grants(&self, action: DataAction, target: Target<'_>) -> bool {
        self.actions.contains(action) && self.scopes.iter().any(|scope| scope.covers(target))
    }

    /// Whether this role grants `action` on any scope at all.
    pub(crate) fn grants_anywhere(&self, action: DataAction) -> bool {
        self.actions.contains(action) && !self.scopes.is_empty()
    }

    /// Whether this role grants `action` at account scope `/`.
    pub(crate) fn grants_on_account(&self, action: DataAction) -> bool {
        self.actions.contains(action) && self.scopes.contains(&Scope::Account)
    }

    /// Whether this role grants `action` on some container of database `db`.
    pub(crate) fn grants_in_a_container_of(&self, action: DataAction, db: &str) -> bool {
        self.actions.contains(action) && self.scopes.iter().any(|scope| scope.is_container_in(db))
    }
}

impl DenyRule {
    /// Whether this rule applies to a principal (scope and action aside).
    pub(crate) fn applies_to(
        &self,
        issuer: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        self.condition.matches(issuer, claims)
            && !self
                .unless
                .as_ref()
                .is_some_and(|unless| unless.matches(issuer, claims))
    }
}
