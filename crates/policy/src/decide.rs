//! The decision: may this verified principal perform this classified operation.

use cosmogate_protocol::{DataAction, Operation, OperationKind};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::policy::{Policy, Role};
use crate::scope::Target;

/// A principal whose token has already been verified.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The token's `iss`, exactly as validated.
    pub issuer: &'a str,
    /// The token's claims.
    pub claims: &'a Map<String, Value>,
}

/// The outcome of [`Policy::decide`], ready for the audit record.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// `allowed`, `no_role` (no binding matched the principal), `action_not_granted` (some
    /// action is not granted on the operation's scope) or `no_action` (the operation named no
    /// action, which is never allowed).
    pub reason: &'static str,
    /// Roles that granted at least one of the operation's actions, in policy order.
    pub roles: Vec<String>,
    /// The operation's actions that no role of the principal grants on its scope.
    pub missing: Vec<DataAction>,
}

impl Policy {
    /// Decides whether `subject` may perform `op`. Default deny: every action in `op.actions`
    /// must be granted on the operation's scope by the union of the principal's roles.
    pub fn decide(&self, subject: &Subject<'_>, op: &Operation) -> Decision {
        let actions = unique(&op.actions);
        let held = self.roles_of(subject);
        if held.is_empty() {
            return Decision::deny("no_role", Vec::new(), actions);
        }
        if actions.is_empty() {
            return Decision::deny("no_action", Vec::new(), actions);
        }

        let mut granted_by = vec![false; held.len()];
        let mut missing = Vec::new();
        for action in actions {
            let mut granted = false;
            for (i, role) in held.iter().enumerate() {
                if grants(role, action, op) {
                    granted_by[i] = true;
                    granted = true;
                }
            }
            if !granted {
                missing.push(action);
            }
        }

        let roles = held
            .iter()
            .zip(&granted_by)
            .filter(|(_, granted)| **granted)
            .map(|(role, _)| role.name.clone())
            .collect();
        if missing.is_empty() {
            Decision {
                allowed: true,
                reason: "allowed",
                roles,
                missing,
            }
        } else {
            Decision::deny("action_not_granted", roles, missing)
        }
    }

    /// The roles bound to `subject`, each once, in policy order.
    fn roles_of(&self, subject: &Subject<'_>) -> Vec<&Role> {
        let mut indices: Vec<usize> = self
            .bindings
            .iter()
            .filter(|binding| {
                binding
                    .issuer
                    .as_deref()
                    .is_none_or(|iss| iss == subject.issuer)
            })
            .filter(|binding| binding.rule.matches(subject.claims))
            .map(|binding| binding.role)
            .collect();
        indices.sort_unstable();
        indices.dedup();
        indices
            .into_iter()
            .filter_map(|i| self.roles.get(i))
            .collect()
    }
}

/// Whether `role` grants `action` for `op`, with the special cases SDKs need.
fn grants(role: &Role, action: DataAction, op: &Operation) -> bool {
    let metadata = action == DataAction::ReadMetadata;

    // RID paths carry no names to check a scope against: only account-wide metadata reads.
    if op.rid_based {
        return metadata && role.grants_on_account(action);
    }
    // `GET /` is the first call of every SDK; any readMetadata grant lets it through.
    if metadata && matches!(op.kind, OperationKind::ReadAccount) {
        return role.grants_anywhere(action);
    }
    let Some(target) = target(op) else {
        return false;
    };
    if role.grants(action, target) {
        return true;
    }
    // SDKs read the database before its containers; a container-scoped reader may read it
    // (but not list its containers, which Cosmos ties to database scope).
    match target {
        Target::Database(db) if metadata && matches!(op.kind, OperationKind::ReadDatabase) => {
            role.grants_in_a_container_of(action, db)
        }
        _ => false,
    }
}

/// The resource `op` addresses; `None` for a container without a database, which no scope
/// covers.
fn target(op: &Operation) -> Option<Target<'_>> {
    match (op.database.as_deref(), op.container.as_deref()) {
        (None, None) => Some(Target::Account),
        (Some(db), None) => Some(Target::Database(db)),
        (Some(database), Some(container)) => Some(Target::Container {
            database,
            container,
        }),
        (None, Some(_)) => None,
    }
}

fn unique(actions: &[DataAction]) -> Vec<DataAction> {
    let mut unique = Vec::with_capacity(actions.len());
    for action in actions {
        if !unique.contains(action) {
            unique.push(*action);
        }
    }
    unique
}

impl Decision {
    fn deny(reason: &'static str, roles: Vec<String>, missing: Vec<DataAction>) -> Decision {
        Decision {
            allowed: false,
            reason,
            roles,
            missing,
        }
    }
}

#[cfg(test)]
mod tests;
