use std::collections::{BTreeMap, HashSet};

use jsonwebtoken::Algorithm;
use url::Url;

use crate::tenant;

/// Default cap on the token length in bytes, applied before any parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The largest leeway an operator may configure, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The largest `max_stale_seconds` an operator may configure: one day.
pub const MAX_STALE_LIMIT_SECONDS: u64 = 86_400;

/// The placeholder of a multi-tenant issuer, as Entra ID writes it in its discovery documents.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// One trusted token issuer.
///
/// An issuer containing [`TENANT_PLACEHOLDER`] (`{tenantid}`) is a multi-tenant template, as
/// Entra ID's `common` and `organizations` discovery documents publish: it accepts tokens whose
/// `iss` is the template with the token's `tid` put in place of the placeholder, for the tenants
/// listed in `tenants` only.
///
/// The key source is, in order: `jwks_uri` when set, else `discovery_url` when set, else
/// `{issuer}/.well-known/openid-configuration` (issuer without its trailing `/`). All URLs must
/// be `https`; plain `http` is accepted only for loopback hosts (`127.0.0.1`, `[::1]`,
/// `localhost`) so tests can run a local IdP.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer exactly as it appears in `iss` and in the discovery document. Compared byte
    /// for byte: no slash, case or Unicode normalisation. A template with `{tenantid}` once is
    /// compared with the discovery document as written, and with `iss` after substitution.
    /// Required.
    pub issuer: String,
    /// The tenants (Entra ID `tid` values, lowercase GUIDs) a multi-tenant template issuer
    /// accepts. Required, and not empty, when `issuer` contains `{tenantid}`; refused otherwise.
    /// Default: empty.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Where the discovery document lives. Default: derived from `issuer` as above.
    #[serde(default)]
    pub discovery_url: Option<Url>,
    /// The key set URL. When set, discovery is skipped. Default: taken from discovery.
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Accepted `aud` values; a token passes when any of its `aud` members equals one of these.
    /// Required and must not be empty.
    pub audiences: Vec<String>,
    /// Accepted header `alg` values. Default `["RS256", "ES256"]`. Allowed: RS256, RS384,
    /// RS512, PS256, PS384, PS512, ES256, ES384, EdDSA. `none` and HS* are refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 60, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Accepted header `typ` values, compared without ASCII case and with an implied
    /// `application/` prefix (RFC 7515 §4.1.9). Default `["JWT", "at+jwt"]`. A token without
    /// `typ` is accepted (Kubernetes and Cognito omit it); a `typ` that is present must match.
    #[serde(default = "default_typ")]
    pub typ: Vec<String>,
    /// How long a fetched key set is used before it is refreshed, in seconds, when the response
    /// has no `Cache-Control: max-age` (which, when present, wins, clamped to 60..=3600).
    /// Default 300, allowed 60..=3600.
    #[serde(default = "default_jwks_cache")]
    pub jwks_cache_seconds: u64,
    /// After a refetch caused by an unknown `kid`, further unknown `kid`s of this issuer are
    /// refused without fetching for this many seconds. It is also the wait before retrying a
    /// failed refresh. Default 30, allowed 5..=3600.
    #[serde(default = "default_cooldown")]
    pub unknown_kid_cooldown_seconds: u64,
    /// When set, tokens must carry `iat` and `exp - iat` must not exceed this. Default: no
    /// lifetime limit.
    #[serde(default)]
    pub max_token_lifetime_seconds: Option<u64>,
    /// How long past its lifetime the last good key set is still used while refreshes fail, in
    /// seconds. After that, tokens of this issuer get `keys_unavailable` (503) until a refresh
    /// succeeds. Default 3600, allowed 0..=86400.
    #[serde(default = "default_max_stale")]
    pub max_stale_seconds: u64,
    /// Claims every token of this issuer must carry, with their JSON type, checked after the
    /// signature. A name may be a dotted path into nested objects (`realm_access.roles`); a
    /// top-level member whose name contains dots (`kubernetes.io`) is tried first as a whole
    /// name, then as a path. A missing claim is refused with `missing_claim`, a claim of another
    /// type with `invalid_claim`. Default: none, beyond the always-required `iss`, `aud`, `exp`
    /// and `sub`.
    #[serde(default)]
    pub required_claims: BTreeMap<String, ClaimType>,
}

