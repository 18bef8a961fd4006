//! Response bodies, and the wrapper that writes the audit record when a body ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// Errors carried by bodies in either direction.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response cosmogate sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete in-memory body.
pub fn full(bytes: Bytes) -> ProxyBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Runs `on_end(completed, bytes)` exactly once: with `true` when the body's last frame has
/// been sent, with `false` when it is dropped earlier (the client went away or the upstream
/// body failed); `bytes` is the data sent until then.
pub struct Finish<F: FnOnce(bool, u64)> {
    inner: ProxyBody,
    on_end: Option<F>,
    bytes: u64,
}

impl<F: FnOnce(bool, u64)> std::fmt::Debug for Finish<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish").finish_non_exhaustive()
    }
}

impl<F: FnOnce(bool, u64)> Finish<F> {
    pub fn new(inner: ProxyBody, on_end: F) -> Self {
        Self {
            inner,
            on_end: Some(on_end),
            bytes: 0,
        }
    }

    fn end(&mut self, completed: bool) {
        if let Some(on_end) = self.on_end.take() {
            on_end(completed, self.bytes);
        }
    }
}

impl<F: FnOnce(bool, u64) + Unpin> Body for Finish<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.bytes += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            Poll::Ready(None) => this.end(true),
            Poll::Ready(Some(Err(_))) => this.end(false),
            _ => {}
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

impl<F: FnOnce(bool, u64)> Drop for Finish<F> {
    fn drop(&mut self) {
        // An empty body may never be polled to its end: hyper checks `is_end_stream` first.
        let completed = self.inner.is_end_stream();
        self.end(completed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(bool, u64)>>>;

    fn recorder() -> (Seen, impl FnOnce(bool, u64) + Unpin) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        (seen, move |completed, bytes| {
            sink.lock().expect("test mutex").push((completed, bytes))
        })
    }

    #[tokio::test]
    async fn a_body_read_to_the_end_reports_completion_once() {
        let (seen, on_end) = recorder();
        let body = Finish::new(full(Bytes::from_static(b"hello")), on_end);
        let collected = body.collect().await.expect("body").to_bytes();
        assert_eq!(&collected[..], b"hello");
        assert_eq!(*seen.lock().expect("test mutex"), vec![(true, 5)]);
    }

    #[tokio::test]
    async fn a_body_dropped_early_reports_it_was_not_completed() {
        let (seen, on_end) = recorder();
        let stream = http_body_util::StreamBody::new(futures_util::stream::iter(vec![
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"a"))),
            Ok(Frame::data(Bytes::from_static(b"b"))),
        ]));
        let mut body = Finish::new(stream.boxed_unsync(), on_end);
        let first = body.frame().await;
        assert!(first.is_some());
        drop(body);
        assert_eq!(*seen.lock().expect("test mutex"), vec![(false, 1)]);
    }
}

/// Counts the data bytes of a request body as it streams to the upstream.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, count: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        Self { inner, count }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            let len = frame.data_ref().map_or(0, |data| data.len() as u64);
            this.count
                .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
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
