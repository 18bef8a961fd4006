use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt as _, Empty};
use hyper_rustls::HttpsConnectorBuilder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the loopback upstream does with each request on a connection.
#[derive(Clone, Copy)]
enum Answer {
    /// `200` with a two-byte body, connection kept open.
    Ok,
    /// `200` announcing ten bytes, sending five, then holding the connection.
    Truncated,
    /// `204`, no body, connection kept open.
    NoContent,
    /// `200` with a body, then the upstream closes the connection (no `Connection: close`).
    OkThenClose,
    /// `200` with a chunked body, connection kept open.
    Chunked,
}

/// Connections the upstream accepted, and those it saw closed by cosmogate.
#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    closed_by_peer: AtomicUsize,
}

async fn upstream(answer: Answer) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let counters = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counters.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp, answer, Arc::clone(&counters)));
        }
    });
    (addr, seen)
}

async fn serve(mut tcp: TcpStream, answer: Answer, seen: Arc<Seen>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // One request head (the tests send no bodies).
        while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    seen.closed_by_peer.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        let end = pending
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4;
        pending.drain(..end);
        let reply: &[u8] = match answer {
            Answer::Ok | Answer::OkThenClose => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Answer::Truncated => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello",
            Answer::NoContent => b"HTTP/1.1 204 No Content\r\n\r\n",
            Answer::Chunked => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n"
            }
        };
        if tcp.write_all(reply).await.is_err() {
            return;
        }
        match answer {
            Answer::OkThenClose => return,
            Answer::Truncated => {
                // Hold the connection open until the client goes away.
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                seen.closed_by_peer.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Answer::Ok | Answer::NoContent | Answer::Chunked => {}
        }
    }
}

fn pool(idle_timeout: Option<Duration>) -> Pool {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let tls = crate::tls::client_config(None, false).expect("tls config");
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Pool::new(connector, 64 * 1024, idle_timeout)
}

fn origin(addr: SocketAddr) -> Origin {
    Origin {
        scheme: Scheme::HTTP,
        authority: Authority::try_from(addr.to_string()).expect("authority"),
    }
}

fn get(addr: SocketAddr) -> Request<UpstreamBody> {
    Request::builder()
        .uri("/dbs/shop/colls/orders/docs/1")
        .header(http::header::HOST, addr.to_string())
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("request")
}

