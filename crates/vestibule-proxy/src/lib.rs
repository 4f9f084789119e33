//! The data plane: listeners, per-request routing, upstream pools and load balancing.
//!
//! The control plane publishes configuration through [`DataPlane::apply`]; listeners read it
//! once per request. Nothing here knows about Kubernetes.

mod admin;
mod balancer;
mod body;
mod error;
mod forward;
mod framing;
mod handler;
mod listener;
mod plane;
mod response;
mod tls;
mod upstream;

pub use admin::{Health, serve_admin};
pub use balancer::{Balancer, RoundRobin};
pub use body::BodyTooLarge;
pub use error::{Fault, ProxyError};
pub use listener::{Proxy, ProxySettings};
pub use plane::{Applied, DataPlane, LiveTable, RouteTarget};
pub use response::ResponseBody;
pub use upstream::{Pick, Upstream, UpstreamEndpoint};
