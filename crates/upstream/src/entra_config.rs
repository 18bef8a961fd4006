//! Settings for the Entra ID flows: AKS workload identity and client secret.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

/// The public cloud's Entra authority.
pub(crate) const PUBLIC_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The service-wide Cosmos DB scope of the public cloud.
pub(crate) const COSMOS_SCOPE: &str = "https://cosmos.azure.com/.default";

/// An AKS workload identity: the projected service-account token is exchanged at Entra ID
/// for a Cosmos token, as a client assertion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadIdentityConfig {
    /// The directory (tenant) id. Default: the `AZURE_TENANT_ID` environment variable, which
    /// the workload-identity webhook sets.
    pub tenant_id: Option<String>,
    /// The client id of the app registration or user-assigned identity the service account
    /// is federated with. Default: the `AZURE_CLIENT_ID` environment variable.
    pub client_id: Option<String>,
    /// The projected service-account token, read again before every exchange because the
    /// kubelet rotates it. Default: the `AZURE_FEDERATED_TOKEN_FILE` environment variable.
    pub token_file: Option<PathBuf>,
    /// The Entra authority; `https` only. Default: `https://login.microsoftonline.com`
    /// (US Gov: `https://login.microsoftonline.us`, China: `https://login.chinacloudapi.cn`).
    #[serde(default = "default_authority_host")]
    pub authority_host: Url,
    /// The scope asked for. Default: `https://cosmos.azure.com/.default` (US Gov:
    /// `https://cosmos.azure.us/.default`, China: `https://cosmos.azure.cn/.default`).
    #[serde(default = "default_scope")]
    pub scope: String,
}

/// An app registration authenticating with a client secret, for hosts outside Azure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecretConfig {
    /// The directory (tenant) id. Required.
    pub tenant_id: String,
    /// The app registration's client id. Required.
    pub client_id: String,
    /// A file holding the secret, read again before every exchange so that it can be rotated
    /// in place. Default: none; give exactly one of this and `secret_env`.
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the secret. Default: none.
    pub secret_env: Option<String>,
    /// The Entra authority; `https` only. Default: `https://login.microsoftonline.com`.
    #[serde(default = "default_authority_host")]
    pub authority_host: Url,
    /// The scope asked for. Default: `https://cosmos.azure.com/.default`.
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_authority_host() -> Url {
    Url::parse(PUBLIC_AUTHORITY_HOST).expect("the public authority must be a valid url")
}

fn default_scope() -> String {
    COSMOS_SCOPE.to_owned()
}

impl WorkloadIdentityConfig {
    pub(crate) fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if let Some(tenant) = &self.tenant_id {
            check_tenant(tenant, &format!("{path}.tenant_id"), problems);
        }
        if self
            .client_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            problems.push(format!("{path}.client_id: must not be empty"));
        }
        if self
            .token_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(format!("{path}.token_file: must not be empty"));
        }
        check_authority(
            &self.authority_host,
            &format!("{path}.authority_host"),
            problems,
        );
        check_scope(&self.scope, &format!("{path}.scope"), problems);
    }
}

impl ClientSecretConfig {
    pub(crate) fn validate(&self, path: &str, problems: &mut Vec<String>) {
        check_tenant(&self.tenant_id, &format!("{path}.tenant_id"), problems);
        if self.client_id.trim().is_empty() {
            problems.push(format!("{path}.client_id: must not be empty"));
        }
        if self.secret_file.is_some() == self.secret_env.is_some() {
            problems.push(format!(
                "{path}: give exactly one of secret_file and secret_env"
            ));
        }
        if self.secret_env.as_ref().is_some_and(|name| name.is_empty()) {
            problems.push(format!("{path}.secret_env: must not be empty"));
        }
        if self
            .secret_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(format!("{path}.secret_file: must not be empty"));
        }
        check_authority(
            &self.authority_host,
            &format!("{path}.authority_host"),
            problems,
        );
        check_scope(&self.scope, &format!("{path}.scope"), problems);
    }
}

