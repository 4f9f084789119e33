//! External authentication (`auth-url`): before a request is proxied, an authentication service
//! is asked about it, and its answer decides whether the request goes on.

use crate::policy::Template;

/// External authentication for a route, as ingress-nginx's `auth-url` family configures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuth {
    /// The authentication service (`auth-url`): an absolute `http` or `https` URL with request
    /// values filled in per request. It may point anywhere, inside the cluster or not.
    pub url: Template,
    /// The method of requests to the service (`auth-method`). `None` sends `GET`, without the
    /// `X-Original-URI` and `X-Scheme` headers that ingress-nginx adds only when it is set.
    pub method: Option<AuthMethod>,
    /// Headers of the service's answer that replace the client's on the proxied request,
    /// lowercase (`auth-response-headers`).
    pub response_headers: Vec<String>,
    /// Where a 401 from the service sends the client instead, with the original URL in a query
    /// parameter already part of the template (`auth-signin`).
    pub signin: Option<Template>,
    /// `X-Auth-Request-Redirect` sent to the service (`auth-request-redirect`); `None` sends the
    /// request URI.
    pub request_redirect: Option<String>,
    /// Whether the service's cookies are set on every answer (`auth-always-set-cookie`), not
    /// only on successful answers and redirects.
    pub always_set_cookie: bool,
}

/// The methods `auth-method` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `TRACE`.
    Trace,
}

impl AuthMethod {
    /// Every method, in the order ingress-nginx lists them.
    pub const ALL: [Self; 8] = [
        Self::Get,
        Self::Head,
        Self::Post,
        Self::Put,
        Self::Patch,
        Self::Delete,
        Self::Options,
        Self::Trace,
    ];

    /// The method's name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
        }
    }
}
