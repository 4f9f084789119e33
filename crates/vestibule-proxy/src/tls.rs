//! Choosing the certificate for each TLS handshake from the live configuration.

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use vestibule_tls::Certificate;

use crate::plane::DataPlane;

/// Picks a certificate by SNI: the configured one for the name, else the configured default,
/// else the listener's self-signed fallback.
pub(crate) struct SniResolver {
    pub plane: Arc<DataPlane>,
    pub fallback: Arc<Certificate>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.plane.tls();
        let certificate = table.resolve(hello.server_name()).unwrap_or(&self.fallback);
        Some(certificate.certified_key().clone())
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

/// Whether a request for `host` on a connection established for `sni` must be refused (421):
/// a handshake for the host would have been served a different certificate.
pub(crate) fn misdirected(plane: &DataPlane, sni: &str, host: &str) -> bool {
    let host = vestibule_routing::normalize_request_host(host);
    if host.eq_ignore_ascii_case(sni) {
        return false;
    }
    let table = plane.tls();
    let served = |name: &str| table.resolve(Some(name)).map(Arc::as_ptr);
    served(sni) != served(&host)
}
