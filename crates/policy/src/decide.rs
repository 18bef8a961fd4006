//! The decision: may this verified principal perform this classified operation.

use std::sync::Arc;

use cosmogate_protocol::{DataAction, Operation, OperationKind, PartitionKey};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::partition::Refusal;
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
    /// `allowed`, or why not: `no_role` (no binding matched the principal),
    /// `action_not_granted` (some action is not granted on the operation's scope),
    /// `denied_by_rule` (a deny rule matched), `partition_key_required` (a partition-bound
    /// role met an operation that names no single partition: cross-partition query or feed,
    /// range- or EPK-scoped request, bulk operation without a key), `partition_key_mismatch`
    /// (another partition), `partition_key_claim_missing` (the claim the partition is derived
    /// from is missing), `no_action` (the operation named no action) or `batch_body_unread`
    /// (a batch or bulk whose body was not given to the classifier).
    pub reason: &'static str,
    /// The rule that decided: for an allow, the first granting role in policy order; for
    /// `denied_by_rule`, the deny rule; for a partition refusal, the role whose partition did
    /// not fit. `None` when nothing matched (default deny).
    pub rule: Option<String>,
    /// The roles that granted: for each action (each operation of a batch or bulk), the
    /// first role in policy order that grants it. In policy order, each once.
    pub roles: Vec<String>,
    /// The operation's actions that were refused.
    pub missing: Vec<DataAction>,
    /// For a batch or bulk, the position in the body of the first refused operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<usize>,
    /// Audit-only rules that would have refused this request, in the order they were met.
    pub shadow: Vec<ShadowHit>,
    /// The [`Policy::fingerprint`] of the policy that decided.
    #[serde(serialize_with = "as_str")]
    pub policy_fingerprint: Arc<str>,
}

/// An audit-only (`mode = "audit"`) rule that would have refused the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowHit {
    /// The deny rule's name, or the role whose partition key did not fit.
    pub rule: String,
    /// The reason the request would have been refused with (a [`Decision::reason`] code).
    pub reason: &'static str,
}

fn as_str<S: Serializer>(value: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value)
}

/// The roles a principal holds under one policy ([`Policy::held`]), worked out once so that
/// every later decision about the same principal skips matching its claims against the
/// bindings. It belongs to the policy value it was worked out under: [`Policy::decide_holding`]
/// uses it only there and works the roles out afresh under any other policy, such as one loaded
/// since (even from the same text).
#[derive(Debug, Clone)]
pub struct HeldRoles {
    /// The fingerprint allocation of the policy it was worked out under: compared by address,
    /// and kept alive by this reference, so no later policy can take its place.
    policy: Arc<str>,
    roles: Box<[u32]>,
}

impl HeldRoles {
    /// Whether these are the roles held under `policy` (and not under an earlier policy).
    pub fn is_for(&self, policy: &Policy) -> bool {
        Arc::ptr_eq(&self.policy, &policy.fingerprint)
    }
}

/// One thing to authorise: an action of the request, or one operation of a batch or bulk.
struct Unit<'o> {
    action: DataAction,
    partition: Partition<'o>,
    batch_index: Option<usize>,
}

/// What a partition-bound role must check for a unit.
#[derive(Clone, Copy)]
enum Partition<'o> {
    /// Not partitioned data (metadata, a query plan): no check.
    Exempt,
    /// Scoped by a partition key range or EPK range: never one logical partition.
    Range,
    /// The unit's partition key, if it has one.
    Key(Option<&'o PartitionKey>),
}

/// The first unit that was refused: where it is in a batch, and which partition-bound role
/// (if any) refused it.
struct Failure {
    batch_index: Option<usize>,
    refusal: Option<(u32, Refusal)>,
}

/// Whether a unit was granted, and by which role.
enum Grant {
    By(u32),
    Refused(Option<(u32, Refusal)>),
}

/// Held roles above this count are narrowed through the scope index rather than checked one
/// by one.
const SMALL_ROLE_SET: usize = 8;

impl Policy {
    /// Decides whether `subject` may perform `op`. Default deny: a matching deny rule refuses;
    /// otherwise every action (for a batch or bulk, every operation of the body, each with its
    /// own partition key) must be granted on the operation's scope by one of the principal's
    /// roles, inside the role's partition when it has one.
    pub fn decide(&self, subject: &Subject<'_>, op: &Operation) -> Decision {
        let held = self.held_roles(subject);
        self.decide_with(subject, op, &held)
    }

