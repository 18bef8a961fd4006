//! Multi-tenant issuer templates (Entra ID's `https://login.microsoftonline.com/{tenantid}/v2.0`).
//!
//! A template issuer is expanded at start-up into one concrete issuer per allowed tenant, so a
//! token's `iss` is still found by exact lookup. The token's `tid` must then name the tenant its
//! `iss` was built from, and a key that declares an `issuer` of its own may only verify tokens of
//! that issuer.

use serde_json::{Map, Value};

use crate::config::TENANT_PLACEHOLDER;
use crate::error::TokenError;

/// Whether `issuer` is a multi-tenant template.
pub(crate) fn is_template(issuer: &str) -> bool {
    issuer.contains(TENANT_PLACEHOLDER)
}

/// Every problem with the `tenants` list of an issuer entry, each as `"{path}.field: message"`.
pub(crate) fn config_problems(issuer: &str, tenants: &[String], path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_template(issuer) {
        if !tenants.is_empty() {
            problems.push(format!(
                "{path}.tenants: is only allowed when issuer contains {TENANT_PLACEHOLDER}"
            ));
        }
        return problems;
    }
    if issuer.matches(TENANT_PLACEHOLDER).count() != 1 {
        problems.push(format!(
            "{path}.issuer: must contain {TENANT_PLACEHOLDER} exactly once"
        ));
    }
    if tenants.is_empty() {
        problems.push(format!(
            "{path}.tenants: a multi-tenant issuer must list the tenants it accepts"
        ));
    }
    for (index, tenant) in tenants.iter().enumerate() {
        if !is_lowercase_guid(tenant) {
            problems.push(format!(
                "{path}.tenants[{index}]: {tenant:?} is not a lowercase GUID"
            ));
        }
        if tenants[..index].contains(tenant) {
            problems.push(format!(
                "{path}.tenants[{index}]: {tenant:?} is listed twice"
            ));
        }
    }
    problems
}

/// The concrete issuers an entry accepts, each with the tenant it was built from (`None` for a
/// plain issuer).
pub(crate) fn concrete_issuers(issuer: &str, tenants: &[String]) -> Vec<(String, Option<String>)> {
    if !is_template(issuer) {
        return vec![(issuer.to_owned(), None)];
    }
    tenants
        .iter()
        .map(|tenant| (substitute(issuer, tenant), Some(tenant.clone())))
        .collect()
}

fn substitute(template: &str, tenant: &str) -> String {
    template.replacen(TENANT_PLACEHOLDER, tenant, 1)
}

/// Whether `iss` has the shape of `template` with some tenant in place: used only to tell
/// "tenant not allowed" from "issuer unknown" after the exact lookup failed.
pub(crate) fn fits_template(template: &str, iss: &str) -> bool {
    let Some((prefix, suffix)) = template.split_once(TENANT_PLACEHOLDER) else {
        return false;
    };
    let Some(middle) = iss
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
    else {
        return false;
    };
    !middle.is_empty() && !middle.contains('/')
}

/// The token's `tid` must be a string equal to the tenant its `iss` was built from.
pub(crate) fn check_tid(payload: &Map<String, Value>, tenant: &str) -> Result<(), TokenError> {
    match payload.get("tid") {
        Some(Value::String(tid)) if tid == tenant => Ok(()),
        Some(_) => Err(TokenError::InvalidClaim("tid")),
        None => Err(TokenError::MissingClaim("tid")),
    }
}

/// Whether a key that declares `key_issuer` may verify a token of `iss` from `tenant`: a
/// templated key issuer must equal `iss` once the tenant is put in, a fixed one must equal `iss`.
pub(crate) fn key_issuer_fits(key_issuer: &str, iss: &str, tenant: &str) -> bool {
    if is_template(key_issuer) {
        substitute(key_issuer, tenant) == iss
    } else {
        key_issuer == iss
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hexadecimal digits.
fn is_lowercase_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups.iter().zip(lengths).all(|(group, length)| {
            group.len() == length
                && group
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEMPLATE: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
    const T1: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const T2: &str = "00000000-0000-0000-0000-0000000000aa";

    #[test]
    fn a_template_expands_into_one_issuer_per_tenant() {
        let issuers = concrete_issuers(TEMPLATE, &[T1.into(), T2.into()]);
        assert_eq!(
            issuers,
            [
                (
                    format!("https://login.microsoftonline.com/{T1}/v2.0"),
                    Some(T1.into())
                ),
                (
                    format!("https://login.microsoftonline.com/{T2}/v2.0"),
                    Some(T2.into())
                ),
            ]
        );
        assert_eq!(
            concrete_issuers("https://sts.windows.net/x/", &[]),
            [("https://sts.windows.net/x/".to_owned(), None)]
        );
    }

    #[test]
    fn template_configuration_problems_are_all_reported() {
        assert!(config_problems(TEMPLATE, &[T1.into()], "i").is_empty());
        assert_eq!(config_problems(TEMPLATE, &[], "i").len(), 1);
        let bad = [T1.to_uppercase(), "common".into(), T1.into(), T1.into()];
        assert_eq!(config_problems(TEMPLATE, &bad, "i").len(), 3);
        let twice = "https://x/{tenantid}/{tenantid}";
        assert_eq!(config_problems(twice, &[T1.into()], "i").len(), 1);
        assert_eq!(
            config_problems("https://idp.test", &[T1.into()], "i"),
            ["i.tenants: is only allowed when issuer contains {tenantid}"]
        );
    }

    #[test]
    fn template_shape_needs_a_non_empty_segment_in_place_of_the_tenant() {
        assert!(fits_template(
            TEMPLATE,
            &format!("https://login.microsoftonline.com/{T2}/v2.0")
        ));
        assert!(!fits_template(
            TEMPLATE,
            "https://login.microsoftonline.com//v2.0"
        ));
        assert!(!fits_template(
            TEMPLATE,
            "https://login.microsoftonline.com/a/b/v2.0"
        ));
        assert!(!fits_template(
            TEMPLATE,
            "https://login.microsoftonline.com/a/v2.0/"
        ));
        assert!(!fits_template("https://plain", "https://plain"));
    }

    #[test]
    fn tid_must_be_the_tenant_string() {
        let with = |tid: Value| json!({ "tid": tid }).as_object().cloned().expect("object");
        assert_eq!(check_tid(&with(json!(T1)), T1), Ok(()));
        assert_eq!(
            check_tid(&with(json!(T2)), T1),
            Err(TokenError::InvalidClaim("tid"))
        );
        assert_eq!(
            check_tid(&with(json!([T1])), T1),
            Err(TokenError::InvalidClaim("tid"))
        );
        assert_eq!(
            check_tid(&Map::new(), T1),
            Err(TokenError::MissingClaim("tid"))
        );
    }

    #[test]
    fn templated_key_issuers_serve_any_tenant_and_fixed_ones_only_their_own() {
        let iss = format!("https://login.microsoftonline.com/{T1}/v2.0");
        assert!(key_issuer_fits(TEMPLATE, &iss, T1));
        assert!(key_issuer_fits(&iss, &iss, T1));
        let other = format!("https://login.microsoftonline.com/{T2}/v2.0");
        assert!(!key_issuer_fits(&other, &iss, T1));
        assert!(!key_issuer_fits(
            "https://sts.windows.net/{tenantid}/",
            &iss,
            T1
        ));
    }
}
