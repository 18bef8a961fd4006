//! `cosmogate explain`: how the policy decides one request, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use cosmogate_policy::{Explanation, Subject};
use cosmogate_protocol::{Operation, RequestHead};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

use super::{Loaded, PolicySource, issuer_configured, jwt};

/// Printed first whenever claims come from a token: explain never verifies one.
const UNVERIFIED: &str = "note: the token's claims were decoded WITHOUT verifying its \
signature, issuer, audience or lifetime; explain is a policy tool and never contacts the \
identity provider. `cosmogate serve` verifies every token before the policy sees it.";

#[derive(Debug, clap::Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    source: PolicySource,
    /// The principal's access token: the JWT itself, an `Authorization` value carrying it,
    /// or a file holding either. Its claims are read without verification.
    #[arg(long, conflicts_with = "claims", required_unless_present = "claims")]
    token: Option<String>,
    /// A JSON file with the principal's claims, instead of a token.
    #[arg(long)]
    claims: Option<PathBuf>,
    /// The issuer to decide as. Default: the claims' `iss`.
    #[arg(long)]
    issuer: Option<String>,
    /// A request header, as `name: value`; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A file with the request body, for batch and bulk requests.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Print the explanation as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The request method, e.g. GET.
    method: String,
    /// The request path (and query, if any), exactly as the SDK would send it.
    path: String,
}

/// Explains one decision. Exits 0 when the request would be allowed, 1 when denied, 2 when
/// the input cannot be used.
pub(crate) fn explain(args: &ExplainArgs) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &ExplainArgs) -> Result<bool, String> {
    let loaded = args.source.load().ok_or("the policy could not be loaded")?;
    let (claims, from_token) = principal_claims(args)?;
    let issuer = match (&args.issuer, claims.get("iss").and_then(Value::as_str)) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(iss)) => iss.to_owned(),
        (None, None) => return Err("the claims have no string iss; pass --issuer".to_owned()),
    };
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", args.method))?;
    let headers = header_map(&args.headers)?;
    let body = match &args.body {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => Vec::new(),
    };

    let classified = classify(&method, &args.path, &headers, &body);
    let subject = Subject {
        issuer: &issuer,
        claims: &claims,
    };
    let explanation = classified
        .as_ref()
        .ok()
        .map(|op| loaded.policy.explain(&subject, op));
    let allowed = explanation.as_ref().is_some_and(|e| e.decision.allowed);
    let notes = notes(&loaded, &issuer, from_token);
    if args.json {
        print_json(&loaded, &issuer, &classified, explanation.as_ref(), &notes);
    } else {
        print_text(
            &loaded,
            &issuer,
            &claims,
            &classified,
            explanation.as_ref(),
            &notes,
        );
    }
    Ok(allowed)
}

fn principal_claims(args: &ExplainArgs) -> Result<(Map<String, Value>, bool), String> {
    if let Some(path) = &args.claims {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return match serde_json::from_str(&text) {
            Ok(Value::Object(claims)) => Ok((claims, false)),
            _ => Err(format!("{} is not a JSON object of claims", path.display())),
        };
    }
    let given = args.token.as_deref().ok_or("pass --token or --claims")?;
    let path = std::path::Path::new(given);
    let token = if path.is_file() {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    } else {
        given.to_owned()
    };
    Ok((jwt::unverified_claims(&token)?, true))
}

