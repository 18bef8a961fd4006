//! The App Service protocol, which takes its endpoint and secret from the environment.
//!
//! Setting variables inside a running test process is `unsafe` (and forbidden here), so the
//! outer test starts the fake, then runs this same test binary again as a child with
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` set; the child does the credential work and the
//! outer test checks what the fake saw.

mod common;

use common::{ExpiresOn, Protocol, Reply, TokenFake, http_client, mi_config};
use cosmogate_upstream::{Credential, CredentialConfig, MiSource};
use http::Method;

const CHILD_MARKER: &str = "COSMOGATE_UPSTREAM_APP_SERVICE_CHILD";
const SECRET: &str = "rotating-secret-4711";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_service_protocol_is_followed_with_env_endpoint_and_legacy_expiry() {
    let protocol = Protocol::AppService {
        secret: SECRET.to_owned(),
    };
    let fake = TokenFake::start(protocol, ExpiresOn::LegacyDate, vec![], Reply::Token(3600)).await;
    let exe = std::env::current_exe().expect("test binary path");
    let output = tokio::process::Command::new(exe)
        .args(["--exact", "child_uses_the_app_service_credential"])
        .args(["--include-ignored", "--test-threads=1", "--nocapture"])
        .env(CHILD_MARKER, "1")
        .env("IDENTITY_ENDPOINT", fake.url.as_str())
        .env("IDENTITY_HEADER", SECRET)
        .output()
        .await
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test must have run: {stdout}"
    );

    let base = "api-version=2019-08-01&resource=https%3A%2F%2Fcosmos.azure.com";
    let expected = [
        base.to_owned(),
        format!("{base}&client_id=c-1"),
        format!("{base}&principal_id=o-1"),
        format!("{base}&mi_res_id=%2Fsubscriptions%2Fs%2Fid"),
    ];
    let seen = fake.seen();
    let queries: Vec<&str> = seen.iter().map(|r| r.query.as_str()).collect();
    assert_eq!(queries, expected);
    for request in &seen {
        assert_eq!(request.path, common::APP_SERVICE_PATH);
        let header = request
            .headers
            .get("x-identity-header")
            .map(|v| v.as_bytes());
        assert_eq!(header, Some(SECRET.as_bytes()));
    }
}

// Real time: the fake lives in the parent process, and a paused clock would jump ahead to
// the request timeout while the child waits for the other process to answer.
#[tokio::test]
#[ignore = "run as a child process by the test above, with its environment"]
async fn child_uses_the_app_service_credential() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let mut configs = vec![mi_config(MiSource::AppService, None); 4];
    configs[1].client_id = Some("c-1".into());
    configs[2].object_id = Some("o-1".into());
    configs[3].resource_id = Some("/subscriptions/s/id".into());
    for (n, mi) in configs.into_iter().enumerate() {
        // App Service answers carry no expires_in, so starting at all means the legacy date
        // form of expires_on was understood.
        let credential = Credential::new(&CredentialConfig::ManagedIdentity(mi), http_client())
            .await
            .expect("app service credential must start");
        let value = credential
            .authorization(&Method::GET, "", "", "ignored")
            .await
            .expect("token");
        let expected = format!("type=aad&ver=1.0&sig=token-{}", n + 1);
        assert_eq!(value.to_str().expect("ascii"), expected);
    }
}
