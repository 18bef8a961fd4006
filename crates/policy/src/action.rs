//! Action names in a policy file: single data actions, the two Cosmos wildcards, and the
//! built-in roles.

use cosmogate_protocol::DataAction;

/// The prefix Cosmos puts before container-level actions and their wildcards.
const SQL_PREFIX: &str = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/";

const ITEM_ACTIONS: [DataAction; 5] = [
    DataAction::ItemsCreate,
    DataAction::ItemsRead,
    DataAction::ItemsReplace,
    DataAction::ItemsUpsert,
    DataAction::ItemsDelete,
];

/// The actions of Cosmos DB Built-in Data Reader.
const DATA_READER: [DataAction; 4] = [
    DataAction::ReadMetadata,
    DataAction::ItemsRead,
    DataAction::ExecuteQuery,
    DataAction::ReadChangeFeed,
];

/// The built-in role names a policy may use, for error messages.
pub(crate) const BUILTIN_NAMES: &str = "\"data-reader\" or \"data-contributor\"";

/// A set of data actions, as a bit per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ActionSet(u16);

impl ActionSet {
    pub(crate) fn of(actions: impl IntoIterator<Item = DataAction>) -> ActionSet {
        ActionSet(actions.into_iter().fold(0, |bits, a| bits | bit(a)))
    }

    pub(crate) fn contains(self, action: DataAction) -> bool {
        self.0 & bit(action) != 0
    }
}

fn bit(action: DataAction) -> u16 {
    // `DataAction` is a fieldless enum of ten variants, so its discriminant fits.
    1 << (action as u16)
}

/// Expands one action name from a policy file. Accepts everything `DataAction::parse` accepts
/// plus `items/*` and `containers/*`, short or with the `Microsoft.DocumentDB/...` prefix.
pub(crate) fn expand(text: &str) -> Option<Vec<DataAction>> {
    let short = text.strip_prefix(SQL_PREFIX).unwrap_or(text);
    match short {
        "items/*" | "containers/items/*" => Some(ITEM_ACTIONS.to_vec()),
        "containers/*" => Some(container_actions()),
        _ => DataAction::parse(text).map(|action| vec![action]),
    }
}

/// The actions of a built-in role, by the name a policy file uses for it.
pub(crate) fn builtin(name: &str) -> Option<Vec<DataAction>> {
    match name {
        "data-reader" => Some(DATA_READER.to_vec()),
        // readMetadata + containers/* + containers/items/*: every data action there is.
        "data-contributor" => Some(DataAction::ALL.to_vec()),
        _ => None,
    }
}

/// `containers/*`: every action below a container, which is all but `readMetadata` (an
/// account-level action name in Cosmos, even when granted at a narrower scope).
fn container_actions() -> Vec<DataAction> {
    DataAction::ALL
        .into_iter()
        .filter(|action| *action != DataAction::ReadMetadata)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_full_names_expand_to_one_action() {
        assert_eq!(expand("items/read"), Some(vec![DataAction::ItemsRead]));
        assert_eq!(expand("readMetadata"), Some(vec![DataAction::ReadMetadata]));
        assert_eq!(
            expand("Microsoft.DocumentDB/databaseAccounts/readMetadata"),
            Some(vec![DataAction::ReadMetadata])
        );
        assert_eq!(
            expand("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"),
            Some(vec![DataAction::ExecuteQuery])
        );
    }

    #[test]
    fn items_wildcard_expands_to_the_five_item_actions() {
        let full = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/*";
        for text in ["items/*", "containers/items/*", full] {
            assert_eq!(expand(text), Some(ITEM_ACTIONS.to_vec()), "{text}");
        }
    }

    #[test]
    fn containers_wildcard_expands_to_everything_but_read_metadata() {
        let full = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/*";
        for text in ["containers/*", full] {
            let actions = expand(text).expect("wildcard is known");
            assert_eq!(actions.len(), DataAction::ALL.len() - 1);
            assert!(!actions.contains(&DataAction::ReadMetadata));
            assert!(actions.contains(&DataAction::ItemsDelete));
            assert!(actions.contains(&DataAction::ExecuteStoredProcedure));
            assert!(actions.contains(&DataAction::ManageConflicts));
        }
    }

    #[test]
    fn unknown_names_and_other_wildcards_do_not_expand() {
        for text in ["", "*", "items/raed", "containers/items", "readmetadata/*"] {
            assert_eq!(expand(text), None, "{text:?}");
        }
    }

    #[test]
    fn an_action_set_holds_exactly_what_it_was_built_from() {
        let set = ActionSet::of([DataAction::ItemsRead, DataAction::ManageConflicts]);
        for action in DataAction::ALL {
            let expected = matches!(action, DataAction::ItemsRead | DataAction::ManageConflicts);
            assert_eq!(set.contains(action), expected, "{action:?}");
        }
        let all = ActionSet::of(DataAction::ALL);
        assert!(
            DataAction::ALL
                .into_iter()
                .all(|action| all.contains(action))
        );
    }

    #[test]
    fn builtin_reader_matches_cosmos_data_reader() {
        let reader = builtin("data-reader").expect("reader is built in");
        assert_eq!(reader, DATA_READER.to_vec());
        assert!(!reader.contains(&DataAction::ItemsCreate));
    }

    #[test]
    fn builtin_contributor_holds_every_action() {
        let contributor = builtin("data-contributor").expect("contributor is built in");
        for action in DataAction::ALL {
            assert!(contributor.contains(&action), "{action:?}");
        }
        assert_eq!(builtin("data-owner"), None);
    }
}