/// A tenant id goes into the token URL's path, so only the characters of GUIDs and domain
/// names are accepted.
pub(crate) fn check_tenant(tenant: &str, path: &str, problems: &mut Vec<String>) {
    let valid = !tenant.bytes().all(|b| b == b'.')
        && tenant.len() <= 256
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        problems.push(format!(
            "{path}: must be a tenant guid or domain (letters, digits, '-' and '.')"
        ));
    }
}

/// The exchange carries a secret or an assertion, so the authority is `https` only, and its
/// path is replaced by `/{tenant}/oauth2/v2.0/token`.
fn check_authority(url: &Url, path: &str, problems: &mut Vec<String>) {
    if url.scheme() != "https" {
        problems.push(format!("{path}: scheme must be https"));
    }
    if url.host().is_none() {
        problems.push(format!("{path}: must have a host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        problems.push(format!(
            "{path}: must be scheme and host only (the token path is added)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(format!("{path}: must not carry user information"));
    }
}

/// One Entra v2 scope, `<resource>/.default`, whose resource does not end with `/`: the
/// resource becomes the token audience, and Cosmos DB refuses `https://host/` as one.
fn check_scope(scope: &str, path: &str, problems: &mut Vec<String>) {
    let Some(resource) = scope.strip_suffix("/.default") else {
        problems.push(format!("{path}: must end with \"/.default\""));
        return;
    };
    if resource.is_empty() || !resource.contains("://") {
        problems.push(format!("{path}: must start with the resource uri"));
    } else if resource.ends_with('/') {
        problems.push(format!(
            "{path}: the resource must not end with \"/\" (write https://host/.default)"
        ));
    }
    if scope
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        problems.push(format!("{path}: must be a single scope"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(check: impl Fn(&mut Vec<String>)) -> Vec<String> {
        let mut problems = Vec::new();
        check(&mut problems);
        problems
    }

    #[test]
    fn cosmos_scopes_of_every_cloud_are_accepted() {
        for scope in [
            COSMOS_SCOPE,
            "https://cosmos.azure.us/.default",
            "https://cosmos.azure.cn/.default",
            "https://acct.documents.azure.com/.default",
            "api://cosmos-upstream/.default",
        ] {
            assert!(
                problems_of(|p| check_scope(scope, "s", p)).is_empty(),
                "{scope}"
            );
        }
    }

    #[test]
    fn scopes_with_a_trailing_slash_or_without_default_are_refused() {
        for scope in [
            "https://acct.documents.azure.com//.default",
            "https://acct.documents.azure.com",
            "https://acct.documents.azure.com/",
            "/.default",
            "https://a/.default https://b/.default",
            "cosmos/.default",
        ] {
            assert_eq!(
                problems_of(|p| check_scope(scope, "s", p)).len(),
                1,
                "{scope}"
            );
        }
    }

    #[test]
    fn authority_must_be_https_without_a_path() {
        let check = |text: &str| {
            let url = Url::parse(text).expect("test url");
            problems_of(|p| check_authority(&url, "a", p)).len()
        };
        assert_eq!(check("https://login.microsoftonline.us"), 0);
        assert_eq!(check("https://127.0.0.1:8443/"), 0);
        assert_eq!(check("http://127.0.0.1:8080/"), 1);
        assert_eq!(check("https://login.microsoftonline.com/tenant"), 1);
        assert_eq!(check("https://u:p@login.microsoftonline.com/"), 1);
    }

    #[test]
    fn tenant_ids_that_could_change_the_token_path_are_refused() {
        for bad in ["", "..", "a/b", "a?b", "..%2f", "a b"] {
            assert_eq!(problems_of(|p| check_tenant(bad, "t", p)).len(), 1, "{bad}");
        }
        for good in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
        ] {
            assert!(
                problems_of(|p| check_tenant(good, "t", p)).is_empty(),
                "{good}"
            );
        }
    }
}
