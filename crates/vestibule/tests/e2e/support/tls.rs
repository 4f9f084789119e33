//! TLS pieces of the end-to-end tests: generated certificates, `kubernetes.io/tls` Secrets and
//! Ingresses with `spec.tls`, and TLS clients that accept any server certificate so that tests
//! can inspect the leaf they were served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, SupportedProtocolVersion};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vestibule_tls::AnyServerCertificate;

use super::{Answer, read_answer};

/// A generated certificate and its private key.
pub struct KeyPair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER: what a client sees as the leaf.
    pub der: Vec<u8>,
}

/// A fresh self-signed certificate for `names` (`*.example` wildcards allowed).
pub fn generate(names: &[&str]) -> KeyPair {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let generated = rcgen::generate_simple_self_signed(names).expect("certificate generated");
    KeyPair {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
        der: generated.cert.der().to_vec(),
    }
}

/// A TLS server acceptor presenting `pair`, offering `alpn`.
pub fn acceptor(pair: &KeyPair, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(pair.der.clone())], key)
    .expect("certificate and key");
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A self-signed certificate for `names` that was valid during 2020 only.
pub fn generate_expired(names: &[&str]) -> KeyPair {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key generated");
    let cert = params.self_signed(&key).expect("certificate generated");
    KeyPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// A `kubernetes.io/tls` Secret (namespace `default`) holding PEM text in `stringData`.
pub fn tls_secret(name: &str, cert_pem: &str, key_pem: &str) -> String {
    let block =
        |text: &str| -> String { text.lines().map(|line| format!("    {line}\n")).collect() };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        block(cert_pem),
        block(key_pem)
    )
}

/// A `kubernetes.io/tls` Secret (namespace `default`) holding base64 in `data`, as the API
/// server stores it.
pub fn tls_secret_base64(name: &str, cert_pem: &str, key_pem: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        base64(cert_pem.as_bytes()),
        base64(key_pem.as_bytes())
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (at, byte)| {
            bits | (u32::from(*byte) << (16 - 8 * at))
        });
        for at in 0..4 {
            if at <= chunk.len() {
                out.push(char::from(
                    ALPHABET[((bits >> (18 - 6 * at)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An Ingress like [`super::ingress`] with a `spec.tls` entry per `(hosts, secretName)`; an
/// empty secret name leaves `secretName` out.
pub fn tls_ingress(
    name: &str,
    rules: &[(&str, &str, &str, &str)],
    tls: &[(&[&str], &str)],
) -> String {
    let mut text = super::ingress(name, rules);
    text.push_str("  tls:\n");
    for (hosts, secret) in tls {
        let hosts: Vec<String> = hosts.iter().map(|host| format!("\"{host}\"")).collect();
        text.push_str(&format!("  - hosts: [{}]\n", hosts.join(", ")));
        if !secret.is_empty() {
            text.push_str(&format!("    secretName: {secret}\n"));
        }
    }
    text
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration offering `alpn` and the given TLS versions (all safe ones if empty),
/// accepting any server certificate.
pub fn client_config(
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider());
    let builder = if versions.is_empty() {
        builder.with_safe_default_protocol_versions()
    } else {
        builder.with_protocol_versions(versions)
    };
    let mut config = builder
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(provider())))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// Completes a TLS handshake with `addr` using `config`, sending `sni` as the server name (no
/// SNI at all when `None`: the client then names the server by IP address).
pub async fn try_connect_with(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    sni: Option<&str>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = match sni {
        Some(sni) => ServerName::try_from(sni.to_owned()).expect("valid server name"),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let tcp = TcpStream::connect(addr).await?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    tokio::time::timeout(super::PATIENCE, handshake)
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// Completes a TLS handshake with `addr` for `sni`, offering `alpn`.
pub async fn connect(addr: SocketAddr, sni: Option<&str>, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    try_connect_with(client_config(alpn, &[]), addr, sni)
        .await
        .expect("TLS handshake")
}

/// The DER leaf certificate the server presented.
pub fn leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("server sent a certificate")
        .to_vec()
}

/// The leaf served for `sni` on a new connection.
pub async fn leaf_for(addr: SocketAddr, sni: Option<&str>) -> Vec<u8> {
    leaf(&connect(addr, sni, &[b"http/1.1"]).await)
}

/// Whether `der` is a valid certificate for `name` when trusted as its own root.
pub fn certifies(der: &[u8], name: &str) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(CertificateDer::from(der.to_vec())).is_err() {
        return false;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier");
    let name = ServerName::try_from(name.to_owned()).expect("valid server name");
    verifier
        .verify_server_cert(&CertificateDer::from(der), &[], &name, &[], UnixTime::now())
        .is_ok()
}

/// One HTTP/1.1 keep-alive connection over TLS.
pub struct Https1 {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Https1 {
    /// Speaks HTTP/1.1 on an established TLS stream.
    pub async fn over(stream: TlsStream<TcpStream>) -> Self {
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    /// GET `path` with `Host: host`; `None` if the connection failed.
    pub async fn get(&mut self, host: &str, path: &str) -> Option<Answer> {
        let request = http::Request::get(path)
            .header("host", host)
            .body(Full::default())
            .expect("request");
        self.sender.ready().await.ok()?;
        read_answer(self.sender.send_request(request).await.ok()?).await
    }
}

/// One HTTP/2 connection over TLS; clones share it.
#[derive(Clone)]
pub struct Https2 {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl Https2 {
    /// Speaks HTTP/2 on an established TLS stream (which should have negotiated `h2`).
    pub async fn over(stream: TlsStream<TcpStream>) -> Self {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    /// GET `path` with `:authority` `host` on a new stream; `None` if the connection failed.
    pub async fn get(&self, host: &str, path: &str) -> Option<Answer> {
        let request = http::Request::get(format!("https://{host}{path}"))
            .body(Full::default())
            .expect("request");
        let mut sender = self.sender.clone();
        sender.ready().await.ok()?;
        read_answer(sender.send_request(request).await.ok()?).await
    }
}

/// GET `path` on `host` over a new TLS connection with SNI `sni`, speaking HTTP/1.1.
pub async fn get_tls(addr: SocketAddr, sni: Option<&str>, host: &str, path: &str) -> Answer {
    Https1::over(connect(addr, sni, &[b"http/1.1"]).await)
        .await
        .get(host, path)
        .await
        .expect("answer over TLS")
}

/// Whether the peer closes `stream` (end of stream or an error) within `limit`; whatever it
/// sends before closing is skipped.
pub async fn closed_by_peer(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let reading = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, reading).await.is_ok()
}

/// The first bytes a real client sends: a complete TLS ClientHello for `sni`.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let name = ServerName::try_from(sni.to_owned()).expect("valid server name");
    let mut client = rustls::ClientConnection::new(client_config(&[b"h2"], &[]), name)
        .expect("client connection");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("ClientHello written");
    hello
}
