//! What a request and its response look like on the other side of the proxy.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

async fn one_backend() -> (Manifests, Vestibule) {
    one_backend_with(&[]).await
}

async fn one_backend_with(extra: &[&str]) -> (Manifests, Vestibule) {
    let (manifests, vestibule, _) = single_backend(extra).await;
    (manifests, vestibule)
}

#[tokio::test]
async fn forwarding_headers_are_set_and_hop_by_hop_headers_removed() {
    let (_manifests, vestibule) = one_backend().await;
    let answer = get(
        &format!("http://{}/headers", vestibule.http),
        &[
            ("host", "web.example:8080"),
            ("x-forwarded-for", "203.0.113.9"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "kept"),
        ],
    )
    .await
    .expect("answer");
    assert_eq!(answer.status, 200);
    let headers = &answer.json()["headers"];
    assert_eq!(headers["host"], "web.example:8080");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "web.example:8080");
    assert_eq!(
        headers["x-forwarded-port"],
        vestibule.http.port().to_string()
    );
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(
        headers["x-request-id"].as_str().map(str::len),
        Some(32),
        "{headers}"
    );
    for hop in ["x-hop", "keep-alive"] {
        assert!(headers.get(hop).is_none(), "{hop} was forwarded");
    }
    assert_eq!(answer.headers["server"], "vestibule");
    assert!(answer.headers.contains_key("date"));
    assert_eq!(answer.headers["x-echo-name"], "web");
}

#[tokio::test]
async fn a_client_request_id_is_passed_on() {
    let (_manifests, vestibule) = one_backend().await;
    let answer = get(
        &format!("http://{}/", vestibule.http),
        &[("host", "web.example"), ("x-request-id", "trace-me")],
    )
    .await
    .expect("answer");
    assert_eq!(answer.json()["headers"]["x-request-id"], "trace-me");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let (_manifests, vestibule) = one_backend_with(&["--proxy-body-size", "0"]).await;
    let size = 24 * 1024 * 1024;
    let download = get_via(vestibule.http, "web.example", &format!("/big?bytes={size}"))
        .await
        .expect("answer");
    assert_eq!(download.status, 200);
    assert_eq!(download.body.len(), size);
    assert!(
        download
            .body
            .iter()
            .enumerate()
            .all(|(i, byte)| *byte == b'a' + (i % 26) as u8)
    );

    let upload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let request = http::Request::post(format!("http://{}/up?echo=body", vestibule.http))
        .header("host", "web.example")
        .body(Full::new(Bytes::from(upload.clone())))
        .expect("request");
    let echoed = send(&http1_client(), request).await.expect("answer");
    assert_eq!(echoed.status, 200);
    assert!(
        echoed.body == upload,
        "body changed in transit over HTTP/1.1"
    );

    let request = http::Request::post("http://web.example/up?echo=body")
        .body(Full::new(Bytes::from(upload.clone())))
        .expect("request");
    let connection = Http2::connect(vestibule.http).await;
    let echoed = connection.send(request).await.expect("answer");
    assert_eq!(echoed.status, 200);
    assert!(echoed.body == upload, "body changed in transit over HTTP/2");
}

#[tokio::test]
async fn websockets_tunnel_through() {
    let (_manifests, vestibule) = one_backend().await;
    let (mut socket, response) = websocket(vestibule.http, "ws://web.example/chat").await;
    assert_eq!(response.status(), 101);
    for text in ["hello", "through", "vestibule"] {
        socket.send(Message::text(text)).await.expect("send");
        let reply = socket.next().await.expect("reply").expect("message");
        assert_eq!(reply, Message::text(text));
    }
    socket
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply, Message::binary(vec![0u8, 1, 2, 255]));
    socket.close(None).await.expect("close");
}

#[tokio::test]
async fn a_refused_backend_answers_502() {
    let unused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("gone", &[unused]));
    manifests.write(
        "ing.yaml",
        &ingress("gone", &[("gone.example", "/", "Prefix", "gone")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "gone.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 502);
    assert_eq!(answer.body.as_ref(), b"502 Bad Gateway\n");
}

#[tokio::test]
async fn http11_without_host_is_refused() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (_manifests, vestibule) = one_backend().await;
    let mut stream = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}
