//! Sending one client request on to the Cosmos gateway with cosmogate's own credential.

use std::cell::RefCell;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Extensions, HeaderMap, HeaderValue, Request, Response, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use url::Url;

use crate::config::UpstreamConfig;
use crate::credential::Credential;
use crate::error::{BoxError, UpstreamError};
use crate::hop::strip_hop_by_hop;
use crate::pool::{Connector, Origin, Pool, ResponseBody, SendError};
use crate::tls;

/// The request and response body type the forwarder sends upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, Box<dyn StdError + Send + Sync>>;

const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");

/// The most an upstream HTTP/1.1 connection buffers: it bounds Cosmos DB's response head
/// (large continuation and session tokens; case C27 asks for at least 64 KiB) and how far
/// hyper's adaptive read buffer grows while a large body streams through. hyper's own default
/// is about 400 KiB, kept by every pooled connection that once carried a large body, so memory
/// grew with document size up to 1 MiB; at 128 KiB it stays flat.
const MAX_RESPONSE_BUFFER: usize = 128 * 1024;

/// A pooled HTTP/1.1 and HTTP/2 client for one Cosmos account endpoint. Cheap to clone.
///
/// It forwards the request target exactly as received, replaces the client's credential with
/// its own, and never retries: the Cosmos SDKs retry throttled requests themselves, and a
/// second layer would multiply load on a throttled account. (The one exception is a request
/// that never left us because the pooled connection it was given had just closed: it is sent
/// on another connection.)
#[derive(Clone)]
pub struct Forwarder {
    pool: Pool,
    credential: Credential,
    endpoint: Url,
    origin: Origin,
    host: HeaderValue,
    response_timeout: Duration,
    body_timeout: Duration,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("endpoint", &self.endpoint.as_str())
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Builds the client: TLS with the system roots plus `ca_file`, HTTP/2 when the gateway
    /// offers it through ALPN, and the configured timeouts. Refuses a config that does not
    /// pass [`UpstreamConfig::validate`].
    pub fn new(cfg: &UpstreamConfig, credential: Credential) -> Result<Forwarder, UpstreamError> {
        let problems = cfg.validate("upstream");
        if !problems.is_empty() {
            return Err(UpstreamError::Config(problems.join("; ")));
        }
        let (origin, host) = target(&cfg.endpoint)?;
        Ok(Forwarder {
            pool: build_pool(cfg)?,
            credential,
            endpoint: cfg.endpoint.clone(),
            origin,
            host,
            response_timeout: Duration::from_secs(cfg.response_timeout_seconds),
            body_timeout: Duration::from_secs(cfg.body_timeout_seconds),
        })
    }

    /// A forwarder to another endpoint of the same account (a regional one of
    /// `upstream.regions`), sharing this one's connection pool, credential and timeouts.
    pub fn with_endpoint(&self, endpoint: &Url) -> Result<Forwarder, UpstreamError> {
        let (origin, host) = target(endpoint)?;
        Ok(Forwarder {
            pool: self.pool.clone(),
            credential: self.credential.clone(),
            endpoint: endpoint.clone(),
            origin,
            host,
            response_timeout: self.response_timeout,
            body_timeout: self.body_timeout,
        })
    }

