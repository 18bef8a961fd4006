//! Claims that providers shape differently, brought into one shape for the policy.
//!
//! - `scp` and `scope` become arrays of strings: a string is split on ASCII whitespace (Entra
//!   `scp`, Auth0, Keycloak and Cognito `scope`), an array keeps its string members (Okta `scp`).
//! - `roles` and `groups` become arrays of strings: a lone string becomes a one-member array.
//!   The same is done for Keycloak's `realm_access.roles` and `resource_access.<client>.roles`.
//! - A list claim of any other JSON type (a number, an object) is removed from the normalised
//!   view rather than guessed at. Every other claim is kept as sent.
//!
//! Nested claims are reached by dotted paths (`realm_access.roles`); member names that contain
//! dots themselves (`kubernetes.io`, `https://example.com/roles`) can be part of a path too.

use serde_json::{Map, Value};

/// Claims whose string form is a space-separated list.
const SPACE_SEPARATED: [&str; 2] = ["scp", "scope"];

/// The claim at a dotted `path`. At each level the shortest dot-separated prefix naming a
/// member is tried first, then longer ones, so both `realm_access.roles` and
/// `kubernetes.io.namespace` (a member whose name has a dot) are found, and a top-level claim
/// named by the whole path (`https://example.com/roles`) too.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    lookup_with(|name| claims.get(name), path)
}

