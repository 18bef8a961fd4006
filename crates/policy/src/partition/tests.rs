use serde_json::json;

use super::*;
use crate::test_support::claims;

fn rule(templates: &[&str]) -> PartitionRule {
    let templates: Vec<String> = templates.iter().map(|t| (*t).to_owned()).collect();
    PartitionRule::parse(&templates, false, "roles[0].partition_key").expect("valid templates")
}

fn key(values: Value) -> PartitionKey {
    PartitionKey {
        raw: values.to_string(),
        values: match values {
            Value::Array(values) => values,
            other => panic!("test keys are arrays, got {other}"),
        },
    }
}

fn problems(templates: &[&str]) -> Vec<String> {
    let templates: Vec<String> = templates.iter().map(|t| (*t).to_owned()).collect();
    match PartitionRule::parse(&templates, false, "p") {
        Ok(rule) => panic!("expected problems, got {rule:?}"),
        Err(problems) => problems,
    }
}

#[test]
fn a_claim_placeholder_allows_exactly_the_partition_of_that_claim() {
    let rule = rule(&["{claims.tenant}"]);
    let token = claims(json!({"tenant": "t1"}));
    assert_eq!(rule.check(Some(&key(json!(["t1"]))), &token), Ok(()));
    assert_eq!(
        rule.check(Some(&key(json!(["t2"]))), &token),
        Err(Refusal::Mismatch)
    );
    assert_eq!(
        rule.check(Some(&key(json!(["T1"]))), &token),
        Err(Refusal::Mismatch)
    );
    assert_eq!(rule.check(None, &token), Err(Refusal::Required));
}

#[test]
fn empty_null_and_undefined_keys_are_other_partitions() {
    let rule = rule(&["{claims.tenant}"]);
    let token = claims(json!({"tenant": "t1"}));
    for other in [json!([]), json!([null]), json!([{}]), json!([["t1"]])] {
        assert_eq!(
            rule.check(Some(&key(other.clone())), &token),
            Err(Refusal::Mismatch),
            "{other}"
        );
    }
}

#[test]
fn hierarchical_keys_must_start_with_the_allowed_components() {
    let tenant = rule(&["{claims.tenant}"]);
    let token = claims(json!({"tenant": "t1", "user": "u1"}));
    assert_eq!(
        tenant.check(Some(&key(json!(["t1", "u9"]))), &token),
        Ok(())
    );
    assert_eq!(
        tenant.check(Some(&key(json!(["t2", "t1"]))), &token),
        Err(Refusal::Mismatch)
    );

    let user = rule(&["{claims.tenant}", "{claims.user}"]);
    assert_eq!(user.check(Some(&key(json!(["t1", "u1"]))), &token), Ok(()));
    assert_eq!(
        user.check(Some(&key(json!(["t1"]))), &token),
        Err(Refusal::Mismatch),
        "a prefix key reaches every user of the tenant"
    );
    assert_eq!(
        user.check(Some(&key(json!(["t1", "u2"]))), &token),
        Err(Refusal::Mismatch)
    );
}

#[test]
fn a_missing_or_unusable_claim_allows_no_partition() {
    let rule = rule(&["{claims.tenant}"]);
    for token in [
        json!({}),
        json!({"tenant": null}),
        json!({"tenant": ["t1"]}),
        json!({"tenant": {"id": "t1"}}),
    ] {
        assert_eq!(
            rule.check(Some(&key(json!(["t1"]))), &claims(token.clone())),
            Err(Refusal::ClaimMissing),
            "{token}"
        );
    }
}

#[test]
fn a_whole_placeholder_keeps_the_claim_type_and_mixed_text_builds_a_string() {
    let number = rule(&["{claims.org}"]);
    let token = claims(json!({"org": 42, "tenant": "t1", "app": {"region": "eu"}}));
    assert_eq!(number.check(Some(&key(json!([42]))), &token), Ok(()));
    assert_eq!(
        number.check(Some(&key(json!(["42"]))), &token),
        Err(Refusal::Mismatch)
    );

    let mixed = rule(&["tenant-{claims.tenant}-{claims.app.region}"]);
    assert_eq!(mixed.resolve(&token), Ok(vec![json!("tenant-t1-eu")]));
    let literal = rule(&["shared"]);
    assert_eq!(literal.check(Some(&key(json!(["shared"]))), &token), Ok(()));

    let mixed_number = rule(&["org-{claims.org}"]);
    assert_eq!(mixed_number.resolve(&token), Err(Refusal::ClaimMissing));
}

#[test]
fn malformed_templates_are_reported_with_their_index() {
    assert_eq!(problems(&[]), ["p: must not be empty"]);
    let found = problems(&["ok", "{tenant}", "{claims.}", "{claims.a", "a}", ""]);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found[0].starts_with("p[1]: unknown placeholder {tenant}"),
        "{found:#?}"
    );
    assert!(found[1].starts_with("p[2]: bad claim path"), "{found:#?}");
    assert!(
        found[2].starts_with("p[3]: unbalanced braces"),
        "{found:#?}"
    );
    assert!(
        found[3].starts_with("p[4]: unbalanced braces"),
        "{found:#?}"
    );
    assert_eq!(found[4], "p[5]: must not be empty");
}

#[test]
fn claim_paths_lists_every_placeholder() {
    let rule = rule(&["{claims.tenant}", "x-{claims.user.id}"]);
    let paths: Vec<&str> = rule.claim_paths().map(ClaimPath::as_str).collect();
    assert_eq!(paths, ["tenant", "user.id"]);
    assert_eq!(rule.templates(), ["{claims.tenant}", "x-{claims.user.id}"]);
}
