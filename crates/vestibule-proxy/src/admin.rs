//! The admin listener: health and readiness, apart from the traffic ports.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

use crate::listener::{accept_loop, serve_connection};

/// The most connections the admin listener holds open at once.
const ADMIN_CONNECTIONS: usize = 64;

/// Whether the process is ready for traffic, as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the process ready (the first complete configuration is live) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the process is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Serves `/healthz` (the process is alive) and `/readyz` (200 once ready) on `listener`.
pub async fn serve_admin(listener: TcpListener, health: Arc<Health>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    accept_loop(listener, ADMIN_CONNECTIONS, move |stream, _peer| {
        let health = health.clone();
        let service = move |request: Request<Incoming>| {
            let health = health.clone();
            async move { Ok::<_, Infallible>(answer(&request, &health)) }
        };
        serve_connection(builder.clone(), stream, service, None)
    })
    .await;
}

fn answer(request: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    let (status, text) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, "ok\n"),
        "/readyz" if health.is_ready() => (StatusCode::OK, "ok\n"),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
