//! Settings for the Cosmos gateway we forward to and for our own credential.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use url::{Host, Url};

use crate::entra_config::{ClientSecretConfig, WorkloadIdentityConfig};

/// Where requests go and how cosmogate authenticates itself there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The account endpoint, `https://<account>.documents.azure.com/`. The path must be `/`.
    /// Plain `http` is accepted only for a loopback host (a local emulator or a test double),
    /// so the upstream credential never crosses a network in clear text.
    pub endpoint: Url,
    /// Extra trusted root certificates (PEM), added to the system roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Time allowed for the TCP connect. Default: 5 seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Time allowed until the response headers arrive, connect and TLS included.
    /// Default: 60 seconds.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_seconds: u64,
    /// How long an unused pooled connection is kept; 0 turns pooling off. Default: 90 seconds.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// Longest pause allowed between two pieces of a response body once its headers have
    /// arrived; a body that stalls longer is cut off, so a hung account cannot hold a client
    /// connection (and its memory) forever. Default: 60 seconds.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_seconds: u64,
    /// The account's regional endpoints, each with the public URL cosmogate advertises for
    /// it. With regions set, SDKs that follow endpoint discovery keep their multi-region
    /// routing through cosmogate: a request whose `Host` is a region's public URL goes to
    /// that region's endpoint; any other goes to `endpoint`. Default: none, every advertised
    /// location is pointed at the one public URL.
    #[serde(default)]
    pub regions: Vec<RegionConfig>,
    /// cosmogate's own credential for the account.
    pub credential: CredentialConfig,
}

/// One region of a multi-region account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The region as the account document names it, e.g. `West US` (compared ignoring case,
    /// spaces, `-` and `_`, so `westus` matches too).
    pub name: String,
    /// The regional endpoint, e.g. `https://<account>-westus.documents.azure.com/`. Same
    /// rules as `upstream.endpoint`.
    pub endpoint: Url,
    /// The URL apps reach cosmogate by for this region, e.g.
    /// `https://cosmogate-westus.contoso.com/`. Its host (and port) must differ from every
    /// other region's and from `listen.public_url`: the `Host` of a request picks the region.
    pub public_url: Url,
}

/// Which credential cosmogate presents to Cosmos DB.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// The account key (HMAC signatures); meant for the emulator. Give exactly one source.
    MasterKey {
        /// A file holding the base64 key. Default: none.
        key_file: Option<PathBuf>,
        /// An environment variable holding the base64 key. Default: none.
        key_env: Option<String>,
    },
    /// An Entra ID token of the host's managed identity (VMs, App Service, Functions).
    ManagedIdentity(ManagedIdentityConfig),
    /// An Entra ID token for an AKS workload identity (federated service-account token).
    WorkloadIdentity(WorkloadIdentityConfig),
    /// An Entra ID token for an app registration with a client secret (outside Azure).
    ClientSecret(ClientSecretConfig),
}

/// How to reach the managed-identity token endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentityConfig {
    /// Which token protocol the host speaks. Default: `imds`.
    #[serde(default)]
    pub source: MiSource,
    /// The token endpoint. Default: `http://169.254.169.254/metadata/identity/oauth2/token`
    /// for IMDS; the `IDENTITY_ENDPOINT` environment variable for App Service.
    pub endpoint: Option<Url>,
    /// The environment variable holding the App Service identity header, read before every
    /// token request because the platform rotates it. Default: `IDENTITY_HEADER`.
    #[serde(default = "default_identity_header_env")]
    pub identity_header_env: String,
    /// The resource the token is for; it becomes the token's audience exactly as written, so
    /// it must not end with `/`. Default: `https://cosmos.azure.com`.
    #[serde(default = "default_resource")]
    pub resource: String,
    /// A user-assigned identity by client id. Default: the system-assigned identity.
    pub client_id: Option<String>,
    /// A user-assigned identity by object (principal) id. Default: none.
    pub object_id: Option<String>,
    /// A user-assigned identity by ARM resource id. Default: none.
    pub resource_id: Option<String>,
}

