//! `--proxy-send-timeout`: a write to an endpoint that makes no progress for that long fails.
//!
//! As nginx's `proxy_send_timeout`, the timeout is not for the whole request but for the time
//! between two successive writes: an endpoint that stops reading (its receive window stays
//! full) makes every write to it pending, and once one has been pending for the timeout it fails
//! with [`io::ErrorKind::TimedOut`], which the handler answers with 504. It guards every write on
//! the connection, so it also covers upgraded (WebSocket) connections, as it does in nginx.
//!
//! The guard wraps each connection the upstream client's connector opens, so the timeout is
//! fixed per connection pool: the legacy client cannot carry a per-request value down to a
//! pooled connection. A per-route override therefore takes one client per distinct timeout
//! (built with its own [`SendTimeoutConnector`]), so that pools of different timeouts never
//! share a connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The error a connector's failure is reported with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens connections to endpoints whose writes time out when they stall.
#[derive(Clone, Debug)]
pub(crate) struct SendTimeoutConnector {
    http: HttpConnector,
    timeout: Duration,
}

impl SendTimeoutConnector {
    /// Connects with `http`; each write may stay pending for at most `timeout`.
    pub fn new(http: HttpConnector, timeout: Duration) -> Self {
        Self { http, timeout }
    }
}

impl tower_service::Service<Uri> for SendTimeoutConnector {
    type Response = SendTimeout<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            let io = connecting.await?;
            Ok(SendTimeout::new(io, timeout))
        })
    }
}

/// An upstream connection whose writes fail once they have been pending for the timeout.
#[derive(Debug)]
pub(crate) struct SendTimeout<I> {
    inner: I,
    timeout: Duration,
    /// The deadline of the write now pending; reused from one stall to the next.
    stall: Option<Pin<Box<Sleep>>>,
    /// Whether `stall` belongs to the write now pending (else it is from an earlier one).
    stalled: bool,
}

impl<I> SendTimeout<I> {
    /// Guards `inner`'s writes with `timeout`.
    pub fn new(inner: I, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stall: None,
            stalled: false,
        }
    }

    /// Passes a write's outcome on; a pending write starts (or keeps counting) the stall, which
    /// becomes an error when it lasts for the timeout.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if written.is_ready() {
            self.stalled = false;
            return written;
        }
        let timeout = self.timeout;
        let stall = match (&mut self.stall, self.stalled) {
            (Some(stall), true) => stall,
            (Some(stall), false) => {
                stall.as_mut().reset(Instant::now() + timeout);
                stall
            }
            (stall @ None, _) => stall.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        self.stalled = true;
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = false;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the endpoint read nothing for {:?}", self.timeout),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: Read + Unpin> Read for SendTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for SendTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<I: Connection> Connection for SendTimeout<I> {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A connected pair: the guarded client side, and the server side.
    async fn pair(timeout: Duration) -> (TokioIo<SendTimeout<TokioIo<TcpStream>>>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let client = SendTimeout::new(TokioIo::new(client.expect("connect")), timeout);
        (TokioIo::new(client), server.expect("accept").0)
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_times_out() {
        let (mut client, _server) = pair(Duration::from_millis(200)).await;
        let chunk = vec![0u8; 64 * 1024];
        let error = loop {
            let written = tokio::time::timeout(Duration::from_secs(30), client.write(&chunk))
                .await
                .expect("the write fails before the test gives up");
            if let Err(error) = written {
                break error;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (mut client, mut server) = pair(Duration::from_millis(300)).await;
        let total = 4 * 1024 * 1024;
        let reader = tokio::spawn(async move {
            let mut buffer = vec![0u8; 256 * 1024];
            let mut read = 0;
            while read < total {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match server.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
            read
        });
        let body = vec![1u8; total];
        client
            .write_all(&body)
            .await
            .expect("every write progresses in time");
        client.flush().await.expect("flush");
        assert_eq!(reader.await.expect("reader"), total);
    }
}
