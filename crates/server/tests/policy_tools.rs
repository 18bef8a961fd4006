//! The policy tools through the real binary: `policy test` on the shipped cases, `check`
//! reporting configuration and policy problems together, and `explain` deciding without an
//! identity provider.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cosmogate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cosmogate"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_certs(dir: &Path) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("write key");
}

/// A configuration in `dir` naming `policy`; `leeway` above 300 makes it invalid.
fn config(dir: &Path, policy: &Path, leeway: u64) -> PathBuf {
    let text = format!(
        r#"[listen]
address = "127.0.0.1:0"
tls_cert_file = "cert.pem"
tls_key_file = "key.pem"

[[issuers]]
issuer = "http://127.0.0.1:9400"
audiences = ["api://cosmogate"]
leeway_seconds = {leeway}

[policy]
file = "{}"

[upstream]
endpoint = "https://127.0.0.1:8081/"

[upstream.credential]
kind = "managed_identity"
endpoint = "http://127.0.0.1:9/metadata/identity/oauth2/token"
"#,
        policy.display()
    );
    let path = dir.join("cosmogate.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn the_shipped_cases_pass_against_the_shipped_policy_through_a_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let config = config(dir.path(), &repo("config/policy.toml"), 60);
    let output = cosmogate()
        .args(["policy", "test", "--config"])
        .arg(&config)
        .arg(repo("config/policy-tests.toml"))
        .output()
        .expect("run");
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains(" passed, 0 failed"), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
}

#[test]
fn every_example_policy_passes_its_cases() {
    for name in ["analytics", "tenant-saas", "ci-upsert", "break-glass"] {
        let output = cosmogate()
            .args(["policy", "test", "--policy"])
            .arg(repo(&format!("config/examples/{name}.toml")))
            .arg(repo(&format!("config/examples/{name}-tests.toml")))
            .output()
            .expect("run");
        let report = text(&output);
        assert!(output.status.success(), "{name}: {report}");
        assert!(report.contains(" passed, 0 failed"), "{name}: {report}");
    }
}

#[test]
fn a_failing_case_fails_the_run_and_says_what_it_got() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"issuer = "http://127.0.0.1:9400"
[[cases]]
name = "the reader reads"
claims = { roles = ["cosmos.reader"] }
method = "GET"
path = "/dbs/shop/colls/orders/docs/o1"
expect = "allow"
[[cases]]
name = "the reader deletes"
claims = { roles = ["cosmos.reader"] }
method = "DELETE"
path = "/dbs/shop/colls/orders/docs/o1"
expect = "allow"
"#,
    )
    .expect("write cases");
    let output = cosmogate()
        .args(["policy", "test", "--policy"])
        .arg(repo("config/policy.toml"))
        .arg(&cases)
        .output()
        .expect("run");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("ok    cases[0] the reader reads"),
        "{report}"
    );
    assert!(
        report.contains(
            "FAIL  cases[1] the reader deletes: expected allow, got deny (action_not_granted)"
        ),
        "{report}"
    );
    assert!(report.contains("1 passed, 1 failed"), "{report}");
}

#[test]
fn a_broken_cases_file_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = dir.path().join("cases.toml");
    std::fs::write(&cases, "[[cases]]\nname = \"x\"\nexpect = \"maybe\"\n").expect("write");
    let output = cosmogate()
        .args(["policy", "test", "--policy"])
        .arg(repo("config/policy.toml"))
        .arg(&cases)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn check_reports_configuration_and_policy_problems_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n[[roles]]\nname = \"r\"\nactions = [\"items/raed\"]\nscopes = [\"/dbs/a/\"]\n",
    )
    .expect("write policy");
    let config = config(dir.path(), &policy, 900);
    let output = cosmogate()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    let report = text(&output);
    assert!(!output.status.success(), "{report}");
    for expected in [
        format!("{}: issuers[0].leeway_seconds", config.display()),
        format!("{}: roles[0].actions[0]: unknown action", policy.display()),
        format!("{}: roles[0].scopes[0]", policy.display()),
    ] {
        assert!(
            report.contains(&expected),
            "missing {expected:?} in {report}"
        );
    }
}

#[test]
fn check_warns_about_issuers_the_configuration_does_not_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n[[roles]]\nname = \"r\"\nbuiltin = \"data-reader\"\nscopes = [\"/\"]\n\
         [[bindings]]\nrole = \"r\"\nissuer = \"http://127.0.0.1:9400/\"\nclaim = \"roles\"\n\
         contains = \"x\"\n",
    )
    .expect("write policy");
    let config = config(dir.path(), &policy, 60);
    let output = cosmogate()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("configuration and policy are valid"),
        "{report}"
    );
    assert!(
        report.contains("warning: ") && report.contains("bindings[0].issuer"),
        "{report}"
    );
}

/// An unsigned token with the given payload; explain must decode it without verifying.
fn token(payload: &str) -> String {
    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"RS256","kid":"k"}"#),
        b64(payload.as_bytes())
    )
}

#[test]
fn explain_decides_from_an_unverified_token_and_says_so() {
    let jwt =
        token(r#"{"iss":"http://127.0.0.1:9400","sub":"app-reader","roles":["cosmos.reader"]}"#);
    let read = cosmogate()
        .args(["explain", "--policy"])
        .arg(repo("config/policy.toml"))
        .args(["--token", &jwt, "GET", "/dbs/shop/colls/orders/docs/o1"])
        .args(["-H", "x-ms-documentdb-partitionkey: [\"o1\"]"])
        .output()
        .expect("run");
    let report = text(&read);
    assert_eq!(read.status.code(), Some(0), "{report}");
    assert!(report.contains("WITHOUT verifying"), "{report}");
    assert!(
        report.contains("operation: read_item [items/read]"),
        "{report}"
    );
    assert!(report.contains("roles = [\"cosmos.reader\"]"), "{report}");
    assert!(
        report.contains("bindings[0] -> role \"orders-reader\""),
        "{report}"
    );
    assert!(
        report.contains("decision:  ALLOW (allowed) by \"orders-reader\""),
        "{report}"
    );
    assert!(!report.contains(&jwt), "the token is never printed");

    let delete = cosmogate()
        .args(["explain", "--policy"])
        .arg(repo("config/policy.toml"))
        .args([
            "--token",
            &format!("Bearer {jwt}"),
            "DELETE",
            "/dbs/shop/colls/orders/docs/o1",
        ])
        .output()
        .expect("run");
    let report = text(&delete);
    assert_eq!(delete.status.code(), Some(1), "{report}");
    assert!(report.contains("DENY (action_not_granted)"), "{report}");
}

#[test]
fn explain_takes_claims_from_a_file_and_reports_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let claims = dir.path().join("claims.json");
    std::fs::write(&claims, r#"{"sub":"app-writer","roles":["cosmos.writer"]}"#).expect("write");
    let output = cosmogate()
        .args([
            "explain",
            "--json",
            "--issuer",
            "http://127.0.0.1:9400",
            "--policy",
        ])
        .arg(repo("config/policy.toml"))
        .arg("--claims")
        .arg(&claims)
        .args([
            "POST",
            "/dbs/shop/colls/orders/docs",
            "-H",
            "x-ms-documentdb-partitionkey: [\"o\"]",
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json output");
    assert_eq!(json["explanation"]["decision"]["allowed"], true);
    assert_eq!(json["explanation"]["decision"]["rule"], "orders-writer");
    assert_eq!(json["operation"]["kind"], "create_item");
    assert_eq!(
        json["notes"],
        serde_json::json!([]),
        "no token, so no unverified note"
    );
}