/// The token protocol of the hosting platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MiSource {
    /// Azure Instance Metadata Service (VMs, scale sets and look-alikes).
    #[default]
    Imds,
    /// App Service and Azure Functions (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).
    AppService,
}

fn default_connect_timeout() -> u64 {
    5
}

fn default_response_timeout() -> u64 {
    60
}

fn default_idle_timeout() -> u64 {
    90
}

fn default_body_timeout() -> u64 {
    60
}

fn default_identity_header_env() -> String {
    "IDENTITY_HEADER".to_owned()
}

fn default_resource() -> String {
    "https://cosmos.azure.com".to_owned()
}

impl UpstreamConfig {
    /// Every problem in these settings, each as `path.field: message`.
    pub fn validate(&self, path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        check_endpoint(&self.endpoint, &format!("{path}.endpoint"), &mut problems);
        if self
            .ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(format!("{path}.ca_file: must not be empty"));
        }
        if self.connect_timeout_seconds == 0 {
            problems.push(format!(
                "{path}.connect_timeout_seconds: must be at least 1"
            ));
        }
        if self.response_timeout_seconds == 0 {
            problems.push(format!(
                "{path}.response_timeout_seconds: must be at least 1"
            ));
        }
        if self.body_timeout_seconds == 0 {
            problems.push(format!("{path}.body_timeout_seconds: must be at least 1"));
        }
        for (index, region) in self.regions.iter().enumerate() {
            let at = format!("{path}.regions[{index}]");
            region.validate(&at, &mut problems);
            let earlier = &self.regions[..index];
            if earlier
                .iter()
                .any(|r| region_key(&r.name) == region_key(&region.name))
            {
                problems.push(format!(
                    "{at}.name: region {:?} is listed twice",
                    region.name
                ));
            }
            if earlier
                .iter()
                .any(|r| authority_key(&r.public_url) == authority_key(&region.public_url))
            {
                problems.push(format!(
                    "{at}.public_url: another region already uses host {}",
                    authority_key(&region.public_url)
                ));
            }
        }
        self.credential
            .validate(&format!("{path}.credential"), &mut problems);
        problems
    }
}

impl RegionConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if region_key(&self.name).is_empty() {
            problems.push(format!("{path}.name: must not be empty"));
        }
        check_endpoint(&self.endpoint, &format!("{path}.endpoint"), problems);
        let url = &self.public_url;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            problems.push(format!(
                "{path}.public_url: must be an http(s) URL with a host"
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            problems.push(format!("{path}.public_url: must have no path or query"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            problems.push(format!(
                "{path}.public_url: must not carry user information"
            ));
        }
    }
}

/// A region name compared as the account document writes it or in its short form:
/// `West US`, `west-us` and `westus` are the same region.
fn region_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `host[:port]` of a URL in lower case, without the scheme's default port: the form a
/// request's `Host` header is compared in.
pub fn authority_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

fn check_endpoint(url: &Url, path: &str, problems: &mut Vec<String>) {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => problems.push(format!(
            "{path}: plain http is allowed only for loopback hosts"
        )),
        _ => problems.push(format!("{path}: scheme must be https")),
    }
    if url.host().is_none() {
        problems.push(format!("{path}: must have a host"));
    }
    if url.path() != "/" {
        problems.push(format!("{path}: path must be \"/\""));
    }
    if url.query().is_some() || url.fragment().is_some() {
        problems.push(format!("{path}: must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        problems.push(format!("{path}: must not carry user information"));
    }
}

/// Whether the URL's host is a loopback address or `localhost`: the only hosts plain `http`
/// is allowed to.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl CredentialConfig {
    pub(crate) fn validate(&self, path: &str, problems: &mut Vec<String>) {
        match self {
            Self::MasterKey { key_file, key_env } => {
                if key_file.is_some() == key_env.is_some() {
                    problems.push(format!("{path}: give exactly one of key_file and key_env"));
                }
                if key_env.as_ref().is_some_and(|name| name.is_empty()) {
                    problems.push(format!("{path}.key_env: must not be empty"));
                }
                if key_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                    problems.push(format!("{path}.key_file: must not be empty"));
                }
            }
            Self::ManagedIdentity(mi) => mi.validate(path, problems),
            Self::WorkloadIdentity(wi) => wi.validate(path, problems),
            Self::ClientSecret(cs) => cs.validate(path, problems),
        }
    }
}

