//! Why a request could not be proxied, whose fault that was, and the status it is answered with.

use std::error::Error as _;
use std::sync::Arc;

use http::StatusCode;
use http::uri::Authority;
use vestibule_routing::{BackendId, InvalidPath};

use crate::body::BodyTooLarge;
use crate::rate_limit::Limited;

/// Who caused a failed request: decides the status class and the log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something we cannot serve.
    Client,
    /// The configuration leads nowhere usable (no endpoint, missing Service).
    Configuration,
    /// The backend failed.
    Upstream,
}

/// Which part of an exchange with an endpoint took too long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Connecting (`--proxy-connect-timeout`).
    Connect,
    /// Writing the request: the endpoint stopped reading (`--proxy-send-timeout`).
    Send,
    /// Waiting for the response head (`--proxy-read-timeout`).
    Read,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting to",
            Self::Send => "sending the request to",
            Self::Read => "waiting for the response of",
        })
    }
}

/// A request the data plane answered itself instead of with a backend's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// An HTTP/1.1 request without `Host`.
    #[error("request has no Host header")]
    MissingHost,
    /// A request whose framing or addressing is ambiguous: it is never forwarded.
    #[error("ambiguous request refused: {0}")]
    Ambiguous(&'static str),
    /// A request path that cannot be normalised.
    #[error("{0}")]
    InvalidPath(#[from] InvalidPath),
    /// The request body is larger than `--proxy-body-size`.
    #[error("{0}")]
    BodyTooLarge(#[from] BodyTooLarge),
    /// The request's host would be served a different certificate than the connection's SNI.
    #[error("request host {host} does not belong to this TLS connection (SNI {sni})")]
    Misdirected {
        /// The request's host.
        host: String,
        /// The server name of the TLS connection.
        sni: String,
    },
    /// The route asks for basic authentication and the request did not pass it.
    #[error("authentication required")]
    Unauthorized {
        /// The realm to name in the challenge.
        realm: String,
    },
    /// The route's authentication service refused the request: 401 or 403 as it answered, or a
    /// 302 to the route's sign-in page instead of its 401.
    #[error("the authentication service refused the request ({})", .0.status)]
    AuthRefused(Box<AuthRefusal>),
    /// The route's authentication service could not be asked, or answered neither 2xx, 401 nor
    /// 403: answered 500, as nginx's `auth_request` does.
    #[error("external authentication at {url} failed: {reason}")]
    AuthFailed {
        /// The URL the service was asked at.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The route's configuration cannot be served safely (e.g. its authentication is broken).
    #[error("the route is refused: {0}")]
    RouteDenied(String),
    /// The route's source ranges do not admit the client's address.
    #[error("the client address is not allowed on this route")]
    Forbidden,
    /// The client is over its route's rate or connection limit (`limit-rps`, `limit-rpm`,
    /// `limit-connections`).
    #[error("{0}")]
    RateLimited(Limited),
    /// No rule and no default backend matches.
    #[error("no rule matches the request")]
    NoRoute,
    /// The backend has no ready endpoint.
    #[error("backend {backend} has no ready endpoint")]
    NoReadyEndpoint {
        /// The backend.
        backend: Arc<BackendId>,
    },
    /// The request target could not be re-addressed to the endpoint.
    #[error("request target cannot be forwarded: {0}")]
    InvalidTarget(#[from] http::Error),
    /// Connecting to the endpoint, sending it the request or waiting for its answer timed out.
    #[error("timed out {phase} {endpoint} of backend {backend}")]
    UpstreamTimeout {
        /// The backend.
        backend: Arc<BackendId>,
        /// The endpoint tried.
        endpoint: Authority,
        /// What took too long.
        phase: TimeoutPhase,
    },
    /// The endpoint refused the connection or failed before answering.
    #[error("backend {backend} at {endpoint} failed: {reason}")]
    UpstreamFailed {
        /// The backend.
        backend: Arc<BackendId>,
        /// The endpoint tried.
        endpoint: Authority,
        /// The underlying error, with its causes.
        reason: String,
    },
}

/// How a request refused by an authentication service is answered.
#[derive(Debug)]
pub struct AuthRefusal {
    /// 401, 403, or 302 to the sign-in page.
    pub status: StatusCode,
    /// `WWW-Authenticate`, `Location` and `Set-Cookie` headers to answer with.
    pub headers: http::HeaderMap,
}

impl ProxyError {
    /// Headers the answer carries besides those every answer has, such as an authentication
    /// service's challenge.
    pub fn headers(&self) -> Option<&http::HeaderMap> {
        match self {
            Self::AuthRefused(refusal) => Some(&refusal.headers),
            _ => None,
        }
    }

    /// Whether the connection must be closed after answering: the request may have left bytes
    /// on the connection that can no longer be framed.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Self::Ambiguous(_))
    }

    /// The `WWW-Authenticate` challenge to answer with, for [`ProxyError::Unauthorized`].
    pub fn challenge(&self) -> Option<http::HeaderValue> {
        match self {
            Self::Unauthorized { realm } => {
                http::HeaderValue::try_from(format!("Basic realm=\"{realm}\"")).ok()
            }
            _ => None,
        }
    }

    /// Classifies an upstream client error. A timeout while connecting is the connect timeout;
    /// any other is the send timeout (reads never time out below the handler).
    pub(crate) fn upstream(
        backend: &Arc<BackendId>,
        endpoint: Authority,
        error: &hyper_util::client::legacy::Error,
    ) -> Self {
        let mut source = error.source();
        let mut reason = error.to_string();
        while let Some(cause) = source {
            if let Some(too_large) = cause.downcast_ref::<BodyTooLarge>() {
                return Self::BodyTooLarge(BodyTooLarge {
                    limit: too_large.limit,
                });
            }
            if cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                let phase = if error.is_connect() {
                    TimeoutPhase::Connect
                } else {
                    TimeoutPhase::Send
                };
                return Self::UpstreamTimeout {
                    backend: backend.clone(),
                    endpoint,
                    phase,
                };
            }
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::UpstreamFailed {
            backend: backend.clone(),
            endpoint,
            reason,
        }
    }

    /// Who caused it.
    pub fn fault(&self) -> Fault {
        match self {
            Self::MissingHost
            | Self::Ambiguous(_)
            | Self::InvalidPath(_)
            | Self::BodyTooLarge(_)
            | Self::Misdirected { .. }
            | Self::Forbidden
            | Self::Unauthorized { .. }
            | Self::RateLimited(_)
            | Self::AuthRefused(_)
            | Self::NoRoute
            | Self::InvalidTarget(_) => Fault::Client,
            Self::NoReadyEndpoint { .. } | Self::RouteDenied(_) => Fault::Configuration,
            Self::UpstreamTimeout { .. }
            | Self::UpstreamFailed { .. }
            | Self::AuthFailed { .. } => Fault::Upstream,
        }
    }

    /// The status the client is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHost
            | Self::Ambiguous(_)
            | Self::InvalidPath(_)
            | Self::InvalidTarget(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::AuthRefused(refusal) => refusal.status,
            Self::AuthFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RouteDenied(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::RateLimited(_) | Self::NoReadyEndpoint { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamFailed { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}
