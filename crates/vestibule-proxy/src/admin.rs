//! The admin listener: health and readiness, apart from the traffic ports.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use crate::debug_routes::routes_view;
use crate::listener::{accept_loop, serve_connection};
use crate::plane::DataPlane;

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

/// What the admin endpoints report on.
struct Admin {
    health: Arc<Health>,
    plane: Arc<DataPlane>,
    registry: Arc<Registry>,
}

/// Serves `/healthz` (the process is alive), `/readyz` (200 once ready), `/metrics`
/// (Prometheus metrics from `registry`) and `/debug/routes` (the live configuration of
/// `plane` as JSON) on `listener`.
pub async fn serve_admin(
    listener: TcpListener,
    health: Arc<Health>,
    plane: Arc<DataPlane>,
    registry: Arc<Registry>,
) {
    let admin = Arc::new(Admin {
        health,
        plane,
        registry,
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    accept_loop(listener, ADMIN_CONNECTIONS, move |stream, _peer| {
        let admin = admin.clone();
        let service = move |request: Request<Incoming>| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(admin.answer(&request)) }
        };
        serve_connection(builder.clone(), stream, service, None)
    })
    .await;
}

impl Admin {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match request.uri().path() {
            "/metrics" => {
                let mut text = String::new();
                match encode(&mut text, &self.registry) {
                    Ok(()) => (StatusCode::OK, OPENMETRICS, Bytes::from(text)),
                    Err(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        PLAIN,
                        Bytes::from_static(b"metrics could not be encoded\n"),
                    ),
                }
            }
            "/debug/routes" => (
                StatusCode::OK,
                "application/json",
                Bytes::from(routes_view(&self.plane).to_pretty_json()),
            ),
            "/healthz" => (StatusCode::OK, PLAIN, Bytes::from_static(b"ok\n")),
            "/readyz" if self.health.is_ready() => {
                (StatusCode::OK, PLAIN, Bytes::from_static(b"ok\n"))
            }
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                Bytes::from_static(b"not ready\n"),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                PLAIN,
                Bytes::from_static(b"not found\n"),
            ),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
