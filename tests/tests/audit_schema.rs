//! Real audit records match the published schema: a session through cosmogate (SDK traffic
//! and hand-made requests: allowed, 403, 401, an oversized header and path), then every line
//! cosmogate wrote is validated against `docs/audit-log.schema.json`, and every request is
//! found in exactly one record. The auditor's summary of the same file counts the same.

use std::collections::HashMap;

use cosmogate_e2e::{Sdk, Stack, StackOptions, UpstreamAuth, repo_root, run_app};
use serde_json::{Value, json};

const WRITER: (&str, &str) = ("app-writer", "writer-secret");
const READER: (&str, &str) = ("app-reader", "reader-secret");
const ACTIVITY_ID: &str = "6f1c7d5e-2a3b-4c4d-8e9f-0a1b2c3d4e5f";

fn validator() -> jsonschema::Validator {
    let path = repo_root().join("docs/audit-log.schema.json");
    let text = std::fs::read_to_string(&path).expect("the schema file is readable");
    let schema: Value = serde_json::from_str(&text).expect("the schema file is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

/// A request made by hand, what cosmogate should have decided, and the id it answered with.
#[derive(Debug)]
struct Sent {
    name: &'static str,
    status: u16,
    decision: &'static str,
    reason: Option<&'static str>,
    request_id: String,
}

struct Session<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
    sent: Vec<Sent>,
}

impl Session<'_> {
    /// Sends `request` and remembers what its record should say; `reason: None` when the
    /// outcome upstream does not matter, only that it was allowed through.
    async fn send(
        &mut self,
        name: &'static str,
        request: reqwest::RequestBuilder,
        expect: (&'static str, Option<&'static str>),
    ) {
        let response = request.send().await.expect("a response");
        let request_id = response
            .headers()
            .get("x-cosmogate-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{name}: no x-cosmogate-request-id"))
            .to_owned();
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        self.sent.push(Sent {
            name,
            status,
            decision: expect.0,
            reason: expect.1,
            request_id,
        });
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.gateway_url)
    }
}

/// Allowed reads and writes, a 403 for another container and for a reader's write, 401s for
/// a missing and a forged token, and client strings far over the cap.
async fn hand_made_requests(session: &mut Session<'_>, writer: &str, reader: &str) {
    let aad = |token: &str| format!("type=aad&ver=1.0&sig={token}");
    let pk = ("x-ms-documentdb-partitionkey", "[\"t1\"]");
    let item = json!({ "id": "audit-1", "tenant": "t1" }).to_string();
    let orders = session.url("dbs/shop/colls/orders/docs");
    let http = session.http.clone();

    let account = http
        .get(session.url(""))
        .header("authorization", aad(writer));
    session.send("account", account, ("allow", None)).await;
    let create = http
        .post(&orders)
        .header("authorization", aad(writer))
        .header(pk.0, pk.1)
        .header("content-type", "application/json")
        .body(item.clone());
    session.send("create", create, ("allow", None)).await;
    let read = http
        .get(format!("{orders}/audit-1"))
        .header("authorization", format!("Bearer {writer}"))
        .header(pk.0, pk.1)
        .header("x-ms-activity-id", ACTIVITY_ID)
        .header("user-agent", "u".repeat(2000));
    session.send("read", read, ("allow", None)).await;
    let long = format!("{orders}/{}", "i".repeat(2000));
    let long = http
        .get(long)
        .header("authorization", aad(reader))
        .header(pk.0, pk.1);
    session.send("long item id", long, ("allow", None)).await;

    let payroll = http
        .get(session.url("dbs/shop/colls/payroll/docs/x"))
        .header("authorization", aad(writer))
        .header(pk.0, pk.1);
    let refused = ("deny", Some("action_not_granted"));
    session.send("other container", payroll, refused).await;
    let write = http
        .post(&orders)
        .header("authorization", aad(reader))
        .header(pk.0, pk.1)
        .body(item);
    session.send("reader write", write, refused).await;

    let anonymous = http.get(format!("{orders}/audit-1")).header(pk.0, pk.1);
    let missing = ("deny", Some("missing_credential"));
    session.send("no token", anonymous, missing).await;
    let forged = forged(writer, reader);
    let forged = http
        .get(format!("{orders}/audit-1"))
        .header("authorization", aad(&forged))
        .header(pk.0, pk.1);
    let bad = ("deny", Some("bad_signature"));
    session.send("forged token", forged, bad).await;
}

/// `token` with `other`'s signature.
fn forged(token: &str, other: &str) -> String {
    let (signed, _) = token.rsplit_once('.').expect("a signed token");
    let (_, signature) = other.rsplit_once('.').expect("a signed token");
    format!("{signed}.{signature}")
}

