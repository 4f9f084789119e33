//! Ambiguous or malformed requests are answered 400 and never reach a backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

/// A backend that answers nothing and counts the bytes it receives.
async fn sentinel() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    counter.fetch_add(read, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, received)
}

async fn raw_exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

const CORPUS: &[(&str, &[u8])] = &[
    ("CL.TE", b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED"),
    ("TE.CL", b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
    ("TE.TE with a second TE", b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n"),
    ("TE with space before colon", b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    ("TE xchunked", b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("TE not final chunked", b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    ("duplicate CL", b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ("CL list", b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    ("CL with sign", b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: +5\r\n\r\nhello"),
    ("CL hex", b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 0x5\r\n\r\nhello"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: web.example\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("space in header name", b"GET / HTTP/1.1\r\nHost: web.example\r\nX Bad: a\r\n\r\n"),
    ("control character in header name", b"GET / HTTP/1.1\r\nHost: web.example\r\nX\x01Bad: a\r\n\r\n"),
    ("bare LF", b"GET / HTTP/1.1\nHost: web.example\n\n"),
    ("bare LF inside the head", b"GET / HTTP/1.1\r\nX-A: a\nTransfer-Encoding: chunked\r\nHost: web.example\r\n\r\n"),
    ("CR in header value", b"GET / HTTP/1.1\r\nHost: web.example\r\nX-Injected: a\rTransfer-Encoding: chunked\r\n\r\n"),
    ("NUL in header value", b"GET / HTTP/1.1\r\nHost: web.example\r\nX-Nul: a\x00b\r\n\r\n"),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: web.example\r\nHost: evil.example\r\n\r\n"),
    ("absolute form against Host", b"GET http://evil.example/ HTTP/1.1\r\nHost: web.example\r\n\r\n"),
];

#[tokio::test]
async fn the_smuggling_corpus_is_refused_before_any_backend() {
    let (backend, received) = sentinel().await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    manifests.write(
        "ing.yaml",
        &ingress(
            "web",
            &[
                ("web.example", "/", "Prefix", "web"),
                ("evil.example", "/", "Prefix", "web"),
            ],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let mut accepted = Vec::new();
    for (name, request) in CORPUS {
        let reply = raw_exchange(vestibule.http, request).await;
        if !reply.starts_with("HTTP/1.1 400") {
            accepted.push(format!(
                "{name}: {:?}",
                reply.lines().next().unwrap_or("(closed)")
            ));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(accepted.is_empty(), "not refused with 400: {accepted:#?}");
    assert_eq!(received.load(Ordering::SeqCst), 0, "a backend saw bytes");
}
