//! TLS to endpoints, for the `HTTPS` and `GRPCS` backend protocols.
//!
//! The defaults are ingress-nginx's: the endpoint's certificate is not verified
//! (`proxy-ssl-verify: off`) and no server name is sent (`proxy-ssl-server-name: off`). The
//! handshake signature is still checked, so the endpoint must hold the key of the certificate it
//! presents. `HTTPS` offers ALPN `http/1.1`, `GRPCS` offers `h2`. Sessions are resumed, as
//! nginx's `proxy_ssl_session_reuse` does by default.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;
use vestibule_routing::BackendProtocol;
use vestibule_tls::crypto_provider;

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
        .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        .with_no_client_auth();
    config.enable_sni = false;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts any certificate, as `proxy-ssl-verify: off` does, while still checking that the
/// handshake is signed with the certificate's key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
