//! The data plane: listeners, per-request routing, upstream pools and load balancing.
//!
//! The control plane publishes configuration through [`DataPlane::apply`]; listeners read it
//! once per request. Nothing here knows about Kubernetes.

mod access_log;
mod admin;
mod backend_tls;
mod balancer;
mod basic_auth;
mod body;
mod canary;
mod clients;
mod connector;
mod debug_routes;
mod error;
mod ewma;
mod external_auth;
mod forward;
mod framing;
mod grpc;
mod h2_flood;
mod handler;
mod hex;
mod inspect;
mod listener;
mod metrics;
mod observe;
mod otlp;
mod passthrough;
mod plane;
mod policy;
mod rate_limit;
mod replay;
mod response;
mod rewrite;
mod selection;
mod send_timeout;
mod tls;
mod tunnels;
mod upstream;
mod upstream_client;

pub use access_log::{AccessLog, AccessLogFormat};
pub use admin::{Health, serve_admin};
pub use balancer::{Balancer, RoundRobin};
pub use body::BodyTooLarge;
pub use canary::CanaryTarget;
pub use debug_routes::{
    BackendRef, BackendView, CertificateView, EndpointState, EndpointView, HostView,
    PassthroughView, PathView, PortView, RouteView, RoutesView, TlsHostView, TlsView, routes_view,
};
pub use error::{AuthRefusal, Fault, ProxyError, TimeoutPhase};
pub use listener::{Proxy, ProxySettings};
pub use metrics::{EndpointCollector, ProxyMetrics, RouteLabels};
pub use observe::{ObservedBody, Observers};
pub use otlp::{OtlpError, OtlpExporter};
pub use plane::{Applied, DataPlane, LiveTable, RouteTarget};
pub use rate_limit::Limited;
pub use response::ResponseBody;
pub use upstream::{EndpointHealth, Pick, Upstream, UpstreamEndpoint};
