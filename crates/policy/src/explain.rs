//! Explaining a decision for the people who write policy: which bindings matched, which deny
//! rules applied, what each held role grants here, and which claims mattered.
//!
//! This is a tool path: it scans every rule instead of using the indexes, and it never
//! changes the decision, which comes from [`Policy::decide`].

use cosmogate_protocol::{DataAction, Operation};
use serde::Serialize;
use serde_json::Value;

use crate::claims::{ClaimPath, ClaimTest};
use crate::decide::{Decision, Subject, target};
use crate::policy::Policy;

/// Why [`Policy::decide`] decided as it did.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The decision itself, exactly as `decide` returns it.
    pub decision: Decision,
    /// The bindings the principal matched, in policy order.
    pub bindings: Vec<BindingMatch>,
    /// The roles the principal holds, in policy order, and what they do for this operation.
    pub roles: Vec<RoleView>,
    /// Deny rules (audit-only ones included) that cover the operation and whose condition the
    /// principal meets, including those its `unless` condition lifts.
    pub denies: Vec<DenyMatch>,
    /// The claims the matching conditions and partition keys read, with their values.
    pub claims: Vec<ClaimUse>,
}

/// A binding that matched.
#[derive(Debug, Clone, Serialize)]
pub struct BindingMatch {
    /// Where it is in the file, e.g. `bindings[2]`.
    pub binding: String,
    /// The role it grants.
    pub role: String,
}

/// A held role, seen from one operation.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub name: String,
    /// The operation's actions this role grants on the operation's scope, partition aside.
    pub grants: Vec<DataAction>,
    /// The role's partition key templates, when it is partition-bound.
    pub partition_key: Option<Vec<String>>,
    /// The partition key the templates give for this principal; `None` when the role is not
    /// partition-bound or a claim is missing.
    pub resolved_partition_key: Option<Vec<Value>>,
    /// Whether the partition binding is audit-only.
    pub partition_audit_only: bool,
}

/// A deny rule that covers the operation and applies to the principal.
#[derive(Debug, Clone, Serialize)]
pub struct DenyMatch {
    pub rule: String,
    /// The operation's actions it names.
    pub actions: Vec<DataAction>,
    /// True for an audit-only rule, which records instead of refusing.
    pub audit_only: bool,
    /// True when the rule's `unless` condition holds, so the rule does not apply.
    pub lifted_by_unless: bool,
}

/// A claim that mattered, with its value (`None` when absent).
#[derive(Debug, Clone, Serialize)]
pub struct ClaimUse {
    pub claim: String,
    pub value: Option<Value>,
}

impl Policy {
    /// Decides like [`Policy::decide`] and says why.
    pub fn explain(&self, subject: &Subject<'_>, op: &Operation) -> Explanation {
        let decision = self.decide(subject, op);
        let mut used: Vec<&ClaimPath> = Vec::new();
        let bindings = self.matched_bindings(subject, &mut used);
        let roles = self.role_views(subject, op, &mut used);
        let denies = self.matched_denies(subject, op, &mut used);

        let mut claims: Vec<ClaimUse> = Vec::new();
        for path in used {
            if claims.iter().all(|c| c.claim != path.as_str()) {
                claims.push(ClaimUse {
                    claim: path.as_str().to_owned(),
                    value: path.lookup(subject.claims).cloned(),
                });
            }
        }
        Explanation {
            decision,
            bindings,
            roles,
            denies,
            claims,
        }
    }

    fn matched_bindings<'a>(
        &'a self,
        subject: &Subject<'_>,
        used: &mut Vec<&'a ClaimPath>,
    ) -> Vec<BindingMatch> {
        let mut matched = Vec::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            if !binding.condition.matches(subject.issuer, subject.claims) {
                continue;
            }
            let mut tests: Vec<&ClaimTest> = Vec::new();
            binding
                .condition
                .holding_tests(subject.issuer, subject.claims, &mut tests);
            used.extend(tests.into_iter().map(|t| &t.path));
            matched.push(BindingMatch {
                binding: format!("bindings[{i}]"),
                role: self.roles[binding.role].name.clone(),
            });
        }
        matched
    }

    fn role_views<'a>(
        &'a self,
        subject: &Subject<'_>,
        op: &Operation,
        used: &mut Vec<&'a ClaimPath>,
    ) -> Vec<RoleView> {
        let place = target(op);
        self.held_roles(subject)
            .into_iter()
            .map(|index| {
                let role = &self.roles[index as usize];
                let grants = match place {
                    Some(place) if !op.rid_based => op
                        .actions
                        .iter()
                        .copied()
                        .filter(|action| role.grants(*action, place))
                        .collect(),
                    _ => Vec::new(),
                };
                if let Some(rule) = &role.partition {
                    used.extend(rule.claim_paths());
                }
                RoleView {
                    name: role.name.clone(),
                    grants,
                    partition_key: role
                        .partition
                        .as_ref()
                        .map(|p| p.templates().into_iter().map(str::to_owned).collect()),
                    resolved_partition_key: role
                        .partition
                        .as_ref()
                        .and_then(|p| p.resolve(subject.claims).ok()),
                    partition_audit_only: role.partition.as_ref().is_some_and(|p| p.audit),
                }
            })
            .collect()
    }

    fn matched_denies<'a>(
        &'a self,
        subject: &Subject<'_>,
        op: &Operation,
        used: &mut Vec<&'a ClaimPath>,
    ) -> Vec<DenyMatch> {
        let place = target(op);
        let mut matched = Vec::new();
        for rule in &self.denies {
            let covers =
                op.rid_based || place.is_some_and(|t| rule.scopes.iter().any(|s| s.covers(t)));
            let actions: Vec<DataAction> = op
                .actions
                .iter()
                .copied()
                .filter(|action| rule.actions.contains(*action))
                .collect();
            if !covers || actions.is_empty() {
                continue;
            }
            if !rule.condition.matches(subject.issuer, subject.claims) {
                continue;
            }
            let mut tests: Vec<&ClaimTest> = Vec::new();
            rule.condition
                .holding_tests(subject.issuer, subject.claims, &mut tests);
            let lifted = !rule.applies_to(subject.issuer, subject.claims);
            if let Some(unless) = rule.unless.as_ref().filter(|_| lifted) {
                unless.holding_tests(subject.issuer, subject.claims, &mut tests);
            }
            used.extend(tests.into_iter().map(|t| &t.path));
            matched.push(DenyMatch {
                rule: rule.name.clone(),
                actions,
                audit_only: rule.audit,
                lifted_by_unless: lifted,
            });
        }
        matched
    }
}