/// SDK traffic: a writer's allowed operations and a reader's refused write.
async fn sdk_requests(stack: &Stack) {
    let writer = stack
        .app(WRITER.0, WRITER.1)
        .with_ops(&["create", "read", "query_pk", "upsert", "delete"]);
    let results = run_app(Sdk::Js, &writer)
        .await
        .expect("the writer app runs");
    assert!(results.iter().all(|result| result.ok), "{results:#?}");
    let reader = stack.app(READER.0, READER.1).with_ops(&["create"]);
    let results = run_app(Sdk::Js, &reader)
        .await
        .expect("the reader app runs");
    assert_eq!(results[0].status, Some(403), "{results:#?}");
}

/// Every line of the audit file, parsed and checked against the schema.
fn validated_records(stack: &Stack) -> Vec<Value> {
    let validator = validator();
    let text = std::fs::read_to_string(&stack.audit_path).expect("the audit file");
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("audit line {}: not JSON: {err}", number + 1));
        let problems: Vec<String> = validator
            .iter_errors(&record)
            .map(|err| format!("{}: {err}", err.instance_path()))
            .collect();
        assert!(
            problems.is_empty(),
            "audit line {} breaks the schema: {problems:#?}\n{record:#}",
            number + 1
        );
        records.push(record);
    }
    records
}

fn by_request_id(records: &[Value]) -> HashMap<&str, &Value> {
    let mut index = HashMap::new();
    for record in records {
        let id = record["request_id"].as_str().expect("a request id");
        assert!(index.insert(id, record).is_none(), "request id {id} twice");
    }
    index
}

fn check_hand_made(sent: &[Sent], index: &HashMap<&str, &Value>) {
    for request in sent {
        let record = index
            .get(request.request_id.as_str())
            .unwrap_or_else(|| panic!("no record for {request:?}"));
        assert_eq!(
            record["decision"], request.decision,
            "{request:?}: {record:#}"
        );
        assert_eq!(record["status"], request.status, "{request:?}: {record:#}");
        if let Some(reason) = request.reason {
            assert_eq!(record["reason"], reason, "{request:?}: {record:#}");
        }
        let peer = record["client_address"].as_str().unwrap_or_default();
        assert!(peer.starts_with("127.0.0.1:"), "{record:#}");
    }
    let read = find(sent, index, "read");
    assert_eq!(read["activity_id"], ACTIVITY_ID);
    let agent = read["user_agent"].as_str().expect("the user agent");
    assert!(
        agent.ends_with('…') && agent.chars().count() == 513,
        "{agent}"
    );
    let long = find(sent, index, "long item id");
    let item = long["item_id"].as_str().expect("the item id");
    assert!(item.chars().count() <= 513, "{item}");
    for name in ["no token", "forged token"] {
        assert!(find(sent, index, name)["principal"].is_null());
    }
}

fn find<'a>(sent: &[Sent], index: &HashMap<&str, &'a Value>, name: &str) -> &'a Value {
    let request = sent.iter().find(|request| request.name == name);
    let id = request.expect("the request was sent").request_id.as_str();
    index[id]
}

/// The Cosmos server saw exactly the allowed requests, each under the activity id of one
/// allowed record.
fn check_upstream(stack: &Stack, records: &[Value]) {
    let mut allowed: HashMap<&str, usize> = HashMap::new();
    for record in records
        .iter()
        .filter(|record| record["decision"] == "allow")
    {
        let activity = record["activity_id"].as_str().expect("an activity id");
        *allowed.entry(activity).or_default() += 1;
    }
    let upstream = stack.cosmos.requests();
    let total: usize = allowed.values().sum();
    assert_eq!(
        total,
        upstream.len(),
        "allowed records against upstream requests"
    );
    for request in &upstream {
        let activity = request["headers"]["x-ms-activity-id"].as_str();
        let activity = activity.unwrap_or_else(|| panic!("no activity id upstream: {request}"));
        assert_eq!(allowed.get(activity), Some(&1), "{activity}: {request}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_of_a_real_session_matches_the_schema_and_each_request_has_one() {
    let stack = Stack::start(&StackOptions::new(UpstreamAuth::ManagedIdentity))
        .await
        .expect("the local stack starts");
    let writer = stack.idp.token(WRITER.0, WRITER.1).await.expect("a token");
    let reader = stack.idp.token(READER.0, READER.1).await.expect("a token");
    let http = stack.https_client().expect("client");
    let mut session = Session {
        stack: &stack,
        http,
        sent: Vec::new(),
    };
    hand_made_requests(&mut session, &writer, &reader).await;
    let sent = session.sent;
    sdk_requests(&stack).await;

    stack.audit().await;
    let records = validated_records(&stack);
    let index = by_request_id(&records);
    check_hand_made(&sent, &index);
    check_upstream(&stack, &records);

    let denied_by_sdk = records
        .iter()
        .filter(|record| record["decision"] == "deny")
        .filter(|record| !sent.iter().any(|s| s.request_id == record["request_id"]))
        .count();
    assert_eq!(
        denied_by_sdk, 1,
        "one record for the reader's refused write"
    );
}