/// The JSON type a required claim must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimType {
    /// A JSON string.
    String,
    /// A JSON number, integer or not.
    Number,
    /// `true` or `false`.
    Boolean,
    /// An array with members of any type, possibly empty.
    Array,
    /// A JSON object.
    Object,
    /// An array whose members are all strings, possibly empty.
    StringArray,
}

impl ClaimType {
    /// Whether `value` has this type. `null` has none of them.
    pub(crate) fn matches(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self, value) {
            (ClaimType::String, Value::String(_))
            | (ClaimType::Number, Value::Number(_))
            | (ClaimType::Boolean, Value::Bool(_))
            | (ClaimType::Array, Value::Array(_))
            | (ClaimType::Object, Value::Object(_)) => true,
            (ClaimType::StringArray, Value::Array(items)) => items.iter().all(Value::is_string),
            _ => false,
        }
    }
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_owned(), "ES256".to_owned()]
}

fn default_leeway() -> u64 {
    60
}

fn default_typ() -> Vec<String> {
    vec!["JWT".to_owned(), "at+jwt".to_owned()]
}

fn default_jwks_cache() -> u64 {
    300
}

fn default_cooldown() -> u64 {
    30
}

fn default_max_stale() -> u64 {
    3600
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    Discovery(Url),
    Jwks(Url),
}

impl IssuerConfig {
    /// Every problem of this issuer entry, each as `"{path}.field: message"`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        self.check_issuer(path, &mut problems);
        problems.extend(tenant::config_problems(&self.issuer, &self.tenants, path));
        self.check_urls(path, &mut problems);
        self.check_audiences(path, &mut problems);
        self.check_algorithms(path, &mut problems);
        self.check_numbers(path, &mut problems);
        if self.typ.is_empty() {
            problems.push(format!("{path}.typ: must list at least one type"));
        }
        if self.typ.iter().any(|t| t.trim().is_empty()) {
            problems.push(format!("{path}.typ: entries must not be empty"));
        }
        self.check_required_claims(path, &mut problems);
        problems
    }

    fn check_issuer(&self, path: &str, problems: &mut Vec<String>) {
        if self.issuer.is_empty() {
            problems.push(format!("{path}.issuer: must not be empty"));
        } else if self.issuer.trim() != self.issuer {
            problems.push(format!(
                "{path}.issuer: must not start or end with whitespace"
            ));
        }
        let has_source = self.discovery_url.is_some() || self.jwks_uri.is_some();
        if !has_source && tenant::is_template(&self.issuer) {
            problems.push(format!(
                "{path}.discovery_url: a multi-tenant issuer needs discovery_url or jwks_uri"
            ));
        } else if !has_source {
            let derived = derived_discovery_url(&self.issuer);
            if derived
                .as_ref()
                .is_none_or(|url| url_problem(url).is_some())
            {
                problems.push(format!(
                    "{path}.issuer: is not an https URL without query or fragment, so \
                     discovery_url or jwks_uri must be set"
                ));
            }
        }
    }

    fn check_urls(&self, path: &str, problems: &mut Vec<String>) {
        if self.discovery_url.is_some() && self.jwks_uri.is_some() {
            problems.push(format!(
                "{path}.jwks_uri: set either discovery_url or jwks_uri"
            ));
        }
        let urls = [
            ("discovery_url", &self.discovery_url),
            ("jwks_uri", &self.jwks_uri),
        ];
        for (field, url) in urls {
            if let Some(problem) = url.as_ref().and_then(url_problem) {
                problems.push(format!("{path}.{field}: {problem}"));
            }
        }
    }

    fn check_audiences(&self, path: &str, problems: &mut Vec<String>) {
        if self.audiences.is_empty() {
            problems.push(format!("{path}.audiences: must list at least one audience"));
        }
        if self.audiences.iter().any(|a| a.is_empty()) {
            problems.push(format!("{path}.audiences: entries must not be empty"));
        }
    }

    fn check_algorithms(&self, path: &str, problems: &mut Vec<String>) {
        if self.algorithms.is_empty() {
            problems.push(format!(
                "{path}.algorithms: must list at least one algorithm"
            ));
        }
        for name in &self.algorithms {
            if asymmetric_algorithm(name).is_some() {
                continue;
            }
            let why = if name.eq_ignore_ascii_case("none") || name.starts_with("HS") {
                "is refused: only asymmetric signatures are accepted"
            } else {
                "is not supported (allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256, \
                 ES384, EdDSA)"
            };
            problems.push(format!("{path}.algorithms: {name:?} {why}"));
        }
    }

    fn check_numbers(&self, path: &str, problems: &mut Vec<String>) {
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            problems.push(format!(
                "{path}.leeway_seconds: must be at most {MAX_LEEWAY_SECONDS}"
            ));
        }
        if !(60..=3600).contains(&self.jwks_cache_seconds) {
            problems.push(format!(
                "{path}.jwks_cache_seconds: must be between 60 and 3600"
            ));
        }
        if !(5..=3600).contains(&self.unknown_kid_cooldown_seconds) {
            problems.push(format!(
                "{path}.unknown_kid_cooldown_seconds: must be between 5 and 3600"
            ));
        }
        if self.max_stale_seconds > MAX_STALE_LIMIT_SECONDS {
            problems.push(format!(
                "{path}.max_stale_seconds: must be at most {MAX_STALE_LIMIT_SECONDS}"
            ));
        }
        if self.max_token_lifetime_seconds == Some(0) {
            problems.push(format!(
                "{path}.max_token_lifetime_seconds: must be positive"
            ));
        }
    }

    fn check_required_claims(&self, path: &str, problems: &mut Vec<String>) {
        for name in self.required_claims.keys() {
            if name.is_empty() {
                problems.push(format!("{path}.required_claims: names must not be empty"));
            } else if name.split('.').any(str::is_empty) {
                problems.push(format!(
                    "{path}.required_claims: {name:?} has an empty path segment"
                ));
            }
        }
    }

    /// Where the keys come from; only meaningful for a configuration that validated.
    pub(crate) fn key_source(&self) -> Option<KeySource> {
        if let Some(url) = &self.jwks_uri {
            return Some(KeySource::Jwks(url.clone()));
        }
        if let Some(url) = &self.discovery_url {
            return Some(KeySource::Discovery(url.clone()));
        }
        derived_discovery_url(&self.issuer).map(KeySource::Discovery)
    }

    /// The configured algorithms that parse; only meaningful for a configuration that validated.
    pub(crate) fn allowed_algorithms(&self) -> Vec<Algorithm> {
        self.algorithms
            .iter()
            .filter_map(|name| asymmetric_algorithm(name))
            .collect()
    }
}

