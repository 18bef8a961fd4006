//! Turning a request head into a Cosmos operation: what it does, which RBAC actions it needs,
//! and which database, container, item and partition key it touches.
//!
//! Only the method, the path and a handful of headers are read (see [`crate::headers`]); batch
//! and bulk bodies are read separately by [`classify_batch_body`](crate::classify_batch_body).
//!
//! **Decision (queries):** the Cosmos docs say an SDK principal needs both `executeQuery` and
//! `readChangeFeed` to run queries, because SDKs mix queries with feed reads. We map each
//! request to the action it performs: a query or query plan needs `executeQuery` only, and a
//! read feed or change feed needs `readChangeFeed`. A role meant for SDK queries should grant
//! both, exactly as a Cosmos role would.

use std::borrow::Cow;

use http::Method;
use serde::Serialize;

use crate::action::DataAction;
use crate::batch::BatchOperation;
use crate::error::ProtocolError;
use crate::headers::{self, PartitionKey};
use crate::path::parse_path_and_cut;

/// What the classifier reads from a request.
///
/// Its `Debug` output leaves the headers out, since they carry the client's credential.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The raw path as received; it may include `?query` (refused unless Direct mode).
    pub path: &'a str,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
}

impl std::fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", self.method)
            .field("path", &self.path)
            .field("headers", &format_args!("[{} omitted]", self.headers.len()))
            .finish()
    }
}

/// A classified data-plane request.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// What the request does.
    pub kind: OperationKind,
    /// Every action the request needs, sorted and without duplicates.
    ///
    /// For [`OperationKind::Batch`] and [`OperationKind::Bulk`] this starts as every item
    /// action a batch could perform, so that a forgotten body check fails closed; the body
    /// check narrows it to the actions the body really uses.
    pub actions: Vec<DataAction>,
    /// The resource type used for signing (`docs`, `colls`, …; `""` for the account).
    pub resource_type: String,
    /// The resource link used for signing.
    pub resource_link: String,
    /// The database name; `None` for account-level and RID-addressed requests.
    pub database: Option<String>,
    /// The container name; `None` above container level and for RID-addressed requests.
    pub container: Option<String>,
    /// The item id, for point operations on one item.
    pub item_id: Option<String>,
    /// The `x-ms-documentdb-partitionkey` header; `None` means container-wide.
    pub partition_key: Option<PartitionKey>,
    /// True when `x-ms-documentdb-partitionkeyrangeid`, `x-ms-start-epk` or `x-ms-end-epk` is
    /// present: the request is scoped to a partition key range (a physical partition or a
    /// slice of the hash space) that may hold many logical partitions.
    pub range_scoped: bool,
    /// True when the path addresses resources by `_rid` (metadata reads only).
    pub rid_based: bool,
    /// The operations of a batch or bulk body, once read.
    pub batch: Vec<BatchOperation>,
}

impl Operation {
    /// True when the body must be read (and given to `classify_batch_body`) before the policy
    /// can decide.
    pub fn needs_body(&self) -> bool {
        matches!(self.kind, OperationKind::Batch | OperationKind::Bulk)
    }
}

/// The data-plane operations the proxy recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    ReadAccount,
    ListDatabases,
    QueryDatabases,
    ReadDatabase,
    ListContainers,
    QueryContainers,
    ReadContainer,
    ReadPartitionKeyRanges,
    CreateItem,
    UpsertItem,
    ReadItem,
    ReplaceItem,
    PatchItem,
    DeleteItem,
    Query,
    QueryPlan,
    ReadFeed,
    ChangeFeed,
    Batch,
    Bulk,
    ExecuteStoredProcedure,
    ReadConflicts,
    DeleteConflict,
    DeleteByPartitionKey,
}

