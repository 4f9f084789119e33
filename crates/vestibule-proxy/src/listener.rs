//! Accepting connections and serving HTTP/1.1 and HTTP/2 on them, in clear or over TLS.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use vestibule_tls::{Certificate, crypto_provider};

use crate::forward::{Origin, Scheme};
use crate::handler::{Handler, UpstreamClient};
use crate::plane::DataPlane;
use crate::tls::SniResolver;

/// How long an upstream connection attempt may take before the request is answered 504.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
}

/// The traffic listeners: live configuration, upstream pools, settings and TLS.
pub struct Proxy {
    handler: Arc<Handler>,
    acceptor: TlsAcceptor,
    tls_handshake_timeout: Duration,
    connections: Mutex<Option<GracefulShutdown>>,
}

impl Proxy {
    /// A proxy serving `plane`'s configuration. `fallback` is the certificate for TLS server
    /// names nothing else covers when no default certificate is configured.
    pub fn new(
        plane: Arc<DataPlane>,
        settings: ProxySettings,
        fallback: Arc<Certificate>,
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
                client: upstream_client(),
                settings,
            }),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            connections: Mutex::new(Some(GracefulShutdown::new())),
        })
    }

    /// Asks every open connection to finish (HTTP/1.1 after its current request, HTTP/2 with
    /// GOAWAY) and waits up to `timeout` for them to close. Returns whether all closed in time.
    /// Stop the listeners first: connections accepted afterwards are not waited for.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match connections {
            Some(connections) => tokio::time::timeout(timeout, connections.shutdown())
                .await
                .is_ok(),
            None => true,
        }
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
        let builder = auto::Builder::new(TokioExecutor::new());
        accept_loop(listener, |stream, peer| {
            let origin = Origin {
                peer,
                port,
                scheme: Scheme::Http,
                sni: None,
            };
            let handler = handler.clone();
            let service = move |request| {
                let (handler, origin) = (handler.clone(), origin.clone());
                async move { Ok::<_, Infallible>(handler.handle(request, &origin).await) }
            };
            serve_connection(builder.clone(), stream, service, self.watcher())
        })
        .await;
    }

    /// Serves HTTPS (TLS 1.2 and 1.3; ALPN `h2` and `http/1.1`) on `listener`, until the task
    /// is dropped. A client that does not finish its handshake in time is disconnected.
    pub async fn serve_https(&self, listener: TcpListener) {
        let port = local_port(&listener);
        let handler = self.handler.clone();
        let acceptor = self.acceptor.clone();
        let timeout = self.tls_handshake_timeout;
        let builder = auto::Builder::new(TokioExecutor::new());
        accept_loop(listener, |stream, peer| {
            let (handler, acceptor, builder) = (handler.clone(), acceptor.clone(), builder.clone());
            let watcher = self.watcher();
            async move {
                let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let sni = stream.get_ref().1.server_name().map(Arc::from);
                let origin = Origin {
                    peer,
                    port,
                    scheme: Scheme::Https,
                    sni,
                };
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

fn upstream_client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(UPSTREAM_CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Accepts connections forever, handing each to `handle` on its own task. Accept errors (such
/// as running out of file descriptors) are logged and retried.
pub(crate) async fn accept_loop<H, F>(listener: TcpListener, handle: H)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
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
        tokio::spawn(handle(stream, peer));
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