pub(crate) fn header_map(headers: &[String]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header {header:?} is not `name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of {name} is not a valid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Classifies head and body as `serve` does; a refusal is reported with its reason code.
pub(crate) fn classify(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Operation, cosmogate_protocol::ProtocolError> {
    let mut op = cosmogate_protocol::classify(&RequestHead {
        method,
        path,
        headers,
    })?;
    cosmogate_protocol::classify_batch_body(&mut op, body)?;
    Ok(op)
}

fn notes(loaded: &Loaded, issuer: &str, from_token: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if from_token {
        notes.push(UNVERIFIED.to_owned());
    }
    if let Some(issuers) = &loaded.issuers
        && !issuer_configured(issuers, issuer)
    {
        notes.push(format!(
            "warning: {issuer:?} is not a configured issuer; `cosmogate serve` would reject \
             this token before the policy"
        ));
    }
    notes
}

fn print_json(
    loaded: &Loaded,
    issuer: &str,
    classified: &Result<Operation, cosmogate_protocol::ProtocolError>,
    explanation: Option<&Explanation>,
    notes: &[String],
) {
    let operation = match classified {
        Ok(op) => json!(op),
        Err(err) => json!({"refused": err.reason_code(), "message": err.to_string()}),
    };
    let out = json!({
        "notes": notes,
        "policy": {"file": loaded.path.display().to_string(), "fingerprint": loaded.policy.fingerprint()},
        "issuer": issuer,
        "operation": operation,
        "explanation": explanation,
    });
    println!("{out:#}");
}

fn print_text(
    loaded: &Loaded,
    issuer: &str,
    claims: &Map<String, Value>,
    classified: &Result<Operation, cosmogate_protocol::ProtocolError>,
    explanation: Option<&Explanation>,
    notes: &[String],
) {
    for note in notes {
        println!("{note}");
    }
    println!(
        "policy:    {} (fingerprint {})",
        loaded.path.display(),
        loaded.policy.fingerprint()
    );
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    println!("principal: iss {issuer:?}, sub {sub:?}");
    let (op, explanation) = match (classified, explanation) {
        (Ok(op), Some(explanation)) => (op, explanation),
        (Err(err), _) => {
            println!(
                "operation: refused before the policy: {} ({err})",
                err.reason_code()
            );
            println!("decision:  DENY ({})", err.reason_code());
            return;
        }
        (Ok(_), None) => return,
    };
    print_operation(op);
    print_matches(explanation);
    print_decision(explanation);
}

fn print_operation(op: &Operation) {
    let actions: Vec<&str> = op.actions.iter().map(|a| a.as_str()).collect();
    println!("operation: {} [{}]", op.kind.as_str(), actions.join(", "));
    let name = |value: &Option<String>| {
        value
            .as_deref()
            .map_or("-".to_owned(), |v| format!("{v:?}"))
    };
    println!(
        "  database {}, container {}, item {}, partition key {}{}{}",
        name(&op.database),
        name(&op.container),
        name(&op.item_id),
        op.partition_key.as_ref().map_or("-", |k| k.raw.as_str()),
        if op.range_scoped {
            ", range-scoped"
        } else {
            ""
        },
        if op.rid_based {
            ", addressed by _rid"
        } else {
            ""
        },
    );
    for (i, item) in op.batch.iter().enumerate() {
        let key = item.partition_key.as_ref().map_or("-", |k| k.raw.as_str());
        println!(
            "  [{i}] {} ({}) partition key {key}",
            item.operation_type, item.action
        );
    }
}

fn print_matches(explanation: &Explanation) {
    println!("claims that mattered:");
    if explanation.claims.is_empty() {
        println!("  none");
    }
    for claim in &explanation.claims {
        let value = claim
            .value
            .as_ref()
            .map_or("(absent)".to_owned(), |v| capped(&v.to_string()));
        println!("  {} = {value}", claim.claim);
    }
    println!("bindings matched:");
    if explanation.bindings.is_empty() {
        println!("  none");
    }
    for binding in &explanation.bindings {
        println!("  {} -> role {:?}", binding.binding, binding.role);
    }
    println!("roles held:");
    if explanation.roles.is_empty() {
        println!("  none");
    }
    for role in &explanation.roles {
        let grants: Vec<&str> = role.grants.iter().map(|a| a.as_str()).collect();
        let grants = if grants.is_empty() {
            "nothing here".to_owned()
        } else {
            grants.join(", ")
        };
        print!("  {:?}: grants {grants}", role.name);
        if let Some(templates) = &role.partition_key {
            let resolved = role
                .resolved_partition_key
                .as_ref()
                .map_or("(claim missing)".to_owned(), |k| json!(k).to_string());
            let audit = if role.partition_audit_only {
                " (audit only)"
            } else {
                ""
            };
            print!("; only in partition {templates:?} = {resolved}{audit}");
        }
        println!();
    }
    println!("deny rules that apply:");
    if explanation.denies.is_empty() {
        println!("  none");
    }
    for deny in &explanation.denies {
        let actions: Vec<&str> = deny.actions.iter().map(|a| a.as_str()).collect();
        let state = match (deny.lifted_by_unless, deny.audit_only) {
            (true, _) => "lifted by its unless condition",
            (false, true) => "audit only",
            (false, false) => "enforced",
        };
        println!("  {:?} on [{}]: {state}", deny.rule, actions.join(", "));
    }
}

fn print_decision(explanation: &Explanation) {
    let decision = &explanation.decision;
    let verdict = if decision.allowed { "ALLOW" } else { "DENY" };
    let mut line = format!("decision:  {verdict} ({})", decision.reason);
    if let Some(rule) = &decision.rule {
        line.push_str(&format!(" by {rule:?}"));
    }
    if !decision.missing.is_empty() {
        let missing: Vec<&str> = decision.missing.iter().map(|a| a.as_str()).collect();
        line.push_str(&format!("; refused: {}", missing.join(", ")));
    }
    if let Some(index) = decision.batch_index {
        line.push_str(&format!("; first refused batch operation [{index}]"));
    }
    println!("{line}");
    for hit in &decision.shadow {
        println!(
            "  shadow: audit-only {:?} would have refused ({})",
            hit.rule, hit.reason
        );
    }
}

fn capped(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
