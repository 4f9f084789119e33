//! One proxied request as an OpenTelemetry SERVER span, and batches of spans in the OTLP/JSON
//! encoding of `ExportTraceServiceRequest`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::uri::Authority;
use http::{Method, Version};
use serde::Serialize;

use crate::forward::{Scheme, TraceContext};
use crate::metrics::RouteLabels;

/// `SPAN_KIND_SERVER`.
const KIND_SERVER: u8 = 2;
/// `STATUS_CODE_UNSET`.
const STATUS_UNSET: u8 = 0;
/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;

/// One proxied request, as its span records it.
#[derive(Debug)]
pub(crate) struct ServerSpan {
    /// The trace, this hop's span id and the caller's.
    pub trace: TraceContext,
    /// When the request arrived.
    pub start: SystemTime,
    /// From arrival to the last response byte.
    pub duration: Duration,
    /// The request method.
    pub method: Method,
    /// The listener's scheme.
    pub scheme: Scheme,
    /// The `Host` (or `:authority`) as received.
    pub host: String,
    /// The request target: path and query, as received.
    pub target: String,
    /// The client's HTTP version.
    pub version: Version,
    /// The client's address.
    pub client: IpAddr,
    /// The status answered.
    pub status: u16,
    /// The Ingress and Service the request went to.
    pub route: Arc<RouteLabels>,
    /// The endpoint that answered, if one did.
    pub upstream: Option<Authority>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest<'a> {
    resource_spans: [ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource {
    attributes: [KeyValue<'static>; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: Vec<Span<'a>>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Span<'a> {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    name: &'a str,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue<'a>>,
    status: Status,
}

#[derive(Serialize)]
struct Status {
    code: u8,
}

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'static str,
    value: AnyValue<'a>,
}

/// An attribute value; 64-bit integers are decimal strings, as the protobuf JSON mapping has
/// them.
#[derive(Serialize)]
enum AnyValue<'a> {
    #[serde(rename = "stringValue")]
    Text(Cow<'a, str>),
    #[serde(rename = "intValue")]
    Int(String),
}

fn text<'a>(key: &'static str, value: impl Into<Cow<'a, str>>) -> KeyValue<'a> {
    KeyValue {
        key,
        value: AnyValue::Text(value.into()),
    }
}

/// The OTLP/JSON body exporting `spans`.
pub(crate) fn export_request(spans: &[ServerSpan]) -> Result<Vec<u8>, serde_json::Error> {
    let request = ExportRequest {
        resource_spans: [ResourceSpans {
            resource: Resource {
                attributes: [
                    text("service.name", "vestibule"),
                    text("service.version", env!("CARGO_PKG_VERSION")),
                ],
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: "vestibule-proxy",
                    version: env!("CARGO_PKG_VERSION"),
                },
                spans: spans.iter().map(encode).collect(),
            }],
        }],
    };
    serde_json::to_vec(&request)
}

fn unix_nanos(time: SystemTime) -> String {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string()
}