impl OperationKind {
    /// The snake_case name used in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadAccount => "read_account",
            Self::ListDatabases => "list_databases",
            Self::QueryDatabases => "query_databases",
            Self::ReadDatabase => "read_database",
            Self::ListContainers => "list_containers",
            Self::QueryContainers => "query_containers",
            Self::ReadContainer => "read_container",
            Self::ReadPartitionKeyRanges => "read_partition_key_ranges",
            Self::CreateItem => "create_item",
            Self::UpsertItem => "upsert_item",
            Self::ReadItem => "read_item",
            Self::ReplaceItem => "replace_item",
            Self::PatchItem => "patch_item",
            Self::DeleteItem => "delete_item",
            Self::Query => "query",
            Self::QueryPlan => "query_plan",
            Self::ReadFeed => "read_feed",
            Self::ChangeFeed => "change_feed",
            Self::Batch => "batch",
            Self::Bulk => "bulk",
            Self::ExecuteStoredProcedure => "execute_stored_procedure",
            Self::ReadConflicts => "read_conflicts",
            Self::DeleteConflict => "delete_conflict",
            Self::DeleteByPartitionKey => "delete_by_partition_key",
        }
    }

    /// The actions this kind needs, before any body is read.
    fn actions(self) -> Vec<DataAction> {
        use DataAction as A;
        match self {
            Self::ReadAccount
            | Self::ListDatabases
            | Self::QueryDatabases
            | Self::ReadDatabase
            | Self::ListContainers
            | Self::QueryContainers
            | Self::ReadContainer
            | Self::ReadPartitionKeyRanges => vec![A::ReadMetadata],
            Self::CreateItem => vec![A::ItemsCreate],
            Self::UpsertItem => vec![A::ItemsUpsert],
            Self::ReadItem => vec![A::ItemsRead],
            Self::ReplaceItem | Self::PatchItem => vec![A::ItemsReplace],
            Self::DeleteItem | Self::DeleteByPartitionKey => vec![A::ItemsDelete],
            Self::Query | Self::QueryPlan => vec![A::ExecuteQuery],
            Self::ReadFeed | Self::ChangeFeed => vec![A::ReadChangeFeed],
            Self::Batch | Self::Bulk => vec![
                A::ItemsCreate,
                A::ItemsRead,
                A::ItemsReplace,
                A::ItemsUpsert,
                A::ItemsDelete,
            ],
            Self::ExecuteStoredProcedure => vec![A::ExecuteStoredProcedure],
            Self::ReadConflicts | Self::DeleteConflict => vec![A::ManageConflicts],
        }
    }
}

impl Serialize for OperationKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Classifies a request from its method, path and headers.
pub fn classify(head: &RequestHead<'_>) -> Result<Operation, ProtocolError> {
    let (path, query_or_fragment) = parse_path_and_cut(head.path)?;
    if path.segments.first().is_some_and(|s| s == "addresses") {
        return Err(ProtocolError::DirectMode);
    }
    // Case C17: the data-plane API has no query strings, and a raw `#` is never valid.
    if query_or_fragment {
        return Err(ProtocolError::MalformedPath);
    }

    let kind = route(head, &path.segments)?;
    let actions = kind.actions();
    if path.rid_based && actions != [DataAction::ReadMetadata] {
        return Err(ProtocolError::RidAddressing);
    }

    let names = if path.rid_based {
        Names::default()
    } else {
        Names::of(kind, &path.segments)
    };
    Ok(Operation {
        kind,
        actions,
        resource_type: path.resource_type,
        resource_link: path.resource_link,
        database: names.database,
        container: names.container,
        item_id: names.item_id,
        partition_key: headers::partition_key(head.headers)?,
        range_scoped: headers::range_scoped(head.headers)?,
        rid_based: path.rid_based,
        batch: Vec::new(),
    })
}

/// The names a name-based path carries.
#[derive(Default)]
struct Names {
    database: Option<String>,
    container: Option<String>,
    item_id: Option<String>,
}

