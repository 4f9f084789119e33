//! `backend-protocol`: HTTPS backends over TLS (no certificate check, no SNI), gRPC backends
//! over HTTP/2 in clear and over TLS with their trailers passed through, and the proxy's own
//! failures of gRPC calls answered in gRPC.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::tls::{acceptor, generate};
use crate::support::*;

/// A TLS acceptor with a fresh self-signed certificate, offering `alpn`.
pub(crate) fn backend_acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    acceptor(&generate(&["backend.local"]), alpn)
}

/// An HTTP/1.1 backend over TLS that answers with what it saw of the connection: the ALPN
/// protocol the proxy chose, and the server name it sent (if any).
async fn https_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let acceptor = backend_acceptor(&[b"h2", b"http/1.1"]);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let session = stream.get_ref().1;
                let seen = serde_json::json!({
                    "tls": true,
                    "alpn": session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                    "sni": session.server_name(),
                })
                .to_string();
                let service = service_fn(move |request: http::Request<Incoming>| {
                    let mut seen: serde_json::Value = serde_json::from_str(&seen).expect("JSON");
                    seen["host"] = request.headers()["host"].to_str().unwrap_or("").into();
                    seen["path"] = request.uri().path().into();
                    async move {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                            seen.to_string(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One gRPC message frame: uncompressed, length-prefixed.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).expect("small message"));
    framed.put_slice(message);
    framed.freeze()
}

/// A unary gRPC method that greets the message it is sent, with `grpc-status: 0` in the
/// trailers, and reports in headers what it saw; `/slow.Service/Wait` never answers in time.
async fn greet(
    request: http::Request<Incoming>,
) -> Result<http::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>, Infallible> {
    let saw = |name: &str| {
        request
            .headers()
            .get(name)
            .cloned()
            .unwrap_or(http::HeaderValue::from_static("-"))
    };
    let (te, content_type, host) = (saw("te"), saw("content-type"), saw("host"));
    let scheme = request.uri().scheme_str().unwrap_or("-").to_owned();
    let version = format!("{:?}", request.version());
    if request.uri().path() == "/slow.Service/Wait" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let body = request.into_body().collect().await.expect("request body");
    let body = body.to_bytes();
    let message = body.get(5..).unwrap_or_default();
    let mut reply = b"hello ".to_vec();
    reply.extend_from_slice(message);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = Full::new(frame(&reply))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let response = http::Response::builder()
        .header("content-type", "application/grpc")
        .header("x-saw-te", te)
        .header("x-saw-content-type", content_type)
        .header("x-saw-host", host)
        .header("x-saw-scheme", scheme)
        .header("x-saw-version", version)
        .body(body)
        .expect("response");
    Ok(response)
}

/// A gRPC backend speaking HTTP/2 only: in clear, or over TLS (ALPN `h2`) when `tls`.
async fn grpc_backend(tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let acceptor = tls.then(|| backend_acceptor(&[b"h2"]));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                let _ = match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        builder
                            .serve_connection(TokioIo::new(stream), service_fn(greet))
                            .await
                    }
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service_fn(greet))
                            .await
                    }
                };
            });
        }
    });
    addr
}

/// A gRPC call's answer: status, headers, body and trailers.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
    trailers: Option<http::HeaderMap>,
}

