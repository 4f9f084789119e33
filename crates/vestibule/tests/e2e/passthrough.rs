//! `ssl-passthrough` with `--enable-ssl-passthrough`: TLS connections for a passthrough host
//! reach a real TLS backend unterminated (the client sees the backend's own certificate), other
//! server names on the same port are terminated as before, the annotation is ignored without
//! the flag, hostile first bytes are closed, and relayed connections outlive unrelated changes.
//! `/debug/routes` and `vestibule routes` show the passthrough hosts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::debug_routes::{
    backend, debug_routes, endpoint_addresses, routes_command, without_health,
};
use crate::support::tls::*;
use crate::support::*;

const PASSTHROUGH: (&str, &str) = ("nginx.ingress.kubernetes.io/ssl-passthrough", "true");

/// An HTTP/1.1 backend over TLS with its own certificate `pair`; it answers as `name`, with the
/// server name it was asked for.
async fn tls_backend(name: &'static str, pair: &KeyPair) -> SocketAddr {
    let acceptor = acceptor(pair, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = stream.get_ref().1.server_name().map(str::to_owned);
                let service = service_fn(move |_: http::Request<Incoming>| {
                    let body = serde_json::json!({"name": name, "sni": sni}).to_string();
                    async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `pass.example` (annotated, served by a TLS backend with its own certificate) and the TLS
/// host `other.example` (terminated by Vestibule) on one Vestibule started with `flags`.
struct Site {
    manifests: Manifests,
    vestibule: Vestibule,
    /// The endpoint of `pass`, the TLS backend.
    pass: SocketAddr,
    backend_certificate: KeyPair,
    other_certificate: KeyPair,
}

async fn start_site(flags: &[&str]) -> Site {
    let backend_certificate = generate(&["pass.example"]);
    let other_certificate = generate(&["other.example"]);
    let pass = tls_backend("pass-tls", &backend_certificate).await;
    let manifests = Manifests::new();
    manifests.write("pass-svc.yaml", &service("pass", &[pass]));
    manifests.write(
        "other-svc.yaml",
        &service("other", &[echo_backend("other").await]),
    );
    manifests.write(
        "other-secret.yaml",
        &tls_secret(
            "other-tls",
            &other_certificate.cert_pem,
            &other_certificate.key_pem,
        ),
    );
    manifests.write(
        "pass.yaml",
        &annotated(
            &ingress("pass", &[("pass.example", "/", "Prefix", "pass")]),
            &[PASSTHROUGH],
        ),
    );
    manifests.write(
        "other.yaml",
        &tls_ingress(
            "other",
            &[("other.example", "/", "Prefix", "other")],
            &[(&["other.example"], "other-tls")],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), flags);
    vestibule.wait_ready().await;
    Site {
        manifests,
        vestibule,
        pass,
        backend_certificate,
        other_certificate,
    }
}

#[tokio::test]
async fn passthrough_hosts_reach_the_backends_own_tls() {
    let site = start_site(&["--enable-ssl-passthrough"]).await;
    let https = site.vestibule.https;

    let stream = connect(https, Some("pass.example"), &[b"http/1.1"]).await;
    assert!(
        leaf(&stream) == site.backend_certificate.der,
        "the client sees the backend's own certificate"
    );
    let answer = Https1::over(stream)
        .await
        .get("pass.example", "/")
        .await
        .expect("answer from the backend");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.backend(), "pass-tls");
    assert_eq!(answer.json()["sni"], "pass.example");
    assert!(leaf_for(https, Some("PASS.example")).await == site.backend_certificate.der);

    assert!(leaf_for(https, Some("other.example")).await == site.other_certificate.der);
    let answer = get_tls(https, Some("other.example"), "other.example", "/").await;
    assert_eq!(
        answer.backend(),
        "other",
        "other names are terminated as before"
    );
    assert!(leaf_for(https, Some("unknown.example")).await != site.backend_certificate.der);

    let metrics = get(&format!("http://{}/metrics", site.vestibule.admin), &[])
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(
            r#"vestibule_passthrough_connections_total{namespace="default",ingress="pass",service="pass"} 2"#
        ),
        "{text}"
    );

    let view = debug_routes(&site.vestibule).await;
    assert_eq!(
        view["passthrough"],
        json!([{"host": "pass.example", "backend": backend("pass"), "ingress": "default/pass"}]),
        "{view:#}"
    );
    assert_eq!(
        endpoint_addresses(&view, "default/pass:80"),
        [site.pass.to_string()]
    );
}

#[tokio::test]
async fn the_routes_command_prints_the_passthrough_hosts_debug_routes_serves() {
    let flag = "--enable-ssl-passthrough";
    let site = start_site(&[flag]).await;
    let output = routes_command(site.manifests.path(), &[flag]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        printed["passthrough"][0]["host"], "pass.example",
        "{printed:#}"
    );
    let served = debug_routes(&site.vestibule).await;
    assert_eq!(without_health(printed), without_health(served));
}

#[tokio::test]
async fn without_the_flag_the_annotation_is_ignored_with_a_warning() {
    let site = start_site(&[]).await;
    site.vestibule
        .wait_for_log("ssl-passthrough is ignored: Vestibule runs without --enable-ssl-passthrough")
        .await;
    let served = leaf_for(site.vestibule.https, Some("pass.example")).await;
    assert!(served != site.backend_certificate.der);
    assert!(
        certifies(&served, "vestibule.invalid"),
        "Vestibule's own default certificate"
    );
    let view = debug_routes(&site.vestibule).await;
    assert_eq!(view["passthrough"], json!([]), "{view:#}");
}

#[tokio::test]
async fn garbage_and_truncated_hellos_are_closed() {
    let site = start_site(&["--enable-ssl-passthrough", "--tls-handshake-timeout", "1s"]).await;
    let https = site.vestibule.https;
    let hello = client_hello("pass.example");
    let inputs: [(&str, &[u8], bool); 4] = [
        (
            "plain HTTP",
            b"GET / HTTP/1.1\r\nhost: pass.example\r\n\r\n",
            false,
        ),
        (
            "a broken record header",
            b"\x16\x03\x01\xff\xff\x01\x00",
            false,
        ),
        (
            "a truncated ClientHello, then end of stream",
            &hello[..hello.len() / 2],
            true,
        ),
        (
            "a truncated ClientHello, then silence",
            &hello[..hello.len() / 2],
            false,
        ),
    ];
    for (what, bytes, end) in inputs {
        let mut stream = TcpStream::connect(https).await.expect("connect");
        stream.write_all(bytes).await.expect("written");
        if end {
            stream.shutdown().await.expect("shut down");
        }
        assert!(closed_by_peer(&mut stream, PATIENCE).await, "{what}");
    }
    let answer = Https1::over(connect(https, Some("pass.example"), &[b"http/1.1"]).await)
        .await
        .get("pass.example", "/")
        .await
        .expect("still relayed");
    assert_eq!(answer.backend(), "pass-tls");
}

#[tokio::test]
async fn relayed_connections_outlive_unrelated_changes_and_end_with_their_host() {
    let site = start_site(&["--enable-ssl-passthrough"]).await;
    let https = site.vestibule.https;
    let mut relayed =
        Https1::over(connect(https, Some("pass.example"), &[b"http/1.1"]).await).await;
    assert!(relayed.get("pass.example", "/").await.is_some());

    site.manifests.write(
        "more.yaml",
        &ingress("more", &[("more.example", "/", "Prefix", "other")]),
    );
    eventually(|| async {
        get_via(site.vestibule.http, "more.example", "/")
            .await
            .is_some_and(|answer| answer.status == 200)
    })
    .await;
    let answer = relayed.get("pass.example", "/").await;
    assert_eq!(
        answer.map(|answer| answer.backend()).as_deref(),
        Some("pass-tls")
    );

    site.manifests.remove("pass.yaml");
    tokio::time::timeout(PATIENCE, async {
        while relayed.get("pass.example", "/").await.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the relayed connection ends when its host is removed");
    assert!(leaf_for(https, Some("pass.example")).await != site.backend_certificate.der);
}
