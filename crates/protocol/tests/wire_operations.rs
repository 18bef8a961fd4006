//! Every wire operation of the protocol reference's classification table (method, path and
//! distinguishing headers), classified through the public API, in both the JS path shape and
//! the Python one (trailing slash).

use cosmogate_protocol::{
    DataAction as A, Operation, OperationKind as K, ProtocolError, RequestHead, classify,
    classify_batch_body,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::json;

const C: &str = "/dbs/shop/colls/orders";
const PK: (&str, &str) = ("x-ms-documentdb-partitionkey", r#"["p1"]"#);
const QUERY_JSON: (&str, &str) = ("content-type", "application/query+json");

fn classify_as(
    method: &Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Operation, ProtocolError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header names are valid");
        map.append(
            name,
            HeaderValue::from_str(value).expect("test header values are valid"),
        );
    }
    classify(&RequestHead {
        method,
        path,
        headers: &map,
    })
}

/// Classifies the JS shape and the Python shape, checks they agree, returns the JS result.
fn both(method: &Method, path: &str, headers: &[(&str, &str)]) -> Result<Operation, ProtocolError> {
    let js = classify_as(method, path, headers);
    let python_path = format!("{}/", path.trim_end_matches('/'));
    let python = classify_as(method, &python_path, headers);
    match (&js, &python) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                (a.kind, &a.actions),
                (b.kind, &b.actions),
                "{method} {path}"
            );
            assert_eq!(
                (&a.database, &a.container, &a.item_id),
                (&b.database, &b.container, &b.item_id)
            );
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{method} {path}"),
        _ => panic!("{method} {path}: js {js:?}, python {python:?}"),
    }
    js
}

type Headers<'a> = Vec<(&'a str, &'a str)>;
type Request<'a> = (Method, String, Headers<'a>);
type Row<'a> = (Method, String, Headers<'a>, K, Vec<A>);

fn data_plane_rows() -> Vec<Row<'static>> {
    let query = vec![("x-ms-documentdb-isquery", "true"), QUERY_JSON];
    vec![
        (
            Method::GET,
            "/".into(),
            vec![],
            K::ReadAccount,
            vec![A::ReadMetadata],
        ),
        (
            Method::GET,
            "/dbs/shop".into(),
            vec![],
            K::ReadDatabase,
            vec![A::ReadMetadata],
        ),
        (
            Method::GET,
            "/dbs".into(),
            vec![],
            K::ListDatabases,
            vec![A::ReadMetadata],
        ),
        (
            Method::POST,
            "/dbs".into(),
            query.clone(),
            K::QueryDatabases,
            vec![A::ReadMetadata],
        ),
        (
            Method::GET,
            C.into(),
            vec![],
            K::ReadContainer,
            vec![A::ReadMetadata],
        ),
        (
            Method::GET,
            "/dbs/shop/colls".into(),
            vec![],
            K::ListContainers,
            vec![A::ReadMetadata],
        ),
        (
            Method::POST,
            "/dbs/shop/colls".into(),
            query.clone(),
            K::QueryContainers,
            vec![A::ReadMetadata],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            vec![PK, ("content-type", "application/json")],
            K::CreateItem,
            vec![A::ItemsCreate],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            vec![PK, ("x-ms-documentdb-is-upsert", "true")],
            K::UpsertItem,
            vec![A::ItemsUpsert],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            vec![("x-ms-documentdb-isquery", "true")],
            K::Query,
            vec![A::ExecuteQuery],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            vec![QUERY_JSON],
            K::Query,
            vec![A::ExecuteQuery],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            query.clone(),
            K::Query,
            vec![A::ExecuteQuery],
        ),
        (
            Method::POST,
            format!("{C}/docs"),
            vec![
                ("x-ms-cosmos-is-query-plan-request", "True"),
                (
                    "x-ms-cosmos-supported-query-features",
                    "Aggregate, Distinct",
                ),
                ("x-ms-cosmos-query-version", "1.4"),
                QUERY_JSON,
            ],
            K::QueryPlan,
            vec![A::ExecuteQuery],
        ),
        (
            Method::GET,
            format!("{C}/docs/item1"),
            vec![PK],
            K::ReadItem,
            vec![A::ItemsRead],
        ),
        (
            Method::PUT,
            format!("{C}/docs/item1"),
            vec![PK, ("if-match", "\"etag\"")],
            K::ReplaceItem,
            vec![A::ItemsReplace],
        ),
        (
            Method::PATCH,
            format!("{C}/docs/item1"),
            vec![PK],
            K::PatchItem,
            vec![A::ItemsReplace],
        ),
        (
            Method::PATCH,
            format!("{C}/docs/item1"),
            vec![PK, ("content-type", "application/json-patch+json")],
            K::PatchItem,
            vec![A::ItemsReplace],
        ),
        (
            Method::DELETE,
            format!("{C}/docs/item1"),
            vec![PK],
            K::DeleteItem,
            vec![A::ItemsDelete],
        ),
        (
            Method::GET,
            format!("{C}/docs"),
            vec![],
            K::ReadFeed,
            vec![A::ReadChangeFeed],
        ),
        (
            Method::GET,
            format!("{C}/docs"),
            vec![("a-im", "Incremental Feed")],
            K::ChangeFeed,
            vec![A::ReadChangeFeed],
        ),
        (
            Method::GET,
            format!("{C}/docs"),
            vec![("a-im", "Incremental Feed"), ("if-none-match", "*")],
            K::ChangeFeed,
            vec![A::ReadChangeFeed],
        ),
        (
            Method::GET,
            format!("{C}/docs"),
            vec![
                ("a-im", "Full-Fidelity Feed"),
                ("x-ms-cosmos-changefeed-wire-format-version", "2021-09-15"),
            ],
            K::ChangeFeed,
            vec![A::ReadChangeFeed],
        ),
        (
            Method::GET,
            format!("{C}/pkranges"),
            vec![],
            K::ReadPartitionKeyRanges,
            vec![A::ReadMetadata],
        ),
        (
            Method::GET,
            format!("{C}/pkranges"),
            vec![
                ("a-im", "Incremental Feed"),
                ("if-none-match", "\"1\""),
                ("x-ms-max-item-count", "-1"),
            ],
            K::ReadPartitionKeyRanges,
            vec![A::ReadMetadata],
        ),
        (
            Method::POST,
            format!("{C}/sprocs/bump"),
            vec![PK],
            K::ExecuteStoredProcedure,
            vec![A::ExecuteStoredProcedure],
        ),
        (
            Method::GET,
            format!("{C}/conflicts"),
            vec![],
            K::ReadConflicts,
            vec![A::ManageConflicts],
        ),
        (
            Method::DELETE,
            format!("{C}/conflicts/c1"),
            vec![],
            K::DeleteConflict,
            vec![A::ManageConflicts],
        ),
        (
            Method::POST,
            format!("{C}/operations/partitionkeydelete"),
            vec![PK],
            K::DeleteByPartitionKey,
            vec![A::ItemsDelete],
        ),
    ]
}

