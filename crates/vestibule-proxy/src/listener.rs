//! Accepting connections and serving HTTP/1.1 and cleartext HTTP/2 on them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::forward::Origin;
use crate::handler::Handler;
use crate::plane::DataPlane;

/// How long an upstream connection attempt may take before the request is answered 504.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle pooled upstream connection is kept.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves proxied traffic on `listener` until the task is dropped: HTTP/1.1 (with upgrades) and
/// HTTP/2 with prior knowledge, routed by the live configuration of `plane`.
pub async fn serve_http(listener: TcpListener, plane: Arc<DataPlane>) {
    let port = listener
        .local_addr()
        .map(|addr| addr.port())
        .unwrap_or_default();
    let handler = Arc::new(Handler {
        plane,
        client: upstream_client(),
    });
    accept_loop(listener, move |peer| {
        let handler = handler.clone();
        let origin = Origin {
            peer,
            port,
            proto: "http",
        };
        move |request: Request<Incoming>| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(request, origin).await) }
        }
    })
    .await;
}

fn upstream_client() -> Client<HttpConnector, Incoming> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(UPSTREAM_CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Accepts connections forever, serving each on its own task with the service `make(peer)`
/// returns. Accept errors (such as running out of file descriptors) are logged and retried.
pub(crate) async fn accept_loop<M, S, F, B>(listener: TcpListener, make: M)
where
    M: Fn(SocketAddr) -> S,
    S: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let builder = builder.clone();
        let service = service_fn(make(peer));
        tokio::spawn(async move {
            if let Err(error) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}
