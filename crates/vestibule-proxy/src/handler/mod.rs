//! One request: check it, route it, pick an endpoint, forward it, stream the answer back.
//!
//! [`Handler::proxy`] runs the stages in order, each in its own module: selecting the route
//! (`route`), admitting the request (`admission`), preparing the request its backend receives
//! (`upstream_request`), forwarding it with retries (`forwarding`) and finishing the response
//! the client receives (`finish`), which hands an upgraded connection to a `tunnel`.

mod admission;
mod finish;
mod forwarding;
mod route;
mod tunnel;
mod upstream_request;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::header::CONNECTION;
use http::uri::Authority;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use crate::access_log::{AccessRecord, RequestHead};
use crate::basic_auth::Authenticator;
use crate::clients::UpstreamClients;
use crate::error::{Fault, ProxyError};
use crate::forward::{Origin, TraceContext};
use crate::grpc;
use crate::listener::ProxySettings;
use crate::metrics::RouteLabels;
use crate::observe::{ObservedBody, Observers, Pending};
use crate::plane::DataPlane;
use crate::rate_limit::Permit;
use crate::response::{ResponseBody, local};
use crate::tunnels::Tunnels;
pub(crate) use admission::discard;
use route::Address;

/// What every request on one listener shares.
pub(crate) struct Handler {
    pub plane: Arc<DataPlane>,
    pub clients: UpstreamClients,
    pub authenticator: Authenticator,
    pub settings: ProxySettings,
    pub observers: Observers,
    /// Upgraded and passthrough connections, which a drain waits for.
    pub tunnels: Tunnels,
}

/// What proxying one request learned, for the metrics and the access log.
#[derive(Default)]
struct Exchange {
    route: Option<Arc<RouteLabels>>,
    upstream_addr: Option<Authority>,
    upstream_status: Option<u16>,
    upstream_time: Option<f64>,
    request_id: Option<HeaderValue>,
    trace: Option<TraceContext>,
    bytes_in: Option<Arc<AtomicU64>>,
    /// A gRPC call to a gRPC backend: the proxy's own failures are answered in gRPC.
    grpc: bool,
    permit: Option<Permit>,
}

impl Handler {
    /// Answers one request, and reports it to the metrics and access log when its response
    /// body has been sent.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Response<ObservedBody> {
        let started = Instant::now();
        let head = RequestHead::capture(&request, self.observers.describe_requests());
        let mut exchange = Exchange::default();
        let response = self.answer(request, origin, &mut exchange).await;
        let status = response.status().as_u16();
        let pending = Box::new(Pending {
            observers: self.observers.clone(),
            started,
            bytes_in: exchange.bytes_in,
            _permit: exchange.permit,
            record: AccessRecord {
                client: origin.peer,
                head,
                status,
                bytes_in: 0,
                bytes_out: 0,
                duration: 0.0,
                route: exchange.route.unwrap_or_else(RouteLabels::unrouted),
                upstream_addr: exchange.upstream_addr,
                upstream_status: exchange.upstream_status,
                upstream_time: exchange.upstream_time,
                request_id: exchange.request_id,
                trace: exchange.trace,
                tls_version: origin.tls_version,
            },
            scheme: origin.scheme,
        });
        response.map(|body| ObservedBody::new(body, pending))
    }

    /// The backend's response, or our own when proxying failed.
    async fn answer(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Response<ResponseBody> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        match self.proxy(request, origin, exchange).await {
            Ok(response) => response,
            Err(error) => {
                match error.fault() {
                    Fault::Client => tracing::debug!(%method, %uri, %error, "request refused"),
                    Fault::Configuration | Fault::Upstream => {
                        tracing::warn!(%method, %uri, %error, status = error.status().as_u16(), "request failed")
                    }
                }
                let mut response = if exchange.grpc {
                    grpc::failure(error.status())
                } else {
                    local(error.status())
                };
                if let Some(challenge) = error.challenge() {
                    response
                        .headers_mut()
                        .insert(http::header::WWW_AUTHENTICATE, challenge);
                }
                if let Some(headers) = error.headers() {
                    response.headers_mut().extend(headers.clone());
                }
                if error.closes_connection() {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        }
    }

    /// Proxies one request through the stages in order. A stage may end it early: with an
    /// error, or with an answer of its own (a redirect, a CORS preflight).
    async fn proxy(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if let Some(reason) = origin.framing.refusal() {
            return Err(ProxyError::Ambiguous(reason));
        }
        let address = Address::of(&request)?;
        let (route, rewritten) =
            self.select_route(&address, request.headers(), origin, exchange)?;
        let (request, cleared) = match self.admit(&route, request, origin, exchange).await? {
            ControlFlow::Continue(cleared) => cleared,
            ControlFlow::Break(response) => return Ok(response),
        };
        let (outgoing, body) =
            upstream_request::prepare(request, &route, rewritten, &cleared, origin, exchange)?;
        let answer = self
            .send(&route, &cleared, &outgoing, body, exchange)
            .await?;
        Ok(self.finish(answer, outgoing, &route, &cleared, origin, exchange))
    }
}