/// Problems across a whole list of issuers: each entry's own problems (at `{path}[i]`) plus
/// issuers configured twice and an empty list.
pub fn validate_issuers(issuers: &[IssuerConfig], path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if issuers.is_empty() {
        problems.push(format!("{path}: must list at least one issuer"));
    }
    let mut seen = HashSet::new();
    for (index, issuer) in issuers.iter().enumerate() {
        let entry = format!("{path}[{index}]");
        problems.extend(issuer.validate(&entry));
        if !seen.insert(issuer.issuer.clone()) {
            problems.push(format!(
                "{entry}.issuer: {:?} is configured twice",
                issuer.issuer
            ));
            continue;
        }
        // A tenant of a template must not also be configured as a plain issuer, or as a tenant
        // of another template: which entry's settings apply would be unclear.
        if tenant::is_template(&issuer.issuer) {
            for (concrete, _) in tenant::concrete_issuers(&issuer.issuer, &issuer.tenants) {
                if !seen.insert(concrete.clone()) {
                    problems.push(format!("{entry}.tenants: {concrete:?} is configured twice"));
                }
            }
        }
    }
    problems
}

/// The signature algorithms this crate accepts at all, by their JOSE name.
pub(crate) fn asymmetric_algorithm(name: &str) -> Option<Algorithm> {
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    };
    Some(alg)
}

/// `{issuer}/.well-known/openid-configuration`, with the issuer's trailing `/` removed first
/// (OpenID Connect Discovery §4).
fn derived_discovery_url(issuer: &str) -> Option<Url> {
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    let url = Url::parse(&format!("{base}/.well-known/openid-configuration")).ok()?;
    let issuer_url = Url::parse(issuer).ok()?;
    if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
        return None;
    }
    Some(url)
}

/// Why a URL may not be used to fetch keys, if it may not.
pub(crate) fn url_problem(url: &Url) -> Option<&'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not contain credentials");
    }
    if url.fragment().is_some() {
        return Some("must not contain a fragment");
    }
    match url.scheme() {
        "https" if url.host().is_some() => None,
        "http" if is_loopback(url) => None,
        _ => Some("must be an https URL (http is allowed only for loopback hosts)"),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests;
