//! Builders shared by the unit tests. The `Operation` literal lives only here, so that a change
//! in the protocol crate's struct touches one place.

use cosmogate_protocol::{DataAction, Operation, OperationKind};
use serde_json::{Map, Value};

pub(crate) fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test claims must be a JSON object, got {other}"),
    }
}

pub(crate) fn op(
    kind: OperationKind,
    actions: &[DataAction],
    database: Option<&str>,
    container: Option<&str>,
) -> Operation {
    Operation {
        kind,
        actions: actions.to_vec(),
        resource_type: String::new(),
        resource_link: String::new(),
        database: database.map(str::to_owned),
        container: container.map(str::to_owned),
        item_id: None,
        partition_key: None,
        range_scoped: false,
        rid_based: false,
        batch: Vec::new(),
    }
}

/// An item-level operation on a named container.
pub(crate) fn container_op(actions: &[DataAction], database: &str, container: &str) -> Operation {
    op(
        OperationKind::ReadItem,
        actions,
        Some(database),
        Some(container),
    )
}

/// A metadata-level operation on a named database (`GET /dbs/{db}`).
pub(crate) fn database_op(actions: &[DataAction], database: &str) -> Operation {
    op(OperationKind::ReadDatabase, actions, Some(database), None)
}

/// `GET /`, which every SDK sends first.
pub(crate) fn read_account() -> Operation {
    op(
        OperationKind::ReadAccount,
        &[DataAction::ReadMetadata],
        None,
        None,
    )
}

/// An account-level operation other than `GET /`, such as listing databases.
pub(crate) fn list_databases() -> Operation {
    op(
        OperationKind::ListDatabases,
        &[DataAction::ReadMetadata],
        None,
        None,
    )
}

/// Listing the containers of a named database (`GET /dbs/{db}/colls`).
pub(crate) fn list_containers(database: &str) -> Operation {
    op(
        OperationKind::ListContainers,
        &[DataAction::ReadMetadata],
        Some(database),
        None,
    )
}

/// A container-level operation addressed by `_rid`.
pub(crate) fn rid_op(actions: &[DataAction]) -> Operation {
    let mut operation = container_op(actions, "gAAMAA==", "gAAMAIAAAAE=");
    operation.rid_based = true;
    operation
}
