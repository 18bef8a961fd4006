//! Making the forwarded request say exactly what cosmogate decided it is.
//!
//! Create, upsert, query, query plan and batch are all `POST …/docs` and differ only by
//! headers. If cosmogate and the gateway behind it read those headers differently (a content
//! type with parameters or unusual case, a query-plan flag the gateway ignores), a request
//! authorised as a query could run as a create. So after classification the intent headers
//! are rewritten to the one canonical form of the classified operation, and intent headers
//! that contradict it are removed.

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use crate::classify::{Operation, OperationKind};
use crate::headers::{IS_BATCH, IS_QUERY, IS_QUERY_PLAN, IS_UPSERT};

const QUERY_CONTENT_TYPE: &str = "application/query+json";

/// Rewrites the intent headers of a `POST …/docs` to the canonical form of `operation`.
/// Other operations are left untouched.
pub fn canonicalize_intent(operation: &Operation, headers: &mut HeaderMap) {
    let keep: &[&HeaderName] = match operation.kind {
        OperationKind::Query => &[&IS_QUERY],
        OperationKind::QueryPlan => &[&IS_QUERY_PLAN],
        OperationKind::UpsertItem => &[&IS_UPSERT],
        OperationKind::Batch | OperationKind::Bulk => &[&IS_BATCH],
        OperationKind::CreateItem => &[],
        _ => return,
    };
    for flag in [&IS_QUERY, &IS_QUERY_PLAN, &IS_UPSERT, &IS_BATCH] {
        if !keep.contains(&flag) {
            headers.remove(flag);
        }
    }
    match operation.kind {
        OperationKind::Query => {
            headers.insert(&IS_QUERY, HeaderValue::from_static("True"));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(QUERY_CONTENT_TYPE));
        }
        OperationKind::QueryPlan => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(QUERY_CONTENT_TYPE));
        }
        _ => {
            // A write must not carry anything a gateway could read as a query.
            let query_like = headers.get(CONTENT_TYPE).is_some_and(|value| {
                value
                    .as_bytes()
                    .to_ascii_lowercase()
                    .windows(5)
                    .any(|w| w == b"query")
            });
            if query_like {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{RequestHead, classify};

    fn classified(pairs: &[(&'static str, &'static str)]) -> (Operation, HeaderMap) {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        let method = http::Method::POST;
        let head = RequestHead {
            method: &method,
            path: "/dbs/shop/colls/orders/docs",
            headers: &headers,
        };
        (classify(&head).expect("classified"), headers)
    }

    #[test]
    fn a_query_plan_flag_with_a_json_body_is_forwarded_as_a_query_plan_not_a_create() {
        let (op, mut headers) = classified(&[
            (IS_QUERY_PLAN.as_str(), "true"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(op.kind, OperationKind::QueryPlan);
        canonicalize_intent(&op, &mut headers);
        assert_eq!(headers[CONTENT_TYPE], QUERY_CONTENT_TYPE);
    }

    #[test]
    fn query_content_types_with_parameters_or_case_are_forwarded_in_canonical_form() {
        for content_type in [
            "application/query+json; charset=utf-8",
            "Application/Query+JSON",
            "application/query+json;",
        ] {
            let (op, mut headers) = classified(&[("content-type", content_type)]);
            assert_eq!(op.kind, OperationKind::Query, "{content_type}");
            canonicalize_intent(&op, &mut headers);
            assert_eq!(headers[CONTENT_TYPE], QUERY_CONTENT_TYPE);
            assert_eq!(headers[&IS_QUERY], "True");
        }
    }

    #[test]
    fn a_create_carries_no_intent_flags_upstream() {
        let (op, mut headers) = classified(&[
            (IS_QUERY.as_str(), "false"),
            (IS_UPSERT.as_str(), "false"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(op.kind, OperationKind::CreateItem);
        canonicalize_intent(&op, &mut headers);
        assert!(headers.get(&IS_QUERY).is_none());
        assert!(headers.get(&IS_UPSERT).is_none());
        assert_eq!(headers[CONTENT_TYPE], "application/json");
    }
}
