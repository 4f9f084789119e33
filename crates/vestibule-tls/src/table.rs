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
