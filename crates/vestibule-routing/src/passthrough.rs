//! Hosts whose TLS connections go to a backend unterminated (`ssl-passthrough`).

use crate::{BackendId, HostMap, IngressRef};

/// Where TLS connections for one passthrough host go, as raw TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passthrough {
    /// The backend of the host's `/` rule.
    pub backend: BackendId,
    /// The Ingress that rule belongs to.
    pub ingress: IngressRef,
}

/// The passthrough hosts (exact names and one-label wildcards, never the host-less entry),
/// looked up by the server name a ClientHello asks for.
pub type PassthroughTable = HostMap<Passthrough>;
