//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in clear or over TLS.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use vestibule_tls::{Certificate, crypto_provider};

use crate::basic_auth::Authenticator;
use crate::clients::UpstreamClients;
use crate::forward::{ForwardedValues, Origin, Scheme};
use crate::framing::{FramingFlag, FramingWatch};
use crate::h2_flood::FloodGuard;
use crate::handler::Handler;
use crate::inspect::Inspected;
use crate::metrics::{HandshakeResult, ListenerKind};
use crate::observe::Observers;
use crate::passthrough;
use crate::plane::DataPlane;
use crate::tls::SniResolver;
use crate::tunnels::Tunnels;

/// How the traffic listeners behave.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// The port HTTPS redirects point at: the one clients reach, usually 443.
    pub https_redirect_port: u16,
    /// The `Strict-Transport-Security` value for HTTPS responses on TLS hosts; `None` turns
    /// HSTS off.
    pub hsts: Option<HeaderValue>,
    /// How long a client may take to complete a TLS handshake before it is disconnected.
    pub tls_handshake_timeout: Duration,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection is kept (slow clients are cut off).
    pub client_header_timeout: Duration,
    /// The largest request head (request line and headers) accepted; larger ones get 431.
    pub max_request_header_bytes: usize,
    /// The largest request body accepted (413 past it, checked while streaming); `None` for no
    /// limit.
    pub max_body_bytes: Option<u64>,
    /// How long connecting to an endpoint may take (504 past it; a refusal is 502).
    pub upstream_connect_timeout: Duration,
    /// How long an endpoint may take to start answering (504 past it).
    pub upstream_read_timeout: Duration,
    /// How long a write to an endpoint may make no progress (504 past it): the time allowed
    /// between two successive writes, as nginx's `proxy_send_timeout`.
    pub upstream_send_timeout: Duration,
    /// The most connections one listener holds open at once; more wait to be accepted.
    pub max_connections: usize,
    /// The most concurrent streams on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

/// How many reset streams an HTTP/2 client may leave for the server to accept before the
/// connection is closed (rapid-reset protection).
const HTTP2_MAX_PENDING_RESETS: usize = 20;

/// The traffic listeners: live configuration, upstream pools, settings and TLS.
pub struct Proxy {
    handler: Arc<Handler>,
    acceptor: TlsAcceptor,
    tls_handshake_timeout: Duration,
    connections: Mutex<Option<GracefulShutdown>>,
}