    /// The account endpoint requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The longest pause allowed inside a response body (`upstream.body_timeout_seconds`);
    /// see [`IdleTimeout`](crate::IdleTimeout).
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// Sends `req` upstream and returns the response as soon as its headers arrive; the body
    /// streams on.
    ///
    /// The upstream URI is the endpoint's scheme and authority with the incoming path and
    /// query unchanged, byte for byte. Hop-by-hop headers (and every header named in
    /// `Connection`) are dropped both ways, as are the client's `Authorization`, `x-ms-date`
    /// and `Date`; `Host`, a fresh `x-ms-date` and our `Authorization` (signed over
    /// `resource_type`, `resource_link` and that date) are set; every other header keeps its
    /// values (in their order; the order between names may change).
    ///
    /// Status, headers and body of the answer pass through as they came, 401 and 403
    /// included (see [`screen_upstream_denial`](crate::screen_upstream_denial) for those); a
    /// 401 also asks the credential for an early, rate-limited token refresh.
    pub async fn forward(
        &self,
        req: Request<UpstreamBody>,
        resource_type: &str,
        resource_link: &str,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        let date = current_date(SystemTime::now())?;
        let text = date
            .to_str()
            .map_err(|_| UpstreamError::protocol("date is not a header value"))?;
        let authorization = self
            .credential
            .authorization(&parts.method, resource_type, resource_link, text)
            .await?;

        // The pool addresses the request to the endpoint's origin.
        parts.uri = Uri::from(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        // ALPN picks HTTP/2; asking for it here would force prior knowledge on plain http.
        parts.version = Version::HTTP_11;
        // Server-side extensions (upgrade handles, header case maps) mean nothing upstream.
        parts.extensions = Extensions::new();
        prepare_headers(&mut parts.headers, &self.host, date, authorization);

        let sent = self
            .pool
            .send(&self.origin, Request::from_parts(parts, body));
        let response = match tokio::time::timeout(self.response_timeout, sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(classify(err)),
            Err(_) => return Err(UpstreamError::Timeout),
        };
        let (mut parts, body) = response.into_parts();
        if parts.status == http::StatusCode::UNAUTHORIZED && self.credential.request_refresh() {
            tracing::debug!(
                credential.kind = self.credential.kind(),
                "Upstream refused our token, refresh requested"
            );
        }
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body))
    }
}

thread_local! {
    /// The last `x-ms-date` this thread formatted, with its Unix second.
    static DATE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
}

/// The RFC 7231 date of `now` as a header value, formatted once per second on each thread
/// (the value has a resolution of one second; hyper keeps its own `Date` the same way).
fn current_date(now: SystemTime) -> Result<HeaderValue, UpstreamError> {
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|kept| {
        if let Some((at, value)) = kept.as_ref()
            && *at == second
        {
            return Ok(value.clone());
        }
        let value = HeaderValue::try_from(httpdate::fmt_http_date(now))
            .map_err(|_| UpstreamError::protocol("date is not a header value"))?;
        *kept = Some((second, value.clone()));
        Ok(value)
    })
}

/// The connection pool: HTTP/1.1, or HTTP/2 when ALPN picks it.
fn build_pool(cfg: &UpstreamConfig) -> Result<Pool, UpstreamError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(cfg.connect_timeout_seconds)));
    // Plain-http loopback endpoints never use TLS, so they need no roots.
    let uses_tls = std::iter::once(&cfg.endpoint)
        .chain(cfg.regions.iter().map(|region| &region.endpoint))
        .any(|url| url.scheme() == "https");
    let tls = tls::client_config(cfg.ca_file.as_deref(), uses_tls)?;
    let connector: Connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let idle_timeout = match cfg.idle_timeout_seconds {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    Ok(Pool::new(connector, MAX_RESPONSE_BUFFER, idle_timeout))
}

/// The scheme, authority and `Host` value requests to `endpoint` are sent with.
fn target(endpoint: &Url) -> Result<(Origin, HeaderValue), UpstreamError> {
    let (scheme, authority) = origin(endpoint)?;
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|_| UpstreamError::Config("endpoint host is not a header value".into()))?;
    Ok((Origin { scheme, authority }, host))
}

/// The scheme and `host[:port]` of the endpoint; the port only when it is not the default.
fn origin(endpoint: &Url) -> Result<(Scheme, Authority), UpstreamError> {
    let scheme = match endpoint.scheme() {
        "https" => Scheme::HTTPS,
        "http" => Scheme::HTTP,
        _ => {
            return Err(UpstreamError::Config(
                "endpoint scheme must be https".into(),
            ));
        }
    };
    let host = endpoint
        .host_str()
        .ok_or_else(|| UpstreamError::Config("endpoint has no host".into()))?;
    let text = match endpoint.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let authority = Authority::try_from(text)
        .map_err(|_| UpstreamError::Config("endpoint host is not a valid authority".into()))?;
    Ok((scheme, authority))
}

