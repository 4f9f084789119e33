//! TLS to endpoints, for the `HTTPS` and `GRPCS` backend protocols.
//!
//! The defaults are ingress-nginx's: the endpoint's certificate is not verified
//! (`proxy-ssl-verify: off`) and no server name is sent (`proxy-ssl-server-name: off`). The
//! handshake signature is still checked, so the endpoint must hold the key of the certificate it
//! presents. `HTTPS` offers ALPN `http/1.1`, `GRPCS` offers `h2`. Sessions are resumed, as
//! nginx's `proxy_ssl_session_reuse` does by default.

use std::sync::Arc;

use rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use vestibule_routing::BackendProtocol;
use vestibule_tls::{AnyServerCertificate, crypto_provider};

/// The TLS client settings for endpoints, one per application protocol.
#[derive(Clone)]
pub(crate) struct BackendTls {
    http1: TlsConnector,
    http2: TlsConnector,
}

impl BackendTls {
    /// Settings with ingress-nginx's defaults.
    pub fn new() -> Result<Self, rustls::Error> {
        Ok(Self {
            http1: connector(b"http/1.1")?,
            http2: connector(b"h2")?,
        })
    }

    /// The connector for `protocol`, or `None` when it runs in clear.
    pub fn connector(&self, protocol: BackendProtocol) -> Option<TlsConnector> {
        match protocol {
            BackendProtocol::Https => Some(self.http1.clone()),
            BackendProtocol::Grpcs => Some(self.http2.clone()),
            BackendProtocol::Http | BackendProtocol::AutoHttp | BackendProtocol::Grpc => None,
        }
    }
}

/// A connector that offers only `alpn`, sends no SNI and accepts any certificate.
fn connector(alpn: &[u8]) -> Result<TlsConnector, rustls::Error> {
    let provider = crypto_provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(provider)))
        .with_no_client_auth();
    config.enable_sni = false;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}