impl Proxy {
    /// A proxy serving `plane`'s configuration and reporting requests to `observers`.
    /// `fallback` is the certificate for TLS server names nothing else covers when no default
    /// certificate is configured.
    pub fn new(
        plane: Arc<DataPlane>,
        settings: ProxySettings,
        fallback: Arc<Certificate>,
        observers: Observers,
    ) -> Result<Self, rustls::Error> {
        let resolver = SniResolver {
            plane: plane.clone(),
            fallback,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            tls_handshake_timeout: settings.tls_handshake_timeout,
            handler: Arc::new(Handler {
                plane,
                clients: UpstreamClients::new(
                    settings.upstream_connect_timeout,
                    settings.upstream_send_timeout,
                    observers.metrics.clone(),
                )?,
                authenticator: Authenticator::default(),
                settings,
                observers,
                tunnels: Tunnels::default(),
            }),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            connections: Mutex::new(Some(GracefulShutdown::new())),
        })
    }

    /// Asks every open connection to finish (HTTP/1.1 after its current request, HTTP/2 with
    /// GOAWAY), then waits up to `timeout` for them, and for upgraded and passthrough
    /// connections, to close. Returns whether all closed in time.
    /// Stop the listeners first: connections accepted afterwards are not waited for.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let tunnels = &self.handler.tunnels;
        let all_closed = async {
            if let Some(connections) = connections {
                connections.shutdown().await;
            }
            if tunnels.count() > 0 {
                tracing::info!(
                    open = tunnels.count(),
                    "waiting for upgraded and passthrough connections"
                );
            }
            tunnels.all_closed().await;
        };
        tokio::time::timeout(timeout, all_closed).await.is_ok()
    }

    /// A handle that tracks connections for [`drain`](Self::drain).
    fn watcher(&self) -> Option<Watcher> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(GracefulShutdown::watcher)
    }

    /// Serves plain HTTP/1.1 (with upgrades) and HTTP/2 with prior knowledge on `listener`,
    /// until the task is dropped.
    pub async fn serve_http(&self, listener: TcpListener) {
        let port = local_port(&listener);
        let handler = self.handler.clone();
        let builder = server_builder(&handler.settings);
        let limit = handler.settings.max_connections;
        accept_loop(listener, limit, |stream, peer| {
            let open = handler.observers.metrics.connection(ListenerKind::Http);
            let framing = FramingFlag::default();
            let stream = Inspected::new(stream, FramingWatch::new(framing.clone()));
            let stream = Inspected::new(stream, FloodGuard::new(peer));
            let origin = Arc::new(Origin {
                peer,
                forwarded: ForwardedValues::new(peer.ip(), port),
                scheme: Scheme::Http,
                sni: None,
                framing,
                tls_version: None,
            });
            let handler = handler.clone();
            let service = move |request| {
                let (handler, origin) = (handler.clone(), origin.clone());
                async move { Ok::<_, Infallible>(handler.handle(request, &origin).await) }
            };
            let connection = serve_connection(builder.clone(), stream, service, self.watcher());
            async move {
                connection.await;
                drop(open);
            }
        })
        .await;
    }

    /// Serves HTTPS (TLS 1.2 and 1.3; ALPN `h2` and `http/1.1`) on `listener`, until the task
    /// is dropped. A client that does not finish its handshake in time is disconnected.
    /// Connections for passthrough hosts are relayed unterminated instead.
    pub async fn serve_https(&self, listener: TcpListener) {
        let port = local_port(&listener);
        let handler = self.handler.clone();
        let acceptor = self.acceptor.clone();
        let timeout = self.tls_handshake_timeout;
        let builder = server_builder(&handler.settings);
        let limit = handler.settings.max_connections;
        accept_loop(listener, limit, |stream, peer| {
            let (handler, acceptor, builder) = (handler.clone(), acceptor.clone(), builder.clone());
            let watcher = self.watcher();
            async move {
                let metrics = &handler.observers.metrics;
                let _open = metrics.connection(ListenerKind::Https);
                let deadline = tokio::time::Instant::now() + timeout;
                let Some(stream) = passthrough::intercept(&handler, stream, peer, deadline).await
                else {
                    return;
                };
                let stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        metrics.handshake(HandshakeResult::Failure);
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics.handshake(HandshakeResult::Failure);
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                metrics.handshake(HandshakeResult::Success);
                let tls_version = match stream.get_ref().1.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => Some("TLSv1.3"),
                    Some(rustls::ProtocolVersion::TLSv1_2) => Some("TLSv1.2"),
                    _ => None,
                };
                let sni = stream.get_ref().1.server_name().map(Arc::from);
                let framing = FramingFlag::default();
                let stream = Inspected::new(stream, FramingWatch::new(framing.clone()));
                let stream = Inspected::new(stream, FloodGuard::new(peer));
                let origin = Arc::new(Origin {
                    peer,
                    forwarded: ForwardedValues::new(peer.ip(), port),
                    scheme: Scheme::Https,
                    sni,
                    framing,
                    tls_version,
                });
                let service = move |request| {
                    let (handler, origin) = (handler.clone(), origin.clone());
                    async move { Ok::<_, Infallible>(handler.handle(request, &origin).await) }
                };
                serve_connection(builder, stream, service, watcher).await;
            }
        })
        .await;
    }
}

fn local_port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .map(|addr| addr.port())
        .unwrap_or_default()
}

/// The HTTP/1.1 and HTTP/2 server settings both traffic listeners use.
fn server_builder(settings: &ProxySettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.client_header_timeout)
        .max_buf_size(settings.max_request_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(settings.max_request_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(HTTP2_MAX_PENDING_RESETS);
    builder
}

/// Accepts connections forever, handing each to `handle` on its own task, with at most
/// `limit` open at once. Accept errors (such as running out of file descriptors) are logged and
/// retried.
pub(crate) async fn accept_loop<H, F>(listener: TcpListener, limit: usize, handle: H)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let open = Arc::new(Semaphore::new(limit.clamp(1, Semaphore::MAX_PERMITS)));
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        let connection = handle(stream, peer);
        tokio::spawn(async move {
            connection.await;
            drop(permit);
        });
    }
}

/// Serves HTTP/1.1 (with upgrades) or HTTP/2, whichever the client speaks, on one connection;
/// `watcher`, when given, lets a drain close the connection gracefully.
pub(crate) async fn serve_connection<I, S, F, B>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    watcher: Option<Watcher>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service_fn(service));
    let result = match watcher {
        Some(watcher) => watcher.watch(connection).await,
        None => connection.await,
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
