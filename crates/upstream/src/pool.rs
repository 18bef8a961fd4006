//! The upstream connections: HTTP/1.1 connections kept per origin and lent to one request at a
//! time, or one shared HTTP/2 connection per origin when ALPN picks h2.
//!
//! A request takes the most recently returned idle connection of its origin, or opens one. An
//! HTTP/1.1 connection goes back to the idle list when its response body has been read to the
//! end; a body dropped early takes its connection with it, as the rest of that response would
//! still be on the wire. A connection taken back while hyper is still finishing the exchange
//! on its task is waited for by the request it is lent to next. Connections unused for the
//! idle timeout are closed (by a sweep, and when a request finds one past it); an HTTP/2
//! connection counts as used whenever a request takes it. With no timeout configured nothing
//! is kept.
//!
//! A request that never left cosmogate because the idle connection it was given had just been
//! closed by the other side is sent again, on another connection; a request that was sent is
//! never sent again (see [`Forwarder`](crate::Forwarder)).

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::ServiceExt as _;

use crate::error::BoxError;
use crate::forward::UpstreamBody;

/// The connector every connection is opened with: TCP, then TLS for `https` origins.
pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// Where a connection goes: scheme and authority, as requests to it are addressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be opened (TCP or TLS).
    Connect(BoxError),
    /// The exchange on an open connection failed.
    Exchange(hyper::Error),
}

/// The upstream connection pool. Cheap to clone; clones share the connections.
#[derive(Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    /// The largest HTTP/1.1 read buffer of a connection (bounds the response head), and the
    /// largest HTTP/2 header list accepted.
    max_buf_size: usize,
    /// How long an idle connection is kept; `None` keeps none.
    idle_timeout: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per origin; a gateway has one, or one per configured region.
    origins: Vec<OriginState>,
    /// Whether the sweep of expired idle connections runs.
    sweeping: bool,
}

struct OriginState {
    origin: Origin,
    /// Idle HTTP/1.1 connections, the most recently returned last.
    idle: Vec<Idle>,
    /// The origin's HTTP/2 connection, once ALPN picked h2, and when a request last took it.
    h2: Option<Shared2>,
}

struct Shared2 {
    sender: http2::SendRequest<UpstreamBody>,
    used: Instant,
}

struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
}

enum Lent {
    H1(http1::SendRequest<UpstreamBody>),
    H2(http2::SendRequest<UpstreamBody>),
}