async fn read_all(response: Response<ResponseBody>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// One request to `addr` through `pool`, its `ok` body read to the end.
async fn fetch_ok(pool: &Pool, addr: SocketAddr) {
    let response = pool.send(&origin(addr), get(addr)).await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(read_all(response).await, "ok");
}

/// Waits (up to five seconds) for `done`, which the pool reaches on its own tasks.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

const MINUTE: Option<Duration> = Some(Duration::from_secs(60));

#[tokio::test]
async fn requests_one_after_another_share_one_connection() {
    let (addr, seen) = upstream(Answer::Ok).await;
    let pool = pool(MINUTE);
    for _ in 0..5 {
        fetch_ok(&pool, addr).await;
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_chunked_body_read_to_its_end_frees_its_connection() {
    let (addr, seen) = upstream(Answer::Chunked).await;
    let pool = pool(MINUTE);
    for _ in 0..3 {
        fetch_ok(&pool, addr).await;
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_busy_with_a_response_is_not_lent_again() {
    let (addr, seen) = upstream(Answer::Ok).await;
    let pool = pool(MINUTE);
    // Three responses held open at once need three connections.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.send(&origin(addr), get(addr)).await.expect("sent"));
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 3);
    for response in held {
        assert_eq!(read_all(response).await, "ok");
    }
    assert_eq!(pool.idle_count(), 3);
    fetch_ok(&pool, addr).await;
    assert_eq!(
        seen.accepted.load(Ordering::SeqCst),
        3,
        "an idle one was reused"
    );
}

#[tokio::test]
async fn a_body_dropped_before_its_end_takes_its_connection_with_it() {
    let (addr, seen) = upstream(Answer::Truncated).await;
    let pool = pool(MINUTE);
    let response = pool.send(&origin(addr), get(addr)).await.expect("sent");
    let mut body = response.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert_eq!(first.into_data().expect("data"), "hello");
    drop(body);
    // The rest of that response would still be on the wire: the connection is closed, not
    // lent to the next request.
    eventually("the upstream sees the connection closed", || {
        seen.closed_by_peer.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(pool.idle_count(), 0);
}

#[tokio::test]
async fn a_response_without_a_body_frees_its_connection_unread() {
    let (addr, seen) = upstream(Answer::NoContent).await;
    let pool = pool(MINUTE);
    let response = pool.send(&origin(addr), get(addr)).await.expect("sent");
    assert_eq!(response.status(), 204);
    eventually("the connection is idle again", || pool.idle_count() == 1).await;
    drop(response);
    let again = pool.send(&origin(addr), get(addr)).await.expect("sent");
    assert_eq!(again.status(), 204);
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used_again() {
    let (addr, seen) = upstream(Answer::OkThenClose).await;
    let pool = pool(MINUTE);
    fetch_ok(&pool, addr).await;
    // hyper notices the close on the connection's own task: before the body's end reached the
    // pool (then the connection is not taken back) or after (then it waits in the idle list
    // until it is seen closed, and is passed over).
    eventually("the closed connection is noticed", || {
        pool.shared
            .lock()
            .origins
            .iter()
            .all(|entry| entry.idle.iter().all(|idle| idle.sender.is_closed()))
    })
    .await;
    let response = pool
        .send(&origin(addr), get(addr))
        .await
        .expect("sent again");
    assert_eq!(read_all(response).await, "ok");
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (addr, seen) = upstream(Answer::Ok).await;
    let pool = pool(Some(Duration::from_millis(200)));
    fetch_ok(&pool, addr).await;
    assert_eq!(pool.idle_count(), 1);
    // The sweep drops it, which closes it: the upstream reads the end of the stream.
    eventually("the upstream sees the idle connection closed", || {
        seen.closed_by_peer.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(pool.idle_count(), 0);
    fetch_ok(&pool, addr).await;
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_an_idle_timeout_no_connection_is_kept() {
    let (addr, seen) = upstream(Answer::Ok).await;
    let pool = pool(None);
    for round in 1..=2 {
        fetch_ok(&pool, addr).await;
        assert_eq!(pool.idle_count(), 0);
        eventually("the upstream sees the connection closed", || {
            seen.closed_by_peer.load(Ordering::SeqCst) == round
        })
        .await;
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn origins_keep_their_own_connections() {
    let (first, first_seen) = upstream(Answer::Ok).await;
    let (second, second_seen) = upstream(Answer::Ok).await;
    let pool = pool(MINUTE);
    for addr in [first, second, first, second] {
        fetch_ok(&pool, addr).await;
    }
    assert_eq!(first_seen.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(second_seen.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 2);
}

#[test]
fn an_h2_target_carries_the_origin() {
    let origin = Origin {
        scheme: Scheme::HTTPS,
        authority: Authority::from_static("acct.documents.azure.com"),
    };
    let target = Uri::from_static("/dbs/a/colls/b?x=1");
    assert_eq!(
        absolute(&origin, &target),
        "https://acct.documents.azure.com/dbs/a/colls/b?x=1"
    );
}

#[tokio::test]
async fn requests_right_after_an_upstream_close_are_answered_on_fresh_connections() {
    let (addr, seen) = upstream(Answer::OkThenClose).await;
    let pool = pool(MINUTE);
    for _ in 0..20 {
        // The next request follows at once. Here hyper has always noticed the close by then,
        // so the pool opens a new connection; the other order (the request handed back
        // unsent by a connection that closed under it, and sent on another) is the retry in
        // `Pool::send`, which this test does not reach deterministically.
        fetch_ok(&pool, addr).await;
    }
    assert_eq!(seen.accepted.load(Ordering::SeqCst), 20);
}
