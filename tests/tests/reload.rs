//! Policy hot reload in a running gateway: a valid change takes effect without a restart, an
//! invalid one is refused and the running policy stays.

use std::time::Duration;

use cosmogate_e2e::{Stack, StackOptions, UpstreamAuth, repo_root};

async fn create_status(stack: &Stack, authorization: &str, id: &str) -> u16 {
    let http = stack.https_client().expect("client");
    let response = http
        .post(format!("{}dbs/shop/colls/orders/docs", stack.gateway_url))
        .header("authorization", authorization)
        .header("x-ms-documentdb-partitionkey", "[\"t1\"]")
        .header("content-type", "application/json")
        .body(format!("{{\"id\":\"{id}\",\"tenant\":\"t1\"}}"))
        .send()
        .await
        .expect("a response");
    response.status().as_u16()
}

/// Polls until the gateway answers `want` (the watcher checks the file every 2 s).
async fn eventually(stack: &Stack, authorization: &str, want: u16) -> bool {
    for attempt in 0..40 {
        if create_status(stack, authorization, &format!("reload-{want}-{attempt}")).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_is_swapped_in_and_an_invalid_one_is_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let policy = scratch.path().join("policy.toml");
    let original = std::fs::read_to_string(repo_root().join("config/policy.toml")).expect("policy");
    std::fs::write(&policy, &original).expect("write");
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.policy_file = Some(policy.clone());
    let stack = Stack::start(&options)
        .await
        .expect("the local stack starts");
    let token = stack
        .idp
        .token("app-reader", "reader-secret")
        .await
        .expect("token");
    let reader = format!("type=aad&ver=1.0&sig={token}");
    assert_eq!(create_status(&stack, &reader, "before").await, 403);

    // Give the reader's role write access too.
    let widened = original.replacen(
        "builtin = \"data-reader\"",
        "builtin = \"data-contributor\"",
        1,
    );
    assert_ne!(widened, original);
    std::fs::write(&policy, &widened).expect("write");
    assert!(
        eventually(&stack, &reader, 201).await,
        "the widened policy took effect"
    );

    std::fs::write(&policy, "version = 1\n[[roles]]\nname = 7\n").expect("write");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        create_status(&stack, &reader, "after-invalid").await,
        201,
        "the old policy stays"
    );

    std::fs::write(&policy, &original).expect("write");
    assert!(
        eventually(&stack, &reader, 403).await,
        "the original policy is back"
    );

    let audit = stack.audit().await;
    let versions: std::collections::BTreeSet<&str> = audit
        .iter()
        .filter_map(|r| r["policy_version"].as_str())
        .collect();
    assert_eq!(
        versions.len(),
        2,
        "records name the policy that decided: {versions:?}"
    );
}
