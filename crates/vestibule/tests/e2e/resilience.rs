//! Slow clients, oversized requests, dying backends and long-lived connections.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{Full, StreamBody};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

async fn closed_by_peer(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_slow_client_is_cut_off() {
    let (_manifests, vestibule, _) = single_backend(&["--client-header-timeout", "1s"]).await;
    let mut slow = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: web.example\r\nX-Slow: ")
        .await
        .expect("write");
    assert!(
        closed_by_peer(&mut slow).await,
        "the slow client was not disconnected"
    );
    let answer = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "other clients are served meanwhile");

    let mut idle = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_by_peer(&mut idle).await,
        "an idle keep-alive connection is closed after the timeout too"
    );
}

#[tokio::test]
async fn bodies_past_the_limit_get_413_while_smaller_ones_pass() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let post = |size: usize| {
        http::Request::post(format!("http://{}/upload", vestibule.http))
            .header("host", "web.example")
            .body(Full::new(Bytes::from(vec![b'x'; size])))
            .expect("request")
    };
    let small = send(&http1_client(), post(512 * 1024))
        .await
        .expect("answer");
    assert_eq!(small.status, 200);
    assert_eq!(small.json()["body_bytes"], 512 * 1024);
    let large = send(&http1_client(), post(2 * 1024 * 1024))
        .await
        .expect("answer");
    assert_eq!(large.status, 413);

    let chunks = (0..32).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![
            b'y';
            64 * 1024
        ])))
    });
    let streamed = http::Request::post(format!("http://{}/upload", vestibule.http))
        .header("host", "web.example")
        .body(StreamBody::new(futures_util::stream::iter(chunks)))
        .expect("request");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let status = client
        .request(streamed)
        .await
        .map(|response| response.status().as_u16());
    assert!(
        matches!(status, Ok(413)) || status.is_err(),
        "a chunked 2 MiB body is refused while streaming: {status:?}"
    );
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let huge = "a".repeat(40 * 1024);
    let answer = get(
        &format!("http://{}/", vestibule.http),
        &[("host", "web.example"), ("x-huge", &huge)],
    )
    .await;
    assert_eq!(answer.map(|a| a.status), Some(431));
}

