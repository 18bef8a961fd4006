use std::any::Any;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::normalize;

/// Who presented a token that passed every check.
///
/// It never holds the token itself; `token_fingerprint` correlates log lines and audit records
/// with a token without revealing it. It is handed out behind an `Arc` and is not `Clone`.
///
/// The payload is held once, normalised for the policy; the few list claims normalisation
/// changed are also kept as sent, so [`claim`](Principal::claim) and
/// [`claims_as_sent`](Principal::claims_as_sent) still read the payload exactly as the issuer
/// sent it. A cached token therefore costs one copy of its claims, not two, plus whatever a
/// caller keeps with it through [`derived`](Principal::derived) (the gateway keeps its audit
/// view there).
#[derive(Debug)]
pub struct Principal {
    /// The `iss` claim, equal byte for byte to a configured issuer.
    pub issuer: String,
    /// The `sub` claim.
    pub subject: String,
    /// The `exp` claim, Unix seconds.
    pub expires_at: i64,
    /// The first 16 hex characters of the SHA-256 of the token string.
    pub token_fingerprint: String,
    /// The header `kid`, when the token had one.
    pub key_id: Option<String>,
    /// Every claim of the payload (including `iss`, `sub`, `aud`, `exp`), normalised.
    normalized: Map<String, Value>,
    /// The top-level members normalisation changed or left out, with their values as sent.
    as_sent: Vec<(String, Value)>,
    /// What a caller worked out from the principal once ([`derived`](Principal::derived)).
    derived: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Principal {
    /// A principal whose claims are `payload`, normalised once here.
    pub(crate) fn new(
        issuer: String,
        subject: String,
        mut payload: Map<String, Value>,
        expires_at: i64,
        token_fingerprint: String,
        key_id: Option<String>,
    ) -> Principal {
        let as_sent = normalize::normalize_in_place(&mut payload);
        Principal {
            issuer,
            subject,
            expires_at,
            token_fingerprint,
            key_id,
            normalized: payload,
            as_sent,
            derived: OnceLock::new(),
        }
    }

    /// A value worked out from the principal on first use and kept with it, so every request
    /// that presents the same cached token shares one: the gateway keeps its audit view of the
    /// principal here instead of copying the claims into every record. There is one slot: a
    /// value of another type than the first one kept is worked out on every call.
    pub fn derived<T: Any + Send + Sync>(&self, derive: impl FnOnce(&Principal) -> T) -> Arc<T> {
        if let Some(kept) = self.derived.get()
            && let Ok(value) = Arc::clone(kept).downcast::<T>()
        {
            return value;
        }
        let value = Arc::new(derive(self));
        // Two requests may race to work it out; either result is the same, the first is kept.
        let _ = self
            .derived
            .set(Arc::clone(&value) as Arc<dyn Any + Send + Sync>);
        value
    }

    /// The claims with provider differences smoothed out, for the policy: `scp` and `scope` as
    /// arrays (a space-separated string is split), `roles`, `groups`, `realm_access.roles` and
    /// `resource_access.<client>.roles` as arrays (a lone string becomes one member); a list
    /// claim of another JSON type is left out. Every other claim is as sent. Worked out once
    /// per verified token.
    pub fn normalized_claims(&self) -> &Map<String, Value> {
        &self.normalized
    }

    /// A copy of the payload exactly as the issuer sent it.
    pub fn claims_as_sent(&self) -> Map<String, Value> {
        let mut claims = self.normalized.clone();
        for (name, value) in &self.as_sent {
            claims.insert(name.clone(), value.clone());
        }
        claims
    }

    /// The top-level claim `name` as sent.
    fn sent(&self, name: &str) -> Option<&Value> {
        match self.as_sent.iter().find(|(sent, _)| sent == name) {
            Some((_, value)) => Some(value),
            None => self.normalized.get(name),
        }
    }

    /// The claim as sent at a dotted path such as `oid`, `realm_access.roles` or
    /// `kubernetes.io.namespace`; member names containing dots are matched too.
    pub fn claim(&self, path: &str) -> Option<&Value> {
        normalize::lookup_with(|name| self.sent(name), path)
    }

    /// The claim at `path` as a list of strings: an array's string members, or a string (split
    /// on whitespace when the last path segment is `scp` or `scope`). Empty when the claim is
    /// absent or of another type.
    pub fn claim_strings(&self, path: &str) -> Vec<&str> {
        let last = path.rsplit('.').next().unwrap_or(path);
        let split = normalize::is_space_separated(last);
        self.claim(path)
            .and_then(|value| normalize::list(value, split))
            .unwrap_or_default()
    }

    /// The granted scopes: the members of `scp` then of `scope`, in order, without repeats.
    pub fn scopes(&self) -> Vec<&str> {
        let mut scopes = self.claim_strings("scp");
        for scope in self.claim_strings("scope") {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// The members of the top-level `roles` claim.
    pub fn roles(&self) -> Vec<&str> {
        self.top_level_list("roles")
    }

    /// The members of the top-level `groups` claim. See
    /// [`groups_overage`](Self::groups_overage): an Entra token may omit `groups` because there
    /// are too many.
    pub fn groups(&self) -> Vec<&str> {
        self.top_level_list("groups")
    }

    /// True when the token says its group list was left out (Entra's overage:
    /// `_claim_names.groups`, or `hasgroups: true`): the groups are then unknown, which is not
    /// the same as none.
    pub fn groups_overage(&self) -> bool {
        let named = self
            .sent("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names| names.contains_key("groups"));
        named || self.sent("hasgroups") == Some(&Value::Bool(true))
    }

    fn top_level_list(&self, name: &str) -> Vec<&str> {
        self.sent(name)
            .and_then(|value| normalize::list(value, false))
            .unwrap_or_default()
    }
}

/// The principal's fields, with `claims` as the issuer sent them.
impl serde::Serialize for Principal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Principal", 6)?;
        out.serialize_field("issuer", &self.issuer)?;
        out.serialize_field("subject", &self.subject)?;
        out.serialize_field("claims", &self.claims_as_sent())?;
        out.serialize_field("expires_at", &self.expires_at)?;
        out.serialize_field("token_fingerprint", &self.token_fingerprint)?;
        out.serialize_field("key_id", &self.key_id)?;
        out.end()
    }
}

/// The first 16 hex characters of the SHA-256 of `token`.
pub fn token_fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(claims: Value) -> Principal {
        let claims = claims
            .as_object()
            .cloned()
            .expect("test claims are an object");
        Principal::new(
            "https://idp.test".into(),
            "u".into(),
            claims,
            0,
            String::new(),
            None,
        )
    }

    #[test]
    fn a_derived_value_is_worked_out_once_and_shared() {
        let p = principal(json!({"oid": "o-1"}));
        let calls = std::cell::Cell::new(0);
        let derive = |p: &Principal| {
            calls.set(calls.get() + 1);
            format!(
                "{}/{}",
                p.subject,
                p.claim("oid").and_then(Value::as_str).unwrap_or("")
            )
        };
        let first = p.derived(derive);
        let again = p.derived(derive);
        assert_eq!(*first, "u/o-1");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the kept value is handed out again"
        );
        assert_eq!(calls.get(), 1);
        // Another type does not displace the first: it is worked out on each call.
        assert_eq!(*p.derived(|_| 7_u32), 7);
        assert_eq!(*p.derived(|_| 8_u32), 8);
        assert!(Arc::ptr_eq(&first, &p.derived(derive)));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn scopes_merge_scp_and_scope_in_either_shape() {
        let entra = principal(json!({"scp": "orders.read orders.write"}));
        assert_eq!(entra.scopes(), ["orders.read", "orders.write"]);
        let okta = principal(json!({"scp": ["orders.read"], "scope": "orders.read openid"}));
        assert_eq!(okta.scopes(), ["orders.read", "openid"]);
        assert!(principal(json!({"scp": 7})).scopes().is_empty());
    }

    #[test]
    fn roles_groups_and_nested_paths_are_read_as_lists() {
        let p = principal(json!({
            "roles": "admin", "groups": ["g1", "g2"],
            "realm_access": {"roles": ["kc-admin"]},
            "kubernetes.io": {"serviceaccount": {"name": "api"}},
        }));
        assert_eq!(p.roles(), ["admin"]);
        assert_eq!(p.groups(), ["g1", "g2"]);
        assert_eq!(p.claim_strings("realm_access.roles"), ["kc-admin"]);
        assert_eq!(
            p.claim_strings("kubernetes.io.serviceaccount.name"),
            ["api"]
        );
        assert!(p.claim_strings("realm_access.missing").is_empty());
        assert_eq!(p.normalized_claims()["roles"], json!(["admin"]));
        assert_eq!(
            p.claim("roles"),
            Some(&json!("admin")),
            "claims stay as sent"
        );
    }

    #[test]
    fn the_payload_as_sent_is_kept_whatever_normalisation_changed() {
        for payload in [
            json!({"scp": "a b", "roles": "r", "groups": 5, "tid": "t", "n": {"x": [1]}}),
            json!({"scp": ["a"], "scope": "openid", "realm_access": {"roles": "kc"}}),
            json!({"resource_access": {"c": {"roles": "x"}, "odd": 3}, "sub": "u"}),
            json!({"iss": "i", "aud": ["a1", "a2"], "exp": 1}),
        ] {
            let p = principal(payload.clone());
            assert_eq!(Value::Object(p.claims_as_sent()), payload);
            for (name, value) in payload.as_object().expect("object") {
                assert_eq!(p.claim(name), Some(value), "{name}");
            }
        }
        let okta = principal(json!({"scp": ["a"], "groups": ["g"]}));
        assert!(okta.as_sent.is_empty(), "nothing is held twice");
        let removed = principal(json!({"groups": 5}));
        assert!(!removed.normalized_claims().contains_key("groups"));
        assert_eq!(removed.claim("groups"), Some(&json!(5)));
        assert!(removed.groups().is_empty());
    }

    #[test]
    fn group_overage_is_reported_as_unknown_groups() {
        let overage = principal(json!({"_claim_names": {"groups": "src1"}}));
        assert!(overage.groups_overage() && overage.groups().is_empty());
        assert!(principal(json!({"hasgroups": true})).groups_overage());
        assert!(!principal(json!({"groups": []})).groups_overage());
    }

    #[test]
    fn fingerprint_is_a_sixteen_character_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(token_fingerprint("abc"), "ba7816bf8f01cfea");
    }
}