#[test]
fn every_data_plane_operation_of_the_table_classifies_to_its_kind_and_action() {
    for (method, path, headers, kind, actions) in data_plane_rows() {
        let op = both(&method, &path, &headers)
            .unwrap_or_else(|e| panic!("{method} {path} must classify: {e}"));
        assert_eq!((op.kind, &op.actions), (kind, &actions), "{method} {path}");
        assert!(!op.rid_based);
        assert!(!op.range_scoped, "{method} {path}");
    }
}

#[test]
fn point_operations_carry_their_names_item_and_partition_key() {
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let op = both(&method, &format!("{C}/docs/item1"), &[PK]).expect("classifies");
        assert_eq!(op.database.as_deref(), Some("shop"));
        assert_eq!(op.container.as_deref(), Some("orders"));
        assert_eq!(op.item_id.as_deref(), Some("item1"));
        let key = op.partition_key.expect("the key header is read");
        assert_eq!(
            (key.raw.as_str(), key.values),
            (r#"["p1"]"#, vec![json!("p1")])
        );
    }
    let create = both(&Method::POST, &format!("{C}/docs"), &[PK]).expect("classifies");
    assert_eq!(create.item_id, None, "the id of a create is in the body");
}

#[test]
fn management_operations_of_the_table_are_control_plane() {
    let rows: [Request; 15] = [
        (
            Method::POST,
            "/dbs".into(),
            vec![("content-type", "application/json")],
        ),
        (Method::DELETE, "/dbs/shop".into(), vec![]),
        (Method::PUT, "/dbs/shop".into(), vec![]),
        (Method::POST, "/dbs/shop/colls".into(), vec![]),
        (Method::PUT, C.into(), vec![]),
        (Method::DELETE, C.into(), vec![]),
        (Method::POST, format!("{C}/sprocs"), vec![]),
        (Method::PUT, format!("{C}/sprocs/bump"), vec![]),
        (Method::DELETE, format!("{C}/udfs/tax"), vec![]),
        (Method::POST, format!("{C}/triggers"), vec![]),
        (Method::GET, format!("{C}/sprocs"), vec![]),
        (Method::GET, "/offers".into(), vec![]),
        (
            Method::POST,
            "/offers".into(),
            vec![("x-ms-documentdb-isquery", "true")],
        ),
        (Method::PUT, "/offers/AbCd".into(), vec![]),
        (Method::GET, "/dbs/shop/users/u1/permissions".into(), vec![]),
    ];
    for (method, path, headers) in rows {
        assert_eq!(
            both(&method, &path, &headers).err(),
            Some(ProtocolError::ControlPlane),
            "{method} {path}"
        );
    }
}

