//! Which account endpoint a request goes to, and which public URL stands for which endpoint.
//!
//! A single-region setup has one route: every request goes to `upstream.endpoint`, and every
//! location in the account document is advertised as the one public URL. With
//! `upstream.regions`, each region has its own public URL: the account document points that
//! region's locations there, so an SDK that prefers a region keeps sending its requests to
//! it, and a request arriving under that URL's host is forwarded to the region's endpoint.
//! A request under any other host goes to `upstream.endpoint`.

use cosmogate_upstream::{Forwarder, UpstreamConfig, UpstreamError, authority_key};
use http::HeaderMap;
use http::Uri;

/// One region: where its requests go and what apps call it.
#[derive(Debug)]
struct Region {
    name: String,
    /// `host[:port]` of the public URL, lower case, default port left out.
    host: String,
    /// The same with the scheme's default port written out, as some clients send it (equal to
    /// `host` when the public URL names another port).
    host_with_port: String,
    public_url: String,
    endpoint: String,
    forwarder: Forwarder,
}

/// The account endpoint and the regional ones.
#[derive(Debug)]
pub(crate) struct Routes {
    default: Forwarder,
    regions: Vec<Region>,
}

/// Where one request goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route<'a> {
    pub forwarder: &'a Forwarder,
    /// The region's name, `None` for the account endpoint.
    pub region: Option<&'a str>,
}

impl Routes {
    /// The account endpoint's forwarder plus one per configured region, sharing its pool.
    pub fn new(default: Forwarder, config: &UpstreamConfig) -> Result<Routes, UpstreamError> {
        let regions = config
            .regions
            .iter()
            .map(|region| {
                let host = authority_key(&region.public_url);
                // `authority_key` leaves the port out only when it is the scheme's default;
                // a client may still write that default port out.
                let host_with_port = match (region.public_url.port(), region.public_url.scheme()) {
                    (Some(_), _) => host.clone(),
                    (None, "http") => format!("{host}:80"),
                    (None, _) => format!("{host}:443"),
                };
                Ok(Region {
                    name: region.name.clone(),
                    host_with_port,
                    host,
                    public_url: region.public_url.to_string(),
                    endpoint: region.endpoint.to_string(),
                    forwarder: default.with_endpoint(&region.endpoint)?,
                })
            })
            .collect::<Result<Vec<_>, UpstreamError>>()?;
        Ok(Routes { default, regions })
    }

    /// The route for a request: the region whose public host the request names, else the
    /// account endpoint. HTTP/2 requests name their host in the URI, HTTP/1.1 in `Host`.
    pub fn pick(&self, uri: &Uri, headers: &HeaderMap) -> Route<'_> {
        let account = Route {
            forwarder: &self.default,
            region: None,
        };
        if self.regions.is_empty() {
            return account;
        }
        let named = uri
            .authority()
            .map(|authority| authority.as_str())
            .or_else(|| {
                headers
                    .get(http::header::HOST)
                    .and_then(|value| value.to_str().ok())
            });
        let region = named.and_then(|host| {
            self.regions.iter().find(|region| {
                region.host.eq_ignore_ascii_case(host)
                    || region.host_with_port.eq_ignore_ascii_case(host)
            })
        });
        match region {
            Some(region) => Route {
                forwarder: &region.forwarder,
                region: Some(&region.name),
            },
            None => account,
        }
    }

    /// `(key, public URL)` pairs for the account-document and `content-location` rewrites:
    /// each region by its name and by its endpoint.
    pub fn public_urls(&self) -> Vec<(&str, &str)> {
        self.regions
            .iter()
            .flat_map(|region| {
                [
                    (region.name.as_str(), region.public_url.as_str()),
                    (region.endpoint.as_str(), region.public_url.as_str()),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmogate_upstream::Credential;

    /// Two regions, one of them on a non-default port, over a master-key credential.
    async fn routes() -> (Routes, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let key = dir.path().join("key");
        std::fs::write(&key, "a2V5LWZvci1yb3V0aW5nLXRlc3RzLW9ubHk=").expect("key");
        let text = format!(
            r#"
            endpoint = "https://acct.documents.azure.com/"
            [credential]
            kind = "master_key"
            key_file = "{}"
            [[regions]]
            name = "West US"
            endpoint = "https://acct-westus.documents.azure.com/"
            public_url = "https://gw-westus.contoso.com/"
            [[regions]]
            name = "East US"
            endpoint = "https://acct-eastus.documents.azure.com/"
            public_url = "https://gw.contoso.com:8443/"
            "#,
            key.display()
        );
        let config: UpstreamConfig = toml::from_str(&text).expect("config");
        let credential = Credential::new(&config.credential, reqwest::Client::new())
            .await
            .expect("credential");
        let default = Forwarder::new(&config, credential).expect("forwarder");
        (Routes::new(default, &config).expect("routes"), dir)
    }

    fn pick<'a>(routes: &'a Routes, uri: &str, host: Option<&str>) -> (Option<&'a str>, String) {
        let uri: Uri = uri.parse().expect("uri");
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(http::header::HOST, host.parse().expect("host"));
        }
        let route = routes.pick(&uri, &headers);
        (route.region, route.forwarder.endpoint().to_string())
    }

    #[tokio::test]
    async fn the_host_picks_the_region_with_or_without_its_default_port() {
        let (routes, _dir) = routes().await;
        let west = (
            Some("West US"),
            "https://acct-westus.documents.azure.com/".to_owned(),
        );
        let east = (
            Some("East US"),
            "https://acct-eastus.documents.azure.com/".to_owned(),
        );
        let account = (None, "https://acct.documents.azure.com/".to_owned());
        // HTTP/1.1: the Host header, any case, default port written out or not.
        assert_eq!(pick(&routes, "/dbs", Some("gw-westus.contoso.com")), west);
        assert_eq!(
            pick(&routes, "/dbs", Some("GW-WESTUS.contoso.com:443")),
            west
        );
        assert_eq!(pick(&routes, "/dbs", Some("gw.contoso.com:8443")), east);
        // A port that is not the region's is another host.
        assert_eq!(pick(&routes, "/dbs", Some("gw.contoso.com")), account);
        assert_eq!(pick(&routes, "/dbs", Some("gw.contoso.com:443")), account);
        assert_eq!(
            pick(&routes, "/dbs", Some("gw-westus.contoso.com:8443")),
            account
        );
        assert_eq!(pick(&routes, "/dbs", None), account);
        // HTTP/2: the authority of the request URI wins over any Host header.
        assert_eq!(
            pick(
                &routes,
                "https://gw.contoso.com:8443/dbs",
                Some("gw-westus.contoso.com")
            ),
            east
        );
    }

    #[tokio::test]
    async fn both_names_and_endpoints_of_regions_map_to_their_public_urls() {
        let (routes, _dir) = routes().await;
        assert_eq!(
            routes.public_urls(),
            [
                ("West US", "https://gw-westus.contoso.com/"),
                (
                    "https://acct-westus.documents.azure.com/",
                    "https://gw-westus.contoso.com/"
                ),
                ("East US", "https://gw.contoso.com:8443/"),
                (
                    "https://acct-eastus.documents.azure.com/",
                    "https://gw.contoso.com:8443/"
                ),
            ]
        );
    }
}
