//! A bound on how long a response body may pause once its headers have arrived.
//!
//! The response timeout ends when the headers arrive; after that an account (or a network
//! path) that stops sending would hold the client's connection, and the request's audit
//! record, open forever. [`IdleTimeout`] cuts such a body off with an error, which the client
//! sees as a truncated response and the audit record as an incomplete one.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::BoxError;

/// The error a body ends with when it paused longer than its limit.
#[derive(Debug)]
pub struct BodyStalled {
    limit: Duration,
}

impl fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the upstream response body sent nothing for {} s",
            self.limit.as_secs()
        )
    }
}

impl std::error::Error for BodyStalled {}

/// A body that fails when it keeps its reader waiting longer than `limit` for one frame.
///
/// The timer is armed only when the inner body has nothing ready, so a body whose frames are
/// already buffered costs no timer work; it is allocated once, on the first wait.
pub struct IdleTimeout<B> {
    inner: B,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether `deadline` counts the current wait (reset when a frame arrives).
    armed: bool,
    done: bool,
}

impl<B> fmt::Debug for IdleTimeout<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`. Must be polled inside a Tokio runtime.
    pub fn new(inner: B, limit: Duration) -> Self {
        IdleTimeout {
            inner,
            limit,
            deadline: None,
            armed: false,
            done: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.armed = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.done = true;
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.armed {
                    let until = Instant::now() + this.limit;
                    match &mut this.deadline {
                        Some(deadline) => deadline.as_mut().reset(until),
                        None => this.deadline = Some(Box::pin(tokio::time::sleep_until(until))),
                    }
                    this.armed = true;
                }
                let stalled = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !stalled {
                    return Poll::Pending;
                }
                this.done = true;
                tracing::warn!(
                    limit_seconds = this.limit.as_secs(),
                    "Upstream response body stalled, cut off"
                );
                Poll::Ready(Some(Err(Box::new(BodyStalled { limit: this.limit }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use http_body_util::StreamBody;

    type Chunks = futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, BoxError>>;

    fn body_of(chunks: Chunks) -> StreamBody<Chunks> {
        StreamBody::new(chunks)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_sending_is_passed_through_whole() {
        let chunks = futures_util::stream::unfold(0u32, |n| async move {
            if n == 5 {
                return None;
            }
            // Each pause is shorter than the limit, though all of them together are longer.
            tokio::time::sleep(Duration::from_millis(800)).await;
            Some((Ok(Frame::data(Bytes::from_static(b"abc"))), n + 1))
        });
        let body = IdleTimeout::new(body_of(Box::pin(chunks)), Duration::from_secs(1));
        let collected = body.collect().await.expect("no stall");
        assert_eq!(collected.to_bytes().len(), 15);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_after_its_first_piece_ends_with_an_error() {
        let chunks = futures_util::stream::unfold(0u32, |n| async move {
            if n == 1 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Some((Ok(Frame::data(Bytes::from_static(b"abc"))), n + 1))
        });
        let mut body = IdleTimeout::new(body_of(Box::pin(chunks)), Duration::from_secs(2));
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.data_ref().map(Bytes::len), Some(3));
        let err = body.frame().await.expect("an end").expect_err("stalled");
        assert!(err.is::<BodyStalled>(), "{err}");
        assert_eq!(
            err.to_string(),
            "the upstream response body sent nothing for 2 s"
        );
        assert!(body.frame().await.is_none(), "nothing after the error");
    }
}