#[test]
fn direct_mode_address_lookups_are_refused_with_a_pointer_to_gateway_mode() {
    let error = classify_as(&Method::GET, "/addresses/", &[]).expect_err("refused");
    assert_eq!(error, ProtocolError::DirectMode);
    assert!(error.to_string().contains("gateway"));
}

fn batch_headers(atomic: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-ms-cosmos-is-batch-request", "true"),
        ("x-ms-cosmos-batch-atomic", atomic),
    ]
}

#[test]
fn a_transactional_batch_needs_the_actions_of_its_body() {
    let mut headers = batch_headers("true");
    headers.push(PK);
    let mut op = both(&Method::POST, &format!("{C}/docs"), &headers).expect("classifies");
    assert_eq!(op.kind, K::Batch);
    assert!(op.needs_body());
    let body = br#"[{"operationType":"Create","resourceBody":{"id":"a"}},
                    {"operationType":"Patch","id":"a","resourceBody":{"operations":[]}}]"#;
    classify_batch_body(&mut op, body).expect("body classifies");
    assert_eq!(op.actions, [A::ItemsCreate, A::ItemsReplace]);
    assert!(op.batch.iter().all(|b| {
        b.partition_key
            .as_ref()
            .is_some_and(|k| k.values == [json!("p1")])
    }));
}

#[test]
fn a_bulk_is_range_scoped_and_each_operation_keeps_its_own_key() {
    let mut headers = batch_headers("false");
    headers.push(("x-ms-cosmos-batch-continue-on-error", "true"));
    headers.push(("x-ms-documentdb-partitionkeyrangeid", "0"));
    let mut op = both(&Method::POST, &format!("{C}/docs"), &headers).expect("classifies");
    assert_eq!(op.kind, K::Bulk);
    assert!(op.range_scoped);
    let body = br#"[{"operationType":"Upsert","partitionKey":"[\"a\"]","resourceBody":{"id":"1"}},
                    {"operationType":"Delete","id":"2","partitionKey":"[\"b\"]"}]"#;
    classify_batch_body(&mut op, body).expect("body classifies");
    assert_eq!(op.actions, [A::ItemsUpsert, A::ItemsDelete]);
    let keys: Vec<_> = op
        .batch
        .iter()
        .map(|b| b.partition_key.clone().map(|k| k.values))
        .collect();
    assert_eq!(keys, [Some(vec![json!("a")]), Some(vec![json!("b")])]);
}

#[test]
fn change_feeds_scoped_by_range_or_epk_are_marked_range_scoped() {
    for scope in [
        ("x-ms-documentdb-partitionkeyrangeid", "0"),
        ("x-ms-start-epk", "05C1C9CD673398"),
        ("x-ms-end-epk", "05C1E9CD673398"),
    ] {
        let headers = [("a-im", "Incremental Feed"), scope];
        let op = both(&Method::GET, &format!("{C}/docs"), &headers).expect("classifies");
        assert_eq!(op.kind, K::ChangeFeed);
        assert!(op.range_scoped, "{scope:?}");
        assert_eq!(op.partition_key, None);
    }
    let keyed = [("a-im", "Incremental Feed"), PK];
    let op = both(&Method::GET, &format!("{C}/docs"), &keyed).expect("classifies");
    assert!(!op.range_scoped);
    assert!(op.partition_key.is_some());
}

#[test]
fn a_repeated_range_header_is_refused() {
    let headers = [
        ("x-ms-documentdb-partitionkeyrangeid", "0"),
        ("x-ms-documentdb-partitionkeyrangeid", "1"),
    ];
    let error = classify_as(&Method::GET, &format!("{C}/docs"), &headers).expect_err("refused");
    assert_eq!(error.reason_code(), "malformed_header");
}

#[test]
fn rid_addressed_metadata_reads_classify_without_names_and_data_reads_are_refused() {
    let op = both(
        &Method::GET,
        "/dbs/gAAMAA==/colls/gAAMAIAAAAE=/pkranges",
        &[],
    )
    .expect("classifies");
    assert!(op.rid_based);
    assert_eq!((op.database, op.container), (None, None));
    assert_eq!(
        both(&Method::GET, "/dbs/gAAMAA==/colls/gAAMAIAAAAE=/docs", &[]).err(),
        Some(ProtocolError::RidAddressing)
    );
}
