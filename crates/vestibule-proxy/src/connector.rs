//! The upstream connector: connections to endpoints (see [`BackendConnector`]), each counted as open for its
//! backend (`vestibule_upstream_connections`) until hyper drops it, whether it was idle in the
//! pool or in use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tower_service::Service;
use vestibule_routing::BackendId;

use crate::metrics::{ConnectionGuard, ProxyMetrics};
use crate::upstream_client::{BackendConnector, BackendStream};

tokio::task_local! {
    /// The backend whose request is being sent, so that a connection opened for it is counted
    /// under its labels. The shared client pools connections by endpoint only; a connection
    /// stays counted under the backend that opened it.
    static BACKEND: Arc<BackendId>;
}

/// Runs `sending` (requests to `backend`'s endpoints) so that the connections it opens are
/// counted for `backend`.
pub(crate) fn for_backend<F: Future>(
    backend: Arc<BackendId>,
    sending: F,
) -> impl Future<Output = F::Output> {
    BACKEND.scope(backend, sending)
}

/// A connector whose connections count themselves in the metrics while open.
#[derive(Clone)]
pub(crate) struct CountingConnector {
    inner: BackendConnector,
    metrics: Arc<ProxyMetrics>,
}

impl CountingConnector {
    /// Wraps `inner`, counting in `metrics`.
    pub fn new(inner: BackendConnector, metrics: Arc<ProxyMetrics>) -> Self {
        Self { inner, metrics }
    }
}

type Connecting = Pin<
    Box<dyn Future<Output = Result<CountedIo, Box<dyn std::error::Error + Send + Sync>>> + Send>,
>;

impl Service<Uri> for CountingConnector {
    type Response = CountedIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Uri>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, endpoint: Uri) -> Self::Future {
        let backend = BACKEND.try_with(Arc::clone).ok();
        let metrics = self.metrics.clone();
        let connecting = self.inner.call(endpoint);
        Box::pin(async move {
            let io = connecting.await?;
            let open = metrics.upstream_connection(backend.as_deref());
            Ok(CountedIo { io, _open: open })
        })
    }
}

/// A connection to an endpoint, counted as open until dropped.
#[derive(Debug)]
pub(crate) struct CountedIo {
    io: BackendStream,
    _open: ConnectionGuard,
}

impl Connection for CountedIo {
    /// The connection as the client needs it: whether it is proxied and its ALPN protocol. The
    /// inner connector's `HttpInfo` is left out: nothing reads it, and the client would copy it
    /// into every response's extensions, at three allocations each.
    fn connected(&self) -> Connected {
        let inner = self.io.connected();
        let connected = Connected::new().proxy(inner.is_proxied());
        if inner.is_negotiated_h2() {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for CountedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for CountedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
