//! The compiled policy: roles (actions on scopes) and the bindings that hand them to principals.

use cosmogate_protocol::DataAction;

use crate::claims::ClaimRule;
use crate::scope::{Scope, Target};

/// A loaded, checked policy. Build one with [`Policy::from_toml`], [`Policy::load`] or
/// [`Policy::deny_all`], then ask it with [`Policy::decide`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) roles: Vec<Role>,
    pub(crate) bindings: Vec<Binding>,
}

/// A named set of data actions granted on a set of scopes.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    actions: Vec<DataAction>,
    scopes: Vec<Scope>,
}

/// Grants `roles[role]` to principals whose token satisfies `rule` (and comes from `issuer`,
/// when set).
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) role: usize,
    pub(crate) issuer: Option<String>,
    pub(crate) rule: ClaimRule,
}

impl Policy {
    /// A policy with no roles: every operation is denied.
    pub fn deny_all() -> Policy {
        Policy {
            roles: Vec::new(),
            bindings: Vec::new(),
        }
    }

    /// The number of roles defined, for start-up summaries.
    pub fn role_count(&self) -> usize {
        self.roles.len()
    }

    /// The number of bindings defined, for start-up summaries.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }
}

impl Role {
    pub(crate) fn new(name: String, mut actions: Vec<DataAction>, scopes: Vec<Scope>) -> Role {
        let mut unique = Vec::with_capacity(actions.len());
        for action in actions.drain(..) {
            if !unique.contains(&action) {
                unique.push(action);
            }
        }
        Role {
            name,
            actions: unique,
            scopes,
        }
    }

    /// Whether this role grants `action` on `target`.
    pub(crate) fn grants(&self, action: DataAction, target: Target<'_>) -> bool {
        self.has(action) && self.scopes.iter().any(|scope| scope.covers(target))
    }

    /// Whether this role grants `action` on any scope at all.
    pub(crate) fn grants_anywhere(&self, action: DataAction) -> bool {
        self.has(action) && !self.scopes.is_empty()
    }

    /// Whether this role grants `action` at account scope `/`.
    pub(crate) fn grants_on_account(&self, action: DataAction) -> bool {
        self.has(action) && self.scopes.contains(&Scope::Account)
    }

    /// Whether this role grants `action` on some container of database `db`.
    pub(crate) fn grants_in_a_container_of(&self, action: DataAction, db: &str) -> bool {
        self.has(action) && self.scopes.iter().any(|scope| scope.is_container_in(db))
    }

    fn has(&self, action: DataAction) -> bool {
        self.actions.contains(&action)
    }
}
