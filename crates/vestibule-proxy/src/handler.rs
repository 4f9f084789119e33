//! One request: check it, route it, pick an endpoint, forward it, stream the answer back.

use std::sync::Arc;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, LOCATION, SET_COOKIE, STRICT_TRANSPORT_SECURITY,
};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use vestibule_routing::{
    BackendProtocol, BodyLimit, Limits, RoutePolicy, Selected, normalize_path,
    normalize_request_host,
};

use crate::access_log::{AccessRecord, RequestHead};
use crate::basic_auth::Authenticator;
use crate::body::UpstreamBody;
use crate::clients::UpstreamClients;
use crate::connector::for_backend;
use crate::error::{Fault, ProxyError, TimeoutPhase};
use crate::external_auth;
use crate::forward::{
    Origin, Scheme, TraceContext, X_REQUEST_ID, add_forwarding_headers, propagate_trace,
    requested_upgrade, strip_hop_by_hop,
};
use crate::grpc;
use crate::listener::ProxySettings;
use crate::metrics::RouteLabels;
use crate::observe::{ObservedBody, Observers, Pending};
use crate::plane::{DataPlane, RouteTarget};
use crate::policy::{self, RequestFacts, add_cors_headers};
use crate::rate_limit::{self, Permit};
use crate::response::{ResponseBody, local, stamp};
use crate::rewrite;
use crate::selection::{RequestKeys, Strategy};
use crate::tls::misdirected;
use crate::tunnels::{OpenTunnel, Tunnels};
use crate::upstream::{Pick, Upstream};
use crate::upstream_client::UpstreamClient;

/// Requests under this path are never redirected to HTTPS, so ACME HTTP-01 challenges (as
/// cert-manager solves them) keep working.
const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// How many endpoints a request may be tried on unless its route says otherwise.
const DEFAULT_TRIES: usize = 2;

