//! The audit record's JSON Schema (`docs/audit-log.schema.json`) accepts the records cosmogate
//! writes and refuses anything else. Real records from a full run are validated against the
//! same file by the end-to-end rig (`tests/tests/audit_schema.rs`).

use std::path::PathBuf;

use serde_json::{Value, json};

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn schema() -> Value {
    let text = std::fs::read_to_string(docs_dir().join("audit-log.schema.json"))
        .expect("the schema file is readable");
    serde_json::from_str(&text).expect("the schema file is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema())
        .expect("the schema compiles")
}

fn problems(record: &Value) -> Vec<String> {
    validator()
        .iter_errors(record)
        .map(|err| format!("{}: {err}", err.instance_path()))
        .collect()
}

fn assert_valid(record: &Value) {
    let problems = problems(record);
    assert!(problems.is_empty(), "{problems:#?}\n{record:#}");
}

fn assert_invalid(record: &Value, why: &str) {
    assert!(
        !problems(record).is_empty(),
        "accepted a record with {why}: {record:#}"
    );
}

/// An allowed item read, every optional field filled.
fn allowed() -> Value {
    json!({
        "schema": "cosmogate.audit/1",
        "time": "2026-12-03T11:03:12.325Z",
        "request_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "activity_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "client_address": "10.1.2.3:50412",
        "forwarded_for": "203.0.113.7",
        "user_agent": "azsdk-js-cosmos/4.9.3",
        "principal": {
            "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "sub": "app-writer",
            "oid": "9e1b7f1c-44a5-4d0c-8d2b-5f0e3f1d6a11",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "client_id": "5c1d9b4e-8a7f-4f34-9c0e-2b7b0c2f1d3a",
            "token_fingerprint": "3f2a9c0d1e4b5a6c"
        },
        "method": "GET",
        "path": "/dbs/shop/colls/orders/docs/o-1",
        "operation": "read_item",
        "actions": ["items/read"],
        "database": "shop",
        "container": "orders",
        "item_id": "o-1",
        "partition_key": "[\"t1\"]",
        "decision": "allow",
        "reason": "allowed",
        "rule": "writers",
        "policy_version": "sha256:9a0b",
        "roles": ["writer"],
        "shadow": [{ "rule": "strict-readers", "reason": "action_not_granted" }],
        "status": 200,
        "substatus": "0",
        "request_charge": 1.0,
        "bytes_in": 0,
        "bytes_out": 512,
        "upstream_status": 200,
        "upstream_latency_ms": 3.25,
        "upstream_region": "West US",
        "completed": true,
        "latency_ms": 4.5
    })
}

/// A request refused before any token was validated.
fn unauthenticated() -> Value {
    let mut record = allowed();
    let fields = [
        ("trace_id", Value::Null),
        ("forwarded_for", Value::Null),
        ("user_agent", Value::Null),
        ("principal", Value::Null),
        ("operation", Value::Null),
        ("actions", json!([])),
        ("database", Value::Null),
        ("container", Value::Null),
        ("item_id", Value::Null),
        ("partition_key", Value::Null),
        ("decision", json!("deny")),
        ("reason", json!("missing_credential")),
        ("rule", Value::Null),
        ("policy_version", Value::Null),
        ("roles", json!([])),
        ("shadow", json!([])),
        ("status", json!(401)),
        ("substatus", Value::Null),
        ("request_charge", Value::Null),
        ("bytes_out", json!(64)),
        ("upstream_status", Value::Null),
        ("upstream_latency_ms", Value::Null),
        ("upstream_region", Value::Null),
    ];
    for (field, value) in fields {
        record[field] = value;
    }
    record
}

fn with(mut record: Value, pointer: &str, value: Value) -> Value {
    *record.pointer_mut(pointer).expect("the field exists") = value;
    record
}

fn without(mut record: Value, field: &str) -> Value {
    record
        .as_object_mut()
        .expect("an object")
        .remove(field)
        .expect("the field exists");
    record
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema_for_the_current_version() {
    let schema = schema();
    assert!(jsonschema::meta::is_valid(&schema));
    assert_eq!(
        schema["properties"]["schema"]["const"],
        cosmogate_server::AUDIT_SCHEMA
    );
    assert_eq!(schema["additionalProperties"], false);
    let required = schema["required"].as_array().expect("required fields");
    let properties = schema["properties"].as_object().expect("properties");
    assert_eq!(required.len(), properties.len(), "every field is required");
}

#[test]
fn allowed_and_unauthenticated_records_are_valid() {
    assert_valid(&allowed());
    assert_valid(&unauthenticated());
}

#[test]
fn cut_client_strings_and_hashed_identifiers_are_valid() {
    let cut = format!("{}…", "x".repeat(512));
    let hashed = format!("sha256:{}", "ab".repeat(32));
    let mut record = allowed();
    for field in [
        "path",
        "user_agent",
        "forwarded_for",
        "database",
        "container",
    ] {
        record[field] = json!(cut);
    }
    record["principal"]["sub"] = json!(cut);
    record["item_id"] = json!(hashed);
    record["partition_key"] = json!(hashed);
    record["client_address"] = json!("[2001:db8::1]:443");
    assert_valid(&record);
}

#[test]
fn a_client_string_longer_than_the_cap_is_invalid() {
    let long = json!("x".repeat(514));
    for pointer in [
        "/path",
        "/user_agent",
        "/item_id",
        "/partition_key",
        "/principal/sub",
    ] {
        assert_invalid(&with(allowed(), pointer, long.clone()), pointer);
    }
}

#[test]
fn unknown_and_missing_fields_are_invalid() {
    let mut extra = allowed();
    extra["token"] = json!("eyJhbGciOi");
    assert_invalid(&extra, "an unknown field");
    let mut extra_principal = allowed();
    extra_principal["principal"]["name"] = json!("Ada");
    assert_invalid(&extra_principal, "an unknown principal field");
    for field in ["trace_id", "rule", "bytes_in", "shadow", "upstream_status"] {
        assert_invalid(&without(allowed(), field), field);
    }
}

#[test]
fn malformed_values_are_invalid() {
    let cases = [
        ("/schema", json!("cosmogate.audit/2")),
        ("/time", json!("2026-12-03T11:03:12Z")),
        ("/time", json!("2026-12-03T12:03:12.325+01:00")),
        ("/request_id", json!("1B4E28BA-2FA1-41D2-883F-0016D3CCA427")),
        ("/trace_id", json!("4BF92F3577B34DA6A3CE929D0E0E4736")),
        ("/trace_id", json!("0".repeat(32))),
        ("/client_address", json!("10.1.2.3")),
        ("/principal/token_fingerprint", json!("3f2a9c0d1e4b5a6c7")),
        ("/actions", json!(["items/write"])),
        ("/actions", json!(["items/read", "items/read"])),
        ("/decision", json!("permit")),
        ("/reason", json!("Action Not Granted")),
        ("/shadow", json!([{ "rule": "r" }])),
        ("/status", json!(0)),
        ("/status", json!(200.5)),
        ("/upstream_status", json!(600)),
        ("/request_charge", json!(-1)),
        ("/bytes_out", json!(-1)),
        ("/latency_ms", json!("4.5")),
        ("/completed", json!("true")),
    ];
    for (pointer, value) in cases {
        let why = format!("{pointer} = {value}");
        assert_invalid(&with(allowed(), pointer, value), &why);
    }
}

#[test]
fn an_allow_without_a_principal_or_a_deny_without_a_reason_is_invalid() {
    assert_invalid(
        &with(allowed(), "/principal", Value::Null),
        "an allow without a principal",
    );
    assert_invalid(
        &with(unauthenticated(), "/reason", json!("allowed")),
        "a deny whose reason is allowed",
    );
}

#[test]
fn the_audit_log_document_describes_every_schema_field() {
    let doc = std::fs::read_to_string(docs_dir().join("audit-log.md")).expect("docs/audit-log.md");
    let schema = schema();
    let mut fields: Vec<String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    let principal = schema["$defs"]["principal"]["properties"]
        .as_object()
        .expect("principal properties");
    fields.extend(principal.keys().map(|field| format!("principal.{field}")));
    let missing: Vec<&String> = fields
        .iter()
        .filter(|field| !doc.contains(&format!("`{field}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/audit-log.md: {missing:?}");
}
