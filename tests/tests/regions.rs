//! A multi-region account behind cosmogate: SDKs that follow endpoint discovery keep their
//! regional routing, and every request still passes through cosmogate.
//!
//! The Cosmos server advertises two regions at two loopback names of one process, `West US`
//! (write) at `https://127.0.0.1:Q/` and `East US` at `https://localhost:Q/`; cosmogate
//! advertises them as `https://127.0.0.1:P/` and `https://localhost:P/`. The `Host` each request
//! reached the Cosmos server with tells which regional endpoint cosmogate chose.

use cosmogate_e2e::{Sdk, Stack, StackOptions, UpstreamAuth, run_app};
use serde_json::Value;

const WRITER: (&str, &str) = ("app-writer", "writer-secret");

/// A free port on 127.0.0.1 for cosmogate: the region URLs in its config must name it.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

async fn regional_stack() -> (Stack, u16) {
    let port = free_port();
    let mut options = StackOptions::new(UpstreamAuth::ManagedIdentity);
    options.listen = format!("127.0.0.1:{port}");
    options.cosmos_regions = vec![
        ("West US".to_owned(), "127.0.0.1".to_owned()),
        ("East US".to_owned(), "localhost".to_owned()),
    ];
    let mut stack = Stack::prepare(&options)
        .await
        .expect("the local stack starts");
    let upstream = stack.cosmos.port;
    let regions = format!(
        r#"
[[upstream.regions]]
name = "West US"
endpoint = "https://127.0.0.1:{upstream}/"
public_url = "https://127.0.0.1:{port}/"

[[upstream.regions]]
name = "eastus"
endpoint = "https://localhost:{upstream}/"
public_url = "https://localhost:{port}/"
"#
    );
    let mut text = std::fs::read_to_string(&stack.config_path).expect("config");
    text.push_str(&regions);
    std::fs::write(&stack.config_path, text).expect("config");
    stack.start_gateway().await.expect("cosmogate starts");
    (stack, port)
}

/// The host each data request (not `GET /`) reached the Cosmos server with, by method.
fn upstream_hosts(stack: &Stack) -> Vec<(String, String, String)> {
    stack
        .cosmos
        .requests()
        .iter()
        .filter(|r| r["url"] != "/")
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["url"].as_str().unwrap_or_default().to_owned(),
                r["host"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_document_advertises_one_public_url_per_region() {
    let (stack, port) = regional_stack().await;
    let upstream = stack.cosmos.port;
    let token = stack.idp.token(WRITER.0, WRITER.1).await.expect("a token");
    let response = stack
        .https_client()
        .expect("client")
        .get(&stack.gateway_url)
        .header("authorization", format!("type=aad&ver=1.0&sig={token}"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(
        !text.contains(&format!(":{upstream}")),
        "no upstream endpoint may reach the client: {text}"
    );
    let document: Value = serde_json::from_str(&text).expect("json");
    let endpoints = |list: &str| -> Vec<(String, String)> {
        document[list]
            .as_array()
            .expect("a location list")
            .iter()
            .map(|l| {
                (
                    l["name"].as_str().unwrap_or_default().to_owned(),
                    l["databaseAccountEndpoint"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    };
    let west = ("West US".to_owned(), format!("https://127.0.0.1:{port}/"));
    let east = ("East US".to_owned(), format!("https://localhost:{port}/"));
    assert_eq!(endpoints("writableLocations"), std::slice::from_ref(&west));
    assert_eq!(endpoints("readableLocations"), [west, east]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_preferring_a_read_region_read_there_and_write_to_the_write_region() {
    let (stack, _) = regional_stack().await;
    let upstream = stack.cosmos.port;
    for sdk in [Sdk::Js, Sdk::Python] {
        let before = upstream_hosts(&stack).len();
        let mut app = stack
            .app(WRITER.0, WRITER.1)
            .with_ops(&["create", "read", "replace"]);
        app.preferred_locations = vec!["East US".to_owned()];
        let results = run_app(sdk, &app).await.expect("the app runs");
        for result in &results {
            assert!(result.ok, "{sdk:?} {result:?}");
        }
        let hosts = upstream_hosts(&stack).split_off(before);
        let write_region = format!("127.0.0.1:{upstream}");
        let read_region = format!("localhost:{upstream}");
        let create = hosts.iter().find(|(m, _, _)| m == "POST");
        let read = hosts.iter().find(|(m, _, _)| m == "GET");
        let replace = hosts.iter().find(|(m, _, _)| m == "PUT");
        assert_eq!(
            create.map(|h| &h.2),
            Some(&write_region),
            "{sdk:?}: {hosts:?}"
        );
        assert_eq!(
            replace.map(|h| &h.2),
            Some(&write_region),
            "{sdk:?}: {hosts:?}"
        );
        assert_eq!(read.map(|h| &h.2), Some(&read_region), "{sdk:?}: {hosts:?}");
    }

    // The audit records name the region each request went to.
    let records = stack.audit().await;
    let regions_of = |operation: &str| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r["operation"] == operation)
            .map(|r| r["upstream_region"].clone())
            .collect()
    };
    assert!(!regions_of("create_item").is_empty(), "{records:#?}");
    assert!(regions_of("create_item").iter().all(|r| r == "West US"));
    assert!(!regions_of("read_item").is_empty());
    assert!(regions_of("read_item").iter().all(|r| r == "eastus"));
    // Every host the apps used is a region's public host, so every forwarded request has one.
    assert!(
        records
            .iter()
            .all(|r| r["upstream_region"].is_string() || r["upstream_status"].is_null()),
        "{records:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_names_no_region_goes_to_the_account_endpoint() {
    let (stack, port) = regional_stack().await;
    let token = stack.idp.token(WRITER.0, WRITER.1).await.expect("a token");
    // HTTP/1.1, so the host is the `Host` header (HTTP/2 would name the URL's authority).
    let ca =
        reqwest::Certificate::from_pem(stack.certs.ca_pem().expect("ca").as_bytes()).expect("ca");
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .http1_only()
        .build()
        .expect("client");
    let response = client
        .get(format!("https://127.0.0.1:{port}/dbs/shop/colls/orders"))
        .header("host", format!("cosmogate.internal:{port}"))
        .header("authorization", format!("type=aad&ver=1.0&sig={token}"))
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    let last = upstream_hosts(&stack).pop().expect("forwarded");
    // The account endpoint of the stack is https://127.0.0.1:Q/.
    assert_eq!(last.2, format!("127.0.0.1:{}", stack.cosmos.port));
    let records = stack.audit().await;
    let record = records
        .iter()
        .rev()
        .find(|r| r["operation"] == "read_container")
        .expect("a record");
    assert_eq!(record["upstream_region"], Value::Null, "{record:#}");
}