    /// The roles `subject` holds under this policy, for [`decide_holding`](Self::decide_holding).
    pub fn held(&self, subject: &Subject<'_>) -> HeldRoles {
        HeldRoles {
            policy: Arc::clone(&self.fingerprint),
            roles: self.held_roles(subject).into_boxed_slice(),
        }
    }

    /// [`decide`](Self::decide) for a subject whose roles under this policy were worked out
    /// before by [`held`](Self::held). Roles worked out under another policy are not used:
    /// the decision is then [`decide`](Self::decide)'s.
    pub fn decide_holding(
        &self,
        subject: &Subject<'_>,
        op: &Operation,
        held: &HeldRoles,
    ) -> Decision {
        if !held.is_for(self) {
            return self.decide(subject, op);
        }
        self.decide_with(subject, op, &held.roles)
    }

    fn decide_with(&self, subject: &Subject<'_>, op: &Operation, held: &[u32]) -> Decision {
        let actions = unique(&op.actions);
        let mut shadow = Vec::new();
        if let Some((rule, denied)) = self.matching_deny(subject, op, &actions, &mut shadow) {
            let mut decision = self.deny("denied_by_rule", denied.clone(), shadow);
            decision.rule = Some(self.denies[rule].name.clone());
            decision.batch_index = op.batch.iter().position(|b| denied.contains(&b.action));
            return decision;
        }
        if held.is_empty() {
            return self.deny("no_role", actions, shadow);
        }
        if actions.is_empty() {
            return self.deny("no_action", actions, shadow);
        }
        if op.needs_body() && op.batch.is_empty() {
            return self.deny("batch_body_unread", actions, shadow);
        }

        let relevant = self.relevant_roles(held, op);
        let mut granting = Vec::new();
        let mut missing = Vec::new();
        let mut failure: Option<Failure> = None;
        for unit in units(op, &actions) {
            match self.grant(&unit, &relevant, subject, op, &mut shadow) {
                Grant::By(role) => granting.push(role),
                Grant::Refused(refusal) => {
                    if !missing.contains(&unit.action) {
                        missing.push(unit.action);
                    }
                    failure.get_or_insert(Failure {
                        batch_index: unit.batch_index,
                        refusal,
                    });
                }
            }
        }
        granting.sort_unstable();
        granting.dedup();
        self.conclude(granting, missing, failure, shadow)
    }

    fn conclude(
        &self,
        granting: Vec<u32>,
        missing: Vec<DataAction>,
        failure: Option<Failure>,
        shadow: Vec<ShadowHit>,
    ) -> Decision {
        let roles: Vec<String> = granting
            .iter()
            .map(|r| self.role(*r).name.clone())
            .collect();
        let Some(Failure {
            batch_index,
            refusal,
        }) = failure
        else {
            return Decision {
                allowed: true,
                reason: "allowed",
                rule: roles.first().cloned(),
                roles,
                missing,
                batch_index: None,
                shadow,
                policy_fingerprint: self.fingerprint.clone(),
            };
        };
        let reason = refusal.map_or("action_not_granted", |(_, r)| r.reason());
        let mut decision = self.deny(reason, missing, shadow);
        decision.rule = refusal.map(|(role, _)| self.role(role).name.clone());
        decision.roles = roles;
        decision.batch_index = batch_index;
        decision
    }

    /// The first enforcing deny rule that covers the operation and applies to the principal,
    /// and the actions it refuses. Audit-only rules that match are recorded in `shadow`.
    fn matching_deny(
        &self,
        subject: &Subject<'_>,
        op: &Operation,
        actions: &[DataAction],
        shadow: &mut Vec<ShadowHit>,
    ) -> Option<(usize, Vec<DataAction>)> {
        if self.denies.is_empty() {
            return None;
        }
        let mut candidates = Vec::new();
        if op.rid_based {
            candidates.clone_from(&self.indexes.rid_denies);
        } else {
            self.indexes.denies.lookup(target(op)?, &mut candidates);
        }
        for index in candidates {
            let rule = &self.denies[index as usize];
            let denied: Vec<DataAction> = actions
                .iter()
                .copied()
                .filter(|action| rule.actions.contains(*action))
                .collect();
            if denied.is_empty() || !rule.applies_to(subject.issuer, subject.claims) {
                continue;
            }
            if rule.audit {
                shadow.push(ShadowHit {
                    rule: rule.name.clone(),
                    reason: "denied_by_rule",
                });
                continue;
            }
            return Some((index as usize, denied));
        }
        None
    }

