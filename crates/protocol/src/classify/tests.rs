use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::json;

use super::*;
use crate::action::DataAction as A;
use crate::error::ErrorClass;

const C: &str = "/dbs/shop/colls/orders";

type Headers<'a> = &'a [(&'a str, &'a str)];

fn run(method: &Method, path: &str, headers: &[(&str, &str)]) -> Result<Operation, ProtocolError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test header name");
        map.append(
            name,
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    classify(&RequestHead {
        method,
        path,
        headers: &map,
    })
}

/// Classifies both the JS shape (no trailing slash) and the Python shape (trailing slash),
/// checks that they agree, and returns the result.
fn both(method: Method, path: &str, headers: &[(&str, &str)]) -> Result<Operation, ProtocolError> {
    let js = run(&method, path, headers);
    let python = run(
        &method,
        &format!("{}/", path.trim_end_matches('/')),
        headers,
    );
    match (&js, &python) {
        (Ok(a), Ok(b)) => {
            assert_eq!((a.kind, &a.actions), (b.kind, &b.actions), "{path}");
            assert_eq!(a.resource_link, b.resource_link, "{path}");
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "{path}"),
        _ => panic!("{path}: js {js:?} vs python {python:?}"),
    }
    js
}

fn kind_and_actions(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (OperationKind, Vec<DataAction>) {
    let op = both(method, path, headers).unwrap_or_else(|e| panic!("{path} must classify: {e}"));
    (op.kind, op.actions)
}

fn err(method: Method, path: &str, headers: &[(&str, &str)]) -> ProtocolError {
    both(method, path, headers).expect_err("request must be refused")
}

#[test]
fn account_database_and_container_reads_need_read_metadata() {
    use OperationKind as K;
    let query = [
        ("x-ms-documentdb-isquery", "True"),
        ("content-type", "application/query+json"),
    ];
    let cases = [
        (Method::GET, "/".to_owned(), &[][..], K::ReadAccount),
        (Method::GET, "/dbs".to_owned(), &[], K::ListDatabases),
        (
            Method::POST,
            "/dbs".to_owned(),
            &query[..],
            K::QueryDatabases,
        ),
        (Method::GET, "/dbs/shop".to_owned(), &[], K::ReadDatabase),
        (
            Method::GET,
            "/dbs/shop/colls".to_owned(),
            &[],
            K::ListContainers,
        ),
        (
            Method::POST,
            "/dbs/shop/colls".to_owned(),
            &query[..1],
            K::QueryContainers,
        ),
        (Method::GET, C.to_owned(), &[], K::ReadContainer),
        (
            Method::GET,
            format!("{C}/pkranges"),
            &[],
            K::ReadPartitionKeyRanges,
        ),
    ];
    for (method, path, headers, kind) in cases {
        assert_eq!(
            kind_and_actions(method, &path, headers),
            (kind, vec![A::ReadMetadata])
        );
    }
}

#[test]
fn partition_key_range_change_feed_is_metadata_not_change_feed() {
    let headers = [
        ("a-im", "Incremental Feed"),
        ("if-none-match", "\"12\""),
        ("x-ms-max-item-count", "-1"),
    ];
    assert_eq!(
        kind_and_actions(Method::GET, &format!("{C}/pkranges"), &headers),
        (OperationKind::ReadPartitionKeyRanges, vec![A::ReadMetadata])
    );
    assert_eq!(
        kind_and_actions(Method::GET, &format!("{C}/pkranges/0"), &[]).0,
        OperationKind::ReadPartitionKeyRanges
    );
}

#[test]
fn account_read_reports_empty_type_and_link() {
    let op = both(Method::GET, "/", &[]).expect("account read must classify");
    assert_eq!(
        (op.resource_type.as_str(), op.resource_link.as_str()),
        ("", "")
    );
    assert_eq!((op.database, op.container, op.item_id), (None, None, None));
}

#[test]
fn post_to_docs_is_told_apart_by_headers() {
    use OperationKind as K;
    let docs = format!("{C}/docs");
    let cases: [(Headers<'_>, K, A); 7] = [
        (
            &[("content-type", "application/json")],
            K::CreateItem,
            A::ItemsCreate,
        ),
        (
            &[("x-ms-documentdb-is-upsert", "true")],
            K::UpsertItem,
            A::ItemsUpsert,
        ),
        (
            &[("x-ms-documentdb-is-upsert", "True")],
            K::UpsertItem,
            A::ItemsUpsert,
        ),
        (
            &[("x-ms-documentdb-is-upsert", "false")],
            K::CreateItem,
            A::ItemsCreate,
        ),
        (
            &[
                ("x-ms-documentdb-isquery", "true"),
                ("content-type", "application/query+json"),
            ],
            K::Query,
            A::ExecuteQuery,
        ),
        (
            &[("content-type", "application/query+json")],
            K::Query,
            A::ExecuteQuery,
        ),
        (
            &[
                ("x-ms-cosmos-is-query-plan-request", "True"),
                ("x-ms-cosmos-supported-query-features", "Aggregate"),
                ("x-ms-cosmos-query-version", "1.4"),
                ("content-type", "application/query+json"),
            ],
            K::QueryPlan,
            A::ExecuteQuery,
        ),
    ];
    for (headers, kind, action) in cases {
        assert_eq!(
            kind_and_actions(Method::POST, &docs, headers),
            (kind, vec![action]),
            "{headers:?}"
        );
    }
}

#[test]
fn batch_headers_select_batch_or_bulk() {
    let docs = format!("{C}/docs");
    let batch = [
        ("x-ms-cosmos-is-batch-request", "true"),
        ("x-ms-cosmos-batch-atomic", "true"),
        ("x-ms-documentdb-partitionkey", "[\"p1\"]"),
    ];
    let op = both(Method::POST, &docs, &batch).expect("batch must classify");
    assert_eq!(op.kind, OperationKind::Batch);
    assert!(op.needs_body());

    let bulk = [
        ("x-ms-cosmos-is-batch-request", "True"),
        ("x-ms-cosmos-batch-atomic", "False"),
        ("x-ms-cosmos-batch-continue-on-error", "true"),
        ("x-ms-documentdb-partitionkeyrangeid", "0"),
    ];
    let op = both(Method::POST, &docs, &bulk).expect("bulk must classify");
    assert_eq!(op.kind, OperationKind::Bulk);
    assert!(op.needs_body());
    assert!(op.partition_key.is_none());
}

#[test]
fn conflicting_post_intents_are_refused() {
    let docs = format!("{C}/docs");
    let conflicts: [Headers<'_>; 4] = [
        &[
            ("x-ms-documentdb-is-upsert", "true"),
            ("x-ms-documentdb-isquery", "true"),
        ],
        &[
            ("x-ms-documentdb-is-upsert", "true"),
            ("content-type", "application/query+json"),
        ],
        &[
            ("x-ms-cosmos-is-batch-request", "true"),
            ("x-ms-documentdb-isquery", "true"),
        ],
        &[
            ("x-ms-cosmos-is-batch-request", "true"),
            ("x-ms-documentdb-is-upsert", "true"),
        ],
    ];
    for headers in conflicts {
        let e = err(Method::POST, &docs, headers);
        assert!(
            matches!(e, ProtocolError::MalformedHeader { .. }),
            "{headers:?}"
        );
        assert_eq!(e.kind(), ErrorClass::BadRequest);
    }
}

#[test]
fn malformed_boolean_headers_are_refused() {
    let docs = format!("{C}/docs");
    for value in ["1", "yes", ""] {
        assert_eq!(
            err(Method::POST, &docs, &[("x-ms-documentdb-is-upsert", value)]),
            ProtocolError::MalformedHeader {
                name: "x-ms-documentdb-is-upsert"
            }
        );
    }
}

#[test]
fn item_point_operations_carry_names_and_partition_key() {
    use OperationKind as K;
    let item = format!("{C}/docs/item1");
    let pk = [("x-ms-documentdb-partitionkey", "[\"p1\"]")];
    let cases = [
        (Method::GET, K::ReadItem, A::ItemsRead),
        (Method::PUT, K::ReplaceItem, A::ItemsReplace),
        (Method::PATCH, K::PatchItem, A::ItemsReplace),
        (Method::DELETE, K::DeleteItem, A::ItemsDelete),
    ];
    for (method, kind, action) in cases {
        let op = both(method, &item, &pk).expect("item operation must classify");
        assert_eq!((op.kind, op.actions), (kind, vec![action]));
        assert_eq!(op.database.as_deref(), Some("shop"));
        assert_eq!(op.container.as_deref(), Some("orders"));
        assert_eq!(op.item_id.as_deref(), Some("item1"));
        let key = op.partition_key.expect("partition key must be read");
        assert_eq!(key.values, [json!("p1")]);
        assert_eq!(key.raw, "[\"p1\"]");
        assert_eq!(op.resource_type, "docs");
        assert_eq!(op.resource_link, "dbs/shop/colls/orders/docs/item1");
    }
}

#[test]
fn python_patch_shape_is_a_patch_too() {
    let item = format!("{C}/docs/item1");
    let headers = [("content-type", "application/json-patch+json")];
    assert_eq!(
        kind_and_actions(Method::PATCH, &item, &headers).0,
        OperationKind::PatchItem
    );
}

#[test]
fn feeds_of_items_need_read_change_feed() {
    let docs = format!("{C}/docs");
    assert_eq!(
        kind_and_actions(Method::GET, &docs, &[]),
        (OperationKind::ReadFeed, vec![A::ReadChangeFeed])
    );
    for a_im in ["Incremental Feed", "Full-Fidelity Feed"] {
        let headers = [("a-im", a_im), ("x-ms-documentdb-partitionkeyrangeid", "0")];
        assert_eq!(
            kind_and_actions(Method::GET, &docs, &headers),
            (OperationKind::ChangeFeed, vec![A::ReadChangeFeed])
        );
    }
    let op = both(Method::GET, &docs, &[]).expect("read feed must classify");
    assert_eq!(op.item_id, None);
    assert_eq!(op.resource_link, "dbs/shop/colls/orders");
}

#[test]
fn scripts_conflicts_and_partition_key_delete_map_to_their_actions() {
    use OperationKind as K;
    let pk = [("x-ms-documentdb-partitionkey", "[\"p1\"]")];
    let cases = [
        (
            Method::POST,
            format!("{C}/sprocs/bulkImport"),
            K::ExecuteStoredProcedure,
            A::ExecuteStoredProcedure,
        ),
        (
            Method::GET,
            format!("{C}/conflicts"),
            K::ReadConflicts,
            A::ManageConflicts,
        ),
        (
            Method::GET,
            format!("{C}/conflicts/c1"),
            K::ReadConflicts,
            A::ManageConflicts,
        ),
        (
            Method::DELETE,
            format!("{C}/conflicts/c1"),
            K::DeleteConflict,
            A::ManageConflicts,
        ),
        (
            Method::POST,
            format!("{C}/operations/partitionkeydelete"),
            K::DeleteByPartitionKey,
            A::ItemsDelete,
        ),
    ];
    for (method, path, kind, action) in cases {
        assert_eq!(
            kind_and_actions(method, &path, &pk),
            (kind, vec![action]),
            "{path}"
        );
    }
    let op = both(
        Method::POST,
        &format!("{C}/operations/partitionkeydelete"),
        &pk,
    )
    .expect("delete by partition key must classify");
    assert_eq!(
        (op.resource_type.as_str(), op.resource_link.as_str()),
        ("colls", "dbs/shop/colls/orders")
    );
    assert_eq!(op.container.as_deref(), Some("orders"));
}

#[test]
fn conflict_queries_are_conflict_reads() {
    let headers = [("x-ms-documentdb-isquery", "true")];
    assert_eq!(
        kind_and_actions(Method::POST, &format!("{C}/conflicts"), &headers).0,
        OperationKind::ReadConflicts
    );
}

#[test]
fn management_operations_are_control_plane() {
    let create = [("content-type", "application/json")];
    let cases = [
        (Method::POST, "/dbs".to_owned()),
        (Method::DELETE, "/dbs/shop".to_owned()),
        (Method::PUT, "/dbs/shop".to_owned()),
        (Method::POST, "/dbs/shop/colls".to_owned()),
        (Method::PUT, C.to_owned()),
        (Method::DELETE, C.to_owned()),
        (Method::POST, format!("{C}/sprocs")),
        (Method::GET, format!("{C}/sprocs")),
        (Method::GET, format!("{C}/sprocs/s1")),
        (Method::PUT, format!("{C}/sprocs/s1")),
        (Method::DELETE, format!("{C}/sprocs/s1")),
        (Method::GET, format!("{C}/udfs")),
        (Method::POST, format!("{C}/udfs")),
        (Method::PUT, format!("{C}/udfs/u1")),
        (Method::DELETE, format!("{C}/triggers/t1")),
        (Method::POST, format!("{C}/triggers")),
        (Method::GET, "/dbs/shop/users".to_owned()),
        (Method::POST, "/dbs/shop/users/u1/permissions".to_owned()),
        (Method::GET, "/offers".to_owned()),
        (Method::POST, "/offers".to_owned()),
        (Method::PUT, "/offers/AbCd".to_owned()),
    ];
    for (method, path) in cases {
        let e = err(method.clone(), &path, &create);
        assert_eq!(e, ProtocolError::ControlPlane, "{method} {path}");
        assert_eq!(e.kind(), ErrorClass::Forbidden);
    }
}

#[test]
fn address_lookups_are_refused_as_direct_mode() {
    let path = "/addresses/?$resolveFor=dbs%2FgAAMAA%3D%3D%2Fcolls%2FgAAMAIAAAAE%3D%2Fdocs\
                &$filter=protocol%20eq%20rntbd&$partitionKeyRangeIds=0";
    assert_eq!(
        run(&Method::GET, path, &[]).err(),
        Some(ProtocolError::DirectMode)
    );
    assert_eq!(
        run(&Method::GET, "/addresses", &[]).err(),
        Some(ProtocolError::DirectMode)
    );
}

#[test]
fn unknown_resources_and_methods_are_unknown_operations() {
    let cases = [
        (Method::POST, "/".to_owned()),
        (Method::DELETE, "/".to_owned()),
        (Method::GET, "/healthz".to_owned()),
        (Method::GET, "/media/m1".to_owned()),
        (Method::GET, "/dbs/shop/snapshots".to_owned()),
        (Method::PUT, "/dbs".to_owned()),
        (Method::PATCH, "/dbs/shop".to_owned()),
        (Method::PATCH, C.to_owned()),
        (Method::PUT, format!("{C}/docs")),
        (Method::DELETE, format!("{C}/docs")),
        (Method::POST, format!("{C}/docs/item1")),
        (Method::OPTIONS, format!("{C}/docs/item1")),
        (Method::HEAD, format!("{C}/docs/item1")),
        (Method::GET, format!("{C}/docs/item1/attachments")),
        (Method::GET, format!("{C}/docs/item1/attachments/a1")),
        (Method::POST, format!("{C}/pkranges")),
        (Method::GET, format!("{C}/pkranges/0/x")),
        (Method::GET, format!("{C}/operations/partitionkeydelete")),
        (Method::POST, format!("{C}/operations/other")),
        (Method::POST, format!("{C}/conflicts")),
        (Method::PUT, format!("{C}/conflicts/c1")),
        (Method::GET, format!("{C}/schemas")),
        (Method::GET, format!("{C}/sprocs/s1/x")),
    ];
    for (method, path) in cases {
        assert_eq!(
            err(method.clone(), &path, &[]),
            ProtocolError::UnknownOperation,
            "{method} {path}"
        );
    }
}

#[test]
fn query_strings_and_fragments_are_refused_on_data_plane_routes() {
    let cases = [
        "/dbs/shop/colls/payroll/docs/p1?/healthz",
        "/healthz?x=/dbs/shop/colls/payroll",
        "/dbs/shop/colls/payroll/docs/p1#/healthz",
        "/dbs/shop/colls/orders/docs/o1?p=../../payroll",
        "/?x=1",
        "/dbs/shop/colls/orders/docs/o1?",
    ];
    for path in cases {
        assert_eq!(
            run(&Method::GET, path, &[]).err(),
            Some(ProtocolError::MalformedPath),
            "{path}"
        );
    }
    assert_eq!(
        run(
            &Method::GET,
            "/dbs/shop/colls/orders%3F/../payroll/docs/p1",
            &[]
        )
        .err(),
        Some(ProtocolError::MalformedPath)
    );
}

#[test]
fn c16_paths_never_classify_as_another_container() {
    let tricks = [
        "/dbs/shop/colls/orders/../payroll/docs/p1",
        "/dbs/shop/colls/orders/%2E%2E/payroll/docs/p1",
        "/dbs/shop/colls/orders/..%2Fpayroll/docs/p1",
        "/dbs/shop/colls/orders%2F..%2Fpayroll/docs/p1",
        "/dbs/shop/colls/./payroll/docs/p1",
        "/DBS/shop/COLLS/payroll/docs/p1",
        "/dbs/shop/colls/payroll%5Cdocs/p1",
        "/dbs/shop/colls/payroll\\docs\\p1",
        "/dbs/shop/colls/orders%252F..%252Fpayroll/docs/p1",
        "/dbs/shop/colls/orders;x=/../payroll/docs/p1",
        "/dbs/shop/colls/orders/docs/%00",
        "/dbs/shop/colls/%6Frders/docs/o1",
    ];
    for path in tricks {
        let e = run(&Method::GET, path, &[]).expect_err(path);
        assert_eq!(e, ProtocolError::MalformedPath, "{path}");
        assert_eq!(e.kind(), ErrorClass::BadRequest);
    }
}

#[test]
fn non_ascii_look_alikes_of_keywords_are_refused() {
    for path in [
        // `docſ`: the long s upper-cases to `S`.
        "/dbs/shop/colls/payroll/doc%C5%BF/p1",
        // `pKranges` with the Kelvin sign, which lower-cases to `k`.
        "/dbs/shop/colls/payroll/p%E2%84%AAranges",
        "/db%C5%BF/shop/colls/payroll/docs/p1",
    ] {
        let e = run(&Method::GET, path, &[]).expect_err(path);
        assert_eq!(e, ProtocolError::MalformedPath, "{path}");
    }
    // Non-ASCII names in name positions stay names.
    let op = run(&Method::GET, "/dbs/shop/colls/payroll/docs/doc%C5%BF", &[]).expect("a name");
    assert_eq!(op.item_id.as_deref(), Some("docſ"));
}

#[test]
fn doubled_slashes_address_the_same_resource_as_single_ones() {
    for path in [
        "//dbs/shop/colls/payroll/docs/p1",
        "/dbs//shop/colls/payroll/docs/p1",
    ] {
        let op = run(&Method::GET, path, &[]).expect("doubled slashes are absorbed");
        assert_eq!(op.container.as_deref(), Some("payroll"));
        assert_eq!(op.resource_link, "dbs/shop/colls/payroll/docs/p1");
    }
}

#[test]
fn names_are_case_sensitive_and_decoded() {
    let op = both(Method::GET, "/dbs/shop/colls/Payroll/docs/p1", &[]).expect("must classify");
    assert_eq!(op.container.as_deref(), Some("Payroll"));
    let op = both(
        Method::GET,
        "/dbs/Experiment%20DB/colls/Items%20%C3%BC/docs/100%25",
        &[],
    )
    .expect("encoded names must classify");
    assert_eq!(op.database.as_deref(), Some("Experiment DB"));
    assert_eq!(op.container.as_deref(), Some("Items ü"));
    assert_eq!(op.item_id.as_deref(), Some("100%"));
}

#[test]
fn rid_paths_are_allowed_for_metadata_reads_without_names() {
    let pkranges = [("a-im", "Incremental feed"), ("if-none-match", "*")];
    for (path, headers) in [
        ("/dbs/gAAMAA==/colls/gAAMAIAAAAE=/pkranges", &pkranges[..]),
        ("/dbs/gAAMAA==/colls/gAAMAIAAAAE=", &[]),
        ("/dbs/gAAMAA==", &[]),
        ("/dbs/gAAMAA==/colls", &[]),
    ] {
        let op = both(Method::GET, path, headers).expect("rid metadata read must classify");
        assert!(op.rid_based);
        assert_eq!(op.actions, [A::ReadMetadata]);
        assert_eq!((op.database, op.container, op.item_id), (None, None, None));
    }
    let op = both(Method::GET, "/dbs/gAAMAA==/colls/gAAMAIAAAAE=", &[]).expect("must classify");
    assert_eq!(op.resource_link, "dbs/gaamaa==/colls/gaamaiaaaae=");
}

#[test]
fn rid_paths_are_refused_for_data_operations() {
    let query = [
        ("x-ms-documentdb-isquery", "true"),
        ("content-type", "application/query+json"),
    ];
    let cases = [
        (
            Method::GET,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs",
            &[][..],
        ),
        (
            Method::POST,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs",
            &query[..],
        ),
        (
            Method::GET,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs/XP0mAJ3H-AABAAAAAAAAA==",
            &[],
        ),
        (Method::POST, "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs", &[]),
        (
            Method::DELETE,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/docs/XP0mAJ3H-AABAAAAAAAAA==",
            &[],
        ),
        (
            Method::POST,
            "/dbs/XP0mAA==/colls/XP0mAJ3H-AA=/sprocs/XP0mAJ3H-AAAAAAAAAAAgA==",
            &[],
        ),
    ];
    for (method, path, headers) in cases {
        let e = err(method.clone(), path, headers);
        assert_eq!(e, ProtocolError::RidAddressing, "{method} {path}");
        assert_eq!(e.kind(), ErrorClass::Forbidden);
    }
}

#[test]
fn containers_named_like_rids_follow_their_name() {
    let op = both(Method::GET, "/dbs/shop/colls/XP0mAJ3H-AA=/docs", &[]).expect("must classify");
    assert!(!op.rid_based);
    assert_eq!(op.container.as_deref(), Some("XP0mAJ3H-AA="));
    let op = both(Method::GET, "/dbs/shop/colls/XP0mAA==/docs/d1", &[]).expect("must classify");
    assert_eq!(op.container.as_deref(), Some("XP0mAA=="));
}

#[test]
fn client_hints_and_forwarding_headers_never_change_the_classification() {
    let item = format!("{C}/docs/item1");
    let plain = both(Method::GET, &item, &[]).expect("read must classify");
    let hints = [
        ("x-ms-thinclient-proxy-resource-type", "dbs"),
        ("x-ms-thinclient-proxy-operation-type", "Read"),
        ("x-ms-cosmos-intended-collection-rid", "gAAMAIAAAAE="),
        ("x-ms-documentdb-query-enablecrosspartition", "true"),
        ("x-http-method-override", "GET"),
        ("x-original-url", "/dbs/shop/colls/public/docs"),
        ("x-rewrite-url", "/"),
        ("x-forwarded-uri", "/healthz"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=10.0.0.1"),
        ("x-forwarded-host", "evil.test"),
    ];
    let hinted = both(Method::DELETE, &item, &hints).expect("delete must classify");
    assert_eq!(hinted.kind, OperationKind::DeleteItem);
    assert_eq!(hinted.actions, [A::ItemsDelete]);
    assert_eq!(hinted.container, plain.container);

    let hinted = both(Method::GET, &item, &hints).expect("read must classify");
    assert_eq!((hinted.kind, &hinted.actions), (plain.kind, &plain.actions));
}

#[test]
fn partition_keys_with_escaped_non_ascii_decode_and_raw_bytes_are_refused() {
    let item = format!("{C}/docs/item1");
    let op = both(
        Method::GET,
        &item,
        &[("x-ms-documentdb-partitionkey", r#"["M\u00fcller"]"#)],
    )
    .expect("escaped key must classify");
    let key = op.partition_key.expect("key must be read");
    assert_eq!(key.values, [json!("Müller")]);

    let mut headers = HeaderMap::new();
    let raw =
        HeaderValue::from_bytes("[\"Müller\"]".as_bytes()).expect("obs-text is a valid value");
    headers.insert("x-ms-documentdb-partitionkey", raw);
    let head = RequestHead {
        method: &Method::GET,
        path: &item,
        headers: &headers,
    };
    assert_eq!(
        classify(&head).err(),
        Some(ProtocolError::MalformedHeader {
            name: "x-ms-documentdb-partitionkey"
        })
    );

    let e = err(
        Method::GET,
        &item,
        &[("x-ms-documentdb-partitionkey", "p1")],
    );
    assert_eq!(
        e,
        ProtocolError::MalformedHeader {
            name: "x-ms-documentdb-partitionkey"
        }
    );
}

#[test]
fn hierarchical_partition_keys_keep_every_component() {
    let op = both(
        Method::POST,
        &format!("{C}/docs"),
        &[("x-ms-documentdb-partitionkey", r#"["tenant-1","2024"]"#)],
    )
    .expect("create must classify");
    let key = op.partition_key.expect("key must be read");
    assert_eq!(key.values, [json!("tenant-1"), json!("2024")]);
}

#[test]
fn operation_serializes_kind_and_actions_by_their_short_names() {
    let op = both(Method::PATCH, &format!("{C}/docs/i1"), &[]).expect("patch must classify");
    let value = serde_json::to_value(&op).expect("operation must serialize");
    assert_eq!(value["kind"], "patch_item");
    assert_eq!(value["actions"], json!(["items/replace"]));
    assert_eq!(value["container"], "orders");
}

#[test]
fn every_kind_name_is_snake_case_and_unique() {
    use OperationKind as K;
    let all = [
        K::ReadAccount,
        K::ListDatabases,
        K::QueryDatabases,
        K::ReadDatabase,
        K::ListContainers,
        K::QueryContainers,
        K::ReadContainer,
        K::ReadPartitionKeyRanges,
        K::CreateItem,
        K::UpsertItem,
        K::ReadItem,
        K::ReplaceItem,
        K::PatchItem,
        K::DeleteItem,
        K::Query,
        K::QueryPlan,
        K::ReadFeed,
        K::ChangeFeed,
        K::Batch,
        K::Bulk,
        K::ExecuteStoredProcedure,
        K::ReadConflicts,
        K::DeleteConflict,
        K::DeleteByPartitionKey,
    ];
    let mut names: Vec<_> = all.iter().map(|k| k.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    );
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for kind in all {
        let serialized = serde_json::to_value(kind).expect("kind must serialize");
        assert_eq!(serialized, kind.as_str());
        assert!(!kind.actions().is_empty());
    }
}

proptest::proptest! {
    #[test]
    fn classify_never_panics(
        path in "/[a-zA-Z0-9%=+./\\\\?#-]{0,60}",
        method in proptest::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
    ) {
        let method = Method::from_bytes(method.as_bytes()).expect("method must parse");
        if let Ok(op) = run(&method, &path, &[]) {
            proptest::prop_assert!(!op.actions.is_empty());
            if op.rid_based {
                proptest::prop_assert_eq!(op.actions, vec![A::ReadMetadata]);
            }
        }
    }
}

#[test]
fn request_head_debug_output_leaves_headers_out() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("type=aad&ver=1.0&sig=secret-jwt"),
    );
    let head = RequestHead {
        method: &Method::GET,
        path: "/",
        headers: &headers,
    };
    let debug = format!("{head:?}");
    assert!(!debug.contains("secret-jwt"));
    assert!(debug.contains("[1 omitted]"));
}
