//! The client that carries requests to endpoints, for one backend protocol: HTTP/1.1 in clear
//! or over TLS, or HTTP/2 (gRPC) in clear with prior knowledge or over TLS.
//!
//! Its connections are opened by a [`BackendConnector`]: TCP with the send timeout guarding
//! every write (see [`crate::send_timeout`]), then, for the TLS protocols, a handshake that must
//! finish within the connect timeout, as nginx's `proxy_connect_timeout` covers it too.
//!
//! Over HTTP/2, `:authority` names the endpoint, because the pool is keyed by the request URI;
//! the client's host still travels in `Host` (nginx puts it in `:authority` instead).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::Scheme;
use http::{Request, Uri, Version};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vestibule_routing::BackendProtocol;

use crate::backend_tls::BackendTls;
use crate::body::UpstreamBody;
use crate::clients::ClientKey;
use crate::connector::CountingConnector;
use crate::metrics::ProxyMetrics;
use crate::send_timeout::{SendTimeout, SendTimeoutConnector};

/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The error a connector's failure is reported with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A keep-alive client to endpoints for one protocol, pooling connections per endpoint.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    client: Client<CountingConnector, UpstreamBody>,
    protocol: BackendProtocol,
}

impl UpstreamClient {
    /// A client for `protocol` that connects (and completes any TLS handshake) within
    /// `connect_timeout`, and whose connections fail a write stalled for `send_timeout` and are
    /// counted in `metrics`.
    pub fn new(
        (protocol, connect_timeout, send_timeout): ClientKey,
        tls: &BackendTls,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let connector = BackendConnector {
            tcp: SendTimeoutConnector::new(http, send_timeout),
            tls: tls.connector(protocol),
            handshake_timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .http2_only(protocol.is_grpc())
            .build(CountingConnector::new(connector, metrics));
        Self { client, protocol }
    }

    /// The scheme of request URIs to endpoints (and of HTTP/2's `:scheme`).
    pub fn scheme(&self) -> Scheme {
        if self.protocol.is_tls() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// The HTTP version requests to endpoints are sent with.
    pub fn version(&self) -> Version {
        if self.protocol.is_grpc() {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        }
    }

    /// Sends `request`, whose URI names the endpoint with [`Self::scheme`].
    pub fn request(&self, request: Request<UpstreamBody>) -> ResponseFuture {
        self.client.request(request)
    }
}

/// Opens connections to endpoints: TCP with guarded writes, then TLS when the protocol asks.
#[derive(Clone)]
pub(crate) struct BackendConnector {
    tcp: SendTimeoutConnector,
    tls: Option<TlsConnector>,
    handshake_timeout: Duration,
}

impl tower_service::Service<Uri> for BackendConnector {
    type Response = BackendStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<BackendStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let name = server_name(&uri);
        let connecting = self.tcp.call(uri);
        let tls = self.tls.clone();
        let timeout = self.handshake_timeout;
        Box::pin(async move {
            let tcp = connecting.await?;
            let Some(tls) = tls else {
                return Ok(BackendStream::Plain(tcp));
            };
            let handshake = tls.connect(name?, TokioIo::new(tcp));
            match tokio::time::timeout(timeout, handshake).await {
                Ok(stream) => Ok(BackendStream::Tls(Box::new(TokioIo::new(stream?)))),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the TLS handshake took longer than {timeout:?}"),
                )
                .into()),
            }
        })
    }
}

/// The name the endpoint is known by in the handshake (never sent: SNI is off).
fn server_name(uri: &Uri) -> Result<ServerName<'static>, BoxError> {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => Ok(ServerName::try_from(host.to_owned())?),
    }
}

/// A TCP connection whose writes time out when they stall.
type GuardedTcp = SendTimeout<TokioIo<TcpStream>>;

/// A connection to an endpoint, in clear or over TLS.
#[derive(Debug)]
pub(crate) enum BackendStream {
    /// In clear.
    Plain(GuardedTcp),
    /// Over TLS.
    Tls(Box<TokioIo<TlsStream<TokioIo<GuardedTcp>>>>),
}

impl Read for BackendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl Write for BackendStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }
}

impl Connection for BackendStream {
    fn connected(&self) -> Connected {
        match self {
            Self::Plain(io) => io.connected(),
            Self::Tls(io) => {
                let (tcp, session) = io.inner().get_ref();
                let connected = tcp.inner().connected();
                if session.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}