/// The method as the semantic conventions name it: one of the well-known methods, else
/// `_OTHER` (the method itself then goes in `http.request.method_original`).
fn known_method(method: &Method) -> Option<&str> {
    match *method {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::CONNECT
        | Method::OPTIONS
        | Method::TRACE
        | Method::PATCH => Some(method.as_str()),
        _ => None,
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn encode(span: &ServerSpan) -> Span<'_> {
    let method = known_method(&span.method);
    let path = span
        .target
        .split_once('?')
        .map_or(span.target.as_str(), |(path, _)| path);
    let mut attributes = vec![
        text("http.request.method", method.unwrap_or("_OTHER")),
        text("url.scheme", span.scheme.as_str()),
        text("url.path", path),
        KeyValue {
            key: "http.response.status_code",
            value: AnyValue::Int(span.status.to_string()),
        },
        text(
            "server.address",
            vestibule_routing::normalize_request_host(&span.host),
        ),
        text("network.protocol.name", "http"),
        text("network.protocol.version", protocol_version(span.version)),
        text("client.address", span.client.to_string()),
        text("vestibule.namespace", &*span.route.namespace),
        text("vestibule.ingress", &*span.route.ingress),
        text("vestibule.service", &*span.route.service),
    ];
    if method.is_none() {
        attributes.push(text("http.request.method_original", span.method.as_str()));
    }
    if let Some(upstream) = &span.upstream {
        attributes.push(text("vestibule.upstream.address", upstream.as_str()));
    }
    let failed = span.status >= 500;
    if failed {
        attributes.push(text("error.type", span.status.to_string()));
    }
    Span {
        trace_id: span.trace.trace_id_hex(),
        span_id: format!("{:016x}", span.trace.span_id),
        parent_span_id: span.trace.parent_id.map(|id| format!("{id:016x}")),
        name: method.unwrap_or("HTTP"),
        kind: KIND_SERVER,
        start_time_unix_nano: unix_nanos(span.start),
        end_time_unix_nano: unix_nanos(span.start + span.duration),
        attributes,
        status: Status {
            code: if failed { STATUS_ERROR } else { STATUS_UNSET },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ServerSpan {
        /// A span for tests.
        pub(crate) fn example() -> Self {
            span(200, Method::GET, None)
        }
    }

    fn span(status: u16, method: Method, parent_id: Option<u64>) -> ServerSpan {
        ServerSpan {
            trace: TraceContext {
                trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                span_id: 0x0a,
                parent_id,
                flags: 1,
            },
            start: UNIX_EPOCH + Duration::from_nanos(1_795_598_425_123_456_789),
            duration: Duration::from_micros(1_500),
            method,
            scheme: Scheme::Https,
            host: "Shop.Example:8443".into(),
            target: "/cart/items?id=7".into(),
            version: Version::HTTP_2,
            client: "192.0.2.4".parse().expect("address"),
            status,
            route: Arc::new(RouteLabels {
                namespace: "shop".into(),
                ingress: "web".into(),
                service: "cart".into(),
            }),
            upstream: Some(Authority::from_static("10.0.0.7:8080")),
        }
    }

    fn attribute(span: &serde_json::Value, key: &str) -> serde_json::Value {
        span["attributes"]
            .as_array()
            .and_then(|all| all.iter().find(|kv| kv["key"] == key))
            .map(|kv| kv["value"].clone())
            .unwrap_or_default()
    }

    #[test]
    fn spans_follow_the_otlp_json_encoding() {
        let body = export_request(&[span(200, Method::GET, Some(0x00f0_67aa_0ba9_02b7))])
            .expect("encoded");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let resource = &json["resourceSpans"][0];
        assert_eq!(
            resource["resource"]["attributes"][0],
            serde_json::json!({"key": "service.name", "value": {"stringValue": "vestibule"}})
        );
        let span = &resource["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span["spanId"], "000000000000000a");
        assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(span["name"], "GET");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1795598425123456789");
        assert_eq!(span["endTimeUnixNano"], "1795598425124956789");
        assert_eq!(span["status"]["code"], 0);
        assert_eq!(attribute(span, "http.request.method")["stringValue"], "GET");
        assert_eq!(attribute(span, "url.path")["stringValue"], "/cart/items");
        assert_eq!(attribute(span, "url.scheme")["stringValue"], "https");
        assert_eq!(
            attribute(span, "http.response.status_code")["intValue"],
            "200"
        );
        assert_eq!(
            attribute(span, "server.address")["stringValue"],
            "shop.example"
        );
        assert_eq!(
            attribute(span, "network.protocol.version")["stringValue"],
            "2"
        );
        assert_eq!(
            attribute(span, "client.address")["stringValue"],
            "192.0.2.4"
        );
        assert_eq!(attribute(span, "vestibule.service")["stringValue"], "cart");
        assert!(attribute(span, "error.type").is_null());
    }

    #[test]
    fn server_errors_and_unknown_methods() {
        let method = Method::from_bytes(b"PURGE").expect("method");
        let body = export_request(&[span(502, method, None)]).expect("encoded");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert!(
            span.get("parentSpanId").is_none(),
            "a root span has no parent"
        );
        assert_eq!(span["name"], "HTTP");
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(
            attribute(span, "http.request.method")["stringValue"],
            "_OTHER"
        );
        assert_eq!(
            attribute(span, "http.request.method_original")["stringValue"],
            "PURGE"
        );
        assert_eq!(attribute(span, "error.type")["stringValue"], "502");
    }
}
