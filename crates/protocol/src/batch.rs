//! Reading transactional batch and bulk bodies, whose RBAC actions depend on every operation
//! inside them.
//!
//! The body is a JSON array of `{operationType, id?, partitionKey?, resourceBody?, …}` (JS,
//! Python and Java SDKs). Each element is read strictly: a repeated member, or a member whose
//! name differs from a known one only by case, is refused, because a case-insensitive JSON
//! reader on the Cosmos side could pick a different `operationType` than we did.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::action::DataAction;
use crate::classify::{Operation, OperationKind};
use crate::error::ProtocolError;
use crate::headers::PartitionKey;

/// One operation inside a batch or bulk body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchOperation {
    /// The `operationType` as sent (`Create`, `Upsert`, `Read`, `Replace`, `Patch`, `Delete`).
    pub operation_type: String,
    /// The action the operation needs.
    pub action: DataAction,
    /// The item id: the `id` member, else the `id` of `resourceBody`.
    pub id: Option<String>,
    /// The operation's partition key. In a transactional batch an operation without one
    /// inherits the request's `x-ms-documentdb-partitionkey`. `None` means unknown, so a rule
    /// scoped to a partition key must not match.
    pub partition_key: Option<PartitionKey>,
}

/// Reads a batch or bulk body, fills `op.batch`, and narrows `op.actions` to the union of the
/// operations' actions. Does nothing for operations that carry no batch body.
pub fn classify_batch_body(op: &mut Operation, body: &[u8]) -> Result<(), ProtocolError> {
    if !op.needs_body() {
        return Ok(());
    }
    let elements: Vec<Element> =
        serde_json::from_slice(body).map_err(|_| ProtocolError::MalformedBatch)?;
    if elements.is_empty() {
        return Err(ProtocolError::MalformedBatch);
    }

    let inherited = match op.kind {
        OperationKind::Batch => op.partition_key.as_ref(),
        _ => None,
    };
    let batch = elements
        .into_iter()
        .map(|element| element.into_operation(inherited))
        .collect::<Result<Vec<_>, _>>()?;

    let mut actions: Vec<DataAction> = batch.iter().map(|b| b.action).collect();
    actions.sort();
    actions.dedup();
    op.actions = actions;
    op.batch = batch;
    Ok(())
}

fn action_for(operation_type: &str) -> Option<DataAction> {
    Some(match operation_type {
        "Create" => DataAction::ItemsCreate,
        "Upsert" => DataAction::ItemsUpsert,
        "Read" => DataAction::ItemsRead,
        "Replace" | "Patch" => DataAction::ItemsReplace,
        "Delete" => DataAction::ItemsDelete,
        _ => return None,
    })
}

/// One body element, as read from the wire.
struct Element {
    operation_type: String,
    id: Option<String>,
    partition_key: Option<String>,
    body_id: Option<String>,
}

impl Element {
    fn into_operation(
        self,
        inherited: Option<&PartitionKey>,
    ) -> Result<BatchOperation, ProtocolError> {
        let action = action_for(&self.operation_type).ok_or(ProtocolError::MalformedBatch)?;
        let own = match self.partition_key {
            Some(text) => {
                Some(PartitionKey::from_json_text(&text).ok_or(ProtocolError::MalformedBatch)?)
            }
            None => None,
        };
        // A transactional batch runs in one logical partition; an operation naming another
        // one would be authorised against the wrong key.
        if let (Some(own), Some(inherited)) = (&own, inherited)
            && own.values != inherited.values
        {
            return Err(ProtocolError::MalformedBatch);
        }
        Ok(BatchOperation {
            operation_type: self.operation_type,
            action,
            id: self.id.or(self.body_id),
            partition_key: own.or_else(|| inherited.cloned()),
        })
    }
}

/// The members we read, by their exact wire names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    OperationType,
    Id,
    PartitionKey,
    ResourceBody,
}

impl Member {
    const ALL: [(Member, &'static str); 4] = [
        (Member::OperationType, "operationType"),
        (Member::Id, "id"),
        (Member::PartitionKey, "partitionKey"),
        (Member::ResourceBody, "resourceBody"),
    ];

    /// The member a key names; an error for a near miss in case (including Unicode folds
    /// such as the dotless `ı`).
    fn from_key(key: &str) -> Result<Option<Member>, &'static str> {
        for (member, name) in Self::ALL {
            if key == name {
                return Ok(Some(member));
            }
            if differs_only_by_case(key, name) {
                return Err("batch member name differs from a known member only by case");
            }
        }
        Ok(None)
    }
}

