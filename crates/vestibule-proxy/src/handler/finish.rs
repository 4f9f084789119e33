//! The last stage: the endpoint's response as the client receives it, and the tunnel of an
//! upgrade the endpoint agreed to.

use http::header::{SET_COOKIE, STRICT_TRANSPORT_SECURITY, UPGRADE};
use http::{Response, StatusCode};
use http_body_util::Either;

use super::admission::Cleared;
use super::forwarding::Answer;
use super::route::Routed;
use super::tunnel::Tunnel;
use super::upstream_request::Outgoing;
use super::{Exchange, Handler};
use crate::forward::{Origin, Scheme, strip_hop_by_hop};
use crate::policy::add_cors_headers;
use crate::response::{ResponseBody, stamp};

impl Handler {
    /// The response to the client from the endpoint's `answer`: an agreed upgrade handed to a
    /// [`Tunnel`], hop-by-hop headers stripped, the response stamped, and the CORS headers, the
    /// session cookie, HSTS and the external authentication's headers added.
    pub(super) fn finish(
        &self,
        answer: Answer,
        outgoing: Outgoing,
        route: &Routed<'_>,
        cleared: &Cleared<'_>,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Response<ResponseBody> {
        let Answer {
            mut response,
            endpoint,
        } = answer;
        let session_cookie = cleared.strategy.set_cookie(
            &endpoint,
            route.rule_path.as_deref().unwrap_or("/"),
            origin.scheme == Scheme::Https,
        );

        let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (Some(upgrade), true) = (outgoing.upgrade, upgraded) {
            let tunnel = Tunnel {
                plane: self.plane.clone(),
                upstream: route.upstream.clone(),
                route_key: upgrade.route_key,
                endpoint,
                _permit: exchange.permit.take(),
                _open: self.tunnels.open(),
            };
            let backend_upgrade = hyper::upgrade::on(&mut response);
            tunnel.spawn(upgrade.client, backend_upgrade);
        }
        let policy = &route.target.route.policy;
        let headers = response.headers_mut();
        let response_upgrade = upgraded.then(|| headers.get(UPGRADE).cloned()).flatten();
        strip_hop_by_hop(headers, response_upgrade);
        stamp(headers);
        if let Some(cors) = &policy.cors {
            add_cors_headers(cors, &outgoing.head.headers, headers);
        }
        if let Some(cookie) = session_cookie {
            headers.append(SET_COOKIE, cookie);
        }
        if origin.scheme == Scheme::Https
            && route.target.route.tls
            && let Some(hsts) = &self.settings.hsts
        {
            headers
                .entry(STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        if let Some(auth) = &cleared.auth {
            auth.apply_to_response(response.status(), response.headers_mut());
        }
        response.map(Either::Left)
    }
}
