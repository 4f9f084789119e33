//! The routing model both planes share.
//!
//! The control plane builds a [`RouteTable`] of [`Route`]s; the data plane maps each route's
//! [`BackendId`] to a live upstream and looks requests up in it. Matching follows the Kubernetes
//! Ingress spec, with precedence expressed as [`Ord`] on [`HostMatch`] and [`PathMatch`].

mod backend;
mod balancing;
mod canary;
mod external_auth;
mod host;
mod host_map;
mod normalize;
mod passthrough;
mod path;
mod policy;
mod rate_limit;
mod regex_path;
mod rewrite;
mod table;

pub use backend::{BackendId, Backends, Endpoint, IngressRef, Route, ServicePortRef};
pub use balancing::{
    AffinityMode, Algorithm, Balancing, HashKey, KeyPart, SameSite, SessionCookie,
};
pub use canary::{Canary, CanaryRule, HeaderMatch, HeaderPattern, HeaderRule, Weight};
pub use external_auth::{AuthMethod, ExternalAuth};
pub use host::{HostMatch, InvalidHost, normalize_request_host};
pub use host_map::HostMap;
pub use normalize::{InvalidPath, normalize_path};
pub use passthrough::{Passthrough, PassthroughTable};
pub use path::{PathMatch, normalize_prefix};
pub use policy::{
    BackendProtocol, BasicAuth, BodyLimit, Cors, IpRange, Limits, OriginPattern, Redirect,
    RequestValue, RoutePolicy, SourceFilter, Template, TemplatePart,
};
pub use rate_limit::{RateLimit, RequestRate};
pub use regex_path::{InvalidRegex, PathRegex};
pub use rewrite::{RewritePart, RewriteTarget};
pub use table::{
    PathRule, Previous, Remapped, RouteTable, RouteTableBuilder, Selected, VirtualHost,
};
