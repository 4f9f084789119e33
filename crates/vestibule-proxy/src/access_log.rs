//! The access log: one line per request on stdout, written off the request path.

mod clock;
mod combined;
mod json;
mod queue;

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HOST, REFERER, USER_AGENT};
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Uri, Version};

use crate::forward::TraceContext;
use crate::metrics::RouteLabels;
use queue::LineQueue;

/// How requests are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// The combined log format of nginx and Apache.
    Combined,
    /// No access log.
    Off,
}

/// What the access log and spans need of a request's head, taken before the request is
/// forwarded. Only the method and version are kept when nothing describes requests.
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// When the request arrived (the epoch when nothing describes requests).
    pub time: SystemTime,
    /// The request method.
    pub method: Method,
    /// The client's HTTP version.
    pub version: Version,
    /// The request target as received (shares the received bytes).
    pub uri: Uri,
    /// The `Host` header, for requests whose target has no authority.
    pub host: Option<HeaderValue>,
    /// The `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
    /// The `Referer` header.
    pub referer: Option<HeaderValue>,
}

impl RequestHead {
    /// Takes what is needed of `request`'s head: everything when `describe`, else only its
    /// method and version.
    pub fn capture<B>(request: &Request<B>, describe: bool) -> Self {
        let method = request.method().clone();
        let version = request.version();
        if !describe {
            return Self {
                time: UNIX_EPOCH,
                method,
                version,
                uri: Uri::default(),
                host: None,
                user_agent: None,
                referer: None,
            };
        }
        let headers = request.headers();
        Self {
            time: SystemTime::now(),
            method,
            version,
            uri: request.uri().clone(),
            host: headers.get(HOST).cloned(),
            user_agent: headers.get(USER_AGENT).cloned(),
            referer: headers.get(REFERER).cloned(),
        }
    }

    /// The host as received: the target's authority, else the `Host` header (empty without
    /// either). It may not be UTF-8.
    pub fn host(&self) -> &[u8] {
        match (self.uri.authority(), &self.host) {
            (Some(authority), _) => authority.as_str().as_bytes(),
            (None, Some(host)) => host.as_bytes(),
            (None, None) => b"",
        }
    }

    /// The request target as received: its path and query, or the whole target when it has
    /// none (authority form).
    pub fn target(&self) -> Cow<'_, str> {
        match self.uri.path_and_query() {
            Some(target) => Cow::Borrowed(target.as_str()),
            None => Cow::Owned(self.uri.to_string()),
        }
    }
}

/// One finished request, as the access log records it.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub client: SocketAddr,
    pub head: RequestHead,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: f64,
    pub route: Arc<RouteLabels>,
    pub upstream_addr: Option<Authority>,
    pub upstream_status: Option<u16>,
    pub upstream_time: Option<f64>,
    pub request_id: Option<HeaderValue>,
    pub trace: Option<TraceContext>,
    pub tls_version: Option<&'static str>,
}

/// Formats access-log lines and hands them to a writer task, never blocking a request.
#[derive(Debug)]
pub struct AccessLog {
    format: AccessLogFormat,
    queue: Option<Arc<LineQueue>>,
}

thread_local! {
    /// The buffer each thread formats its lines in, reused from line to line.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl AccessLog {
    /// Starts the writer task (none when `format` is [`AccessLogFormat::Off`]).
    pub fn start(format: AccessLogFormat) -> Self {
        let queue = (format != AccessLogFormat::Off).then(LineQueue::start);
        Self { format, queue }
    }

    /// Whether lines are written at all.
    pub(crate) fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    pub(crate) fn write(&self, record: &AccessRecord) {
        let Some(queue) = &self.queue else { return };
        if queue.closed() {
            return;
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            match self.format {
                AccessLogFormat::Json => json::line(record, line),
                AccessLogFormat::Combined => combined::line(record, line),
                AccessLogFormat::Off => return,
            }
            if !queue.push(line) {
                tracing::debug!("access log queue full; a line was dropped");
            }
        });
    }
}

/// The protocol as a request line names it, as `http` prints it (`HTTP/2.0` for HTTP/2).
fn protocol(version: Version) -> Cow<'static, str> {
    Cow::Borrowed(match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        other => return Cow::Owned(format!("{other:?}")),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A record of a routed, proxied request with every field set.
    pub fn record() -> AccessRecord {
        AccessRecord {
            client: "192.0.2.4:5000".parse().expect("address"),
            head: RequestHead {
                time: UNIX_EPOCH + Duration::from_millis(1_795_598_425_123),
                method: Method::GET,
                version: Version::HTTP_11,
                uri: Uri::from_static("/cart?id=1"),
                host: Some(HeaderValue::from_static("shop.example")),
                user_agent: Some(HeaderValue::from_static("curl/8.0")),
                referer: None,
            },
            status: 200,
            bytes_in: 0,
            bytes_out: 512,
            duration: 0.004,
            route: Arc::new(RouteLabels {
                namespace: "shop".into(),
                ingress: "web".into(),
                service: "cart".into(),
            }),
            upstream_addr: Some(Authority::from_static("10.0.0.7:8080")),
            upstream_status: Some(200),
            upstream_time: Some(0.003),
            request_id: Some(HeaderValue::from_static("abc")),
            trace: Some(TraceContext {
                trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                span_id: 1,
                parent_id: None,
                flags: 1,
            }),
            tls_version: Some("TLSv1.3"),
        }
    }

    #[test]
    fn protocols_are_named_as_http_prints_them() {
        for version in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            assert_eq!(protocol(version), format!("{version:?}"));
        }
    }

    #[test]
    fn heads_are_captured_only_when_described() {
        let request = Request::builder()
            .uri("/a?b")
            .header(HOST, "shop.example")
            .header(USER_AGENT, "ua")
            .body(())
            .expect("request");
        let head = RequestHead::capture(&request, true);
        assert_eq!(head.host(), b"shop.example");
        assert_eq!(head.target(), "/a?b");
        assert_eq!(head.user_agent, Some(HeaderValue::from_static("ua")));
        let bare = RequestHead::capture(&request, false);
        assert_eq!(bare.method, Method::GET);
        assert_eq!(bare.version, Version::HTTP_11);
        assert_eq!(bare.host(), b"");
        assert_eq!(bare.user_agent, None);

        let absolute = Request::builder()
            .uri("http://other.example:8080/x")
            .header(HOST, "ignored.example")
            .body(())
            .expect("request");
        let head = RequestHead::capture(&absolute, true);
        assert_eq!(head.host(), b"other.example:8080");
        assert_eq!(head.target(), "/x");
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri("tunnel.example:443")
            .body(())
            .expect("request");
        assert_eq!(
            RequestHead::capture(&connect, true).target(),
            "tunnel.example:443"
        );
    }
}
