//! HTTP fetches of discovery documents and key sets.
//!
//! Every fetch has its own timeout and a body cap, follows no redirect (a response from another
//! URL than the one asked for is refused), and accepts only `200`.

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use serde_json::Value;
use url::Url;

use crate::compact::parse_object;
use crate::config::url_problem;
use crate::jwks::{ParsedSet, parse_set};

/// Upper bound on one fetch, connection to last byte.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound on a discovery document or key set, in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Why a fetch failed; logged at debug level and never shown to clients.
#[derive(Debug)]
pub(crate) struct FetchError {
    what: &'static str,
    detail: String,
}

impl FetchError {
    fn new(what: &'static str, detail: impl fmt::Display) -> Self {
        FetchError {
            what,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.what)
        } else {
            write!(f, "{}: {}", self.what, self.detail)
        }
    }
}

/// A fetched document: its bytes and the response's `Cache-Control` lifetime, if any.
struct Document {
    body: Vec<u8>,
    max_age: Option<u64>,
}

async fn get(http: &reqwest::Client, url: &Url) -> Result<Document, FetchError> {
    let mut response = http
        .get(url.clone())
        .header(ACCEPT, "application/json, application/jwk-set+json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| FetchError::new("request failed", e))?;
    if response.url() != url {
        return Err(FetchError::new("redirect refused", ""));
    }
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::new("unexpected status", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(FetchError::new("document too large", ""));
    }
    let max_age = cache_max_age(response.headers());

    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::new("read failed", e))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::new("document too large", ""));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Document { body, max_age })
}

/// The lifetime a response asks for: `max-age`, or 0 for `no-store`/`no-cache`.
fn cache_max_age(headers: &HeaderMap) -> Option<u64> {
    let mut lifetime: Option<u64> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            let seconds = match directive.as_str() {
                "no-store" | "no-cache" => Some(0),
                other => other.strip_prefix("max-age=").and_then(|n| n.parse().ok()),
            };
            if let Some(seconds) = seconds {
                lifetime = Some(lifetime.map_or(seconds, |seen: u64| seen.min(seconds)));
            }
        }
    }
    lifetime
}

/// What a discovery document says, once it checked out.
#[derive(Debug)]
pub(crate) enum Discovery {
    Jwks(Url),
    /// The document's `issuer` is another string than the configured issuer.
    IssuerMismatch(String),
}

/// Fetches discovery and returns its `jwks_uri`, provided its `issuer` equals `issuer` byte for
/// byte (OpenID Connect Discovery §4.3).
pub(crate) async fn discover(
    http: &reqwest::Client,
    url: &Url,
    issuer: &str,
) -> Result<Discovery, FetchError> {
    let document = get(http, url).await?;
    let metadata = parse_object(&document.body)
        .ok_or_else(|| FetchError::new("discovery is not a json object", ""))?;
    match metadata.get("issuer") {
        Some(Value::String(found)) if found == issuer => {}
        Some(Value::String(found)) => return Ok(Discovery::IssuerMismatch(found.clone())),
        _ => return Err(FetchError::new("discovery has no issuer string", "")),
    }
    let Some(Value::String(jwks_uri)) = metadata.get("jwks_uri") else {
        return Err(FetchError::new("discovery has no jwks_uri string", ""));
    };
    let jwks_uri = Url::parse(jwks_uri).map_err(|e| FetchError::new("jwks_uri is no url", e))?;
    if let Some(problem) = url_problem(&jwks_uri) {
        return Err(FetchError::new("jwks_uri refused", problem));
    }
    Ok(Discovery::Jwks(jwks_uri))
}

/// A fetched key set.
#[derive(Debug)]
pub(crate) struct FetchedSet {
    pub(crate) set: ParsedSet,
    pub(crate) max_age: Option<u64>,
}

/// Fetches and parses a key set.
pub(crate) async fn key_set(http: &reqwest::Client, url: &Url) -> Result<FetchedSet, FetchError> {
    let document = get(http, url).await?;
    let set = parse_set(&document.body).map_err(|why| FetchError::new(why, ""))?;
    Ok(FetchedSet {
        set,
        max_age: document.max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(cache_max_age(&headers(&[])), None);
        assert_eq!(
            cache_max_age(&headers(&["public, max-age=1200"])),
            Some(1200)
        );
        assert_eq!(
            cache_max_age(&headers(&["Max-Age=90", "max-age=600"])),
            Some(90)
        );
        assert_eq!(cache_max_age(&headers(&["no-store"])), Some(0));
        assert_eq!(cache_max_age(&headers(&["max-age=soon"])), None);
    }
}
