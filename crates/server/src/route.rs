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
    /// The same host with the default port of its scheme written out, as some clients send it.
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
                let default_port = match region.public_url.scheme() {
                    "http" => 80,
                    _ => 443,
                };
                Ok(Region {
                    name: region.name.clone(),
                    host_with_port: format!("{}:{default_port}", host_only(&host)),
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
        let named = uri
            .authority()
            .map(|authority| authority.as_str())
            .or_else(|| {
                headers
                    .get(http::header::HOST)
                    .and_then(|value| value.to_str().ok())
            });
        let region = named.and_then(|host| {
            let host = host.to_ascii_lowercase();
            self.regions
                .iter()
                .find(|region| region.host == host || region.host_with_port == host)
        });
        match region {
            Some(region) => Route {
                forwarder: &region.forwarder,
                region: Some(&region.name),
            },
            None => Route {
                forwarder: &self.default,
                region: None,
            },
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

/// `host` of `host[:port]`, brackets of an IPv6 literal kept.
fn host_only(authority: &str) -> &str {
    match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_only_keeps_ipv6_brackets() {
        assert_eq!(host_only("gw.example.com:8443"), "gw.example.com");
        assert_eq!(host_only("gw.example.com"), "gw.example.com");
        assert_eq!(host_only("[::1]:8443"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
    }
}