/// The path prefix a route's backend is published under (`x-forwarded-prefix`).
static X_FORWARDED_PREFIX: http::HeaderName = http::HeaderName::from_static("x-forwarded-prefix");

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

    async fn proxy(
        &self,
        mut request: Request<Incoming>,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if let Some(reason) = origin.framing.refusal() {
            return Err(ProxyError::Ambiguous(reason));
        }
        let host = request_host(&request)?;
        let host_text = host.to_str().unwrap_or_default();
        let uri = request.uri().clone();
        let path = normalize_path(uri.path())?;
        if let Some(sni) = &origin.sni
            && misdirected(&self.plane, sni, host_text)
        {
            return Err(ProxyError::Misdirected {
                host: host_text.to_owned(),
                sni: sni.to_string(),
            });
        }
        let (target, rewritten, rule_path) = {
            let table = self.plane.table();
            let selected = table.route(host_text, &path).ok_or(ProxyError::NoRoute)?;
            let rewritten = rewrite::rewritten_path(&selected, &path);
            (selected.target().clone(), rewritten, rule_path(&selected))
        };
        let (upstream, labels) = target.choose(request.headers());
        let upstream = upstream.clone();
        exchange.route = Some(labels.clone());
        let policy = &target.route.policy;
        let protocol = policy.protocol.for_request(origin.scheme == Scheme::Https);
        exchange.grpc = protocol.is_grpc() && grpc::is_call(request.headers());
        if let Some(denied) = &policy.denied {
            return Err(ProxyError::RouteDenied(denied.clone()));
        }
        let facts = RequestFacts {
            scheme: origin.scheme,
            host: &normalize_request_host(host_text),
            request_uri: request
                .uri()
                .path_and_query()
                .map_or("/", PathAndQuery::as_str),
            path: &path,
            http_host: host_text,
        };
        if let Some(response) = policy::redirect(policy, &facts) {
            return Ok(response);
        }
        let keys = RequestKeys {
            facts: &facts,
            headers: request.headers(),
            client: origin.peer.ip(),
        };
        let strategy = Strategy::new(&policy.balancing, &keys);
        let path_and_query = rewrite::normalized_target(&uri, &path)?;
        if origin.scheme == Scheme::Http
            && target.route.https_redirect
            && !path_and_query.path().starts_with(ACME_CHALLENGE_PATH)
        {
            return Ok(self.redirect_to_https(host_text, &path_and_query));
        }
        exchange.permit = rate_limit::admit(&target, origin.peer.ip()).map_err(|limited| {
            self.observers.metrics.limited(&target.labels, limited);
            ProxyError::RateLimited(limited)
        })?;
        if let Some(source) = &policy.source
            && !source.permits(origin.peer.ip())
        {
            return Err(ProxyError::Forbidden);
        }
        if let Some(response) = policy::preflight(policy, request.method(), request.headers()) {
            return Ok(response);
        }
        if let Some(auth) = &policy.basic_auth
            && !self.authenticator.admits(auth, request.headers()).await
        {
            return Err(ProxyError::Unauthorized {
                realm: auth.realm.clone(),
            });
        }
        let max_body_bytes = policy
            .limits
            .max_body
            .map_or(self.settings.max_body_bytes, BodyLimit::bytes);
        if let Some(limit) = max_body_bytes
            && declared_length(request.headers()).is_some_and(|length| length > limit)
        {
            tokio::spawn(discard(request.into_body()));
            return Err(crate::body::BodyTooLarge { limit }.into());
        }
        let admitted = match &policy.external_auth {
            Some(auth) => {
                let read_timeout = self.settings.upstream_read_timeout;
                let checked = external_auth::check(
                    &self.clients,
                    read_timeout,
                    auth,
                    &facts,
                    &request,
                    origin,
                );
                Some(checked.await?)
            }
            None => None,
        };

        let upgrade = match request.version() {
            Version::HTTP_11 => requested_upgrade(request.headers()),
            _ => None,
        };
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let retryable = body.is_end_stream();
        let trailers = protocol.is_grpc() && grpc::accepts_trailers(&parts.headers);
        strip_hop_by_hop(&mut parts.headers, upgrade);
        if trailers {
            grpc::ask_for_trailers(&mut parts.headers);
        }
        add_forwarding_headers(&mut parts.headers, &host, origin);
        apply_upstream_headers(policy, &mut parts.headers);
        if let Some(admitted) = &admitted {
            admitted.apply_to_request(&mut parts.headers);
        }
        exchange.trace = Some(propagate_trace(&mut parts.headers));
        exchange.request_id = parts.headers.get(&X_REQUEST_ID).cloned();
        let counted = (!retryable).then(|| Arc::new(AtomicU64::new(0)));
        exchange.bytes_in.clone_from(&counted);
        let body = UpstreamBody::limited(body, max_body_bytes, counted);

        let route_key = client_upgrade
            .is_some()
            .then(|| (host_text.to_owned(), path_and_query.path().to_owned()));
        let upstream_target = rewrite::upstream_target(rewritten, &path_and_query)?;
        let asked = Instant::now();
        let destination = Destination {
            upstream: &upstream,
            protocol,
            limits: &policy.limits,
            strategy: &strategy,
        };
        let forwarded = self.forward(destination, &parts, upstream_target, body, retryable);
        let (mut response, endpoint) = for_backend(upstream.id().clone(), forwarded).await?;
        exchange.upstream_time = Some(asked.elapsed().as_secs_f64());
        exchange.upstream_status = Some(response.status().as_u16());
        exchange.upstream_addr = Some(endpoint.clone());
        let session_cookie = strategy.set_cookie(
            &endpoint,
            rule_path.as_deref().unwrap_or("/"),
            origin.scheme == Scheme::Https,
        );

        let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (Some(client_upgrade), Some(route_key), true) = (client_upgrade, route_key, upgraded)
        {
            let tunnel = Tunnel {
                plane: self.plane.clone(),
                upstream: upstream.clone(),
                route_key,
                endpoint,
                _permit: exchange.permit.take(),
                _open: self.tunnels.open(),
            };
            let backend_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, backend_upgrade) {
                    Ok((client, server)) => tunnel.run(client, server).await,
                    Err(error) => {
                        tracing::debug!(backend = %tunnel.upstream.id(), %error, "upgrade failed")
                    }
                }
            });
        }
        let headers = response.headers_mut();
        let response_upgrade = upgraded
            .then(|| headers.get(http::header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(headers, response_upgrade);
        stamp(headers);
        if let Some(cors) = &policy.cors {
            add_cors_headers(cors, &parts.headers, headers);
        }
        if let Some(cookie) = session_cookie {
            headers.append(SET_COOKIE, cookie);
        }
        if origin.scheme == Scheme::Https
            && target.route.tls
            && let Some(hsts) = &self.settings.hsts
        {
            headers
                .entry(STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        if let Some(admitted) = &admitted {
            admitted.apply_to_response(response.status(), response.headers_mut());
        }
        Ok(response.map(Either::Left))
    }

    /// Sends the request to an endpoint of `upstream`, the target's backend or its canary. A
    /// request without a body is retried on another endpoint when the connection failed, or, for
    /// idempotent methods, when the endpoint failed before answering: up to the route's
    /// `proxy-next-upstream-tries` attempts in all (two by default; zero means once per
    /// endpoint).
    async fn forward(
        &self,
        destination: Destination<'_>,
        parts: &Parts,
        path_and_query: PathAndQuery,
        body: UpstreamBody,
        retryable: bool,
    ) -> Result<(Response<Incoming>, Authority), ProxyError> {
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
            let attempt = self.attempt(&client, read_timeout, &pick, parts, &path_and_query, sent);
            let error = match attempt.await {
                Ok(response) => {
                    pick.succeeded();
                    return Ok((response, pick.authority().clone()));
                }
                Err(error) => error,
            };
            let retry = retryable && (error.before_sending() || idempotent(&parts.method));
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

    async fn attempt(
        &self,
        client: &UpstreamClient,
        read_timeout: Duration,
        pick: &Pick,
        parts: &Parts,
        path_and_query: &PathAndQuery,
        body: UpstreamBody,
    ) -> Result<Response<Incoming>, Attempt> {
        let uri = Uri::builder()
            .scheme(client.scheme())
            .authority(pick.authority().clone())
            .path_and_query(path_and_query.clone())
            .build()
            .map_err(|error| Attempt::Invalid(error.into()))?;
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.version_mut() = client.version();
        *request.headers_mut() = parts.headers.clone();
        *request.uri_mut() = uri;
        let sent = client.request(request);
        match tokio::time::timeout(read_timeout, sent).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(Attempt::Failed(error)),
            Err(_) => Err(Attempt::TimedOut),
        }
    }

    /// A 308 to the same URL on HTTPS, as ingress-nginx's `ssl-redirect` answers.
    fn redirect_to_https(&self, host: &str, target: &PathAndQuery) -> Response<ResponseBody> {
        let name = vestibule_routing::normalize_request_host(host);
        let port = match self.settings.https_redirect_port {
            443 => String::new(),
            port => format!(":{port}"),
        };
        let mut response = local(StatusCode::PERMANENT_REDIRECT);
        if let Ok(location) = HeaderValue::try_from(format!("https://{name}{port}{target}")) {
            response.headers_mut().insert(LOCATION, location);
        }
        response
    }
}

/// The host a request is for: the URI's authority (HTTP/2, absolute-form) or its `Host`. More
/// than one `Host`, or a `Host` that disagrees with the authority, is ambiguous.
fn request_host(request: &Request<Incoming>) -> Result<HeaderValue, ProxyError> {
    let mut hosts = request.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::Ambiguous("more than one Host header"));
    }
    if let Some(authority) = request.uri().authority() {
        if host.is_some_and(|host| {
            !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes())
        }) {
            return Err(ProxyError::Ambiguous(
                "the request target's authority differs from Host",
            ));
        }
        return HeaderValue::from_str(authority.as_str()).map_err(|_| ProxyError::MissingHost);
    }
    match host {
        Some(host) => Ok(host.clone()),
        None if request.version() <= Version::HTTP_10 => Ok(HeaderValue::from_static("")),
        None => Err(ProxyError::MissingHost),
    }
}

