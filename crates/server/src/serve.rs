//! The accept loop: TLS, HTTP/1.1 or h2 by ALPN, one task per connection. With
//! `listen.tls = false` the same loop serves plain HTTP/1.1, and h2 with prior knowledge.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::body::ProxyBody;
use crate::gateway::Shared;
use crate::proxy;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an HTTP/1.1 client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest h2 header list accepted. Cosmos session and continuation tokens can be large,
/// and an access token adds a few KiB.
const MAX_H2_HEADER_LIST: u32 = 256 * 1024;

/// The most headers hyper parses in an HTTP/1.1 request: twice cosmogate's own limit, at least
/// 512. Requests between the two limits get cosmogate's Cosmos-shaped 431 and an audit record
/// (500 small headers do, case C27); hyper refuses larger ones itself, with a bare 431. hyper
/// zeroes this many header slots for every request, so the backstop is not made larger.
fn max_headers_backstop(limits: &crate::config::LimitsConfig) -> usize {
    limits
        .max_header_count
        .saturating_mul(2)
        .max(MIN_HEADERS_BACKSTOP)
}

/// The least [`max_headers_backstop`].
const MIN_HEADERS_BACKSTOP: usize = 512;

/// hyper's HTTP/1.1 read buffer, which bounds the request head.
const MAX_HEAD_BYTES_BACKSTOP: usize = 512 * 1024;

/// How long open connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Accepts connections until `shutdown` completes. `acceptor` is `None` only for an explicit
/// plain-HTTP listener (`listen.tls = false`).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if acceptor.is_none() {
        tracing::warn!(
            listen.address = %listener.local_addr()?,
            "TLS is off (listen.tls = false): serving plain HTTP; access tokens cross the \
             network in clear unless a TLS-terminating proxy is in front"
        );
    }
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own head limits are a backstop above cosmogate's configurable ones, which answer
    // with a Cosmos-shaped 431 and an audit record.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(max_headers_backstop(&shared.limits))
        .max_buf_size(MAX_HEAD_BYTES_BACKSTOP);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_H2_HEADER_LIST);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!(error = %err, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                serve_connection(tcp, peer, shared, &builder, watcher).await;
                return;
            };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(client.address = %peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client.address = %peer, "TLS handshake timed out");
                    return;
                }
            };
            serve_connection(tls, peer, shared, &builder, watcher).await;
        });
    }
    drop(listener);
    tracing::info!("Shutting down, draining connections");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Connections still open after the drain timeout");
    }
    Ok(())
}

/// The future hyper keeps, per connection, for the request in flight. The request's own state
/// machine ([`proxy::handle`], about 5 KiB) is boxed, so an idle connection keeps a slot a
/// pointer wide instead of one that size; the price is one allocation per request.
fn respond(
    shared: Arc<Shared>,
    client: proxy::Peer,
    request: Request<Incoming>,
) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send {
    let handled = Box::pin(proxy::handle(shared, client, request));
    async move { Ok(handled.await) }
}

/// Serves one connection, TLS or plain, until the client or a graceful shutdown ends it.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = proxy::Peer::new(peer);
    let service = service_fn(move |request| respond(Arc::clone(&shared), client.clone(), request));
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(err) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(client.address = %peer, error = %err, "Connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<F, A, B, C, R>(_: F) -> usize
    where
        F: Fn(A, B, C) -> R,
    {
        std::mem::size_of::<R>()
    }

    #[test]
    fn an_idle_connection_keeps_a_small_slot_for_its_next_request() {
        // hyper allocates this per connection, busy or idle (see `respond`).
        let slot = returned_size(respond);
        assert!(
            slot <= 64,
            "the per-connection request slot is {slot} bytes"
        );
        // What each request allocates instead. It grew to 11 KiB once, when the upstream
        // pool's connect path was inlined into it.
        let request = returned_size(proxy::handle);
        assert!(
            request <= 6 * 1024,
            "the request's future is {request} bytes"
        );
        eprintln!("per-connection slot {slot} bytes, request future {request} bytes");
    }
}
