//! Metrics, access logs and trace context, seen from outside after real traffic.

use crate::support::*;

async fn metrics(vestibule: &Vestibule) -> String {
    let answer = get(&format!("http://{}/metrics", vestibule.admin), &[])
        .await
        .expect("metrics answer");
    assert_eq!(answer.status, 200);
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[tokio::test]
async fn metrics_count_requests_by_ingress_service_and_status() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    for _ in 0..3 {
        let answer = get_via(vestibule.http, "web.example", "/a")
            .await
            .expect("answer");
        assert_eq!(answer.status, 200);
    }
    let missing = get_via(vestibule.http, "nowhere.example", "/")
        .await
        .expect("answer");
    assert_eq!(missing.status, 404);
    let expected = [
        r#"vestibule_requests_total{namespace="default",ingress="web",service="web",status="200"} 3"#,
        r#"vestibule_requests_total{namespace="",ingress="",service="",status="404"} 1"#,
        r#"vestibule_request_duration_seconds_count{namespace="default",ingress="web",service="web"} 3"#,
        r#"vestibule_upstream_response_seconds_count{namespace="default",ingress="web",service="web"} 3"#,
        r#"vestibule_config_reloads_total{result="success"}"#,
        "vestibule_config_last_reload_success_timestamp_seconds",
        r#"vestibule_open_connections{listener="http"}"#,
        r#"vestibule_endpoints{namespace="default",service="web",state="ready"} 1"#,
    ];
    eventually(|| async {
        let text = metrics(&vestibule).await;
        expected.iter().all(|line| text.contains(line))
    })
    .await;
    let text = metrics(&vestibule).await;
    assert!(!text.contains("/a\""), "no raw paths as labels");
    assert!(!text.contains("127.0.0.1"), "no client addresses as labels");
}

#[tokio::test]
async fn tls_handshakes_warnings_and_certificates_are_counted() {
    let (manifests, vestibule, _) = single_backend(&[]).await;
    manifests.write(
        "dangling.yaml",
        &ingress("dangling", &[("d.example", "/", "Prefix", "nowhere")]),
    );
    let mut stream = tokio::net::TcpStream::connect(vestibule.https)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"not a handshake")
        .await
        .expect("write");
    drop(stream);
    eventually(|| async {
        let text = metrics(&vestibule).await;
        text.contains(r#"vestibule_translation_warnings{reason="ServiceNotFound"} 1"#)
            && text.contains(r#"vestibule_tls_handshakes_total{result="failure"} 1"#)
    })
    .await;
}

#[tokio::test]
async fn the_access_log_has_one_json_line_per_request() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let answer = get(
        &format!("http://{}/logged?x=1", vestibule.http),
        &[
            ("host", "web.example"),
            ("user-agent", "e2e-test"),
            ("x-request-id", "req-42"),
        ],
    )
    .await
    .expect("answer");
    assert_eq!(answer.status, 200);
    let line = vestibule.wait_for_stdout("\"request_id\":\"req-42\"").await;
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["host"], "web.example");
    assert_eq!(entry["path"], "/logged?x=1");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["upstream_status"], 200);
    assert_eq!(entry["namespace"], "default");
    assert_eq!(entry["ingress"], "web");
    assert_eq!(entry["service"], "web");
    assert_eq!(entry["user_agent"], "e2e-test");
    assert_eq!(entry["protocol"], "HTTP/1.1");
    assert_eq!(entry["bytes_out"], answer.body.len());
    assert!(
        entry["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))
    );
    assert!(
        entry["upstream_addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert!(entry["duration"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(entry["trace_id"].as_str().map(str::len), Some(32));
}

#[tokio::test]
async fn the_access_log_can_be_combined_or_off() {
    let (_manifests, combined, _) = single_backend(&["--access-log", "combined"]).await;
    get_via(combined.http, "web.example", "/c")
        .await
        .expect("answer");
    let line = combined.wait_for_stdout("\"GET /c HTTP/1.1\" 200").await;
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");

    let (_manifests, silent, _) = single_backend(&["--access-log", "off"]).await;
    get_via(silent.http, "web.example", "/quiet")
        .await
        .expect("answer");
    let marker = get_via(silent.http, "web.example", "/marker")
        .await
        .expect("answer");
    assert_eq!(marker.status, 200);
    assert!(silent.stdout().is_empty(), "{:?}", silent.stdout());
}

#[tokio::test]
async fn trace_context_reaches_the_backend() {
    let (_manifests, vestibule, _) = single_backend(&[]).await;
    let continued = get(
        &format!("http://{}/", vestibule.http),
        &[
            ("host", "web.example"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
    )
    .await
    .expect("answer");
    let seen = continued.json()["headers"]["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        seen.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{seen}"
    );
    assert!(
        !seen.contains("00f067aa0ba902b7"),
        "this hop is a new span: {seen}"
    );

    let started = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("answer");
    let seen = started.json()["headers"]["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(seen.len(), 55, "a trace is started when absent: {seen}");
}

/// A backend on a loopback port that answers each connection's first request and closes it.
async fn closing_backend() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

/// The value of the metric line starting with `series`, if there is one.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test]
async fn upstream_connections_are_counted_while_open() {
    let kept = echo_backend("kept").await;
    let closing = closing_backend().await;
    let manifests = Manifests::new();
    manifests.write("kept.yaml", &service("kept", &[kept]));
    manifests.write("closing.yaml", &service("closing", &[closing]));
    manifests.write(
        "ing.yaml",
        &ingress(
            "web",
            &[
                ("kept.example", "/", "Prefix", "kept"),
                ("closing.example", "/", "Prefix", "closing"),
            ],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let client = http1_client();
    for host in ["kept.example", "closing.example"] {
        for _ in 0..3 {
            let answer = get_with(&client, vestibule.http, host, "/")
                .await
                .expect("answer");
            assert_eq!(answer.status, 200, "{host}");
        }
    }
    let kept_series = r#"vestibule_upstream_connections{namespace="default",service="kept"}"#;
    let closing_series = r#"vestibule_upstream_connections{namespace="default",service="closing"}"#;
    eventually(|| async {
        let text = metrics(&vestibule).await;
        value(&text, kept_series).is_some_and(|open| open >= 1.0)
            && value(&text, closing_series) == Some(0.0)
    })
    .await;
}
