//! The first stage: the route a request selects, from its host and normalised path, and the
//! backend (or canary) it goes to.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, Uri, Version};
use hyper::body::Incoming;
use vestibule_routing::{BackendProtocol, Selected, normalize_path};

use super::{Exchange, Handler};
use crate::error::ProxyError;
use crate::forward::{Origin, Scheme};
use crate::grpc;
use crate::plane::RouteTarget;
use crate::rewrite;
use crate::tls::misdirected;
use crate::upstream::Upstream;

/// Where a request is addressed, read from it before it is taken apart.
pub(super) struct Address {
    /// The host the request is for, as [`request_host`] reads it.
    pub host: HeaderValue,
    /// The request's URI as the client sent it.
    pub uri: Uri,
}

impl Address {
    /// The address of `request`, or why its host is missing or ambiguous.
    pub(super) fn of(request: &Request<Incoming>) -> Result<Self, ProxyError> {
        let host = request_host(request)?;
        let uri = request.uri().clone();
        Ok(Self { host, uri })
    }
}

/// The route a request selected, and the upstream it goes to.
pub(super) struct Routed<'a> {
    /// Where the request is addressed.
    pub address: &'a Address,
    /// The request's host as text (empty when it is not visible ASCII).
    pub host: &'a str,
    /// The request's path, normalised.
    pub path: Cow<'a, str>,
    /// The matched route.
    pub target: Arc<RouteTarget>,
    /// The path of the matched rule, for a route with session affinity.
    pub rule_path: Option<String>,
    /// The route's backend or its canary, whichever the request goes to.
    pub upstream: Arc<Upstream>,
    /// How the request is carried to the backend.
    pub protocol: BackendProtocol,
}

impl Handler {
    /// Selects the route for a request addressed to `address` with `headers`, and records it
    /// in `exchange`. Also returns the path the route's rewrite sends upstream instead, if it
    /// rewrites, which preparing the upstream request consumes.
    pub(super) fn select_route<'a>(
        &self,
        address: &'a Address,
        headers: &HeaderMap,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Result<(Routed<'a>, Option<String>), ProxyError> {
        let host = address.host.to_str().unwrap_or_default();
        let path = normalize_path(address.uri.path())?;
        if let Some(sni) = &origin.sni
            && misdirected(&self.plane, sni, host)
        {
            return Err(ProxyError::Misdirected {
                host: host.to_owned(),
                sni: sni.to_string(),
            });
        }
        let (target, rewritten, rule_path) = {
            let table = self.plane.table();
            let selected = table.route(host, &path).ok_or(ProxyError::NoRoute)?;
            let rewritten = rewrite::rewritten_path(&selected, &path);
            (selected.target().clone(), rewritten, rule_path(&selected))
        };
        let (upstream, labels) = target.choose(headers);
        let upstream = upstream.clone();
        exchange.route = Some(labels.clone());
        let protocol = target
            .route
            .policy
            .protocol
            .for_request(origin.scheme == Scheme::Https);
        exchange.grpc = protocol.is_grpc() && grpc::is_call(headers);
        let routed = Routed {
            address,
            host,
            path,
            target,
            rule_path,
            upstream,
            protocol,
        };
        Ok((routed, rewritten))
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