#[tokio::test]
async fn a_silent_backend_times_out_with_504() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("silent", &[addr]));
    manifests.write(
        "ing.yaml",
        &ingress("silent", &[("silent.example", "/", "Prefix", "silent")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &["--proxy-read-timeout", "1s"]);
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "silent.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 504);
}

/// A backend that reads each request head and then nothing more, with a small receive buffer
/// so that a body fills it quickly.
async fn backend_that_stops_reading() -> SocketAddr {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let listener = socket.listen(16).expect("listen");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                std::future::pending::<()>().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stops_reading_the_request_gets_504() {
    const BODY: usize = 32 * 1024 * 1024;
    let stuck = backend_that_stops_reading().await;
    let web = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write(
        "svc.yaml",
        &[service("stuck", &[stuck]), service("web", &[web])].join("\n---\n"),
    );
    manifests.write(
        "ing.yaml",
        &ingress(
            "both",
            &[
                ("stuck.example", "/", "Prefix", "stuck"),
                ("web.example", "/", "Prefix", "web"),
            ],
        ),
    );
    let vestibule = Vestibule::start(
        manifests.path(),
        &["--proxy-send-timeout", "1s", "--proxy-body-size", "64m"],
    );
    vestibule.wait_ready().await;

    let stream = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let upload = tokio::spawn(async move {
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: stuck.example\r\nContent-Length: {BODY}\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..BODY / chunk.len() {
            writer.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let mut reply = Vec::new();
    let mut buffer = [0u8; 1024];
    while !reply.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buffer))
            .await
            .expect("an answer well before the read timeout")
            .expect("read");
        assert_ne!(read, 0, "closed without an answer");
        reply.extend_from_slice(&buffer[..read]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 504"), "{reply}");
    vestibule
        .wait_for_log("timed out sending the request to")
        .await;
    upload.abort();

    let answer = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "other requests are still served");
}

#[tokio::test]
async fn dot_segments_cannot_slip_onto_another_backend() {
    let public = echo_backend("public").await;
    let admin = echo_backend("admin").await;
    let manifests = Manifests::new();
    manifests.write(
        "svc.yaml",
        &[service("public", &[public]), service("admin", &[admin])].join("\n---\n"),
    );
    manifests.write(
        "ing.yaml",
        &ingress(
            "site",
            &[
                ("site.example", "/public", "Prefix", "public"),
                ("site.example", "/admin", "Exact", "admin"),
            ],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    for raw in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "//admin",
        "/public/./../admin",
    ] {
        let mut stream = tokio::net::TcpStream::connect(vestibule.http)
            .await
            .expect("connect");
        let request =
            format!("GET {raw}?q=1 HTTP/1.1\r\nHost: site.example\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.expect("read");
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.contains("\"name\": \"admin\""),
            "{raw} went elsewhere: {reply}"
        );
        assert!(
            reply.contains("\"uri\": \"/admin?q=1\""),
            "{raw}: backend saw another path: {reply}"
        );
    }
    let encoded_slash = get_via(vestibule.http, "site.example", "/public%2F..%2Fadmin")
        .await
        .expect("answer");
    assert_ne!(
        encoded_slash.backend(),
        "admin",
        "an encoded slash never separates path elements"
    );
}

/// `vestibule echo` as a process of its own, so that it can be killed like a crashed pod.
struct EchoProcess(Child);

impl EchoProcess {
    fn start(addr: SocketAddr, name: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_vestibule"))
            .args(["echo", "--listen", &addr.to_string(), "--name", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("echo starts");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn listening(addr: SocketAddr) {
    eventually(|| async { tokio::net::TcpStream::connect(addr).await.is_ok() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_costs_only_requests_in_flight_and_comes_back() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let addrs: Vec<SocketAddr> = [1u8, 2]
        .iter()
        .map(|last| SocketAddr::from(([127, 0, 0, *last], port)))
        .collect();
    let mut steady = EchoProcess::start(addrs[0], "steady");
    let mut doomed = EchoProcess::start(addrs[1], "doomed");
    for addr in &addrs {
        listening(*addr).await;
    }
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &addrs));
    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let workers = 8;
    let mut load = Vec::new();
    for _ in 0..workers {
        let (stop, failures) = (stop.clone(), failures.clone());
        let proxy = vestibule.http;
        load.push(tokio::spawn(async move {
            let client = http1_client();
            while !stop.load(Ordering::Relaxed) {
                let ok = get_with(&client, proxy, "web.example", "/")
                    .await
                    .is_some_and(|answer| answer.status == 200);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    doomed.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.expect("load worker");
    }
    let failed = failures.load(Ordering::Relaxed);
    assert!(
        failed <= workers,
        "{failed} requests failed; at most the {workers} in flight may"
    );
    vestibule
        .wait_for_log("endpoint ejected after repeated failures")
        .await;

    let _revived = EchoProcess::start(addrs[1], "revived");
    listening(addrs[1]).await;
    eventually_within(Duration::from_secs(30), || async {
        get_via(vestibule.http, "web.example", "/")
            .await
            .is_some_and(|answer| answer.backend() == "revived")
    })
    .await;
    steady.kill();
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_another_endpoint() {
    let good = echo_backend("good").await;
    let refused = SocketAddr::from(([127, 0, 0, 2], good.port()));
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[good, refused]));
    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    for _ in 0..10 {
        let answer = get_via(vestibule.http, "web.example", "/")
            .await
            .expect("answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.backend(), "good");
    }
}

#[tokio::test]
async fn a_websocket_stays_open_across_fifty_config_changes() {
    let (manifests, vestibule, backend) = single_backend(&[]).await;
    let (mut socket, _) = websocket(vestibule.http, "ws://web.example/chat").await;
    for change in 0..50 {
        let path = format!("/v{change}");
        manifests.write(
            "extra.yaml",
            &ingress("extra", &[("web.example", &path, "Exact", "web")]),
        );
        eventually(|| {
            let path = path.clone();
            async move {
                get_via(vestibule.http, "web.example", &path)
                    .await
                    .is_some_and(|answer| answer.json()["path"] == path.as_str())
            }
        })
        .await;
        socket
            .send(Message::text(format!("ping {change}")))
            .await
            .expect("send");
        let reply = socket.next().await.expect("reply").expect("message");
        assert_eq!(reply, Message::text(format!("ping {change}")));
    }
    let _ = backend;
}

async fn open_websocket(
    proxy: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    let (socket, _) = tokio_tungstenite::client_async("ws://web.example/chat", stream)
        .await
        .expect("handshake");
    socket
}

async fn ends(socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> bool {
    let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    matches!(next, Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))))
}

#[tokio::test]
async fn a_websocket_ends_when_its_route_or_endpoint_is_removed() {
    let backends = echo_backends(&["first", "second"]).await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &backends[..1]));
    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;

    let mut by_route = open_websocket(vestibule.http).await;
    manifests.write(
        "other.yaml",
        &ingress("other", &[("other.example", "/", "Prefix", "web")]),
    );
    vestibule.wait_for_log("ingresses=2").await;
    by_route
        .send(Message::text("still here"))
        .await
        .expect("send");
    let reply = by_route.next().await.expect("reply").expect("message");
    assert_eq!(
        reply,
        Message::text("still here"),
        "an unrelated change keeps it open"
    );
    manifests.remove("ing.yaml");
    assert!(
        ends(&mut by_route).await,
        "removing the route ends the WebSocket"
    );

    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    eventually(|| async {
        get_via(vestibule.http, "web.example", "/")
            .await
            .is_some_and(|answer| answer.status == 200)
    })
    .await;
    let mut by_endpoint = open_websocket(vestibule.http).await;
    manifests.write("svc.yaml", &service("web", &backends[1..]));
    assert!(
        ends(&mut by_endpoint).await,
        "removing the endpoint ends the WebSocket"
    );
}