impl ManagedIdentityConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if self.resource.is_empty() {
            problems.push(format!("{path}.resource: must not be empty"));
        } else if self.resource.ends_with('/') {
            problems.push(format!(
                "{path}.resource: must not end with \"/\" (it becomes the token audience as written)"
            ));
        } else if self.resource.ends_with("/.default") {
            problems.push(format!(
                "{path}.resource: give the resource, not a scope ending in /.default"
            ));
        }
        let ids = [&self.client_id, &self.object_id, &self.resource_id];
        if ids.iter().filter(|id| id.is_some()).count() > 1 {
            problems.push(format!(
                "{path}: give at most one of client_id, object_id and resource_id"
            ));
        }
        if ids
            .iter()
            .any(|id| id.as_ref().is_some_and(|v| v.is_empty()))
        {
            problems.push(format!("{path}: an identity selector must not be empty"));
        }
        let bad_endpoint =
            |url: &Url| !matches!(url.scheme(), "http" | "https") || url.host().is_none();
        if self.endpoint.as_ref().is_some_and(bad_endpoint) {
            problems.push(format!("{path}.endpoint: must be an http or https url"));
        }
        if self.source == MiSource::AppService && self.identity_header_env.is_empty() {
            problems.push(format!("{path}.identity_header_env: must not be empty"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> UpstreamConfig {
        toml::from_str(text).expect("test config must parse")
    }

    const MI: &str = r#"
        endpoint = "https://acct.documents.azure.com/"
        [credential]
        kind = "managed_identity"
    "#;

    #[test]
    fn managed_identity_defaults_are_filled_in() {
        let cfg = parse(MI);
        assert_eq!(cfg.connect_timeout_seconds, 5);
        assert_eq!(cfg.response_timeout_seconds, 60);
        assert_eq!(cfg.idle_timeout_seconds, 90);
        let CredentialConfig::ManagedIdentity(mi) = &cfg.credential else {
            panic!("expected managed identity");
        };
        assert_eq!(mi.source, MiSource::Imds);
        assert_eq!(mi.resource, "https://cosmos.azure.com");
        assert_eq!(mi.identity_header_env, "IDENTITY_HEADER");
        assert!(cfg.validate("upstream").is_empty());
    }

    #[test]
    fn regions_are_checked_for_endpoints_and_distinct_names_and_hosts() {
        let text = format!(
            r#"{MI}
            [[regions]]
            name = "West US"
            endpoint = "https://acct-westus.documents.azure.com/"
            public_url = "https://gw-westus.contoso.com/"
            [[regions]]
            name = "westus"
            endpoint = "http://acct-eastus.documents.azure.com/"
            public_url = "https://GW-WESTUS.contoso.com:443/"
            [[regions]]
            name = " "
            endpoint = "https://acct-north.documents.azure.com/"
            public_url = "https://gw-north.contoso.com/path"
            "#
        );
        let problems = parse(&text).validate("upstream");
        let expected = [
            "upstream.regions[1].endpoint: plain http is allowed only for loopback hosts",
            "upstream.regions[1].name: region \"westus\" is listed twice",
            "upstream.regions[1].public_url: another region already uses host gw-westus.contoso.com",
            "upstream.regions[2].name: must not be empty",
            "upstream.regions[2].public_url: must have no path or query",
        ];
        assert_eq!(problems, expected);
    }

    #[test]
    fn authority_keys_drop_default_ports_and_case() {
        let key = |text: &str| authority_key(&Url::parse(text).expect("url"));
        assert_eq!(key("https://GW.example.com:443/"), "gw.example.com");
        assert_eq!(key("http://gw.example.com:80/"), "gw.example.com");
        assert_eq!(key("https://127.0.0.1:8443/"), "127.0.0.1:8443");
        assert_eq!(key("https://[::1]:8443/"), "[::1]:8443");
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        let top = format!("{MI}\n[extra]\nx = 1");
        assert!(toml::from_str::<UpstreamConfig>(&top).is_err());
        let inner = format!("{MI}\nsurprise = true");
        assert!(toml::from_str::<UpstreamConfig>(&inner).is_err());
        let key = r#"
            endpoint = "https://acct.documents.azure.com/"
            [credential]
            kind = "master_key"
            key_env = "K"
            key = "inline"
        "#;
        assert!(toml::from_str::<UpstreamConfig>(key).is_err());
    }

    #[test]
    fn resource_with_trailing_slash_is_refused() {
        let cfg = parse(&format!(
            "{MI}\nresource = \"https://acct.documents.azure.com/\""
        ));
        let problems = cfg.validate("upstream");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("upstream.credential.resource:"));
    }

    #[test]
    fn two_identity_selectors_are_refused() {
        let cfg = parse(&format!("{MI}\nclient_id = \"a\"\nobject_id = \"b\""));
        assert_eq!(cfg.validate("u").len(), 1);
    }

    #[test]
    fn master_key_needs_exactly_one_source() {
        let none =
            parse("endpoint = \"https://localhost:8081/\"\n[credential]\nkind = \"master_key\"\n");
        assert_eq!(none.validate("u").len(), 1);
        let both = parse(
            "endpoint = \"https://localhost:8081/\"\n[credential]\nkind = \"master_key\"\n\
             key_env = \"K\"\nkey_file = \"/k\"\n",
        );
        assert_eq!(both.validate("u").len(), 1);
    }

    #[test]
    fn workload_identity_defaults_to_the_public_cloud_and_cosmos_scope() {
        let cfg = parse(
            "endpoint = \"https://acct.documents.azure.com/\"\n\
             [credential]\nkind = \"workload_identity\"\n",
        );
        let CredentialConfig::WorkloadIdentity(wi) = &cfg.credential else {
            panic!("expected workload identity");
        };
        assert_eq!(
            wi.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(wi.scope, "https://cosmos.azure.com/.default");
        assert!(wi.tenant_id.is_none() && wi.client_id.is_none() && wi.token_file.is_none());
        assert!(cfg.validate("u").is_empty());
    }

    #[test]
    fn client_secret_needs_ids_and_exactly_one_secret_source_and_no_inline_secret() {
        let base = "endpoint = \"https://acct.documents.azure.com/\"\n\
                    [credential]\nkind = \"client_secret\"\n\
                    tenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"app\"\n";
        assert_eq!(parse(base).validate("u").len(), 1);
        let ok = parse(&format!("{base}secret_env = \"S\"\n"));
        assert!(ok.validate("u").is_empty());
        let both = parse(&format!("{base}secret_env = \"S\"\nsecret_file = \"/s\"\n"));
        assert_eq!(both.validate("u").len(), 1);
        let inline = format!("{base}secret = \"hunter2\"\n");
        assert!(toml::from_str::<UpstreamConfig>(&inline).is_err());
        let sovereign = parse(&format!(
            "{base}secret_env = \"S\"\nauthority_host = \"http://login.microsoftonline.us\"\n\
             scope = \"https://cosmos.azure.us/\"\n"
        ));
        let problems = sovereign.validate("upstream");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("upstream.credential.authority_host:"));
        assert!(problems[1].starts_with("upstream.credential.scope:"));
    }

    #[test]
    fn every_endpoint_problem_is_reported_at_once() {
        let mut cfg = parse(MI);
        cfg.endpoint = Url::parse("http://acct.example/path?q=1").expect("test url");
        cfg.connect_timeout_seconds = 0;
        let problems = cfg.validate("upstream");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().all(|p| p.starts_with("upstream.")));
    }

    #[test]
    fn plain_http_is_accepted_for_loopback_hosts_only() {
        let mut cfg = parse(MI);
        for ok in [
            "http://127.0.0.1:8081/",
            "http://localhost/",
            "http://[::1]:1/",
        ] {
            cfg.endpoint = Url::parse(ok).expect("test url");
            assert!(cfg.validate("u").is_empty(), "{ok}");
        }
        cfg.endpoint = Url::parse("http://10.0.0.1/").expect("test url");
        assert_eq!(cfg.validate("u").len(), 1);
    }
}