/// Calls `path` on `host` through the proxy over cleartext HTTP/2 with `message`.
async fn call(proxy: SocketAddr, host: &str, path: &str, message: &[u8]) -> Reply {
    let stream = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{host}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frame(message)))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("whole body");
    let trailers = collected.trailers().cloned();
    Reply {
        status,
        headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// A name (of the Ingress, its Service and its host `NAME.example`), the Service's endpoint
/// (none for a Service without endpoints), and the Ingress's annotations without prefix.
type Route<'a> = (&'a str, Option<SocketAddr>, &'a [(&'a str, &'a str)]);

/// Vestibule with one Ingress and Service per [`Route`].
async fn vestibule_for(routes: &[Route<'_>]) -> (Manifests, Vestibule) {
    let manifests = Manifests::new();
    for (name, backend, annotations) in routes {
        let endpoints: Vec<SocketAddr> = backend.iter().copied().collect();
        manifests.write(&format!("{name}-svc.yaml"), &service(name, &endpoints));
        let host = format!("{name}.example");
        manifests.write(
            &format!("{name}.yaml"),
            &nginx_annotated(&ingress(name, &[(&host, "/", "Prefix", name)]), annotations),
        );
    }
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

/// A backend that accepts connections and never says anything.
pub(crate) async fn silent_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test]
async fn https_backends_are_reached_over_tls_without_sni() {
    let backend = https_backend().await;
    let silent = silent_backend().await;
    let (_manifests, vestibule) = vestibule_for(&[
        ("secure", Some(backend), &[("backend-protocol", "HTTPS")]),
        ("plain", Some(backend), &[]),
        ("auto", Some(backend), &[("backend-protocol", "AUTO_HTTP")]),
        (
            "silent",
            Some(silent),
            &[
                ("backend-protocol", "HTTPS"),
                ("proxy-connect-timeout", "1"),
            ],
        ),
    ])
    .await;
    let answer = get_via(vestibule.http, "secure.example", "/a/b")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let seen = answer.json();
    assert_eq!(seen["tls"], true);
    assert_eq!(seen["alpn"], "http/1.1");
    assert_eq!(seen["sni"], serde_json::Value::Null);
    assert_eq!(seen["host"], "secure.example");
    assert_eq!(seen["path"], "/a/b");
    let plain = get_via(vestibule.http, "plain.example", "/")
        .await
        .expect("answer");
    assert_eq!(
        plain.status, 502,
        "a TLS endpoint does not speak HTTP in clear"
    );
    let auto = tls::get_tls(vestibule.https, Some("auto.example"), "auto.example", "/").await;
    assert_eq!(
        auto.json()["tls"],
        true,
        "AUTO_HTTP uses TLS for HTTPS clients"
    );
    let auto = get_via(vestibule.http, "auto.example", "/")
        .await
        .expect("answer");
    assert_eq!(auto.status, 502, "and HTTP for HTTP clients");
    let stalled = get_via(vestibule.http, "silent.example", "/")
        .await
        .expect("answer");
    assert_eq!(
        stalled.status, 504,
        "the connect timeout covers the handshake"
    );
}

#[tokio::test]
async fn grpc_calls_pass_through_with_their_trailers() {
    let clear = grpc_backend(false).await;
    let secure = grpc_backend(true).await;
    let (_manifests, vestibule) = vestibule_for(&[
        ("grpc", Some(clear), &[("backend-protocol", "GRPC")]),
        ("grpcs", Some(secure), &[("backend-protocol", "grpcs")]),
    ])
    .await;
    for (host, scheme) in [("grpc.example", "http"), ("grpcs.example", "https")] {
        let reply = call(vestibule.http, host, "/greeter.Greeter/Hello", b"world").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["content-type"], "application/grpc");
        assert_eq!(reply.body, frame(b"hello world"), "{host}");
        let trailers = reply.trailers.expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(reply.headers["x-saw-version"], "HTTP/2.0");
        assert_eq!(reply.headers["x-saw-scheme"], scheme);
        assert_eq!(reply.headers["x-saw-te"], "trailers");
        assert_eq!(reply.headers["x-saw-content-type"], "application/grpc");
        assert_eq!(reply.headers["x-saw-host"], host);
    }
}

#[tokio::test]
async fn failed_grpc_calls_are_answered_in_grpc() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let down = closed.local_addr().expect("address");
    drop(closed);
    let slow = grpc_backend(false).await;
    let (_manifests, vestibule) = vestibule_for(&[
        ("down", Some(down), &[("backend-protocol", "GRPC")]),
        ("empty", None, &[("backend-protocol", "GRPC")]),
        (
            "slow",
            Some(slow),
            &[("backend-protocol", "GRPC"), ("proxy-read-timeout", "1")],
        ),
    ])
    .await;
    for (host, path, code, message) in [
        (
            "down.example",
            "/greeter.Greeter/Hello",
            "14",
            "502 Bad Gateway",
        ),
        (
            "empty.example",
            "/greeter.Greeter/Hello",
            "14",
            "503 Service Unavailable",
        ),
        (
            "slow.example",
            "/slow.Service/Wait",
            "4",
            "504 Gateway Timeout",
        ),
    ] {
        let reply = call(vestibule.http, host, path, b"x").await;
        assert_eq!(reply.status, 200, "{host}");
        assert_eq!(reply.headers["content-type"], "application/grpc");
        assert_eq!(reply.headers["grpc-status"], code, "{host}");
        assert_eq!(reply.headers["grpc-message"], message, "{host}");
        assert!(reply.body.is_empty());
        assert!(reply.trailers.is_none(), "a Trailers-Only answer");
    }
    let plain = get_via(vestibule.http, "down.example", "/")
        .await
        .expect("answer");
    assert_eq!(
        plain.status, 502,
        "requests that are not gRPC calls get HTTP errors"
    );
}