impl Pool {
    pub(crate) fn new(
        connector: Connector,
        max_buf_size: usize,
        idle_timeout: Option<Duration>,
    ) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                connector,
                max_buf_size,
                idle_timeout,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Sends `request` (whose URI is the origin-form target, path and query) to `origin`;
    /// returns when the response head has arrived, with the body still streaming.
    pub(crate) async fn send(
        &self,
        origin: &Origin,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, SendError> {
        loop {
            let (lent, reused) = match self.shared.take_idle(origin) {
                Some(lent) => (lent, true),
                // Boxed: opening a connection (TCP, TLS, a handshake) is a large future that
                // would otherwise size every request's own, which hyper keeps a slot of per
                // client connection (about 7 KiB more per idle connection, measured).
                None => (Box::pin(self.shared.connect(origin)).await?, false),
            };
            let mut failed = match lent {
                Lent::H1(mut sender) => {
                    // A connection taken back just as its exchange ended may still be
                    // settling on its task; one that closes instead is passed over.
                    if sender.ready().await.is_err() {
                        continue;
                    }
                    // Back in origin form, if an HTTP/2 attempt had made it absolute.
                    if request.uri().scheme().is_some() {
                        *request.uri_mut() = origin_form(request.uri());
                    }
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let back = Checkin {
                                shared: Arc::clone(&self.shared),
                                origin: origin.clone(),
                                sender,
                            };
                            return Ok(response.map(|body| ResponseBody::lent(body, back)));
                        }
                        Err(err) => err,
                    }
                }
                Lent::H2(mut sender) => {
                    // HTTP/2 carries scheme and authority as pseudo-headers, from the URI.
                    if request.uri().scheme().is_none() {
                        *request.uri_mut() = absolute(origin, request.uri());
                    }
                    match sender.try_send_request(request).await {
                        Ok(response) => return Ok(response.map(ResponseBody::shared)),
                        Err(err) => err,
                    }
                }
            };
            match failed.take_message() {
                // Never written: the idle connection had been closed. Try another one (each
                // try takes one idle connection off the list, or opens a fresh one, which
                // is not retried).
                Some(back) if reused => {
                    tracing::debug!(error = %failed.error(), "Pooled upstream connection was closed, sending on another");
                    request = back;
                }
                _ => return Err(SendError::Exchange(failed.into_error())),
            }
        }
    }

    /// Idle HTTP/1.1 connections held now, over all origins (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        let state = self.shared.lock();
        state.origins.iter().map(|entry| entry.idle.len()).sum()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("idle_timeout", &self.shared.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent at every await-free step; a panic elsewhere cannot
        // leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The origin's HTTP/2 connection, or its most recently returned idle HTTP/1.1 connection
    /// that is still open and within the idle timeout.
    fn take_idle(&self, origin: &Origin) -> Option<Lent> {
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state.origins.iter_mut().find(|e| e.origin == *origin)?;
        if let Some(sender) = self.take_h2(entry, now) {
            return Some(Lent::H2(sender));
        }
        while let Some(idle) = entry.idle.pop() {
            if !idle.sender.is_closed() && !self.expired(idle.since, now) {
                return Some(Lent::H1(idle.sender));
            }
            // Closed or past the timeout: dropped here, which closes it.
        }
        None
    }

    /// The origin's HTTP/2 connection, when it is open and was used within the idle timeout.
    fn take_h2(
        &self,
        entry: &mut OriginState,
        now: Instant,
    ) -> Option<http2::SendRequest<UpstreamBody>> {
        let h2 = entry.h2.as_mut()?;
        if h2.sender.is_ready() && !self.expired(h2.used, now) {
            h2.used = now;
            return Some(h2.sender.clone());
        }
        // Closed, or unused past the timeout (a path that dropped an idle flow leaves a
        // connection that looks open): requests still on it keep it until they end.
        entry.h2 = None;
        None
    }

    fn expired(&self, since: Instant, now: Instant) -> bool {
        self.idle_timeout
            .is_none_or(|timeout| now.saturating_duration_since(since) >= timeout)
    }

    /// Opens a connection to `origin`; an HTTP/2 one is kept as the origin's shared one.
    async fn connect(self: &Arc<Self>, origin: &Origin) -> Result<Lent, SendError> {
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|err| SendError::Connect(err.into()))?;
        let io = self
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(SendError::Connect)?;
        if io.connected().is_negotiated_h2() {
            // Requests that raced to open the origin's first connection: the first HTTP/2
            // connection up is shared, the others' connections are closed unused.
            let raced = {
                let mut state = self.lock();
                let entry = state.entry(origin);
                self.take_h2(entry, Instant::now())
            };
            if let Some(sender) = raced {
                return Ok(Lent::H2(sender));
            }
            let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(self.max_buf_size).unwrap_or(u32::MAX))
                .handshake(io)
                .await
                .map_err(SendError::Exchange)?;
            drive(connection);
            sender.ready().await.map_err(SendError::Exchange)?;
            // Shared by the origin's requests from now on, unless nothing may be kept.
            if self.idle_timeout.is_some() {
                self.lock().entry(origin).h2 = Some(Shared2 {
                    sender: sender.clone(),
                    used: Instant::now(),
                });
            }
            return Ok(Lent::H2(sender));
        }
        let (mut sender, connection) = http1::Builder::new()
            .max_buf_size(self.max_buf_size)
            .handshake(io)
            .await
            .map_err(SendError::Exchange)?;
        drive(connection);
        sender.ready().await.map_err(SendError::Exchange)?;
        Ok(Lent::H1(sender))
    }

    /// Takes an HTTP/1.1 connection back, idle and ready for the next request.
    fn put(self: &Arc<Self>, origin: Origin, sender: http1::SendRequest<UpstreamBody>) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        let mut state = self.lock();
        state.entry(&origin).idle.push(Idle {
            sender,
            since: Instant::now(),
        });
        if !state.sweeping
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            state.sweeping = true;
            runtime.spawn(sweep(Sweeping(Arc::downgrade(self)), timeout));
        }
    }

    /// Drops the idle connections past the timeout.
    fn drop_expired(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        for entry in &mut state.origins {
            entry
                .idle
                .retain(|idle| !idle.sender.is_closed() && !self.expired(idle.since, now));
            if entry
                .h2
                .as_ref()
                .is_some_and(|h2| !h2.sender.is_ready() || self.expired(h2.used, now))
            {
                entry.h2 = None;
            }
        }
    }
}