/// Whether `key` equals the ASCII `name` once both are lowercased, or once both are
/// uppercased, as Unicode defines the case mappings. An ASCII key maps to ASCII both ways, so
/// for it this is exactly an ASCII case-insensitive comparison, done without allocating; only
/// a key with other characters (the dotless `ı`, the Kelvin sign) takes the Unicode mappings.
fn differs_only_by_case(key: &str, name: &str) -> bool {
    if key.is_ascii() {
        return key.eq_ignore_ascii_case(name);
    }
    key.to_lowercase() == name.to_lowercase() || key.to_uppercase() == name.to_uppercase()
}

/// `resourceBody`, of which only a string `id` is kept.
#[derive(Deserialize)]
struct ResourceBody {
    id: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch operation object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut seen = Vec::with_capacity(4);
        let mut operation_type = None;
        let mut element = Element {
            operation_type: String::new(),
            id: None,
            partition_key: None,
            body_id: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            let member = Member::from_key(&key).map_err(de::Error::custom)?;
            let Some(member) = member else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen.contains(&member) {
                return Err(de::Error::custom("repeated batch member"));
            }
            seen.push(member);
            match member {
                Member::OperationType => operation_type = Some(map.next_value::<String>()?),
                Member::Id => element.id = map.next_value::<Option<String>>()?,
                Member::PartitionKey => element.partition_key = map.next_value()?,
                Member::ResourceBody => element.body_id = body_id(map.next_value()?),
            }
        }
        element.operation_type =
            operation_type.ok_or_else(|| de::Error::missing_field("operationType"))?;
        Ok(element)
    }
}

