//! The request body as it is sent upstream: streamed, and stopped past the size limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request body grew past `--proxy-body-size` while streaming.
#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit, in bytes.
    pub limit: u64,
}

/// The client's request body on its way upstream, or no body at all (for a retry).
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    inner: Option<Incoming>,
    limit: Option<u64>,
    sent: u64,
    counted: Option<Arc<AtomicU64>>,
}

impl UpstreamBody {
    /// Streams `inner`, failing once more than `limit` bytes have passed; `counted`, when
    /// given, follows how many bytes have passed.
    pub fn limited(inner: Incoming, limit: Option<u64>, counted: Option<Arc<AtomicU64>>) -> Self {
        Self {
            inner: Some(inner),
            limit,
            sent: 0,
            counted,
        }
    }

    /// No body.
    pub fn empty() -> Self {
        Self {
            inner: None,
            limit: None,
            sent: 0,
            counted: None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if let Some(counted) = &this.counted {
                        counted.store(this.sent, Ordering::Relaxed);
                    }
                    if let Some(limit) = this.limit
                        && this.sent > limit
                    {
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