    /// The roles bound to `subject`, ascending (policy order), each once.
    pub(crate) fn held_roles(&self, subject: &Subject<'_>) -> Vec<u32> {
        let mut candidates = Vec::new();
        self.indexes
            .bindings
            .candidates(subject.claims, &mut candidates);
        let mut roles: Vec<u32> = candidates
            .into_iter()
            .filter_map(|b| self.bindings.get(b as usize))
            .filter(|binding| binding.condition.matches(subject.issuer, subject.claims))
            .map(|binding| binding.role as u32)
            .collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    /// The held roles that can matter for `op`. A small set is returned whole (each role's
    /// scopes are checked anyway); a large one is narrowed through the scope index.
    fn relevant_roles(&self, held: &[u32], op: &Operation) -> Vec<u32> {
        let special = op.rid_based
            || matches!(
                op.kind,
                OperationKind::ReadAccount | OperationKind::ReadDatabase
            );
        if held.len() <= SMALL_ROLE_SET || special {
            return held.to_vec();
        }
        let Some(target) = target(op) else {
            return Vec::new();
        };
        let mut candidates = Vec::new();
        self.indexes.roles.lookup(target, &mut candidates);
        candidates.retain(|role| held.binary_search(role).is_ok());
        candidates
    }

    /// The first role, in policy order, that grants `unit`. A partition-bound role whose
    /// partition does not fit is skipped; when it is audit-only and no other role grants, it
    /// grants and the miss is recorded in `shadow`.
    fn grant(
        &self,
        unit: &Unit<'_>,
        relevant: &[u32],
        subject: &Subject<'_>,
        op: &Operation,
        shadow: &mut Vec<ShadowHit>,
    ) -> Grant {
        let mut refused: Option<(u32, Refusal)> = None;
        let mut audited: Option<(u32, Refusal)> = None;
        for &index in relevant {
            let role = self.role(index);
            if !grants(role, unit.action, op) {
                continue;
            }
            let Err(refusal) = partition_fits(role, unit.partition, subject.claims) else {
                return Grant::By(index);
            };
            let audit = role.partition.as_ref().is_some_and(|p| p.audit);
            let slot = if audit { &mut audited } else { &mut refused };
            slot.get_or_insert((index, refusal));
        }
        if let Some((index, refusal)) = audited {
            shadow.push(ShadowHit {
                rule: self.role(index).name.clone(),
                reason: refusal.reason(),
            });
            return Grant::By(index);
        }
        Grant::Refused(refused)
    }

    fn role(&self, index: u32) -> &Role {
        &self.roles[index as usize]
    }

    fn deny(
        &self,
        reason: &'static str,
        missing: Vec<DataAction>,
        shadow: Vec<ShadowHit>,
    ) -> Decision {
        Decision {
            allowed: false,
            reason,
            rule: None,
            roles: Vec::new(),
            missing,
            batch_index: None,
            shadow,
            policy_fingerprint: self.fingerprint.clone(),
        }
    }
}

/// What must be authorised: each operation of a batch or bulk body with its own partition
/// key, or else each action of the request with the request's partition key.
fn units<'o>(op: &'o Operation, actions: &[DataAction]) -> Vec<Unit<'o>> {
    if op.needs_body() {
        return op
            .batch
            .iter()
            .enumerate()
            .map(|(i, item)| Unit {
                action: item.action,
                partition: Partition::Key(item.partition_key.as_ref()),
                batch_index: Some(i),
            })
            .collect();
    }
    actions
        .iter()
        .map(|&action| Unit {
            action,
            partition: request_partition(op, action),
            batch_index: None,
        })
        .collect()
}

fn request_partition(op: &Operation, action: DataAction) -> Partition<'_> {
    // Metadata is not partitioned data. A query plan reads no items, and JS asks for one
    // before every query, without a partition key.
    let plan_without_key = op.kind == OperationKind::QueryPlan && op.partition_key.is_none();
    if action == DataAction::ReadMetadata || (plan_without_key && !op.range_scoped) {
        return Partition::Exempt;
    }
    if op.range_scoped {
        return Partition::Range;
    }
    Partition::Key(op.partition_key.as_ref())
}

fn partition_fits(
    role: &Role,
    partition: Partition<'_>,
    claims: &Map<String, Value>,
) -> Result<(), Refusal> {
    let Some(rule) = &role.partition else {
        return Ok(());
    };
    match partition {
        Partition::Exempt => Ok(()),
        Partition::Range => rule.resolve(claims).and(Err(Refusal::Required)),
        Partition::Key(key) => rule.check(key, claims),
    }
}

/// Whether `role` grants `action` for `op`, partition aside, with the special cases SDKs need.
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
pub(crate) fn target(op: &Operation) -> Option<Target<'_>> {
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

#[cfg(test)]
mod tests;