impl Names {
    fn of(kind: OperationKind, segments: &[Cow<'_, str>]) -> Names {
        // The name at `i`, if the keyword before it is `keyword`.
        let at = |i: usize, keyword: &str| {
            let parent = segments.get(i - 1).filter(|s| *s == keyword);
            parent
                .and(segments.get(i))
                .map(|name| name.as_ref().to_owned())
        };
        let point = matches!(
            kind,
            OperationKind::ReadItem
                | OperationKind::ReplaceItem
                | OperationKind::PatchItem
                | OperationKind::DeleteItem
        );
        Names {
            database: at(1, "dbs"),
            container: at(3, "colls"),
            item_id: if point { at(5, "docs") } else { None },
        }
    }
}

/// Routes on the resource tree: account, then `dbs`, then `colls`, then container children.
fn route(
    head: &RequestHead<'_>,
    segments: &[Cow<'_, str>],
) -> Result<OperationKind, ProtocolError> {
    let Some((root, rest)) = segments.split_first() else {
        return only_get(head.method, OperationKind::ReadAccount);
    };
    match root.as_ref() {
        "dbs" => databases(head, rest),
        "offers" => Err(ProtocolError::ControlPlane),
        _ => Err(ProtocolError::UnknownOperation),
    }
}

fn databases(
    head: &RequestHead<'_>,
    rest: &[Cow<'_, str>],
) -> Result<OperationKind, ProtocolError> {
    use OperationKind as K;
    match rest {
        [] => metadata_feed(head, K::ListDatabases, K::QueryDatabases),
        [_] => metadata_item(head.method, K::ReadDatabase),
        [_, child, rest @ ..] => match child.as_ref() {
            "colls" => containers(head, rest),
            "users" => Err(ProtocolError::ControlPlane),
            _ => Err(ProtocolError::UnknownOperation),
        },
    }
}

fn containers(
    head: &RequestHead<'_>,
    rest: &[Cow<'_, str>],
) -> Result<OperationKind, ProtocolError> {
    use OperationKind as K;
    match rest {
        [] => metadata_feed(head, K::ListContainers, K::QueryContainers),
        [_] => metadata_item(head.method, K::ReadContainer),
        [_, child, rest @ ..] => container_child(head, child, rest),
    }
}

fn container_child(
    head: &RequestHead<'_>,
    child: &str,
    rest: &[Cow<'_, str>],
) -> Result<OperationKind, ProtocolError> {
    match (child, rest.len()) {
        ("docs", _) => docs(head, rest),
        ("pkranges", 0 | 1) => only_get(head.method, OperationKind::ReadPartitionKeyRanges),
        ("sprocs", 1) if head.method == Method::POST => Ok(OperationKind::ExecuteStoredProcedure),
        ("sprocs" | "udfs" | "triggers", 0 | 1) => Err(ProtocolError::ControlPlane),
        ("conflicts", _) => conflicts(head, rest),
        ("operations", 1) if rest[0] == "partitionkeydelete" => {
            only_post(head.method, OperationKind::DeleteByPartitionKey)
        }
        _ => Err(ProtocolError::UnknownOperation),
    }
}

fn docs(head: &RequestHead<'_>, rest: &[Cow<'_, str>]) -> Result<OperationKind, ProtocolError> {
    use OperationKind as K;
    let method = head.method;
    match rest.len() {
        0 if method == Method::GET => {
            let change_feed = headers::present(head.headers, &headers::A_IM)?;
            Ok(if change_feed {
                K::ChangeFeed
            } else {
                K::ReadFeed
            })
        }
        0 if method == Method::POST => post_docs(head),
        1 if method == Method::GET => Ok(K::ReadItem),
        1 if method == Method::PUT => Ok(K::ReplaceItem),
        1 if method == Method::PATCH => Ok(K::PatchItem),
        1 if method == Method::DELETE => Ok(K::DeleteItem),
        _ => Err(ProtocolError::UnknownOperation),
    }
}

/// `POST …/docs` is create, upsert, query, query plan, batch or bulk, told apart by headers.
fn post_docs(head: &RequestHead<'_>) -> Result<OperationKind, ProtocolError> {
    use OperationKind as K;
    Ok(match post_intent(head.headers)? {
        PostIntent::Plain => K::CreateItem,
        PostIntent::Upsert => K::UpsertItem,
        PostIntent::Query => K::Query,
        PostIntent::QueryPlan => K::QueryPlan,
        PostIntent::Batch if headers::flag(head.headers, &headers::BATCH_ATOMIC)? => K::Batch,
        PostIntent::Batch => K::Bulk,
    })
}

fn conflicts(
    head: &RequestHead<'_>,
    rest: &[Cow<'_, str>],
) -> Result<OperationKind, ProtocolError> {
    use OperationKind as K;
    let method = head.method;
    match rest.len() {
        0 if method == Method::GET => Ok(K::ReadConflicts),
        0 if method == Method::POST && post_intent(head.headers)? == PostIntent::Query => {
            Ok(K::ReadConflicts)
        }
        1 if method == Method::GET => Ok(K::ReadConflicts),
        1 if method == Method::DELETE => Ok(K::DeleteConflict),
        _ => Err(ProtocolError::UnknownOperation),
    }
}

/// `GET` lists a metadata feed, a `POST` query queries it, any other `POST` creates a
/// resource (management).
fn metadata_feed(
    head: &RequestHead<'_>,
    list: OperationKind,
    query: OperationKind,
) -> Result<OperationKind, ProtocolError> {
    if head.method == Method::GET {
        return Ok(list);
    }
    if head.method != Method::POST {
        return Err(ProtocolError::UnknownOperation);
    }
    match post_intent(head.headers)? {
        PostIntent::Query => Ok(query),
        _ => Err(ProtocolError::ControlPlane),
    }
}

/// `GET` reads one metadata resource; `PUT` and `DELETE` manage it.
fn metadata_item(method: &Method, read: OperationKind) -> Result<OperationKind, ProtocolError> {
    match *method {
        Method::GET => Ok(read),
        Method::PUT | Method::DELETE => Err(ProtocolError::ControlPlane),
        _ => Err(ProtocolError::UnknownOperation),
    }
}

fn only_get(method: &Method, kind: OperationKind) -> Result<OperationKind, ProtocolError> {
    if *method == Method::GET {
        Ok(kind)
    } else {
        Err(ProtocolError::UnknownOperation)
    }
}

fn only_post(method: &Method, kind: OperationKind) -> Result<OperationKind, ProtocolError> {
    if *method == Method::POST {
        Ok(kind)
    } else {
        Err(ProtocolError::UnknownOperation)
    }
}

/// What the headers of a `POST` ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PostIntent {
    Plain,
    Upsert,
    Query,
    QueryPlan,
    Batch,
}

/// Reads the intent headers of a `POST`. Two intents at once (say, upsert and query) are
/// refused: we cannot know which one Cosmos would honour.
fn post_intent(map: &http::HeaderMap) -> Result<PostIntent, ProtocolError> {
    let batch = headers::flag(map, &headers::IS_BATCH)?;
    let plan = headers::flag(map, &headers::IS_QUERY_PLAN)?;
    let query = headers::flag(map, &headers::IS_QUERY)? || headers::is_query_content_type(map)?;
    let upsert = headers::flag(map, &headers::IS_UPSERT)?;

    let querying = plan || query;
    if batch && (querying || upsert) {
        return Err(ProtocolError::MalformedHeader {
            name: headers::IS_BATCH.as_str(),
        });
    }
    if upsert && querying {
        return Err(ProtocolError::MalformedHeader {
            name: headers::IS_UPSERT.as_str(),
        });
    }
    Ok(match (batch, plan, query, upsert) {
        (true, ..) => PostIntent::Batch,
        (_, true, ..) => PostIntent::QueryPlan,
        (_, _, true, _) => PostIntent::Query,
        (.., true) => PostIntent::Upsert,
        _ => PostIntent::Plain,
    })
}

#[cfg(test)]
mod tests;
