use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;
use crate::crypto_provider;

/// The first bytes rustls sends as a client connecting to `server`, offering `alpn`.
fn rustls_hello(
    server: ServerName<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Vec<u8> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut client = ClientConnection::new(Arc::new(config), server).expect("client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("ClientHello written");
    hello
}

fn hello_for(name: &str) -> Vec<u8> {
    let server = ServerName::try_from(name.to_owned()).expect("server name");
    rustls_hello(server, rustls::ALL_VERSIONS)
}

/// `hello` with its one handshake record split into records of at most `size` bytes.
fn fragmented(hello: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in hello[5..].chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16::try_from(chunk.len()).expect("small").to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn complete(name: &str) -> ClientHello {
    ClientHello::Complete(Some(name.to_owned()))
}

#[test]
fn reads_the_server_name_rustls_sends() {
    assert_eq!(
        read_client_hello(&hello_for("pass.example")),
        complete("pass.example")
    );
    assert_eq!(
        read_client_hello(&hello_for("Mixed.Example")),
        complete("mixed.example")
    );
    let tls12 = ServerName::try_from("old.example").expect("server name");
    assert_eq!(
        read_client_hello(&rustls_hello(tls12, &[&rustls::version::TLS12])),
        complete("old.example")
    );
}

#[test]
fn a_hello_without_a_host_name_is_complete_without_one() {
    let by_address = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    assert_eq!(
        read_client_hello(&rustls_hello(by_address, rustls::ALL_VERSIONS)),
        ClientHello::Complete(None)
    );
}

#[test]
fn every_prefix_is_incomplete_and_says_how_much_is_needed() {
    let hello = hello_for("pass.example");
    for length in 0..hello.len() {
        match read_client_hello(&hello[..length]) {
            ClientHello::Incomplete(needed) => {
                assert!(
                    needed > length && needed <= hello.len(),
                    "{length}: {needed}"
                )
            }
            other => panic!("prefix of {length} bytes: {other:?}"),
        }
    }
    let mut longer = hello.clone();
    longer.extend_from_slice(b"application data follows");
    assert_eq!(read_client_hello(&longer), complete("pass.example"));
}

#[test]
fn hellos_spread_over_several_records_are_reassembled() {
    let hello = hello_for("pass.example");
    assert_eq!(
        read_client_hello(&fragmented(&hello, 2)),
        ClientHello::Invalid,
        "too many records"
    );
    let split = fragmented(&hello, 100);
    assert_eq!(read_client_hello(&split), complete("pass.example"));
    for length in 0..split.len() {
        assert!(
            matches!(
                read_client_hello(&split[..length]),
                ClientHello::Incomplete(_)
            ),
            "{length}"
        );
    }
}

#[test]
fn garbage_is_invalid_as_soon_as_it_shows() {
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"\x16\x03\x01\x00",
        b"\x17\x03\x03\x00\x10",
        b"\x16\x02\x00\x00\x10",
        b"\x16\x03\x01\x00\x00",
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
        b"\x16\x03\x01\x00\x01\x02",
        b"\x16\x03\x01\x00\x04\x01\xff\xff\xff",
        b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",
    ] {
        let verdict = read_client_hello(garbage);
        assert!(
            verdict == ClientHello::Invalid || garbage.len() < 5,
            "{garbage:?}: {verdict:?}"
        );
    }
    assert_eq!(
        read_client_hello(b"GET / HTTP/1.1\r\n\r\n"),
        ClientHello::Invalid
    );
    assert_eq!(
        read_client_hello(b"\x16\x03\x01\x00\x01\x02"),
        ClientHello::Invalid
    );
}

#[test]
fn corrupted_lengths_never_read_past_the_input() {
    let hello = hello_for("pass.example");
    for at in 0..hello.len() {
        for value in [0x00, 0x01, 0x7f, 0xff] {
            let mut corrupted = hello.clone();
            corrupted[at] = value;
            let _ = read_client_hello(&corrupted);
            let _ = read_client_hello(&corrupted[..at]);
        }
    }
}

#[test]
fn host_names_are_checked() {
    assert_eq!(
        valid_host(b"pass.example."),
        Some("pass.example".to_owned())
    );
    assert_eq!(
        valid_host(b"A_b-c.example"),
        Some("a_b-c.example".to_owned())
    );
    assert_eq!(valid_host(b""), None);
    assert_eq!(valid_host(b"."), None);
    assert_eq!(valid_host(b"bad name"), None);
    assert_eq!(valid_host(b"nul\0.example"), None);
    assert_eq!(valid_host("é.example".as_bytes()), None);
    assert_eq!(valid_host(&[b'a'; 254]), None);
    assert_eq!(valid_host(&[b'a'; 64]), None);
    assert_eq!(valid_host(b"a.."), None);
    assert_eq!(valid_host(b".a"), None);
    assert_eq!(valid_host(b"a..b"), None);
}