/// [`lookup`] with the top level read through `top`.
pub(crate) fn lookup_with<'a>(
    top: impl Fn(&str) -> Option<&'a Value>,
    path: &str,
) -> Option<&'a Value> {
    let ends = path
        .match_indices('.')
        .map(|(at, _)| at)
        .chain(std::iter::once(path.len()));
    for end in ends {
        let Some(value) = top(&path[..end]) else {
            continue;
        };
        if end == path.len() {
            return Some(value);
        }
        let found = value
            .as_object()
            .and_then(|object| lookup(object, &path[end + 1..]));
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `value` as a list of strings: see the module documentation. `None` for other JSON types.
pub(crate) fn list(value: &Value, space_separated: bool) -> Option<Vec<&str>> {
    match value {
        Value::String(words) if space_separated => Some(words.split_ascii_whitespace().collect()),
        Value::String(single) => Some(vec![single.as_str()]),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Whether a claim named `name` is a space-separated list in its string form.
pub(crate) fn is_space_separated(name: &str) -> bool {
    SPACE_SEPARATED.contains(&name)
}

/// The top-level members normalisation can change; every other member is kept as sent.
const TOUCHED: [&str; 6] = [
    "scp",
    "scope",
    "roles",
    "groups",
    "realm_access",
    "resource_access",
];

/// Normalises the list claims of `claims` in place. Returns each member it changed or removed,
/// with its value as sent, so that the payload as sent can still be read.
pub(crate) fn normalize_in_place(claims: &mut Map<String, Value>) -> Vec<(String, Value)> {
    let mut as_sent = Vec::new();
    for name in TOUCHED {
        let Some(sent) = claims.get(name) else {
            continue;
        };
        let normalised = normalized_member(name, sent);
        if normalised.as_ref() == Some(sent) {
            continue;
        }
        let previous = match normalised {
            Some(value) => claims.insert(name.to_owned(), value),
            None => claims.remove(name),
        };
        if let Some(previous) = previous {
            as_sent.push((name.to_owned(), previous));
        }
    }
    as_sent
}

/// The normalised form of the top-level member `name` (one of [`TOUCHED`]); `None` when it is
/// left out.
fn normalized_member(name: &str, sent: &Value) -> Option<Value> {
    match name {
        "realm_access" => {
            let Value::Object(realm) = sent else {
                return Some(sent.clone());
            };
            let mut realm = realm.clone();
            normalize_member(&mut realm, "roles", false);
            Some(Value::Object(realm))
        }
        "resource_access" => {
            let Value::Object(clients) = sent else {
                return Some(sent.clone());
            };
            let mut clients = clients.clone();
            for client in clients.values_mut() {
                if let Value::Object(client) = client {
                    normalize_member(client, "roles", false);
                }
            }
            Some(Value::Object(clients))
        }
        _ => {
            let items = list(sent, is_space_separated(name))?;
            let items = items.into_iter().map(|item| Value::String(item.to_owned()));
            Some(Value::Array(items.collect()))
        }
    }
}

fn normalize_member(object: &mut Map<String, Value>, name: &str, space_separated: bool) {
    let Some(value) = object.get(name) else {
        return;
    };
    match list(value, space_separated) {
        Some(items) => {
            let items = items.into_iter().map(|item| Value::String(item.to_owned()));
            let array = Value::Array(items.collect());
            object.insert(name.to_owned(), array);
        }
        None => {
            object.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalized(claims: &Map<String, Value>) -> Map<String, Value> {
        let mut claims = claims.clone();
        normalize_in_place(&mut claims);
        claims
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test claims must be an object"),
        }
    }

    #[test]
    fn space_separated_scopes_and_scope_arrays_become_the_same_array() {
        let entra = normalized(&map(json!({"scp": " orders.read  orders.write "})));
        let okta = normalized(&map(json!({"scp": ["orders.read", "orders.write"]})));
        assert_eq!(entra["scp"], json!(["orders.read", "orders.write"]));
        assert_eq!(entra, okta);
        let auth0 = normalized(&map(json!({"scope": "openid profile"})));
        assert_eq!(auth0["scope"], json!(["openid", "profile"]));
        assert_eq!(normalized(&map(json!({"scp": ""})))["scp"], json!([]));
    }

    #[test]
    fn lone_roles_and_groups_become_one_member_arrays_without_splitting() {
        let claims = normalized(&map(json!({"roles": "Orders Admin", "groups": ["g1", 7]})));
        assert_eq!(claims["roles"], json!(["Orders Admin"]));
        assert_eq!(claims["groups"], json!(["g1"]));
    }

    #[test]
    fn list_claims_of_other_types_are_dropped_and_other_claims_kept() {
        let claims = normalized(&map(
            json!({"roles": {"a": 1}, "scp": 5, "tid": "t", "n": 1}),
        ));
        assert!(!claims.contains_key("roles") && !claims.contains_key("scp"));
        assert_eq!(claims["tid"], "t");
        assert_eq!(claims["n"], 1);
    }

    #[test]
    fn keycloak_nested_roles_are_normalised_in_place() {
        let claims = normalized(&map(json!({
            "realm_access": {"roles": "admin"},
            "resource_access": {"cosmos": {"roles": ["reader"]}, "odd": 3},
        })));
        assert_eq!(claims["realm_access"]["roles"], json!(["admin"]));
        assert_eq!(
            claims["resource_access"]["cosmos"]["roles"],
            json!(["reader"])
        );
        assert_eq!(claims["resource_access"]["odd"], 3);
    }

    #[test]
    fn only_changed_members_are_kept_as_sent() {
        let mut okta = map(json!({"scp": ["a", "b"], "groups": ["g"], "sub": "u"}));
        assert!(
            normalize_in_place(&mut okta).is_empty(),
            "already normalised"
        );
        let mut entra = map(json!({"scp": "a b", "roles": ["r"], "tid": "t"}));
        assert_eq!(
            normalize_in_place(&mut entra),
            [("scp".to_owned(), json!("a b"))]
        );
        assert_eq!(
            entra,
            map(json!({"scp": ["a", "b"], "roles": ["r"], "tid": "t"}))
        );
        let mut odd = map(json!({"roles": 5, "realm_access": {"roles": "admin"}}));
        let mut sent = normalize_in_place(&mut odd);
        sent.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            sent,
            [
                ("realm_access".to_owned(), json!({"roles": "admin"})),
                ("roles".to_owned(), json!(5)),
            ]
        );
        assert_eq!(odd, map(json!({"realm_access": {"roles": ["admin"]}})));
    }

    #[test]
    fn dotted_paths_walk_objects_and_member_names_with_dots() {
        let claims = map(json!({
            "realm_access": {"roles": ["admin"]},
            "https://example.test/roles": ["r1"],
            "kubernetes.io": {"namespace": "prod"},
        }));
        assert_eq!(
            lookup(&claims, "realm_access.roles"),
            Some(&json!(["admin"]))
        );
        assert_eq!(
            lookup(&claims, "https://example.test/roles"),
            Some(&json!(["r1"]))
        );
        assert_eq!(
            lookup(&claims, "kubernetes.io.namespace"),
            Some(&json!("prod"))
        );
        assert_eq!(
            lookup(&claims, "kubernetes.io"),
            Some(&json!({"namespace": "prod"}))
        );
        assert_eq!(lookup(&claims, "realm_access.roles.x"), None);
        assert_eq!(lookup(&claims, "missing"), None);
    }
}
