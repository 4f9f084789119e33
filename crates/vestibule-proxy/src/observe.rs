//! Recording each request once its response body has been sent (or abandoned).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::access_log::{AccessLog, AccessRecord};
use crate::forward::Scheme;
use crate::metrics::{ProxyMetrics, RequestSample};
use crate::otlp::{OtlpExporter, ServerSpan};
use crate::rate_limit::Permit;
use crate::response::ResponseBody;

/// Where finished requests are reported.
#[derive(Debug, Clone)]
pub struct Observers {
    /// The data plane's metrics.
    pub metrics: Arc<ProxyMetrics>,
    /// The access log.
    pub access_log: Arc<AccessLog>,
    /// The span exporter, when `--otlp-endpoint` is set.
    pub otlp: Option<Arc<OtlpExporter>>,
}

impl Observers {
    /// Whether anything needs a request's host and target (the access log or spans).
    pub(crate) fn describe_requests(&self) -> bool {
        self.access_log.enabled() || self.otlp.is_some()
    }
}

/// A request waiting for its response body to finish.
#[derive(Debug)]
pub(crate) struct Pending {
    pub observers: Observers,
    pub started: Instant,
    pub bytes_in: Option<Arc<AtomicU64>>,
    pub record: AccessRecord,
    pub scheme: Scheme,
    /// Keeps the request counted by its route's `limit-connections` until the body has ended.
    pub _permit: Option<Permit>,
}

/// A response body that reports its request to the metrics, the access log and the span
/// exporter when it ends, however it ends.
#[derive(Debug)]
pub struct ObservedBody {
    inner: ResponseBody,
    bytes_out: u64,
    pending: Option<Box<Pending>>,
}

impl ObservedBody {
    pub(crate) fn new(inner: ResponseBody, pending: Box<Pending>) -> Self {
        Self {
            inner,
            bytes_out: 0,
            pending: Some(pending),
        }
    }

    fn finish(&mut self) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let record = &mut pending.record;
        let elapsed = pending.started.elapsed();
        record.bytes_out = self.bytes_out;
        record.duration = elapsed.as_secs_f64();
        record.bytes_in = pending
            .bytes_in
            .as_ref()
            .map_or(0, |counter| counter.load(Ordering::Relaxed));
        pending.observers.metrics.record(&RequestSample {
            route: &record.route,
            status: record.status,
            duration: record.duration,
            upstream: record.upstream_time,
            bytes_in: record.bytes_in,
            bytes_out: record.bytes_out,
        });
        pending.observers.access_log.write(record);
        if let (Some(otlp), Some(trace)) = (&pending.observers.otlp, record.trace)
            && trace.sampled()
        {
            let head = &record.head;
            otlp.record(ServerSpan {
                trace,
                start: head.time,
                duration: elapsed,
                method: head.method.clone(),
                scheme: pending.scheme,
                host: String::from_utf8_lossy(head.host()).into_owned(),
                target: head.target().into_owned(),
                version: head.version,
                client: record.client.ip(),
                status: record.status,
                route: record.route.clone(),
                upstream: record.upstream_addr.take(),
            });
        }
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                self.bytes_out += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            Poll::Ready(None | Some(Err(_))) => self.finish(),
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

impl Drop for ObservedBody {
    fn drop(&mut self) {
        self.finish();
    }
}
