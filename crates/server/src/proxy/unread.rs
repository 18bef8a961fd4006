//! The request body of a refused request, read to its end before the refusal is sent.
//!
//! A refusal is decided from the head alone (a bad token, a denied write), often before the
//! client has finished sending the body: Python's `http.client` writes the head and the body
//! separately. If the body were simply dropped, hyper would close the connection after the
//! response without saying so, and a client that reuses the connection for its next request
//! would lose that request. So the rest of the body is read and thrown away, within a bound,
//! and the connection stays usable. A body over the bound (read, or declared in
//! `Content-Length`), one that stalls, one a step left part-way (a batch over its limit, a
//! failed forward), or one the client is waiting to be asked for (`Expect: 100-continue`: it is
//! better not asked) gets `Connection: close` on the response instead, so the client knows not
//! to reuse the connection. On h2 nothing is drained: an unread body ends only its own stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HeaderValue};
use http::{HeaderMap, Response, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::error::GatewayError;

/// The most body bytes read and discarded after a refusal: room for the largest Cosmos DB
/// document (2 MiB) twice over.
pub(super) const DRAIN_LIMIT_BYTES: u64 = 4 << 20;

/// The longest a refusal waits for the rest of the body.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The request body until a step takes it.
pub(super) struct RequestBody {
    body: Option<Incoming>,
    version: Version,
    /// The `Content-Length` the client declared.
    declared: Option<u64>,
    /// The client waits for `100 Continue` before it sends the body.
    expects_continue: bool,
    /// A step took the body and has not said it read it to the end.
    unfinished: bool,
}

impl RequestBody {
    pub(super) fn new(body: Incoming, version: Version, headers: &HeaderMap) -> Self {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let expects_continue = headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        RequestBody {
            body: Some(body),
            version,
            declared,
            expects_continue,
            unfinished: false,
        }
    }

    /// Hands the body to the step that reads or forwards it. Until that step calls
    /// [`finished`](Self::finished), a body that had not ended counts as read part-way.
    pub(super) fn take(&mut self) -> Result<Incoming, GatewayError> {
        let body = self.body.take().ok_or(GatewayError::Internal {
            reason: "request_body_taken_twice",
        })?;
        self.unfinished = !body.is_end_stream();
        Ok(body)
    }

    /// The step that took the body read it to its end.
    pub(super) fn finished(&mut self) {
        self.unfinished = false;
    }

    /// Before `response` (a refusal) is sent: reads what is left of the body, counting it in
    /// `bytes_in`, or marks the connection to close when that cannot be done within bounds.
    pub(super) async fn settle(self, response: &mut Response<ProxyBody>, bytes_in: &AtomicU64) {
        if !matches!(self.version, Version::HTTP_10 | Version::HTTP_11) {
            return;
        }
        let too_large = self.declared.is_some_and(|len| len > DRAIN_LIMIT_BYTES);
        let reusable = match self.body {
            Some(body) if body.is_end_stream() => true,
            Some(_) if too_large || self.expects_continue => false,
            Some(body) => drain(body, bytes_in).await,
            // A step read it: to its end, or as far as its declared length.
            None => {
                !self.unfinished
                    || self
                        .declared
                        .is_some_and(|len| bytes_in.load(Ordering::Relaxed) >= len)
            }
        };
        if !reusable {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// Reads `body` to its end and discards it. True when it ended within the byte and time bounds.
async fn drain(mut body: Incoming, bytes_in: &AtomicU64) -> bool {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut read = 0u64;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return true,
            // The client broke the body off, or it stalled: the connection is not reusable.
            Ok(Some(Err(_))) | Err(_) => return false,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            read += len;
            bytes_in.fetch_add(len, Ordering::Relaxed);
            if read > DRAIN_LIMIT_BYTES {
                return false;
            }
        }
    }
}