/// Reads and drops a refused request body, bounded in size and time, so that the client gets
/// to read the answer instead of a connection reset (nginx's "lingering close"). Past the
/// bounds the body is dropped and the connection closes.
pub(crate) async fn discard(mut body: Incoming) {
    const MOST: u64 = 64 * 1024 * 1024;
    const LONGEST: std::time::Duration = std::time::Duration::from_secs(5);
    let drained = async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |data| data.len() as u64);
            if read > MOST {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LONGEST, drained).await;
}

/// The path of the rule a request matched, for a route with session affinity: its session
/// cookie's default `Path`.
fn rule_path(selected: &Selected<'_, Arc<RouteTarget>>) -> Option<String> {
    let target = selected.target();
    target.route.policy.balancing.affinity.as_ref()?;
    Some(match selected {
        Selected::Rule(rule) => rule.path.as_str().to_owned(),
        Selected::DefaultBackend(_) => "/".to_owned(),
    })
}

/// The body length a request declares, if it declares exactly one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// Add the headers a route's policy sets on requests to its backend.
fn apply_upstream_headers(policy: &RoutePolicy, headers: &mut HeaderMap) {
    if let Some(host) = policy
        .upstream_host
        .as_deref()
        .and_then(|host| HeaderValue::from_str(host).ok())
    {
        headers.insert(HOST, host);
    }
    if let Some(prefix) = policy
        .forwarded_prefix
        .as_deref()
        .and_then(|prefix| HeaderValue::from_str(prefix).ok())
    {
        headers.insert(&X_FORWARDED_PREFIX, prefix);
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// An upgraded connection (WebSocket and the like) between a client and an endpoint. It
/// survives configuration changes, and ends when its route or its endpoint is removed.
struct Tunnel {
    plane: Arc<DataPlane>,
    upstream: Arc<Upstream>,
    route_key: (String, String),
    endpoint: Authority,
    /// Keeps the connection counted by its route's `limit-connections` while it lasts.
    _permit: Option<Permit>,
    /// Keeps the connection counted for the drain while it lasts.
    _open: OpenTunnel,
}

impl Tunnel {
    async fn run(&self, client: hyper::upgrade::Upgraded, server: hyper::upgrade::Upgraded) {
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        let mut changes = self.plane.changes();
        let removed = async {
            while changes.changed().await.is_ok() {
                if !self.still_routed() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        let backend = self.upstream.id();
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                if let Err(error) = copied {
                    tracing::debug!(%backend, %error, "upgraded connection ended");
                }
            }
            () = removed => {
                tracing::info!(%backend, endpoint = %self.endpoint, "closing an upgraded connection: its route or endpoint was removed");
            }
        }
    }

    /// Whether the request that opened the tunnel could still reach the same upstream (the
    /// route's own or its canary's), and its endpoint is still part of it.
    fn still_routed(&self) -> bool {
        let table = self.plane.table();
        let same_route = table
            .route(&self.route_key.0, &self.route_key.1)
            .is_some_and(|selected| selected.target().leads_to(&self.upstream));
        same_route && self.upstream.serves(&self.endpoint)
    }
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

    fn classify(
        self,
        backend: &Arc<vestibule_routing::BackendId>,
        endpoint: &http::uri::Authority,
    ) -> ProxyError {
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
