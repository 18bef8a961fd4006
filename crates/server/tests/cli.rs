//! The `cosmogate` command line: `check` reports every problem at once, and a configuration
//! that does not validate never serves.

use std::path::Path;
use std::process::Command;

fn cosmogate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cosmogate"))
}

/// Runs `cosmogate check --config <path>`.
fn check(path: &Path) -> std::process::Output {
    cosmogate()
        .arg("check")
        .arg("--config")
        .arg(path)
        .output()
        .expect("run")
}

/// `check` on the valid configuration plus `section`, in a fresh folder with certificates:
/// whether it passed, and its standard error.
fn check_with(section: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let path = dir.path().join("cosmogate.toml");
    let base = config("http://127.0.0.1:9400", 60, &policy_file());
    std::fs::write(&path, format!("{base}\n{section}\n")).expect("write");
    let output = check(&path);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn policy_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/policy.toml")
        .display()
        .to_string()
}

fn write_certs(dir: &Path) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("write key");
}

fn config(issuer_url: &str, leeway: u64, policy: &str) -> String {
    format!(
        r#"[listen]
address = "127.0.0.1:0"
tls_cert_file = "cert.pem"
tls_key_file = "key.pem"

[[issuers]]
issuer = "{issuer_url}"
audiences = ["api://cosmogate"]
leeway_seconds = {leeway}

[policy]
file = "{policy}"

[upstream]
endpoint = "https://127.0.0.1:8081/"

[upstream.credential]
kind = "managed_identity"
endpoint = "http://127.0.0.1:9/metadata/identity/oauth2/token"
"#
    )
}

#[test]
fn check_accepts_a_valid_configuration_and_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let path = dir.path().join("cosmogate.toml");
    std::fs::write(&path, config("http://127.0.0.1:9400", 60, &policy_file())).expect("write");

    let output = check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("configuration and policy are valid"),
        "{stdout}"
    );
}

#[test]
fn check_reports_every_problem_with_its_path_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cosmogate.toml");
    let text = config("http://idp.example.test", 900, "missing-policy.toml");
    std::fs::write(&path, text).expect("write");

    let output = check(&path);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "issuers[0].leeway_seconds",
        "issuers[0]",
        "listen.tls_cert_file",
        "listen.tls_key_file",
        "policy.file",
    ] {
        assert!(
            stderr.contains(expected),
            "no problem reported at {expected}: {stderr}"
        );
    }
    assert!(
        stderr.contains(&path.display().to_string()),
        "problems name the file"
    );
}

#[test]
fn check_bounds_the_header_count_and_the_token_cache() {
    let check_limits = |limits: &str| check_with(&format!("[limits]\n{limits}"));
    let (ok, stderr) = check_limits("max_header_count = 1000\ntoken_cache_entries = 0");
    assert!(
        ok,
        "the largest header count and a disabled cache are valid: {stderr}"
    );
    let (ok, stderr) = check_limits("max_header_count = 0\ntoken_cache_entries = 1000001");
    assert!(!ok);
    assert!(stderr.contains("limits.max_header_count"), "{stderr}");
    assert!(stderr.contains("limits.token_cache_entries"), "{stderr}");
    let (ok, stderr) = check_limits("max_header_count = 1001");
    assert!(
        !ok && stderr.contains("limits.max_header_count"),
        "{stderr}"
    );
}

#[test]
fn check_reports_an_audit_file_whose_directory_is_missing() {
    for (output, ok) in [("audit.jsonl", true), ("missing/audit.jsonl", false)] {
        let (success, stderr) = check_with(&format!("[audit]\noutput = \"{output}\""));
        assert_eq!(success, ok, "{output}: {stderr}");
        assert_eq!(
            stderr.contains("audit.output: the directory of"),
            !ok,
            "{output}: {stderr}"
        );
    }
}

#[test]
fn check_names_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_certs(dir.path());
    let path = dir.path().join("cosmogate.toml");
    let text = config("http://127.0.0.1:9400", 60, &policy_file())
        .replace("leeway_seconds = 60", "leeway_seconds = 60\nleway = 5");
    std::fs::write(&path, text).expect("write");

    let output = check(&path);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("leway"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_on_an_invalid_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cosmogate.toml");
    std::fs::write(&path, config("http://127.0.0.1:9400", 60, &policy_file())).expect("write");

    let output = cosmogate()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen.tls_cert_file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
