//! Tests against a real server on a loopback socket with real clients.

use super::*;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// Starts a server named `name` on an ephemeral port and returns its address.
async fn start(name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    tokio::spawn(serve(listener, name.to_owned()));
    addr
}

/// An HTTP/1.1 client.
fn h1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge client.
fn h2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// The pattern byte at position `i`.
fn pattern_at(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

/// Sends a 3 MiB POST and checks the JSON description.
async fn check_json_post(client: Client<HttpConnector, Full<Bytes>>, version: &str) {
    let addr = start("echo-1").await;
    let body = vec![7u8; 3 * 1024 * 1024];
    let req = Request::post(format!("http://{addr}/some/path?a=1&b=two"))
        .header("x-custom", "hello")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let res = client.request(req).await.expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-echo-name"], "echo-1");
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(v["name"], "echo-1");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/some/path");
    assert_eq!(v["uri"], "/some/path?a=1&b=two");
    assert_eq!(v["version"], version);
    assert_eq!(v["host"], addr.to_string());
    assert_eq!(v["headers"]["x-custom"], "hello");
    assert_eq!(v["headers"]["x-multi"], json!(["one", "two"]));
    assert_eq!(v["body_bytes"], 3 * 1024 * 1024);
    let remote = v["remote_addr"].as_str().expect("remote_addr");
    assert!(remote.starts_with("127.0.0.1:"), "{remote}");
}

#[tokio::test]
async fn json_answer_http1() {
    check_json_post(h1_client(), "HTTP/1.1").await;
}

#[tokio::test]
async fn json_answer_http2() {
    check_json_post(h2_client(), "HTTP/2.0").await;
}

#[tokio::test]
async fn bytes_streams_pattern() {
    const N: usize = 5_000_000;
    let addr = start("b").await;
    for client in [h1_client(), h2_client()] {
        let uri = format!("http://{addr}/x?bytes={N}");
        let res = client
            .get(uri.parse().expect("uri"))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        assert_eq!(
            res.headers()[header::CONTENT_LENGTH],
            N.to_string().as_str()
        );
        let mut body = res.into_body();
        let mut total = 0usize;
        let mut max_frame = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("frame");
            if let Some(data) = frame.data_ref() {
                for (j, b) in data.iter().enumerate() {
                    assert_eq!(*b, pattern_at(total + j), "byte {}", total + j);
                }
                total += data.len();
                max_frame = max_frame.max(data.len());
            }
        }
        assert_eq!(total, N);
        assert!(max_frame < N, "body arrived in one piece");
    }
}

#[tokio::test]
async fn bytes_zero_and_status_combined() {
    let addr = start("b").await;
    let client = h1_client();
    let res = client
        .get(format!("http://{addr}/?bytes=0").parse().expect("uri"))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .is_empty()
    );

    let res = client
        .get(
            format!("http://{addr}/?status=503&bytes=30")
                .parse()
                .expect("uri"),
        )
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&bytes[..], b"abcdefghijklmnopqrstuvwxyzabcd");
}

#[tokio::test]
async fn echo_body_round_trips() {
    let addr = start("e").await;
    let body: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    for client in [h1_client(), h2_client()] {
        let req = Request::put(format!("http://{addr}/upload?echo=body"))
            .header(header::CONTENT_TYPE, "application/x-test")
            .body(Full::new(Bytes::from(body.clone())))
            .expect("request");
        let res = client.request(req).await.expect("response");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/x-test");
        assert_eq!(res.headers()["x-echo-name"], "e");
        let got = res.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(got.len(), body.len());
        assert!(got[..] == body[..], "echoed body differs");
    }
}

#[tokio::test]
async fn status_parameter() {
    let addr = start("s").await;
    let client = h1_client();
    let res = client
        .get(
            format!("http://{addr}/teapot?status=418")
                .parse()
                .expect("uri"),
        )
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(res.headers()["x-echo-name"], "s");
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(v["uri"], "/teapot?status=418");

    for bad in [
        "status=101",
        "status=600",
        "status=abc",
        "status=",
        "bytes=-1",
        "bytes=1073741825",
        "echo=nope",
    ] {
        let res = client
            .get(format!("http://{addr}/?{bad}").parse().expect("uri"))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(res.headers()["x-echo-name"], "s");
    }
}

#[tokio::test]
async fn websocket_echo() {
    let addr = start("ws").await;
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut ws, res) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
        .await
        .expect("handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(res.headers()["x-echo-name"], "ws");

    ws.send(Message::text("hello")).await.expect("send text");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok"),
        Message::text("hello")
    );

    let binary = Bytes::from_static(&[0, 1, 2, 255]);
    ws.send(Message::binary(binary.clone()))
        .await
        .expect("send binary");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok"),
        Message::binary(binary)
    );

    ws.send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .expect("send ping");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok"),
        Message::Pong(Bytes::from_static(b"p"))
    );

    ws.close(None).await.expect("close");
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("unexpected message after close: {other:?}"),
            Err(_) => break,
        }
    }
}

#[tokio::test]
async fn websocket_bad_key() {
    let addr = start("ws").await;
    let client = h1_client();
    for key in [None, Some("short"), Some("!!!!!!!!!!!!!!!!!!!!!!==")] {
        let mut req = Request::get(format!("http://{addr}/ws"))
            .header(header::UPGRADE, "WebSocket")
            .header(header::CONNECTION, "upgrade")
            .header(header::SEC_WEBSOCKET_VERSION, "13");
        if let Some(key) = key {
            req = req.header(header::SEC_WEBSOCKET_KEY, key);
        }
        let res = client
            .request(req.body(Full::new(Bytes::new())).expect("request"))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{key:?}");
    }
}

#[test]
fn query_parsing() {
    assert_eq!(parse_query(None), Ok(Params::default()));
    assert_eq!(
        parse_query(Some("x&&status=204&bytes=10&echo=body&other=1")),
        Ok(Params {
            status: Some(StatusCode::NO_CONTENT),
            bytes: Some(10),
            echo_body: true,
        })
    );
    assert!(parse_query(Some("status=199")).is_err());
    assert!(parse_query(Some("status=70000")).is_err());
    assert!(parse_query(Some("bytes")).is_err());
}

#[test]
fn websocket_key_validation() {
    assert!(is_valid_websocket_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(!is_valid_websocket_key(b"dGhlIHNhbXBsZSBub25jZQ="));
    assert!(!is_valid_websocket_key(b""));
    assert_eq!(
        derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}
