//! Which certificate each TLS server name gets.

use std::sync::Arc;

use vestibule_routing::HostMap;

use crate::Certificate;

/// Certificates by server name, and the one for every other name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsTable {
    /// Certificates by host pattern: exact names first, then one-label wildcards.
    pub by_host: HostMap<Arc<Certificate>>,
    /// The certificate for unknown names and clients that send no SNI; `None` leaves the choice
    /// to the listener (its self-signed fallback).
    pub default: Option<Arc<Certificate>>,
}

impl TlsTable {
    /// The certificate for a server name (SNI, or a request's host), if one is configured
    /// for it specifically.
    pub fn for_name(&self, name: &str) -> Option<&Arc<Certificate>> {
        self.by_host.get(name)
    }

    /// The certificate a TLS handshake for `name` (or one without SNI) is served: the one
    /// configured for the name, else the default. `None` means the listener's own fallback.
    pub fn resolve(&self, name: Option<&str>) -> Option<&Arc<Certificate>> {
        name.and_then(|name| self.for_name(name))
            .or(self.default.as_ref())
    }

    /// Every distinct certificate in the table, the default included.
    pub fn certificates(&self) -> Vec<&Arc<Certificate>> {
        let mut all: Vec<&Arc<Certificate>> = self
            .by_host
            .iter()
            .into_iter()
            .map(|(_, certificate)| certificate)
            .chain(self.default.as_ref())
            .collect();
        all.sort_by_key(|certificate| Arc::as_ptr(certificate));
        all.dedup_by_key(|certificate| Arc::as_ptr(certificate));
        all
    }
}
