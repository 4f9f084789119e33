//! Spans exported over OTLP/HTTP (JSON), received by a real HTTP listener standing in for an
//! OpenTelemetry collector.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::support::*;

/// One export request as the collector received it.
struct Export {
    path: String,
    content_type: String,
    body: Value,
}

/// An HTTP listener that answers every POST like an OTLP/HTTP collector and keeps what it got.
#[derive(Clone, Default)]
struct Collector {
    exports: Arc<Mutex<Vec<Export>>>,
}

impl Collector {
    async fn start() -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let collector = Self::default();
        let exports = collector.exports.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let exports = exports.clone();
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let exports = exports.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let content_type = request
                            .headers()
                            .get("content-type")
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let body = request.into_body().collect().await?.to_bytes();
                        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        exports.lock().expect("exports lock").push(Export {
                            path,
                            content_type,
                            body,
                        });
                        Ok::<_, hyper::Error>(http::Response::new(Full::new(Bytes::from("{}"))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (collector, addr)
    }

    /// Every span received so far, with the resource it came under.
    fn spans(&self) -> Vec<(Value, Value)> {
        let exports = self.exports.lock().expect("exports lock");
        let mut spans = Vec::new();
        for export in exports.iter() {
            assert_eq!(export.path, "/v1/traces");
            assert_eq!(export.content_type, "application/json");
            for resource in export.body["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        spans.push((resource["resource"].clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }

    /// Waits for the span of trace `trace_id`.
    async fn span(&self, trace_id: &str) -> (Value, Value) {
        let mut found = None;
        eventually(|| {
            found = self
                .spans()
                .into_iter()
                .find(|(_, span)| span["traceId"] == trace_id);
            std::future::ready(found.is_some())
        })
        .await;
        found.expect("span received")
    }
}

fn attribute(attributes: &Value, key: &str) -> Value {
    attributes
        .as_array()
        .and_then(|all| all.iter().find(|kv| kv["key"] == key))
        .map(|kv| kv["value"].clone())
        .unwrap_or(Value::Null)
}

/// The trace id and span id of the `traceparent` the echo backend received.
fn seen_by_backend(answer: &Answer) -> (String, String) {
    let traceparent = answer.json()["headers"]["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    (fields[1].to_owned(), fields[2].to_owned())
}

#[tokio::test]
async fn a_span_per_request_reaches_the_collector() {
    let (collector, addr) = Collector::start().await;
    let endpoint = format!("http://{addr}");
    let (_manifests, vestibule, _) = single_backend(&["--otlp-endpoint", &endpoint]).await;

    let continued = get(
        &format!("http://{}/traced/items?id=7", vestibule.http),
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
    assert_eq!(continued.status, 200);
    let (trace_id, span_id) = seen_by_backend(&continued);
    assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");

    let (resource, span) = collector.span(&trace_id).await;
    assert_eq!(
        attribute(&resource["attributes"], "service.name")["stringValue"],
        "vestibule"
    );
    assert_eq!(span["spanId"], span_id.as_str(), "the span the backend saw");
    assert_eq!(
        span["parentSpanId"], "00f067aa0ba902b7",
        "the caller's span"
    );
    assert_eq!(span["kind"], 2, "SERVER");
    assert_eq!(span["name"], "GET");
    assert_eq!(span["status"]["code"], 0);
    let start: u128 = span["startTimeUnixNano"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("start time");
    let end: u128 = span["endTimeUnixNano"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("end time");
    assert!(start > 0 && start <= end, "{start} {end}");
    let attributes = &span["attributes"];
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/traced/items"),
        ("url.scheme", "http"),
        ("server.address", "web.example"),
        ("network.protocol.version", "1.1"),
        ("client.address", "127.0.0.1"),
        ("vestibule.namespace", "default"),
        ("vestibule.ingress", "web"),
        ("vestibule.service", "web"),
    ] {
        assert_eq!(attribute(attributes, key)["stringValue"], value, "{key}");
    }
    assert_eq!(
        attribute(attributes, "http.response.status_code")["intValue"],
        "200"
    );

    let started = get(
        &format!("http://{}/?status=503", vestibule.http),
        &[("host", "web.example")],
    )
    .await
    .expect("answer");
    assert_eq!(started.status, 503);
    let (trace_id, span_id) = seen_by_backend(&started);
    let (_, span) = collector.span(&trace_id).await;
    assert_eq!(span["spanId"], span_id.as_str());
    assert!(span.get("parentSpanId").is_none(), "a new trace: {span}");
    assert_eq!(span["status"]["code"], 2, "a server error");
    assert_eq!(
        attribute(&span["attributes"], "http.response.status_code")["intValue"],
        "503"
    );

    let unsampled = get(
        &format!("http://{}/", vestibule.http),
        &[
            ("host", "web.example"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            ),
        ],
    )
    .await
    .expect("answer");
    assert_eq!(unsampled.status, 200);
    eventually(|| async {
        let text = get(&format!("http://{}/metrics", vestibule.admin), &[])
            .await
            .map(|answer| String::from_utf8_lossy(&answer.body).into_owned())
            .unwrap_or_default();
        text.contains(r#"vestibule_otlp_spans_total{result="exported"} 2"#)
    })
    .await;
    assert!(
        collector
            .spans()
            .iter()
            .all(|(_, span)| span["traceId"] != "0af7651916cd43dd8448eb211c80319c"),
        "a trace the caller did not sample is not recorded"
    );
}

// Two workers: the collector keeps answering while this test blocks waiting for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_flushed_at_shutdown() {
    let (collector, addr) = Collector::start().await;
    let endpoint = format!("http://{addr}");
    let (_manifests, mut vestibule, _) =
        single_backend(&["--otlp-endpoint", &endpoint, "--shutdown-grace", "0s"]).await;
    let answer = get_via(vestibule.http, "web.example", "/last")
        .await
        .expect("answer");
    let (trace_id, _) = seen_by_backend(&answer);
    vestibule.terminate();
    assert!(vestibule.wait(), "a clean exit");
    assert!(
        collector
            .spans()
            .iter()
            .any(|(_, span)| span["traceId"] == trace_id.as_str()),
        "the last span was exported before exiting"
    );
}

#[tokio::test]
async fn a_missing_collector_never_fails_requests() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let endpoint = format!("http://{closed}");
    let (_manifests, vestibule, _) = single_backend(&["--otlp-endpoint", &endpoint]).await;
    for _ in 0..3 {
        let answer = get_via(vestibule.http, "web.example", "/")
            .await
            .expect("answer");
        assert_eq!(answer.status, 200);
    }
    vestibule.wait_for_log("OTLP export failed").await;
    eventually(|| async {
        let text = get(&format!("http://{}/metrics", vestibule.admin), &[])
            .await
            .map(|answer| String::from_utf8_lossy(&answer.body).into_owned())
            .unwrap_or_default();
        text.contains(r#"vestibule_otlp_spans_total{result="failed"} 3"#)
    })
    .await;
    let answer = get_via(vestibule.http, "web.example", "/")
        .await
        .expect("still serving");
    assert_eq!(answer.status, 200);
}

#[test]
fn an_https_endpoint_is_refused_at_start() {
    let manifests = Manifests::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .args(["serve", "--manifests"])
        .arg(manifests.path())
        .args(["--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .args(["--admin-addr", "127.0.0.1:0"])
        .args(["--otlp-endpoint", "https://collector:4318"])
        .output()
        .expect("vestibule runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only plain http"), "{stderr}");
}