/// The client's end-to-end headers with our `Host`, date and credential in place of the
/// client's, changed in place (see [`strip_hop_by_hop`] on header order).
fn prepare_headers(
    headers: &mut HeaderMap,
    host: &HeaderValue,
    date: HeaderValue,
    authorization: HeaderValue,
) {
    // A message with both framings is read by its Transfer-Encoding; the stale length must
    // not travel on once that header is gone (RFC 9112 §6.3).
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    strip_hop_by_hop(headers);
    headers.remove(header::DATE);
    // `insert` replaces every value the client sent under these names.
    headers.insert(header::HOST, host.clone());
    headers.insert(X_MS_DATE, date);
    headers.insert(header::AUTHORIZATION, authorization);
}

/// Sorts a client error into TLS, connect, timeout or protocol failures.
fn classify(err: SendError) -> UpstreamError {
    let (connect, boxed): (bool, BoxError) = match err {
        SendError::Connect(err) => (true, err),
        SendError::Exchange(err) => (false, Box::new(err)),
    };
    if causes(&*boxed).any(|e| e.is::<rustls::Error>()) {
        return UpstreamError::Tls(boxed);
    }
    let timed_out = causes(&*boxed).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    });
    match (connect, timed_out) {
        (true, true) => UpstreamError::Timeout,
        (true, false) => UpstreamError::Connect(boxed),
        (false, _) => UpstreamError::Protocol {
            reason: "the exchange with the upstream failed".into(),
            source: Some(boxed),
        },
    }
}

/// The error and its causes, looking inside `io::Error`s (whose `source` skips the wrapped
/// error itself).
fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| {
        let inner = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .map(|inner| inner as &(dyn StdError + 'static));
        inner.or_else(|| e.source())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_formatted_once_per_second() {
        // The same allocation handed out again is the kept value; a new one was formatted.
        let kept =
            |a: &HeaderValue, b: &HeaderValue| a.as_bytes().as_ptr() == b.as_bytes().as_ptr();
        let at = UNIX_EPOCH + Duration::from_secs(1_796_300_000);
        let first = current_date(at).expect("date");
        assert_eq!(first, "Thu, 03 Dec 2026 12:13:20 GMT");
        let later_that_second = current_date(at + Duration::from_millis(999)).expect("date");
        assert_eq!(later_that_second, first);
        assert!(
            kept(&first, &later_that_second),
            "formatted again within the second"
        );
        let next = current_date(at + Duration::from_secs(1)).expect("date");
        assert_eq!(next, "Thu, 03 Dec 2026 12:13:21 GMT");
        assert!(!kept(&first, &next));
        // Going back (another request's clock reading, or a clock step) is formatted afresh.
        let back = current_date(at).expect("date");
        assert_eq!(back, first);
        assert!(!kept(&back, &next));
    }

    #[test]
    fn default_ports_are_left_out_of_the_authority() {
        let url = Url::parse("https://acct.documents.azure.com:443/").expect("url");
        let (scheme, authority) = origin(&url).expect("origin");
        assert_eq!(scheme, Scheme::HTTPS);
        assert_eq!(authority.as_str(), "acct.documents.azure.com");
        let url = Url::parse("https://[::1]:8081/").expect("url");
        assert_eq!(origin(&url).expect("origin").1.as_str(), "[::1]:8081");
    }

    #[test]
    fn client_credential_date_and_framing_headers_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("cosmogate.local"));
        headers.insert(
            "authorization",
            HeaderValue::from_static("type=aad&ver=1.0&sig=c"),
        );
        headers.append("authorization", HeaderValue::from_static("Bearer second"));
        headers.insert("x-ms-date", HeaderValue::from_static("old"));
        headers.append("x-ms-date", HeaderValue::from_static("older"));
        headers.insert("date", HeaderValue::from_static("garbage"));
        headers.insert("content-length", HeaderValue::from_static("4"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-ms-version", HeaderValue::from_static("2020-07-15"));
        prepare_headers(
            &mut headers,
            &HeaderValue::from_static("acct:443"),
            HeaderValue::from_static("now"),
            HeaderValue::from_static("ours"),
        );
        let mut left: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("?")))
            .collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                ("authorization", "ours"),
                ("host", "acct:443"),
                ("x-ms-date", "now"),
                ("x-ms-version", "2020-07-15"),
            ]
        );
    }
}
