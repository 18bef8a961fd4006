//! Cosmos DB data-plane RBAC actions.

use std::fmt;

/// One data-plane action from Cosmos DB's built-in RBAC model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataAction {
    /// Account, database and container metadata, including partition key ranges.
    ReadMetadata,
    /// Create an item.
    ItemsCreate,
    /// Point-read an item by id and partition key.
    ItemsRead,
    /// Replace (and, by our mapping, patch) an item.
    ItemsReplace,
    /// Upsert an item.
    ItemsUpsert,
    /// Delete an item, or every item of a partition key.
    ItemsDelete,
    /// Run a query or fetch a query plan.
    ExecuteQuery,
    /// Read the change feed, or list items without a query.
    ReadChangeFeed,
    /// Execute a stored procedure.
    ExecuteStoredProcedure,
    /// Read or delete conflicts.
    ManageConflicts,
}

impl DataAction {
    /// Every action, in declaration order.
    pub const ALL: [DataAction; 10] = [
        Self::ReadMetadata,
        Self::ItemsCreate,
        Self::ItemsRead,
        Self::ItemsReplace,
        Self::ItemsUpsert,
        Self::ItemsDelete,
        Self::ExecuteQuery,
        Self::ReadChangeFeed,
        Self::ExecuteStoredProcedure,
        Self::ManageConflicts,
    ];

    /// The short name used in policy files, e.g. `items/read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadMetadata => "readMetadata",
            Self::ItemsCreate => "items/create",
            Self::ItemsRead => "items/read",
            Self::ItemsReplace => "items/replace",
            Self::ItemsUpsert => "items/upsert",
            Self::ItemsDelete => "items/delete",
            Self::ExecuteQuery => "executeQuery",
            Self::ReadChangeFeed => "readChangeFeed",
            Self::ExecuteStoredProcedure => "executeStoredProcedure",
            Self::ManageConflicts => "manageConflicts",
        }
    }

    /// The full name as Cosmos DB role definitions spell it.
    pub fn full_name(self) -> &'static str {
        match self {
            Self::ReadMetadata => "Microsoft.DocumentDB/databaseAccounts/readMetadata",
            Self::ItemsCreate => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create"
            }
            Self::ItemsRead => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read"
            }
            Self::ItemsReplace => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/replace"
            }
            Self::ItemsUpsert => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert"
            }
            Self::ItemsDelete => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/delete"
            }
            Self::ExecuteQuery => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"
            }
            Self::ReadChangeFeed => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/readChangeFeed"
            }
            Self::ExecuteStoredProcedure => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeStoredProcedure"
            }
            Self::ManageConflicts => {
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/manageConflicts"
            }
        }
    }

    /// Parses a short or full action name, exactly as [`as_str`](Self::as_str) and
    /// [`full_name`](Self::full_name) spell them. Wildcards are the policy's business.
    pub fn parse(s: &str) -> Option<DataAction> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == s || action.full_name() == s)
    }
}

impl fmt::Display for DataAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for DataAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT_PREFIX: &str = "Microsoft.DocumentDB/databaseAccounts/";
    const CONTAINER_PREFIX: &str = "sqlDatabases/containers/";

    #[test]
    fn full_names_are_the_account_or_container_prefix_plus_the_short_name() {
        for action in DataAction::ALL {
            let expected = match action {
                DataAction::ReadMetadata => format!("{ACCOUNT_PREFIX}{}", action.as_str()),
                _ => format!("{ACCOUNT_PREFIX}{CONTAINER_PREFIX}{}", action.as_str()),
            };
            assert_eq!(action.full_name(), expected);
        }
    }

    #[test]
    fn both_spellings_parse_back_to_the_same_action() {
        for action in DataAction::ALL {
            assert_eq!(DataAction::parse(action.as_str()), Some(action));
            assert_eq!(DataAction::parse(action.full_name()), Some(action));
        }
        assert_eq!(
            DataAction::parse(
                "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"
            ),
            Some(DataAction::ExecuteQuery)
        );
    }

    #[test]
    fn unknown_wildcard_and_miscased_names_do_not_parse() {
        for name in [
            "",
            "items/*",
            "*",
            "Items/Read",
            "readmetadata",
            "items/patch",
            " items/read",
        ] {
            assert_eq!(DataAction::parse(name), None, "{name}");
        }
    }

    #[test]
    fn display_and_serde_use_the_short_name() {
        assert_eq!(DataAction::ItemsUpsert.to_string(), "items/upsert");
        let json = serde_json::to_string(&[DataAction::ReadMetadata, DataAction::ItemsDelete])
            .expect("actions must serialize");
        assert_eq!(json, r#"["readMetadata","items/delete"]"#);
    }

    #[test]
    fn all_is_sorted_and_complete() {
        let mut sorted = DataAction::ALL;
        sorted.sort();
        assert_eq!(sorted, DataAction::ALL);
    }
}
