//! A route's annotation policy applied to one request: answers given at the edge, and the
//! headers the policy adds.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, LOCATION,
    ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use vestibule_routing::{Cors, RequestValue, RoutePolicy};

use crate::forward::Scheme;
use crate::response::{ResponseBody, local};

/// What a policy needs to know about the request it applies to.
pub(crate) struct RequestFacts<'a> {
    /// How the client connected.
    pub scheme: Scheme,
    /// The request's host name, lowercase and without port.
    pub host: &'a str,
    /// The path and query as the client sent them.
    pub request_uri: &'a str,
    /// The normalised path.
    pub path: &'a str,
    /// The host as the client sent it, with its port if it sent one.
    pub http_host: &'a str,
}

impl RequestFacts<'_> {
    /// The request's `value`, as nginx's variable of the same name gives it.
    pub fn value(&self, value: RequestValue) -> String {
        match value {
            RequestValue::RequestUri => self.request_uri.to_owned(),
            RequestValue::Uri => self.path.to_owned(),
            RequestValue::Host => self.host.to_owned(),
            RequestValue::Scheme => self.scheme.as_str().to_owned(),
            RequestValue::HttpHost => self.http_host.to_owned(),
            RequestValue::EscapedRequestUri => crate::external_auth::escape_uri(self.request_uri),
        }
    }
}

/// The redirect a policy answers the request with instead of proxying it: `app-root` for `/`,
/// then `permanent-redirect` / `temporal-redirect`.
pub(crate) fn redirect(
    policy: &RoutePolicy,
    facts: &RequestFacts<'_>,
) -> Option<Response<ResponseBody>> {
    if let Some(root) = &policy.app_root
        && facts.path == "/"
    {
        let location = format!("{}://{}{root}", facts.scheme.as_str(), facts.host);
        return Some(redirect_response(StatusCode::FOUND, &location));
    }
    let redirect = policy.redirect.as_ref()?;
    let status = StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let location = redirect.location.render(|value| facts.value(value));
    Some(redirect_response(status, &location))
}

fn redirect_response(status: StatusCode, location: &str) -> Response<ResponseBody> {
    let mut response = local(status);
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// The answer to a CORS preflight (any `OPTIONS` request on a route with CORS enabled), as
/// ingress-nginx gives it: 204 with the CORS headers.
pub(crate) fn preflight(
    policy: &RoutePolicy,
    method: &Method,
    request: &HeaderMap,
) -> Option<Response<ResponseBody>> {
    let cors = policy.cors.as_ref()?;
    if method != Method::OPTIONS {
        return None;
    }
    let mut response = local(StatusCode::NO_CONTENT);
    *response.body_mut() = http_body_util::Either::Right(Default::default());
    let headers = response.headers_mut();
    headers.remove(http::header::CONTENT_TYPE);
    if add_cors_headers(cors, request, headers) {
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(cors.max_age));
    }
    Some(response)
}

/// Adds the CORS response headers for a request from an allowed origin. Returns whether the
/// origin was allowed.
pub(crate) fn add_cors_headers(cors: &Cors, request: &HeaderMap, response: &mut HeaderMap) -> bool {
    let origin = request.get(ORIGIN).and_then(|origin| origin.to_str().ok());
    let Some(allowed) = cors
        .allowed_origin(origin)
        .and_then(|allowed| HeaderValue::from_str(allowed).ok())
    else {
        return false;
    };
    response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    if cors.allow_credentials {
        response.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    let lists = [
        (ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods),
        (ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers),
        (ACCESS_CONTROL_EXPOSE_HEADERS, &cors.expose_headers),
    ];
    for (name, list) in lists {
        if let Ok(value) = HeaderValue::from_str(list)
            && !list.is_empty()
        {
            response.insert(name, value);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_routing::{OriginPattern, Redirect, Template, TemplatePart};

    fn facts() -> RequestFacts<'static> {
        RequestFacts {
            scheme: Scheme::Https,
            host: "shop.example",
            request_uri: "/a/../b?x=1",
            path: "/b",
            http_host: "shop.example:8443",
        }
    }

    #[test]
    fn app_root_redirects_only_the_root() {
        let policy = RoutePolicy {
            app_root: Some("/store".into()),
            ..RoutePolicy::default()
        };
        let response = redirect(
            &policy,
            &RequestFacts {
                path: "/",
                ..facts()
            },
        )
        .expect("redirect");
        assert_eq!(response.status(), 302);
        assert_eq!(response.headers()[LOCATION], "https://shop.example/store");
        assert!(redirect(&policy, &facts()).is_none());
    }

    #[test]
    fn redirect_templates_use_the_request() {
        let policy = RoutePolicy {
            redirect: Some(Redirect {
                status: 308,
                location: Template(vec![
                    TemplatePart::Text("https://new.example".into()),
                    TemplatePart::Value(RequestValue::RequestUri),
                ]),
            }),
            ..RoutePolicy::default()
        };
        let response = redirect(&policy, &facts()).expect("redirect");
        assert_eq!(response.status(), 308);
        assert_eq!(
            response.headers()[LOCATION],
            "https://new.example/a/../b?x=1"
        );
    }

    #[test]
    fn cors_headers_only_for_allowed_origins() {
        let cors = Cors {
            allow_origins: Some(vec![OriginPattern {
                scheme: "https://".into(),
                any_subdomain: false,
                host: "app.example".into(),
            }]),
            ..Cors::default()
        };
        let mut request = HeaderMap::new();
        request.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        let mut response = HeaderMap::new();
        assert!(!add_cors_headers(&cors, &request, &mut response));
        assert!(response.is_empty());
        request.insert(ORIGIN, HeaderValue::from_static("https://app.example"));
        assert!(add_cors_headers(&cors, &request, &mut response));
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
