//! A server certificate verifier that trusts any certificate but still checks the handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts whatever certificate a server presents, as ingress-nginx's `proxy-ssl-verify: off`
/// does for endpoints, while still checking that the handshake is signed with that
/// certificate's key, so the server must hold it. The data plane uses it for TLS to endpoints;
/// tests use it for clients that look at the certificate they were served.
#[derive(Debug)]
pub struct AnyServerCertificate(Arc<CryptoProvider>);

impl AnyServerCertificate {
    /// A verifier checking handshake signatures with the algorithms of `provider`.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for AnyServerCertificate {
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

#[cfg(test)]
mod tests {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::sign::{CertifiedKey, SingleCertAndKey};
    use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

    use super::*;
    use crate::crypto_provider;

    /// A self-signed certificate for `name` and its private key, both DER.
    fn generate(name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let generated =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("generated");
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).expect("key");
        (generated.cert.der().clone(), key)
    }

    /// A server presenting `cert` but signing its handshakes with `key`.
    fn server(cert: CertificateDer<'static>, key: &PrivateKeyDer<'static>) -> Arc<ServerConfig> {
        let provider = crypto_provider();
        let signing = provider.key_provider.load_private_key(key.clone_key());
        let certified = CertifiedKey::new(vec![cert], signing.expect("supported key"));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        Arc::new(config)
    }

    /// Runs a handshake in memory between a client that verifies with [`AnyServerCertificate`]
    /// (speaking only `version`) and `server`, for server name `name`.
    fn handshake(
        version: &'static rustls::SupportedProtocolVersion,
        server: Arc<ServerConfig>,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let provider = crypto_provider();
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(provider)))
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let mut client = ClientConnection::new(Arc::new(client), name)?;
        let mut server = ServerConnection::new(server)?;
        let mut bytes = Vec::new();
        for _ in 0..8 {
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
            bytes.clear();
            client.write_tls(&mut bytes).expect("written to memory");
            server
                .read_tls(&mut bytes.as_slice())
                .expect("read from memory");
            server.process_new_packets()?;
            bytes.clear();
            server.write_tls(&mut bytes).expect("written to memory");
            client
                .read_tls(&mut bytes.as_slice())
                .expect("read from memory");
            client.process_new_packets()?;
        }
        panic!("the handshake is stuck")
    }

    #[test]
    fn any_certificate_is_accepted_for_any_name() {
        let (cert, key) = generate("endpoint.example");
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            handshake(version, server(cert.clone(), &key), "other.example")
                .unwrap_or_else(|error| panic!("{version:?}: {error}"));
        }
    }

    #[test]
    fn a_handshake_not_signed_with_the_certificates_key_is_refused() {
        let (cert, _) = generate("endpoint.example");
        let (_, other_key) = generate("endpoint.example");
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let refused = handshake(
                version,
                server(cert.clone(), &other_key),
                "endpoint.example",
            );
            assert!(
                matches!(
                    refused,
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::BadSignature
                    ))
                ),
                "{version:?}: {refused:?}"
            );
        }
    }
}
