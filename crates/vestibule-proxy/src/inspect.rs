//! Client connections whose incoming bytes are shown to an [`Inspector`] as they are read.
//!
//! The framing watch (`framing.rs`) and the HTTP/2 flood guard (`h2_flood.rs`) both follow the
//! raw bytes a client sends without changing a byte. [`Inspected`] does the reading for them and
//! passes every write straight through, so each only says what it makes of the bytes. The
//! inspector is a type parameter: nothing is boxed and no call is dynamic.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Follows the bytes a client sends on one connection.
pub(crate) trait Inspector {
    /// Whether the bytes are still of interest; reads are passed on unseen while it is false.
    fn inspecting(&self) -> bool;

    /// Follows `bytes`, the next bytes read from the client (empty at end of stream). An error
    /// fails the read that returned them.
    fn inspect(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// An I/O stream whose reads are shown to the inspector `N`; writes go straight to `inner`.
pub(crate) struct Inspected<I, N> {
    inner: I,
    inspector: N,
}

impl<I, N> Inspected<I, N> {
    /// Shows what is read from `inner` to `inspector`.
    pub fn new(inner: I, inspector: N) -> Self {
        Self { inner, inspector }
    }
}

impl<I: AsyncRead + Unpin, N: Inspector + Unpin> AsyncRead for Inspected<I, N> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && this.inspector.inspecting()
            && let Err(error) = this.inspector.inspect(&buf.filled()[before..])
        {
            return Poll::Ready(Err(error));
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin, N: Unpin> AsyncWrite for Inspected<I, N> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Records what it is shown until it has `limit` bytes; fails on a `!`.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<u8>,
        calls: usize,
        limit: usize,
    }

    impl Inspector for Recorder {
        fn inspecting(&self) -> bool {
            self.seen.len() < self.limit
        }

        fn inspect(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.calls += 1;
            self.seen.extend_from_slice(bytes);
            if bytes.contains(&b'!') {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a bang"));
            }
            Ok(())
        }
    }

    fn recorder(limit: usize) -> Recorder {
        Recorder {
            limit,
            ..Recorder::default()
        }
    }

    #[tokio::test]
    async fn reads_are_shown_unchanged_until_the_inspector_loses_interest() {
        let mut stream = Inspected::new(&b"GET / HTTP/1.1\r\n\r\n"[..], recorder(usize::MAX));
        let mut read = Vec::new();
        let mut chunk = [0u8; 4];
        loop {
            let count = stream.read(&mut chunk).await.expect("read");
            if count == 0 {
                break;
            }
            read.extend_from_slice(&chunk[..count]);
        }
        assert_eq!(read, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(stream.inspector.seen, read, "every byte read, in order");
        assert_eq!(
            stream.inspector.calls, 6,
            "five reads and the end of stream"
        );

        let mut stream = Inspected::new(&b"0123456789"[..], recorder(4));
        let mut read = Vec::new();
        let mut chunk = [0u8; 3];
        loop {
            let count = stream.read(&mut chunk).await.expect("read");
            if count == 0 {
                break;
            }
            read.extend_from_slice(&chunk[..count]);
        }
        assert_eq!(read, b"0123456789", "reads go on after the inspector stops");
        assert_eq!(stream.inspector.seen, b"012345");
        assert_eq!(stream.inspector.calls, 2);
    }

    #[tokio::test]
    async fn an_inspector_error_fails_the_read() {
        let mut stream = Inspected::new(&b"ab!cd"[..], recorder(usize::MAX));
        let mut chunk = [0u8; 2];
        assert_eq!(stream.read(&mut chunk).await.expect("read"), 2);
        let error = stream.read(&mut chunk).await.expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn writes_pass_through_uninspected() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = Inspected::new(near, recorder(usize::MAX));
        stream
            .write_all(b"HTTP/1.1 200 OK\r\n")
            .await
            .expect("written");
        stream.flush().await.expect("flushed");
        stream.shutdown().await.expect("shut down");
        let mut received = Vec::new();
        far.read_to_end(&mut received).await.expect("read");
        assert_eq!(received, b"HTTP/1.1 200 OK\r\n");
        assert!(stream.inspector.seen.is_empty());
        assert_eq!(stream.inspector.calls, 0);
    }
}
