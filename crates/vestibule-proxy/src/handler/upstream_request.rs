//! The third stage: the request an admitted request becomes for its backend, with its headers
//! rewritten and its body limited.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http::header::HOST;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use vestibule_routing::RoutePolicy;

use super::Exchange;
use super::admission::Cleared;
use super::route::Routed;
use crate::body::UpstreamBody;
use crate::error::ProxyError;
use crate::forward::{
    Origin, X_FORWARDED_PREFIX, X_REQUEST_ID, add_forwarding_headers, propagate_trace,
    requested_upgrade, strip_hop_by_hop,
};
use crate::grpc;
use crate::rewrite;

/// The request as its backend receives it, apart from its body.
pub(super) struct Outgoing {
    /// The method and headers the backend receives.
    pub head: Parts,
    /// The request target the backend receives.
    pub target: PathAndQuery,
    /// Whether the request has no body, so that it may be sent again.
    pub retryable: bool,
    /// The upgrade the client asked for (HTTP/1.1 only), to tunnel if the backend agrees.
    pub upgrade: Option<ClientUpgrade>,
}

/// The client's side of an upgrade it asked for.
pub(super) struct ClientUpgrade {
    /// The client's connection, once the upgrade is answered.
    pub client: OnUpgrade,
    /// The host and path the request was routed by, to see whether the tunnel is still routed.
    pub route_key: (String, String),
}

/// Takes an admitted request apart into the request its backend receives and its body:
/// hop-by-hop headers stripped, gRPC trailers asked for, the forwarding headers, the route's
/// upstream headers and the external authentication's headers added, the trace context and
/// request id set (and recorded in `exchange`), and the body limited and counted.
/// `rewritten` is the path the route's rewrite sends instead of the normalised one.
pub(super) fn prepare(
    mut request: Request<Incoming>,
    route: &Routed<'_>,
    rewritten: Option<String>,
    cleared: &Cleared<'_>,
    origin: &Origin,
    exchange: &mut Exchange,
) -> Result<(Outgoing, UpstreamBody), ProxyError> {
    let upgrade = match request.version() {
        Version::HTTP_11 => requested_upgrade(request.headers()),
        _ => None,
    };
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
    let (mut head, body) = request.into_parts();
    let retryable = body.is_end_stream();
    let trailers = route.protocol.is_grpc() && grpc::accepts_trailers(&head.headers);
    strip_hop_by_hop(&mut head.headers, upgrade);
    if trailers {
        grpc::ask_for_trailers(&mut head.headers);
    }
    add_forwarding_headers(&mut head.headers, &route.address.host, origin);
    apply_upstream_headers(&route.target.route.policy, &mut head.headers);
    if let Some(auth) = &cleared.auth {
        auth.apply_to_request(&mut head.headers);
    }
    exchange.trace = Some(propagate_trace(&mut head.headers));
    exchange.request_id = head.headers.get(&X_REQUEST_ID).cloned();
    let counted = (!retryable).then(|| Arc::new(AtomicU64::new(0)));
    exchange.bytes_in.clone_from(&counted);
    let body = UpstreamBody::limited(body, cleared.max_body_bytes, counted);

    let client_upgrade = client_upgrade.map(|client| ClientUpgrade {
        client,
        route_key: (route.host.to_owned(), cleared.target.path().to_owned()),
    });
    let target = rewrite::upstream_target(rewritten, &cleared.target)?;
    let outgoing = Outgoing {
        head,
        target,
        retryable,
        upgrade: client_upgrade,
    };
    Ok((outgoing, body))
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
