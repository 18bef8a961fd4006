//! What rewriting the upstream's endpoint discovery costs: the account document (`GET /`) with
//! one public URL for every region and with one public URL per region, and the
//! `content-location` response header.
//!
//! The document has the members and the size (about 2 KiB) of a real three-region account's,
//! including the long `queryEngineConfiguration` string. Run with
//! `cargo bench -p cosmogate-protocol --bench rewrite`.

use std::hint::black_box;

use cosmogate_protocol::{
    rewrite_account_document, rewrite_account_document_by_region, rewrite_content_location,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const PROXY: &str = "https://cosmos-proxy.contoso.test/";

const REGIONS: [(&str, &str); 3] = [
    ("East US", "https://eastus.cosmos-proxy.contoso.test/"),
    (
        "https://acct-westus.documents.azure.com:443/",
        "https://westus.cosmos-proxy.contoso.test/",
    ),
    (
        "centralindia",
        "https://centralindia.cosmos-proxy.contoso.test/",
    ),
];

fn location(name: &str, slug: &str) -> Value {
    json!({"name": name, "databaseAccountEndpoint": format!("https://acct-{slug}.documents.azure.com:443/")})
}

fn account_document() -> Vec<u8> {
    let regions = [
        ("East US", "eastus"),
        ("West US", "westus"),
        ("Central India", "centralindia"),
    ];
    let all: Vec<Value> = regions.iter().map(|(n, s)| location(n, s)).collect();
    let query_engine = json!({
        "allowNewKeywords": true, "maxJoinsPerSqlQuery": 10, "maxQueryRequestTimeoutFraction": 0.9,
        "maxSqlQueryInputLength": 524288, "maxUdfRefPerSqlQuery": 10, "queryDllVersion": 2,
        "sqlAllowAggregateFunctions": true, "sqlAllowGroupByClause": true,
        "sqlAllowLike": true, "sqlAllowSubQuery": true, "sqlAllowScalarSubQuery": true,
        "sqlAllowTop": true, "sqlDisableOptimizationFlags": 0, "enableSpatialIndexing": true,
        "maxInExpressionItemsCount": 2147483647, "maxLogicalAndPerSqlQuery": 2147483647,
        "maxLogicalOrPerSqlQuery": 2147483647, "maxSpatialQueryCells": 2147483647,
        "sqlAllowNonFiniteNumbers": false, "spatialMaxGeometryPointCount": 256,
        "clientDisableOptimisticDirectExecution": false, "queryEnableMongoNativeRegex": true,
    })
    .to_string();
    let document = json!({
        "_self": "", "id": "acct", "_rid": "acct.documents.azure.com", "media": "//media/",
        "addresses": "//addresses/", "_dbs": "//dbs/",
        "writableLocations": [all[0].clone()],
        "readableLocations": all,
        "thinClientWritableLocations": [{"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:10250/"}],
        "thinClientReadableLocations": [{"name": "East US", "databaseAccountEndpoint": "https://acct-eastus.documents.azure.com:10250/"}],
        "enableMultipleWriteLocations": false, "continuousBackupEnabled": false,
        "enableNRegionSynchronousCommit": false, "enablePerPartitionFailoverBehavior": false,
        "userReplicationPolicy": {"asyncReplication": false, "minReplicaSetSize": 3, "maxReplicasetSize": 4},
        "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
        "systemReplicationPolicy": {"minReplicaSetSize": 3, "maxReplicasetSize": 4},
        "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
        "queryEngineConfiguration": query_engine,
    });
    serde_json::to_vec(&document).expect("the bench document serializes")
}

fn bench_account_document(c: &mut Criterion) {
    let body = account_document();
    let regions: Vec<(&str, &str)> = REGIONS.to_vec();
    let out = rewrite_account_document_by_region(&body, PROXY, &regions).expect("rewrites");
    let out: Value = serde_json::from_slice(&out).expect("the output is json");
    for list in ["writableLocations", "readableLocations"] {
        for location in out[list].as_array().expect("the lists stay arrays") {
            let endpoint = location["databaseAccountEndpoint"]
                .as_str()
                .unwrap_or_default();
            assert!(
                endpoint.contains("cosmos-proxy"),
                "{endpoint} was not rewritten"
            );
        }
    }
    assert!(out.get("thinClientReadableLocations").is_none());

    let mut group = c.benchmark_group("account_document");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("single_url", |b| {
        b.iter(|| black_box(rewrite_account_document(black_box(&body), PROXY)))
    });
    group.bench_function("by_region_3", |b| {
        b.iter(|| {
            black_box(rewrite_account_document_by_region(
                black_box(&body),
                PROXY,
                &regions,
            ))
        })
    });
    group.finish();
}

fn bench_content_location(c: &mut Criterion) {
    let regions: Vec<(&str, &str)> = REGIONS.to_vec();
    let absolute =
        "https://acct-westus.documents.azure.com:443/dbs/shop/colls/orders/docs/order-1042";
    let relative = "/dbs/shop/colls/orders/docs/order-1042";
    assert_eq!(
        rewrite_content_location(absolute, PROXY, &regions).as_deref(),
        Some("https://westus.cosmos-proxy.contoso.test/dbs/shop/colls/orders/docs/order-1042")
    );

    let mut group = c.benchmark_group("content_location");
    group.bench_function("absolute_single_url", |b| {
        b.iter(|| black_box(rewrite_content_location(black_box(absolute), PROXY, &[])))
    });
    group.bench_function("absolute_by_region_3", |b| {
        b.iter(|| {
            black_box(rewrite_content_location(
                black_box(absolute),
                PROXY,
                &regions,
            ))
        })
    });
    group.bench_function("relative", |b| {
        b.iter(|| black_box(rewrite_content_location(black_box(relative), PROXY, &[])))
    });
    group.finish();
}

criterion_group!(benches, bench_account_document, bench_content_location);
criterion_main!(benches);
