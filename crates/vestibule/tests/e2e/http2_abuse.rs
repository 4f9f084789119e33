//! HTTP/2 abuse patterns end the abusive connection and cost other clients nothing.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
    const SETTINGS: u8 = 0x4;
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
