//! Certificate material for TLS termination.
//!
//! Key pairs come from `kubernetes.io/tls` Secrets as PEM: a certificate chain and a PKCS#1,
//! PKCS#8 or SEC1 key, RSA or ECDSA. [`Certificate::from_pem`] validates them (the key must match
//! the leaf) and reads the leaf's expiry. A [`TlsTable`] maps SNI names to certificates.
//! Everything here is pure computation: the translator builds tables, the data plane serves them.

mod certificate;
mod expiry;
mod table;

pub use certificate::{Certificate, TlsError, crypto_provider};
pub use table::TlsTable;

pub use rustls;
