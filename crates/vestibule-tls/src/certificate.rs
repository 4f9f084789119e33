//! One validated certificate chain and private key.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::expiry::not_after;

/// Why a key pair cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// `tls.crt` holds no PEM certificate.
    #[error("tls.crt holds no PEM certificate")]
    NoCertificate,
    /// `tls.crt` is not valid PEM.
    #[error("tls.crt is not valid PEM: {0}")]
    CertificatePem(String),
    /// `tls.key` holds no PEM private key, or an invalid one.
    #[error("tls.key holds no usable PEM private key (PKCS#1, PKCS#8 or SEC1): {0}")]
    KeyPem(String),
    /// The key is of a type or size the TLS stack does not support.
    #[error("tls.key is not a supported RSA or ECDSA key: {0}")]
    UnsupportedKey(String),
    /// The key does not belong to the leaf certificate.
    #[error("tls.key does not match the certificate in tls.crt")]
    KeyMismatch,
    /// The leaf certificate could not be parsed.
    #[error("tls.crt's first certificate cannot be parsed: {0}")]
    BadCertificate(String),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// The crypto provider Vestibule uses for every TLS operation (ring).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain with its private key, ready to be served.
pub struct Certificate {
    key: Arc<CertifiedKey>,
    not_after: Option<i64>,
    source: String,
}

impl Certificate {
    /// Validates a PEM chain (leaf first) and PEM key; `source` names where they came from
    /// (e.g. "Secret shop/tls") in logs.
    pub fn from_pem(chain: &[u8], key: &[u8], source: impl Into<String>) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| TlsError::CertificatePem(error.to_string()))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|error| TlsError::KeyPem(error.to_string()))?;
        Self::from_der(chain, key, source.into())
    }

    /// A self-signed certificate for `names`, for clients whose name has no certificate.
    pub fn self_signed(names: &[&str]) -> Result<Self, TlsError> {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|error| TlsError::Generate(error.to_string()))?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|error| TlsError::Generate(error.to_owned()))?;
        Self::from_der(
            vec![generated.cert.der().clone()],
            key,
            "self-signed default".to_owned(),
        )
    }

    fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        source: String,
    ) -> Result<Self, TlsError> {
        let not_after = not_after(&chain[0]).map_err(TlsError::BadCertificate)?;
        let provider = rustls::crypto::ring::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
            rustls::Error::InvalidCertificate(_) => TlsError::BadCertificate(error.to_string()),
            other => TlsError::UnsupportedKey(other.to_string()),
        })?;
        Ok(Self {
            key: Arc::new(key),
            not_after: Some(not_after),
            source,
        })
    }

    /// The chain and signing key, as rustls serves them.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// The leaf certificate, DER-encoded.
    pub fn leaf(&self) -> &[u8] {
        self.key.cert.first().map_or(&[], |cert| cert.as_ref())
    }

    /// When the leaf expires, in seconds since the Unix epoch.
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }

    /// Where the key pair came from, for logs.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Certificates are equal when they serve the same chain from the same source.
impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.key.cert == other.key.cert
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("source", &self.source)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names).expect("generated");
        (generated.cert.pem(), generated.signing_key.serialize_pem())
    }

    #[test]
    fn loads_a_matching_pem_pair() {
        let (chain, key) = pem_pair(&["shop.example"]);
        let certificate =
            Certificate::from_pem(chain.as_bytes(), key.as_bytes(), "Secret a/b").expect("valid");
        assert_eq!(certificate.source(), "Secret a/b");
        assert!(certificate.not_after().is_some_and(|t| t > 1_700_000_000));
        assert!(!certificate.leaf().is_empty());
    }

    #[test]
    fn rejects_garbage_missing_and_mismatched_material() {
        let (chain, key) = pem_pair(&["a.example"]);
        let (_, other_key) = pem_pair(&["b.example"]);
        let load =
            |chain: &str, key: &str| Certificate::from_pem(chain.as_bytes(), key.as_bytes(), "t");
        assert_eq!(load("garbage", &key), Err(TlsError::NoCertificate));
        assert!(matches!(
            load(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                &key
            ),
            Err(TlsError::CertificatePem(_))
        ));
        assert!(matches!(load(&chain, "nothing"), Err(TlsError::KeyPem(_))));
        assert_eq!(load(&chain, &other_key), Err(TlsError::KeyMismatch));
        let not_a_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            load(not_a_cert, &key),
            Err(TlsError::BadCertificate(_))
        ));
    }

    #[test]
    fn generates_a_self_signed_default() {
        let certificate = Certificate::self_signed(&["vestibule.invalid"]).expect("generated");
        assert_eq!(certificate.source(), "self-signed default");
    }
}
