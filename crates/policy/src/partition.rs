//! Partition-key binding: a role restricted to the logical partition whose key is derived from
//! the principal's claims, for example `partition_key = ["{claims.tenant}"]`.

use cosmogate_protocol::PartitionKey;
use serde_json::{Map, Value};

use crate::claims::ClaimPath;

/// The partition key a restricted role allows: one template per key component, the leading
/// components of a hierarchical key when there are fewer templates than key levels.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRule {
    components: Vec<Template>,
    /// When true, a mismatch is recorded as a shadow hit instead of refusing.
    pub(crate) audit: bool,
}

/// One component: literal text and `{claims.<path>}` placeholders.
#[derive(Debug, Clone)]
struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Claim(ClaimPath),
}

/// Why a restricted role does not cover an operation's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The operation names no single logical partition: a cross-partition query or feed, a
    /// partition-key-range or EPK-scoped request, a bulk operation without a key.
    Required,
    /// The operation's partition key is another one.
    Mismatch,
    /// A claim the key is derived from is missing or not a string, number or boolean.
    ClaimMissing,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Required => "partition_key_required",
            Refusal::Mismatch => "partition_key_mismatch",
            Refusal::ClaimMissing => "partition_key_claim_missing",
        }
    }
}

const PLACEHOLDER: &str = "placeholders are written {claims.<path>}, e.g. {claims.tenant}";

impl PartitionRule {
    /// Parses the templates, returning every problem as `"path[i]: message"`.
    pub(crate) fn parse(
        templates: &[String],
        audit: bool,
        path: &str,
    ) -> Result<PartitionRule, Vec<String>> {
        let mut problems = Vec::new();
        if templates.is_empty() {
            problems.push(format!("{path}: must not be empty"));
        }
        let mut components = Vec::new();
        for (i, text) in templates.iter().enumerate() {
            match Template::parse(text) {
                Ok(template) => components.push(template),
                Err(message) => problems.push(format!("{path}[{i}]: {message}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(PartitionRule { components, audit })
    }

    /// The key components this rule allows for a principal, or why there are none.
    pub(crate) fn resolve(&self, claims: &Map<String, Value>) -> Result<Vec<Value>, Refusal> {
        self.components
            .iter()
            .map(|template| template.resolve(claims).ok_or(Refusal::ClaimMissing))
            .collect()
    }

    /// Whether `key` lies in the allowed partition: its leading components equal the
    /// resolved ones. A hierarchical key may name more levels than the rule (the rule then
    /// allows every sub-partition), never fewer.
    pub(crate) fn check(
        &self,
        key: Option<&PartitionKey>,
        claims: &Map<String, Value>,
    ) -> Result<(), Refusal> {
        let allowed = self.resolve(claims)?;
        let Some(key) = key else {
            return Err(Refusal::Required);
        };
        if key.values.len() < allowed.len() || key.values[..allowed.len()] != allowed[..] {
            return Err(Refusal::Mismatch);
        }
        Ok(())
    }

    /// The claims the key is derived from.
    pub(crate) fn claim_paths(&self) -> impl Iterator<Item = &ClaimPath> {
        self.components
            .iter()
            .flat_map(|template| &template.parts)
            .filter_map(|part| match part {
                Part::Claim(path) => Some(path),
                Part::Literal(_) => None,
            })
    }

    /// The templates as written.
    pub(crate) fn templates(&self) -> Vec<&str> {
        self.components.iter().map(|t| t.text.as_str()).collect()
    }
}

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (None, None) => {
                    parts.push(Part::Literal(rest.to_owned()));
                    break;
                }
                (Some(open), Some(close)) if open < close => {
                    if open > 0 {
                        parts.push(Part::Literal(rest[..open].to_owned()));
                    }
                    parts.push(Part::Claim(placeholder(&rest[open + 1..close])?));
                    rest = &rest[close + 1..];
                }
                _ => return Err(format!("unbalanced braces in {text:?}; {PLACEHOLDER}")),
            }
        }
        if parts.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// A template that is exactly one placeholder takes the claim's value as it is (string,
    /// number or boolean); any other template builds a string and needs string claims.
    fn resolve(&self, claims: &Map<String, Value>) -> Option<Value> {
        if let [Part::Claim(path)] = self.parts.as_slice() {
            return match path.lookup(claims)? {
                value @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
                    Some(value.clone())
                }
                _ => None,
            };
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Claim(path) => out.push_str(path.lookup(claims)?.as_str()?),
            }
        }
        Some(Value::String(out))
    }
}

fn placeholder(inner: &str) -> Result<ClaimPath, String> {
    let Some(path) = inner.strip_prefix("claims.") else {
        return Err(format!("unknown placeholder {{{inner}}}; {PLACEHOLDER}"));
    };
    if !ClaimPath::is_valid(path) || path.contains('{') {
        return Err(format!("bad claim path in {{{inner}}}; {PLACEHOLDER}"));
    }
    Ok(ClaimPath::new(path))
}

#[cfg(test)]
mod tests;
