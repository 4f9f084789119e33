//! What routes lead to: Services, their ports and their endpoints.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::canary::Canary;
use crate::policy::RoutePolicy;

/// The ready endpoints of each backend, shared so a translation that resolves the same as the
/// last one hands out the same map, and the data plane can tell. Each list is shared too, with
/// the resolutions the translator keeps.
pub type Backends = Arc<std::collections::BTreeMap<BackendId, Arc<[Endpoint]>>>;

/// A namespaced Kubernetes object name, e.g. the Ingress a route came from. The names are
/// shared: every route of an Ingress carries them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IngressRef {
    /// The object's namespace.
    pub namespace: Arc<str>,
    /// The object's name.
    pub name: Arc<str>,
}

impl fmt::Display for IngressRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Service port as an Ingress backend names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServicePortRef {
    /// `port.number`.
    Number(u16),
    /// `port.name`.
    Name(String),
}

impl fmt::Display for ServicePortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// One Service port in one namespace: the unit that has a set of endpoints and a load balancer.
/// The names are shared: every route to the backend carries them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId {
    /// The Service's namespace, always the referring Ingress's own.
    pub namespace: Arc<str>,
    /// The Service's name.
    pub service: Arc<str>,
    /// The Service port.
    pub port: ServicePortRef,
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// Where requests for a backend can be sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// A ready pod address.
    Socket(SocketAddr),
    /// A DNS name resolved when connecting (Services of type ExternalName).
    Name {
        /// The DNS name.
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(addr) => write!(f, "{addr}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// What a path rule (or the default backend) leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The backend that serves the request.
    pub backend: BackendId,
    /// The Ingress the rule came from.
    pub ingress: IngressRef,
    /// The route's host is configured for TLS: HTTPS responses carry HSTS.
    pub tls: bool,
    /// Plain-HTTP requests are redirected to HTTPS (except ACME HTTP-01 challenges).
    pub https_redirect: bool,
    /// What the Ingress's annotations change about serving the route; shared by its routes.
    pub policy: Arc<RoutePolicy>,
    /// The canary Ingress's backend that some requests go to instead (`canary`); boxed, as
    /// most routes have none and a large table holds a route for about every Ingress.
    pub canary: Option<Box<Canary>>,
}
