//! Rate limiting annotations (`limit-rps`, `limit-rpm`, `limit-connections`,
//! `limit-burst-multiplier`, `limit-whitelist`), per client address and per Ingress, as
//! ingress-nginx applies them: over-limit requests get 503.

use std::net::SocketAddr;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::annotations::{annotated_hosts, request, send_from};
use crate::support::*;

/// The statuses of `count` requests for `host` sent one after another, each on a new
/// connection from `source`.
async fn statuses(source: &str, proxy: SocketAddr, host: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let answer = send_from(source, proxy, request("GET", host, "/", &[])).await;
        statuses.push(answer.status);
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn metrics(vestibule: &Vestibule) -> String {
    let answer = get(&format!("http://{}/metrics", vestibule.admin), &[])
        .await
        .expect("metrics answer");
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[tokio::test]
async fn a_burst_over_the_rate_gets_503_and_other_ingresses_are_not_limited() {
    let (_manifests, vestibule) = annotated_hosts(&[
        (
            "limited",
            "limited.example",
            &[("limit-rps", "1"), ("limit-burst-multiplier", "2")],
        ),
        ("open", "open.example", &[]),
    ])
    .await;
    let limited = statuses("127.0.0.1", vestibule.http, "limited.example", 10).await;
    assert_eq!(
        count(&limited, 200) + count(&limited, 503),
        10,
        "{limited:?}"
    );
    assert!(
        count(&limited, 200) >= 3,
        "the burst is admitted: {limited:?}"
    );
    assert!(
        count(&limited, 503) >= 1,
        "the rest is limited: {limited:?}"
    );
    assert_eq!(limited[..3], [200, 200, 200]);
    let open = statuses("127.0.0.1", vestibule.http, "open.example", 10).await;
    assert_eq!(count(&open, 200), 10, "{open:?}");
    let text = metrics(&vestibule).await;
    assert!(
        text.contains(r#"vestibule_limited_requests_total{namespace="default",ingress="limited",limit="requests"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn whitelisted_addresses_are_not_limited() {
    let (_manifests, vestibule) = annotated_hosts(&[(
        "limited",
        "limited.example",
        &[
            ("limit-rps", "1"),
            ("limit-burst-multiplier", "1"),
            ("limit-whitelist", "10.0.0.0/8, 127.0.0.1"),
        ],
    )])
    .await;
    let whitelisted = statuses("127.0.0.1", vestibule.http, "limited.example", 10).await;
    assert_eq!(count(&whitelisted, 200), 10, "{whitelisted:?}");
    let other = statuses("127.0.0.2", vestibule.http, "limited.example", 10).await;
    assert!(count(&other, 503) >= 1, "{other:?}");
}

#[tokio::test]
async fn limiter_state_survives_a_reload_that_keeps_the_limits() {
    let (manifests, vestibule) = annotated_hosts(&[(
        "limited",
        "limited.example",
        &[("limit-rpm", "1"), ("limit-burst-multiplier", "0")],
    )])
    .await;
    let first = statuses("127.0.0.1", vestibule.http, "limited.example", 2).await;
    assert_eq!(first, [200, 503]);
    manifests.write(
        "later.yaml",
        &ingress("later", &[("later.example", "/", "Prefix", "web")]),
    );
    eventually(|| async {
        get_via(vestibule.http, "later.example", "/")
            .await
            .is_some_and(|answer| answer.status == 200)
    })
    .await;
    let after = statuses("127.0.0.1", vestibule.http, "limited.example", 1).await;
    assert_eq!(
        after,
        [503],
        "a new routing table keeps the Ingress's limiter"
    );
    let elsewhere = statuses("127.0.0.2", vestibule.http, "limited.example", 1).await;
    assert_eq!(elsewhere, [200]);
}

/// A backend that reads each request head, reports it, and answers only once `open` is true.
async fn gated_backend() -> (SocketAddr, mpsc::UnboundedReceiver<()>, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let (open, gate) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (arrived, mut gate) = (arrived.clone(), gate.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(read) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    head.extend_from_slice(&buffer[..read]);
                    if !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        continue;
                    }
                    head.clear();
                    let _ = arrived.send(());
                    if gate.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, arrivals, open)
}

#[tokio::test]
async fn a_second_concurrent_request_over_limit_connections_gets_503() {
    let (backend, mut arrivals, open) = gated_backend().await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("slow", &[backend]));
    manifests.write(
        "slow.yaml",
        &annotated(
            &ingress("slow", &[("slow.example", "/", "Prefix", "slow")]),
            &[("nginx.ingress.kubernetes.io/limit-connections", "1")],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let proxy = vestibule.http;
    let held = tokio::spawn(async move {
        send_from("127.0.0.1", proxy, request("GET", "slow.example", "/", &[])).await
    });
    arrivals
        .recv()
        .await
        .expect("the first request reached the backend");
    let second = send_from("127.0.0.1", proxy, request("GET", "slow.example", "/", &[])).await;
    assert_eq!(second.status, 503);
    open.send_replace(true);
    let first = held.await.expect("first request");
    assert_eq!((first.status, &first.body[..]), (200, &b"ok"[..]));
    let third = send_from("127.0.0.1", proxy, request("GET", "slow.example", "/", &[])).await;
    assert_eq!(third.status, 200, "the finished request no longer counts");
}

#[tokio::test]
async fn an_open_websocket_counts_against_limit_connections() {
    let (_manifests, vestibule) =
        annotated_hosts(&[("chat", "chat.example", &[("limit-connections", "1")])]).await;
    let (mut socket, response) = websocket(vestibule.http, "ws://chat.example/ws").await;
    assert_eq!(response.status(), 101);
    socket.send(Message::text("hello")).await.expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply, Message::text("hello"));
    let during = statuses("127.0.0.1", vestibule.http, "chat.example", 1).await;
    assert_eq!(
        during,
        [503],
        "the open tunnel holds the client's one connection"
    );
    socket.close(None).await.expect("close");
    drop(socket);
    eventually(|| async {
        statuses("127.0.0.1", vestibule.http, "chat.example", 1).await == [200]
    })
    .await;
}
