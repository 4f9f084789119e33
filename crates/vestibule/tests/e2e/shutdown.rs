//! SIGTERM: readiness drops first, listeners close after the grace period, and requests in
//! flight and open WebSockets still finish.

use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight() {
    let web = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[web]));
    manifests.write(
        "ing.yaml",
        &ingress("web", &[("web.example", "/", "Prefix", "web")]),
    );
    let mut vestibule = Vestibule::start(
        manifests.path(),
        &["--shutdown-grace", "1s", "--shutdown-timeout", "30s"],
    );
    vestibule.wait_ready().await;

    let size: usize = 64 * 1024 * 1024;
    let request = http::Request::get(format!("http://{}/big?bytes={size}", vestibule.http))
        .header("host", "web.example")
        .body(Default::default())
        .expect("request");
    let response = http1_client().request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = body
        .frame()
        .await
        .and_then(|frame| frame.ok())
        .and_then(|frame| frame.into_data().ok())
        .map_or(0, |data| data.len());

    vestibule.terminate();
    let readyz = format!("http://{}/readyz", vestibule.admin);
    eventually(|| async {
        get(&readyz, &[])
            .await
            .is_some_and(|answer| answer.status == 503)
    })
    .await;
    let during_grace = get_via(vestibule.http, "web.example", "/").await;
    assert_eq!(during_grace.map(|answer| answer.status), Some(200));
    eventually(|| async {
        tokio::net::TcpStream::connect(vestibule.http)
            .await
            .is_err()
    })
    .await;

    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the download in flight continues after the listeners close");
        received += frame.into_data().map_or(0, |data| data.len());
    }
    assert_eq!(received, size);
    assert!(vestibule.wait(), "vestibule exits cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_open_websockets() {
    let (_manifests, mut vestibule, _) =
        single_backend(&["--shutdown-grace", "1s", "--shutdown-timeout", "30s"]).await;
    let (mut socket, _) = websocket(vestibule.http, "ws://web.example/chat").await;
    socket.send(Message::text("before")).await.expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply, Message::text("before"));

    vestibule.terminate();
    eventually(|| async {
        tokio::net::TcpStream::connect(vestibule.http)
            .await
            .is_err()
    })
    .await;
    vestibule
        .wait_for_log("waiting for upgraded and passthrough connections")
        .await;
    socket.send(Message::text("during")).await.expect("send");
    let reply = socket
        .next()
        .await
        .expect("the tunnel outlives the listeners")
        .expect("message");
    assert_eq!(reply, Message::text("during"));

    socket.close(None).await.expect("close");
    drop(socket);
    vestibule.wait_for_log("all connections closed").await;
    assert!(
        vestibule.wait(),
        "vestibule exits cleanly once the tunnel closed"
    );
}