impl State {
    fn entry(&mut self, origin: &Origin) -> &mut OriginState {
        let at = match self.origins.iter().position(|e| e.origin == *origin) {
            Some(at) => at,
            None => {
                self.origins.push(OriginState {
                    origin: origin.clone(),
                    idle: Vec::new(),
                    h2: None,
                });
                self.origins.len() - 1
            }
        };
        &mut self.origins[at]
    }
}

/// The sweep's hold on its pool. When the sweep ends with its runtime, the next connection
/// taken back starts another.
struct Sweeping(std::sync::Weak<Shared>);

impl Drop for Sweeping {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.lock().sweeping = false;
        }
    }
}

/// Closes idle connections once they pass the timeout, checking twice per timeout, until the
/// pool is gone.
async fn sweep(shared: Sweeping, timeout: Duration) {
    let mut ticks = tokio::time::interval((timeout / 2).max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = shared.0.upgrade() else {
            return;
        };
        pool.drop_expired();
    }
}

/// Runs a connection's I/O on its own task until it closes (hyper's connection future does
/// the reading and writing that the request's sender hands it).
fn drive(connection: impl Future<Output = hyper::Result<()>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "Upstream connection ended with an error");
        }
    });
}

/// The request's path and query alone: the HTTP/1.1 request target.
fn origin_form(target: &Uri) -> Uri {
    target
        .path_and_query()
        .cloned()
        .map_or_else(|| Uri::from_static("/"), Uri::from)
}

/// `origin` with the request's path and query.
fn absolute(origin: &Origin, target: &Uri) -> Uri {
    let mut parts = target.clone().into_parts();
    parts.scheme = Some(origin.scheme.clone());
    parts.authority = Some(origin.authority.clone());
    Uri::from_parts(parts).unwrap_or_else(|_| target.clone())
}

/// A lent HTTP/1.1 connection on its way back to the pool.
struct Checkin {
    shared: Arc<Shared>,
    origin: Origin,
    sender: http1::SendRequest<UpstreamBody>,
}

impl Checkin {
    /// Returns the connection to the idle list, unless it closed. hyper may still be finishing
    /// the exchange on the connection's task; the next request waits for that (`Pool::send`).
    fn release(self) {
        let Checkin {
            shared,
            origin,
            sender,
        } = self;
        if !sender.is_closed() {
            shared.put(origin, sender);
        }
    }
}

/// A response body from the pool. An HTTP/1.1 connection is returned when the body has been
/// read to its end, and closed when the body is dropped before that.
pub struct ResponseBody {
    inner: Incoming,
    back: Option<Checkin>,
}

impl ResponseBody {
    fn lent(inner: Incoming, back: Checkin) -> ResponseBody {
        let mut body = ResponseBody {
            inner,
            back: Some(back),
        };
        // A response without a body (204, 304, a zero length) frees its connection at once.
        body.release_at_end();
        body
    }

    fn shared(inner: Incoming) -> ResponseBody {
        ResponseBody { inner, back: None }
    }

    fn release_at_end(&mut self) {
        if self.inner.is_end_stream()
            && let Some(back) = self.back.take()
        {
            back.release();
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("lent", &self.back.is_some())
            .finish_non_exhaustive()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(back) = self.back.take() {
                    back.release();
                }
            }
            // A broken body leaves its connection unusable: dropped with `back`.
            Poll::Ready(Some(Err(_))) => self.back = None,
            Poll::Ready(Some(Ok(_))) => self.release_at_end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
