//! The fourth stage: sending the prepared request to an endpoint of its backend, and to
//! another one when the first fails and the request may be retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use vestibule_routing::{BackendId, BackendProtocol, Limits};

use super::admission::Cleared;
use super::route::Routed;
use super::upstream_request::Outgoing;
use super::{Exchange, Handler};
use crate::body::UpstreamBody;
use crate::connector::for_backend;
use crate::error::{ProxyError, TimeoutPhase};
use crate::selection::Strategy;
use crate::upstream::{Pick, Upstream};
use crate::upstream_client::UpstreamClient;

/// How many endpoints a request may be tried on unless its route says otherwise.
const DEFAULT_TRIES: usize = 2;

/// An endpoint's response to a forwarded request.
pub(super) struct Answer {
    /// The response as the endpoint sent it.
    pub response: Response<Incoming>,
    /// The endpoint that answered.
    pub endpoint: Authority,
}

impl Handler {
    /// Forwards the request to the upstream it was routed to, with its connections counted
    /// for that backend, and records in `exchange` which endpoint answered, with what status
    /// and how soon.
    pub(super) async fn send(
        &self,
        route: &Routed<'_>,
        cleared: &Cleared<'_>,
        outgoing: &Outgoing,
        body: UpstreamBody,
        exchange: &mut Exchange,
    ) -> Result<Answer, ProxyError> {
        let asked = Instant::now();
        let destination = Destination {
            upstream: &route.upstream,
            protocol: route.protocol,
            limits: &route.target.route.policy.limits,
            strategy: &cleared.strategy,
        };
        let forwarded = self.forward(destination, outgoing, body);
        let answer = for_backend(route.upstream.id().clone(), forwarded).await?;
        exchange.upstream_time = Some(asked.elapsed().as_secs_f64());
        exchange.upstream_status = Some(answer.response.status().as_u16());
        exchange.upstream_addr = Some(answer.endpoint.clone());
        Ok(answer)
    }

    /// Sends the request to an endpoint of `upstream`, the target's backend or its canary. A
    /// request without a body is retried on another endpoint when the connection failed, or, for
    /// idempotent methods, when the endpoint failed before answering: up to the route's
    /// `proxy-next-upstream-tries` attempts in all (two by default; zero means once per
    /// endpoint).
    async fn forward(
        &self,
        destination: Destination<'_>,
        outgoing: &Outgoing,
        body: UpstreamBody,
    ) -> Result<Answer, ProxyError> {
        let Destination {
            upstream,
            protocol,
            limits,
            strategy,
        } = destination;
        let backend = upstream.id();
        let client = self.clients.get(protocol, limits);
        let read_timeout = limits
            .read_timeout
            .unwrap_or(self.settings.upstream_read_timeout);
        let tries = match limits.upstream_tries {
            None => DEFAULT_TRIES,
            Some(0) => upstream.endpoint_health().len().max(1),
            Some(tries) => tries as usize,
        };
        let mut pick = upstream
            .pick_by(strategy)
            .ok_or_else(|| ProxyError::NoReadyEndpoint {
                backend: backend.clone(),
            })?;
        let mut body = Some(body);
        let mut tried = 1;
        loop {
            let sent = body.take().unwrap_or_else(UpstreamBody::empty);
            let attempt = self.attempt(&client, read_timeout, &pick, outgoing, sent);
            let error = match attempt.await {
                Ok(response) => {
                    pick.succeeded();
                    return Ok(Answer {
                        response,
                        endpoint: pick.authority().clone(),
                    });
                }
                Err(error) => error,
            };
            let retry =
                outgoing.retryable && (error.before_sending() || idempotent(&outgoing.head.method));
            let failed = error.classify(backend, pick.authority());
            if !matches!(failed, ProxyError::BodyTooLarge(_)) {
                pick.failed();
            }
            let next = (retry && tried < tries)
                .then(|| upstream.pick_other(&pick))
                .flatten();
            let Some(next) = next else {
                return Err(failed);
            };
            tracing::debug!(%backend, from = %pick.authority(), to = %next.authority(), %failed, "retrying on another endpoint");
            pick = next;
            tried += 1;
        }
    }

    /// Sends the request once, to the endpoint `pick`, and waits up to `read_timeout` for the
    /// response head.
    async fn attempt(
        &self,
        client: &UpstreamClient,
        read_timeout: Duration,
        pick: &Pick,
        outgoing: &Outgoing,
        body: UpstreamBody,
    ) -> Result<Response<Incoming>, Attempt> {
        let uri = Uri::builder()
            .scheme(client.scheme())
            .authority(pick.authority().clone())
            .path_and_query(outgoing.target.clone())
            .build()
            .map_err(|error| Attempt::Invalid(error.into()))?;
        let mut request = Request::new(body);
        *request.method_mut() = outgoing.head.method.clone();
        *request.version_mut() = client.version();
        *request.headers_mut() = outgoing.head.headers.clone();
        *request.uri_mut() = uri;
        let sent = client.request(request);
        match tokio::time::timeout(read_timeout, sent).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(Attempt::Failed(error)),
            Err(_) => Err(Attempt::TimedOut),
        }
    }
}

/// Whether a request with `method` may be sent again after an endpoint failed to answer it.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Where [`Handler::forward`] sends a request, and with which limits.
struct Destination<'a> {
    /// The target's backend or its canary.
    upstream: &'a Upstream,
    /// How the request is carried.
    protocol: BackendProtocol,
    /// The route's limits and timeouts.
    limits: &'a Limits,
    /// How the route picks endpoints.
    strategy: &'a Strategy<'a>,
}

/// Why one attempt to reach an endpoint failed.
#[derive(Debug)]
enum Attempt {
    /// The request could not be addressed to the endpoint.
    Invalid(ProxyError),
    /// Connecting, sending or reading the response head failed.
    Failed(hyper_util::client::legacy::Error),
    /// No response head within `--proxy-read-timeout`.
    TimedOut,
}

impl Attempt {
    /// Whether nothing reached the endpoint, so any request may be retried.
    fn before_sending(&self) -> bool {
        matches!(self, Self::Failed(error) if error.is_connect())
    }

    /// The error the request is answered with when this attempt on `endpoint` was its last.
    fn classify(self, backend: &Arc<BackendId>, endpoint: &Authority) -> ProxyError {
        match self {
            Self::Invalid(error) => error,
            Self::Failed(error) => ProxyError::upstream(backend, endpoint.clone(), &error),
            Self::TimedOut => ProxyError::UpstreamTimeout {
                backend: backend.clone(),
                endpoint: endpoint.clone(),
                phase: TimeoutPhase::Read,
            },
        }
    }
}
