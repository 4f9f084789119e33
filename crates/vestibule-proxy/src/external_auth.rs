//! External authentication (`auth-url`), as ingress-nginx's `auth_request` location does it.
//!
//! Before a request on such a route is proxied, its authentication service is asked with a
//! request of its own: the route's `auth-method` (`GET` by default), no body, and the client's
//! headers without the hop-by-hop and body framing ones, plus
//! - `Host`: the service's host, without port;
//! - `X-Original-URL` (`$scheme://$http_host$request_uri`), `X-Original-Method`,
//!   `X-Sent-From: nginx-ingress-controller`, `X-Real-IP` and `X-Forwarded-For` (the client's
//!   address only), `X-Auth-Request-Redirect` (`auth-request-redirect`, else the request URI),
//!   and `X-Request-ID` (the one the backend gets too);
//! - `X-Forwarded-Host` and `X-Forwarded-Proto` with the values the backend gets. ingress-nginx
//!   passes on the client's `X-Forwarded-Host` and drops `X-Forwarded-Proto`; here the service
//!   never sees values the client made up;
//! - with `auth-method` set, `X-Original-URI` and `X-Scheme`, as ingress-nginx adds them then.
//!
//! A 2xx admits the request: the `auth-response-headers` replace the client's headers of the
//! same names on the proxied request (a listed header the service did not send is removed), and
//! the service's `Set-Cookie` goes on the answer when that is a success or a redirect (on any
//! answer with `auth-always-set-cookie`). A 401 is answered with the service's
//! `WWW-Authenticate`, or with a 302 to `auth-signin`; a 403 with 403; anything else, or no
//! answer within the listener's connect and read timeouts, with 500.
//!
//! The service is reached with the clients the backends use, keep-alive and pooled. The auth
//! URL may point anywhere, in the cluster or outside it; over HTTPS its certificate is not
//! verified and no SNI is sent, as for HTTPS backends (ingress-nginx's auth location sends SNI).

use std::fmt::Write as _;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, EXPECT, HOST, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use hyper::body::Incoming;
use vestibule_routing::{AuthMethod, BackendProtocol, ExternalAuth, Limits};

use crate::body::UpstreamBody;
use crate::clients::UpstreamClients;
use crate::error::{AuthRefusal, ProxyError};
use crate::forward::{
    Origin, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REAL_IP, X_REQUEST_ID,
    new_request_id, strip_hop_by_hop,
};
use crate::handler::discard;
use crate::policy::RequestFacts;

static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_SENT_FROM: HeaderName = HeaderName::from_static("x-sent-from");
static X_AUTH_REQUEST_REDIRECT: HeaderName = HeaderName::from_static("x-auth-request-redirect");

/// What the authentication service's admission adds to the exchange.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The `auth-response-headers`, each with the values the service sent (maybe none).
    headers: Vec<(HeaderName, Vec<HeaderValue>)>,
    /// The request id generated for the service, which the backend must get too.
    request_id: Option<HeaderValue>,
    /// The service's `Set-Cookie` values.
    cookies: Vec<HeaderValue>,
    /// `auth-always-set-cookie`.
    always_set_cookie: bool,
}

impl Admitted {
    /// Replaces the client's values of the `auth-response-headers` with the service's.
    pub fn apply_to_request(&self, headers: &mut HeaderMap) {
        for (name, values) in &self.headers {
            headers.remove(name);
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Some(id) = &self.request_id {
            headers.insert(X_REQUEST_ID.clone(), id.clone());
        }
    }

    /// Adds the service's cookies to an answer with `status`, when nginx's `add_header` would.
    pub fn apply_to_response(&self, status: StatusCode, headers: &mut HeaderMap) {
        add_cookies(&self.cookies, self.always_set_cookie, status, headers);
    }
}

/// Asks the route's authentication service about `request`, within `read_timeout` for its
/// answer. `Ok` admits the request; a refusal or a failure is the error to answer with.
pub(crate) async fn check(
    clients: &UpstreamClients,
    read_timeout: Duration,
    auth: &ExternalAuth,
    facts: &RequestFacts<'_>,
    request: &Request<Incoming>,
    origin: &Origin,
) -> Result<Admitted, ProxyError> {
    let url = auth.url.render(|value| facts.value(value));
    let failed = |reason: String| ProxyError::AuthFailed {
        url: url.clone(),
        reason,
    };
    let uri = Uri::try_from(url.as_str()).map_err(|error| failed(error.to_string()))?;
    let protocol = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        BackendProtocol::Https
    } else {
        BackendProtocol::Http
    };
    let request_id = (!request.headers().contains_key(&X_REQUEST_ID)).then(new_request_id);
    let mut asking = Request::new(UpstreamBody::empty());
    *asking.method_mut() = auth.method.map_or(Method::GET, method);
    *asking.version_mut() = Version::HTTP_11;
    *asking.headers_mut() = headers_for_service(auth, facts, request, origin, &uri, &request_id);
    *asking.uri_mut() = uri;
    let client = clients.get(protocol, &Limits::default());
    let response = match tokio::time::timeout(read_timeout, client.request(asking)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(failed(causes(&error))),
        Err(_) => return Err(failed(format!("no answer within {read_timeout:?}"))),
    };
    let (parts, body) = response.into_parts();
    tokio::spawn(discard(body));
    let cookies: Vec<HeaderValue> = parts.headers.get_all(SET_COOKIE).iter().cloned().collect();
    match parts.status.as_u16() {
        200..=299 => Ok(Admitted {
            headers: auth
                .response_headers
                .iter()
                .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                .map(|name| {
                    let values = parts.headers.get_all(&name).iter().cloned().collect();
                    (name, values)
                })
                .collect(),
            request_id,
            cookies,
            always_set_cookie: auth.always_set_cookie,
        }),
        401 | 403 => Err(refusal(auth, facts, parts.status, &parts.headers, &cookies)),
        other => Err(failed(format!("it answered {other}"))),
    }
}

