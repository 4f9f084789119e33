//! HTTP/2 abuse patterns end the abusive connection and cost other clients nothing.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_the_connection_closed() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let stream = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(stream).await.expect("handshake");
    tokio::spawn(connection);
    let mut cut_off = false;
    for _ in 0..20_000 {
        let request = http::Request::get("http://web.example/")
            .body(())
            .expect("request");
        let sent = match client.ready().await {
            Ok(ready) => {
                client = ready;
                client.send_request(request, true)
            }
            Err(_) => {
                cut_off = true;
                break;
            }
        };
        match sent {
            Ok((_response, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => {
                cut_off = true;
                break;
            }
        }
    }
    assert!(cut_off, "20,000 opened-and-reset streams were all accepted");
    let answer = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "other clients are still served");
}

/// An HTTP/2 frame: length, type, flags, stream and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off() {
    const HEADERS: u8 = 0x1;
    const CONTINUATION: u8 = 0x9;
    const END_STREAM: u8 = 0x1;
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(vestibule.http)
        .await
        .expect("connect");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    stream
        .write_all(&frame(SETTINGS, 0, 0, &[]))
        .await
        .expect("settings");
    // :method GET, :scheme http, :path / (static table), then never END_HEADERS.
    stream
        .write_all(&frame(HEADERS, END_STREAM, 1, &[0x82, 0x86, 0x84]))
        .await
        .expect("headers");
    let mut header = vec![0x40, 0x06];
    header.extend_from_slice(b"x-junk");
    header.push(0x7f);
    header.push(0x81);
    header.push(0x7f);
    header.extend(std::iter::repeat_n(b'a', 254));
    let mut closed = false;
    for _ in 0..10_000 {
        if stream
            .write_all(&frame(CONTINUATION, 0, 1, &header))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
    }
    if !closed {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(_)) => continue,
                Err(_) => break,
            }
        }
    }
    assert!(
        closed,
        "2.5 MiB of CONTINUATION frames were read without closing the connection"
    );
    let answer = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "other clients are still served");
}

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
/// How many frames a flood sends at most.
const FLOOD: usize = 1_000_000;
/// How much the proxy's resident memory may grow during a flood.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

/// How a flood ended.
#[derive(Debug, PartialEq)]
enum Flood {
    /// The proxy closed the connection.
    Closed,
    /// The proxy stopped reading: writes made no progress.
    Stalled,
    /// Every frame was written.
    Sent,
}

/// Sends the client preface, then `flooding` [`FLOOD`] times without reading anything.
async fn flood<S: AsyncWrite + Unpin>(stream: &mut S, flooding: &[u8]) -> Flood {
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend_from_slice(&frame(SETTINGS, 0, 0, &[]));
    if stream.write_all(&start).await.is_err() {
        return Flood::Closed;
    }
    let per_batch = 1000;
    let batch = flooding.repeat(per_batch);
    for _ in 0..FLOOD / per_batch {
        match tokio::time::timeout(Duration::from_secs(3), stream.write_all(&batch)).await {
            Err(_) => return Flood::Stalled,
            Ok(Err(_)) => return Flood::Closed,
            Ok(Ok(())) => {}
        }
    }
    Flood::Sent
}

/// Floods `stream` with `frame` and checks that the proxy stays small and keeps serving other
/// clients, and that the flooding connection is closed or left stalled.
async fn survives_flood<S>(vestibule: &Vestibule, mut stream: S, frame: &[u8])
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let before = vestibule.rss_kib();
    let outcome = flood(&mut stream, frame).await;
    let grown = vestibule.rss_kib().saturating_sub(before);
    assert_ne!(
        outcome,
        Flood::Sent,
        "{FLOOD} frames were all taken in without the proxy slowing down or closing"
    );
    assert!(
        grown < RSS_GROWTH_BOUND_KIB,
        "the proxy grew by {grown} KiB during the flood"
    );
    let during = get_via(vestibule.http, "web.example", "/").await;
    assert_eq!(
        during.map(|answer| answer.status),
        Some(200),
        "served during"
    );
    let h2 = Http2::connect(vestibule.http).await;
    assert_eq!(
        h2.get("web.example", "/").await.map(|answer| answer.status),
        Some(200),
        "HTTP/2 clients are served during"
    );
    drop(stream);
    let after = get_via(vestibule.http, "web.example", "/").await;
    assert_eq!(after.map(|answer| answer.status), Some(200), "served after");
}

/// A cleartext connection whose receive buffer is small, so that unread answers back up soon.
async fn small_window_connection(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

fn ping() -> Vec<u8> {
    frame(PING, 0, 0, b"flooding")
}

fn settings() -> Vec<u8> {
    // SETTINGS_INITIAL_WINDOW_SIZE = 65535: every frame must be applied and acknowledged.
    frame(SETTINGS, 0, 0, &[0x00, 0x04, 0x00, 0x00, 0xff, 0xff])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_costs_bounded_memory_over_h2c() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let stream = small_window_connection(vestibule.http).await;
    survives_flood(&vestibule, stream, &ping()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_flood_costs_bounded_memory_over_h2c() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let stream = small_window_connection(vestibule.http).await;
    survives_flood(&vestibule, stream, &settings()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_over_tls_cost_bounded_memory() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    for frame in [ping(), settings()] {
        let stream =
            crate::support::tls::connect(vestibule.https, Some("web.example"), &[b"h2"]).await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        survives_flood(&vestibule, stream, &frame).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_that_reads_its_acknowledgements_is_closed() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    for flooding in [ping(), settings()] {
        let stream = tokio::net::TcpStream::connect(vestibule.http)
            .await
            .expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let drained = tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(1..) = reader.read(&mut buffer).await {}
        });
        let before = vestibule.rss_kib();
        assert_eq!(flood(&mut writer, &flooding).await, Flood::Closed);
        let grown = vestibule.rss_kib().saturating_sub(before);
        assert!(grown < RSS_GROWTH_BOUND_KIB, "grew by {grown} KiB");
        tokio::time::timeout(PATIENCE, drained)
            .await
            .expect("the proxy closed the connection")
            .expect("reader");
        let answer = get_via(vestibule.http, "web.example", "/").await;
        assert_eq!(answer.map(|answer| answer.status), Some(200));
    }
    vestibule.wait_for_log("HTTP/2 flood").await;
}
