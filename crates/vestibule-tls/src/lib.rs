//! Certificate material for TLS termination.
//!
//! Key pairs come from `kubernetes.io/tls` Secrets as PEM: a certificate chain and a PKCS#1,
//! PKCS#8 or SEC1 key, RSA or ECDSA. [`Certificate::from_pem`] validates them (the key must match
//! the leaf) and reads the leaf's expiry. A [`TlsTable`] maps SNI names to certificates.
//! [`read_client_hello`] finds the server name in a connection's first bytes, for SSL passthrough.
//! [`AnyServerCertificate`] is the client side's verifier for servers whose certificate is not
//! checked (TLS to endpoints).
//! Everything here is pure computation: the translator builds tables, the data plane serves them.

mod certificate;
mod client_hello;
mod expiry;
mod table;
mod verifier;

pub use certificate::{Certificate, TlsError, crypto_provider};
pub use client_hello::{ClientHello, MAX_HELLO_BYTES, MAX_HELLO_RECORDS, read_client_hello};
pub use table::TlsTable;
pub use verifier::AnyServerCertificate;

pub use rustls;