/// The headers of the request to the service.
fn headers_for_service(
    auth: &ExternalAuth,
    facts: &RequestFacts<'_>,
    request: &Request<Incoming>,
    origin: &Origin,
    uri: &Uri,
    request_id: &Option<HeaderValue>,
) -> HeaderMap {
    let mut headers = request.headers().clone();
    strip_hop_by_hop(&mut headers, None);
    headers.remove(CONTENT_LENGTH);
    headers.remove(EXPECT);
    let client_ip = origin.peer.ip().to_string();
    let scheme = facts.scheme.as_str();
    let values = [
        (&HOST, uri.host().unwrap_or_default()),
        (
            &X_ORIGINAL_URL,
            &format!("{scheme}://{}{}", facts.http_host, facts.request_uri),
        ),
        (&X_ORIGINAL_METHOD, request.method().as_str()),
        (&X_SENT_FROM, "nginx-ingress-controller"),
        (&X_REAL_IP, &client_ip),
        (&X_FORWARDED_FOR, &client_ip),
        (&X_FORWARDED_HOST, facts.http_host),
        (&X_FORWARDED_PROTO, scheme),
        (
            &X_AUTH_REQUEST_REDIRECT,
            auth.request_redirect
                .as_deref()
                .unwrap_or(facts.request_uri),
        ),
    ];
    for (name, value) in values {
        set(&mut headers, name, value);
    }
    if auth.method.is_some() {
        set(&mut headers, &X_ORIGINAL_URI, facts.request_uri);
        set(&mut headers, &X_SCHEME, scheme);
    }
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id.clone());
    }
    headers
}

fn set(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name.clone(), value);
    }
}

/// How a refusal (401 or 403) from the service is answered.
fn refusal(
    auth: &ExternalAuth,
    facts: &RequestFacts<'_>,
    status: StatusCode,
    answer: &HeaderMap,
    cookies: &[HeaderValue],
) -> ProxyError {
    let mut headers = HeaderMap::new();
    let status = match &auth.signin {
        Some(signin) if status == StatusCode::UNAUTHORIZED => {
            let location = signin.render(|value| facts.value(value));
            if let Ok(location) = HeaderValue::try_from(location) {
                headers.insert(LOCATION, location);
            }
            StatusCode::FOUND
        }
        _ => {
            if status == StatusCode::UNAUTHORIZED {
                for challenge in answer.get_all(WWW_AUTHENTICATE) {
                    headers.append(WWW_AUTHENTICATE, challenge.clone());
                }
            }
            status
        }
    };
    add_cookies(cookies, auth.always_set_cookie, status, &mut headers);
    ProxyError::AuthRefused(Box::new(AuthRefusal { status, headers }))
}

/// Adds `cookies` to an answer with `status` when nginx's `add_header` would: for the statuses
/// it adds headers to, or always.
fn add_cookies(cookies: &[HeaderValue], always: bool, status: StatusCode, headers: &mut HeaderMap) {
    let added = always
        || matches!(
            status.as_u16(),
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
    if added {
        for cookie in cookies {
            headers.append(SET_COOKIE, cookie.clone());
        }
    }
}

fn method(method: AuthMethod) -> Method {
    match method {
        AuthMethod::Get => Method::GET,
        AuthMethod::Head => Method::HEAD,
        AuthMethod::Post => Method::POST,
        AuthMethod::Put => Method::PUT,
        AuthMethod::Patch => Method::PATCH,
        AuthMethod::Delete => Method::DELETE,
        AuthMethod::Options => Method::OPTIONS,
        AuthMethod::Trace => Method::TRACE,
    }
}

/// An upstream client error with its causes.
fn causes(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// `text` escaped as nginx's `set_escape_uri` does (`$escaped_request_uri`): every byte but
/// letters, digits and ``!$'()*,-.@_`|~`` becomes `%XX`.
pub(crate) fn escape_uri(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"!$'()*,-.@_`|~".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_set_escape_uri() {
        assert_eq!(
            escape_uri("/a b/c?x=1&y=[2]#f"),
            "%2Fa%20b%2Fc%3Fx%3D1%26y%3D%5B2%5D%23f"
        );
        assert_eq!(escape_uri("/~user/(x)*!,@"), "%2F~user%2F(x)*!,@");
        assert_eq!(escape_uri("/é"), "%2F%C3%A9");
    }

    #[test]
    fn cookies_follow_add_header() {
        let cookies = [HeaderValue::from_static("session=1")];
        let mut headers = HeaderMap::new();
        add_cookies(&cookies, false, StatusCode::UNAUTHORIZED, &mut headers);
        assert!(headers.is_empty());
        add_cookies(&cookies, false, StatusCode::FOUND, &mut headers);
        assert_eq!(headers[SET_COOKIE], "session=1");
        let mut headers = HeaderMap::new();
        add_cookies(&cookies, true, StatusCode::FORBIDDEN, &mut headers);
        assert_eq!(headers[SET_COOKIE], "session=1");
    }
}
