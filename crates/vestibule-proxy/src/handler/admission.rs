//! The second stage: whether a routed request may go on to its backend. The route's checks
//! run in a fixed order, and the first that refuses or answers the request ends it.

use std::ops::ControlFlow;

use http::header::{CONTENT_LENGTH, LOCATION};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use vestibule_routing::{BodyLimit, normalize_request_host};

use super::route::Routed;
use super::{Exchange, Handler};
use crate::body::BodyTooLarge;
use crate::error::ProxyError;
use crate::external_auth;
use crate::forward::{Origin, Scheme};
use crate::policy::{self, RequestFacts};
use crate::rate_limit;
use crate::response::{ResponseBody, local};
use crate::rewrite;
use crate::selection::{RequestKeys, Strategy};

/// Requests under this path are never redirected to HTTPS, so ACME HTTP-01 challenges (as
/// cert-manager solves them) keep working.
const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// What admitting a request decided, unless it refused the request: the request goes on to
/// its backend (`Continue`), or is answered here (`Break`) with a redirect or a CORS preflight.
pub(super) type Admission<'r> =
    ControlFlow<Response<ResponseBody>, (Request<Incoming>, Cleared<'r>)>;

/// What a request cleared for its backend takes on from admission.
pub(super) struct Cleared<'r> {
    /// The request target with its path normalised.
    pub target: PathAndQuery,
    /// How the request picks its endpoint.
    pub strategy: Strategy<'r>,
    /// The external authentication service's answer, when the route asks one.
    pub auth: Option<external_auth::Admitted>,
    /// The most body bytes the request may send, if limited.
    pub max_body_bytes: Option<u64>,
}

impl Handler {
    /// Runs the checks of the request's route, in order: denied routes, redirects, the
    /// redirect to HTTPS, the rate limit, source ranges, CORS preflight, basic
    /// authentication, the body size and external authentication.
    pub(super) async fn admit<'r>(
        &self,
        route: &'r Routed<'_>,
        request: Request<Incoming>,
        origin: &Origin,
        exchange: &mut Exchange,
    ) -> Result<Admission<'r>, ProxyError> {
        let target = &route.target;
        let policy = &target.route.policy;
        if let Some(denied) = &policy.denied {
            return Err(ProxyError::RouteDenied(denied.clone()));
        }
        let facts = RequestFacts {
            scheme: origin.scheme,
            host: &normalize_request_host(route.host),
            request_uri: request
                .uri()
                .path_and_query()
                .map_or("/", PathAndQuery::as_str),
            path: &route.path,
            http_host: route.host,
        };
        if let Some(response) = policy::redirect(policy, &facts) {
            return Ok(ControlFlow::Break(response));
        }
        let keys = RequestKeys {
            facts: &facts,
            headers: request.headers(),
            client: origin.peer.ip(),
        };
        let strategy = Strategy::new(&policy.balancing, &keys);
        let path_and_query = rewrite::normalized_target(&route.address.uri, &route.path)?;
        if origin.scheme == Scheme::Http
            && target.route.https_redirect
            && !path_and_query.path().starts_with(ACME_CHALLENGE_PATH)
        {
            let response = self.redirect_to_https(route.host, &path_and_query);
            return Ok(ControlFlow::Break(response));
        }
        exchange.permit = rate_limit::admit(target, origin.peer.ip()).map_err(|limited| {
            self.observers.metrics.limited(&target.labels, limited);
            ProxyError::RateLimited(limited)
        })?;
        if let Some(source) = &policy.source
            && !source.permits(origin.peer.ip())
        {
            return Err(ProxyError::Forbidden);
        }
        if let Some(response) = policy::preflight(policy, request.method(), request.headers()) {
            return Ok(ControlFlow::Break(response));
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
            return Err(BodyTooLarge { limit }.into());
        }
        let auth = match &policy.external_auth {
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
        let cleared = Cleared {
            target: path_and_query,
            strategy,
            auth,
            max_body_bytes,
        };
        Ok(ControlFlow::Continue((request, cleared)))
    }

    /// A 308 to the same URL on HTTPS, as ingress-nginx's `ssl-redirect` answers.
    fn redirect_to_https(&self, host: &str, target: &PathAndQuery) -> Response<ResponseBody> {
        let name = normalize_request_host(host);
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

/// The body length a request declares, if it declares exactly one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}