fn body_id(body: Option<ResourceBody>) -> Option<String> {
    match body?.id? {
        serde_json::Value::String(id) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{RequestHead, classify};
    use http::{HeaderMap, HeaderValue, Method};
    use serde_json::json;

    fn batch_op(atomic: bool, partition_key: Option<&str>) -> Operation {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ms-cosmos-is-batch-request",
            HeaderValue::from_static("true"),
        );
        let atomic = if atomic { "true" } else { "false" };
        headers.insert("x-ms-cosmos-batch-atomic", HeaderValue::from_static(atomic));
        if let Some(pk) = partition_key {
            let value = HeaderValue::from_str(pk).expect("test pk must be a valid header");
            headers.insert("x-ms-documentdb-partitionkey", value);
        }
        let head = RequestHead {
            method: &Method::POST,
            path: "/dbs/shop/colls/orders/docs",
            headers: &headers,
        };
        classify(&head).expect("batch head must classify")
    }

    #[test]
    fn unread_batch_needs_every_item_action() {
        let op = batch_op(true, Some(r#"["p1"]"#));
        assert!(op.needs_body());
        assert_eq!(
            op.actions,
            [
                DataAction::ItemsCreate,
                DataAction::ItemsRead,
                DataAction::ItemsReplace,
                DataAction::ItemsUpsert,
                DataAction::ItemsDelete
            ]
        );
    }

    #[test]
    fn bulk_body_yields_the_union_of_per_operation_actions_and_keys() {
        let mut op = batch_op(false, None);
        assert_eq!(op.kind, OperationKind::Bulk);
        let body = br#"[
            {"operationType":"Create","partitionKey":"[\"p1\"]","resourceBody":{"id":"a","pk":"p1"}},
            {"operationType":"Delete","id":"b","partitionKey":"[\"p2\"]"},
            {"operationType":"Create","partitionKey":"[\"p3\"]","resourceBody":{"id":"c"}},
            {"operationType":"Read","id":"d"}
        ]"#;
        classify_batch_body(&mut op, body).expect("bulk body must parse");
        assert_eq!(
            op.actions,
            [
                DataAction::ItemsCreate,
                DataAction::ItemsRead,
                DataAction::ItemsDelete
            ]
        );
        let ids: Vec<_> = op.batch.iter().map(|b| b.id.as_deref()).collect();
        assert_eq!(ids, [Some("a"), Some("b"), Some("c"), Some("d")]);
        let keys: Vec<_> = op
            .batch
            .iter()
            .map(|b| b.partition_key.as_ref().map(|k| k.values.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                Some(vec![json!("p1")]),
                Some(vec![json!("p2")]),
                Some(vec![json!("p3")]),
                None
            ]
        );
    }

    #[test]
    fn transactional_batch_operations_inherit_the_header_key() {
        let mut op = batch_op(true, Some(r#"["p1"]"#));
        assert_eq!(op.kind, OperationKind::Batch);
        let body = br#"[{"operationType":"Upsert","resourceBody":{"id":"a"}},
                        {"operationType":"Patch","id":"a","resourceBody":{"operations":[]}},
                        {"operationType":"Replace","id":"a","partitionKey":"[\"p1\"]"}]"#;
        classify_batch_body(&mut op, body).expect("batch body must parse");
        assert_eq!(
            op.actions,
            [DataAction::ItemsReplace, DataAction::ItemsUpsert]
        );
        for item in &op.batch {
            let key = item.partition_key.as_ref().expect("key must be inherited");
            assert_eq!(key.values, [json!("p1")]);
        }
        assert_eq!(op.batch[1].operation_type, "Patch");
    }

    #[test]
    fn transactional_batch_operation_naming_another_key_is_refused() {
        let mut op = batch_op(true, Some(r#"["p1"]"#));
        let body = br#"[{"operationType":"Delete","id":"a","partitionKey":"[\"p2\"]"}]"#;
        assert_eq!(
            classify_batch_body(&mut op, body),
            Err(ProtocolError::MalformedBatch)
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad: [&[u8]; 14] = [
            b"",
            b"[]",
            b"{}",
            b"[1]",
            b"not json",
            br#"[{"id":"a"}]"#,
            br#"[{"operationType":"Query"}]"#,
            br#"[{"operationType":"create"}]"#,
            br#"[{"operationType":7}]"#,
            br#"[{"operationType":"Read","id":5}]"#,
            br#"[{"operationType":"Read","partitionKey":["p1"]}]"#,
            br#"[{"operationType":"Read","partitionKey":"p1"}]"#,
            br#"[{"operationType":"Read","operationType":"Delete"}]"#,
            br#"[{"operationType":"Read","OperationType":"Delete"}]"#,
        ];
        for body in bad {
            let mut op = batch_op(false, None);
            assert_eq!(
                classify_batch_body(&mut op, body),
                Err(ProtocolError::MalformedBatch),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn unicode_case_folds_of_member_names_are_refused() {
        let mut op = batch_op(false, None);
        let body = r#"[{"operationType":"Read","id":"a","operatıonType":"Delete"}]"#;
        assert_eq!(
            classify_batch_body(&mut op, body.as_bytes()),
            Err(ProtocolError::MalformedBatch)
        );
    }

    #[test]
    fn a_kelvin_sign_in_a_member_name_is_a_case_fold_too() {
        let mut op = batch_op(false, None);
        let body = "[{\"operationType\":\"Read\",\"id\":\"a\",\"partition\u{212A}ey\":\"[1]\"}]";
        assert_eq!(
            classify_batch_body(&mut op, body.as_bytes()),
            Err(ProtocolError::MalformedBatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_shortcut_agrees_with_the_unicode_case_mappings(key in "[a-zA-Z_]{0,14}") {
            for (_, name) in Member::ALL {
                let unicode = key.to_lowercase() == name.to_lowercase()
                    || key.to_uppercase() == name.to_uppercase();
                proptest::prop_assert_eq!(differs_only_by_case(&key, name), unicode);
            }
        }
    }

    #[test]
    fn unknown_members_are_ignored() {
        let mut op = batch_op(false, None);
        let body = br#"[{"operationType":"Read","id":"a","ifMatch":"x","extra":{"id":1}}]"#;
        classify_batch_body(&mut op, body).expect("unknown members must be skipped");
        assert_eq!(op.actions, [DataAction::ItemsRead]);
    }

    #[test]
    fn non_batch_operations_are_left_alone() {
        let headers = HeaderMap::new();
        let head = RequestHead {
            method: &Method::GET,
            path: "/dbs/shop/colls/orders/docs/o1",
            headers: &headers,
        };
        let mut op = classify(&head).expect("read must classify");
        classify_batch_body(&mut op, b"garbage").expect("no body is needed");
        assert_eq!(op.actions, [DataAction::ItemsRead]);
    }

    proptest::proptest! {
        #[test]
        fn classify_batch_body_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let mut op = batch_op(false, None);
            let _ = classify_batch_body(&mut op, &body);
        }
    }
}
