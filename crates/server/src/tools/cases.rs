//! `cosmogate policy test`: table-driven policy tests a platform team runs in its own CI.
//!
//! A cases file lists principals, requests and the decision each must get:
//!
//! ```toml
//! issuer = "https://login.microsoftonline.com/<tenant>/v2.0"   # default for every case
//!
//! [[cases]]
//! name = "the reader may read an order"
//! claims = { roles = ["orders.read"] }
//! method = "GET"
//! path = "/dbs/shop/colls/orders/docs/o1"
//! headers = { "x-ms-documentdb-partitionkey" = '["o1"]' }
//! expect = "allow"            # or "deny"
//! reason = "allowed"          # optional: the decision's reason code
//! rule = "orders-reader"      # optional: the rule that decided
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use cosmogate_policy::{Policy, Subject};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::PolicySource;
use super::explain::classify;

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    #[command(flatten)]
    source: PolicySource,
    /// The cases file (TOML).
    cases: PathBuf,
}

/// A cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    /// The issuer of cases that name none. Default: each case's `claims.iss`.
    #[serde(default)]
    issuer: Option<String>,
    /// The cases, run in order. Required, non-empty.
    cases: Vec<Case>,
}

/// One principal, one request, one expected decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Shown in the report. Required.
    name: String,
    /// The token's `iss`. Default: the file's `issuer`, else `claims.iss`.
    #[serde(default)]
    issuer: Option<String>,
    /// The token's claims, as a verified token would carry them. Default: none.
    #[serde(default)]
    claims: Map<String, Value>,
    /// The request method. Required.
    method: String,
    /// The request path, exactly as sent. Required.
    path: String,
    /// Request headers. Default: none.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The request body, for batch and bulk. Default: empty.
    #[serde(default)]
    body: String,
    /// `allow` or `deny`. Required.
    expect: Expect,
    /// The expected reason code; a request the classifier refuses has the classifier's code
    /// (`malformed_path`, `rid_addressing_refused`, …). Default: not checked.
    #[serde(default)]
    reason: Option<String>,
    /// The expected deciding rule. Default: not checked.
    #[serde(default)]
    rule: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Allow,
    Deny,
}

/// What a case got.
struct Outcome {
    allowed: bool,
    reason: String,
    rule: Option<String>,
}

/// Runs every case and reports each. Exits 0 when all pass, 1 when any fails, 2 when the
/// policy or the cases file cannot be used.
pub(crate) fn policy_test(args: &TestArgs) -> ExitCode {
    let Some(loaded) = args.source.load() else {
        return ExitCode::from(2);
    };
    let file = match read_cases(&args.cases) {
        Ok(file) => file,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "policy {} (fingerprint {}), cases {}",
        loaded.path.display(),
        loaded.policy.fingerprint(),
        args.cases.display()
    );
    let mut failed = 0;
    for (i, case) in file.cases.iter().enumerate() {
        let verdict = run_case(&loaded.policy, file.issuer.as_deref(), case);
        match verdict {
            Ok(()) => println!("ok    cases[{i}] {}", case.name),
            Err(why) => {
                failed += 1;
                println!("FAIL  cases[{i}] {}: {why}", case.name);
            }
        }
    }
    let passed = file.cases.len() - failed;
    println!("policy test: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read_cases(path: &std::path::Path) -> Result<CasesFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: CasesFile = toml::from_str(&text)
        .map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end()))?;
    if file.cases.is_empty() {
        return Err(format!("{}: cases: must not be empty", path.display()));
    }
    Ok(file)
}

/// `Ok` when the case got what it expected, else what it got instead.
fn run_case(policy: &Policy, default_issuer: Option<&str>, case: &Case) -> Result<(), String> {
    let outcome = decide(policy, default_issuer, case)?;
    let got = if outcome.allowed { "allow" } else { "deny" };
    let summary = format!(
        "{got} ({}{})",
        outcome.reason,
        outcome
            .rule
            .as_deref()
            .map(|r| format!(", rule {r:?}"))
            .unwrap_or_default()
    );
    let wanted = if case.expect == Expect::Allow {
        "allow"
    } else {
        "deny"
    };
    if outcome.allowed != (case.expect == Expect::Allow) {
        return Err(format!("expected {wanted}, got {summary}"));
    }
    if let Some(reason) = case.reason.as_deref().filter(|r| *r != outcome.reason) {
        return Err(format!("expected reason {reason:?}, got {summary}"));
    }
    if let Some(rule) = &case.rule
        && outcome.rule.as_ref() != Some(rule)
    {
        return Err(format!("expected rule {rule:?}, got {summary}"));
    }
    Ok(())
}

fn decide(policy: &Policy, default_issuer: Option<&str>, case: &Case) -> Result<Outcome, String> {
    let issuer = case
        .issuer
        .as_deref()
        .or(default_issuer)
        .or_else(|| case.claims.get("iss").and_then(Value::as_str))
        .ok_or("no issuer: set issuer in the case or the file, or claims.iss")?;
    let method = Method::from_bytes(case.method.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", case.method))?;
    let headers = headers(&case.headers)?;
    let op = match classify(&method, &case.path, &headers, case.body.as_bytes()) {
        Ok(op) => op,
        Err(err) => {
            return Ok(Outcome {
                allowed: false,
                reason: err.reason_code().to_owned(),
                rule: None,
            });
        }
    };
    let decision = policy.decide(
        &Subject {
            issuer,
            claims: &case.claims,
        },
        &op,
    );
    Ok(Outcome {
        allowed: decision.allowed,
        reason: decision.reason.to_owned(),
        rule: decision.rule,
    })
}

fn headers(given: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in given {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of {name} is not a valid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
version = 1
[[roles]]
name = "reader"
builtin = "data-reader"
scopes = ["/dbs/shop/colls/orders"]
[[bindings]]
role = "reader"
claim = "roles"
contains = "r"
"#;

    fn case(text: &str) -> Case {
        toml::from_str(text).expect("test case parses")
    }

    #[test]
    fn a_case_passes_when_decision_reason_and_rule_match() {
        let policy = Policy::from_toml(POLICY, "p").expect("valid");
        let ok = case(
            r#"name = "n"
issuer = "i"
claims = { roles = ["r"] }
method = "GET"
path = "/dbs/shop/colls/orders/docs/o1"
expect = "allow"
reason = "allowed"
rule = "reader""#,
        );
        assert_eq!(run_case(&policy, None, &ok), Ok(()));
    }

    #[test]
    fn a_case_fails_with_what_it_got_instead() {
        let policy = Policy::from_toml(POLICY, "p").expect("valid");
        let wrong = case(
            r#"name = "n"
claims = { iss = "i", roles = ["r"] }
method = "DELETE"
path = "/dbs/shop/colls/orders/docs/o1"
expect = "allow""#,
        );
        let why = run_case(&policy, None, &wrong).expect_err("the reader may not delete");
        assert_eq!(why, "expected allow, got deny (action_not_granted)");
    }

    #[test]
    fn a_request_the_classifier_refuses_is_a_deny_with_its_reason() {
        let policy = Policy::from_toml(POLICY, "p").expect("valid");
        let trick = case(
            r#"name = "n"
method = "GET"
path = "/dbs/shop/colls/orders/../payroll/docs/p1"
expect = "deny"
reason = "malformed_path""#,
        );
        assert_eq!(run_case(&policy, Some("i"), &trick), Ok(()));
        let no_issuer = case("name = \"n\"\nmethod = \"GET\"\npath = \"/\"\nexpect = \"deny\"");
        assert!(run_case(&policy, None, &no_issuer).is_err());
    }
}
