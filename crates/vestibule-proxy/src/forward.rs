//! Rewriting headers between client and backend, as a reverse proxy must.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::InvalidHeaderValue;
use http::header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::hex::write_hex;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) that are never forwarded; names made once, as
/// removing by a string would parse it on every request.
static HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
    TRAILER,
];

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// The path prefix a route's backend is published under (`x-forwarded-prefix`).
pub(crate) static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub(crate) static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Which kind of listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS (TLS terminated here).
    Https,
}

impl Scheme {
    /// The scheme as `X-Forwarded-Proto` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// Where a request came from and through which listener.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection's client address and listener port as forwarded headers give them.
    pub forwarded: ForwardedValues,
    /// The listener's scheme.
    pub scheme: Scheme,
    /// The server name the client asked for in its TLS handshake.
    pub sni: Option<std::sync::Arc<str>>,
    /// What the connection's request heads looked like before parsing.
    pub framing: crate::framing::FramingFlag,
    /// The TLS version of the connection, for the access log.
    pub tls_version: Option<&'static str>,
}

/// Header values that are the same for every request of a connection, made once for it.
#[derive(Clone, Debug)]
pub(crate) struct ForwardedValues {
    /// The client's IP address, for `X-Real-IP` and `X-Forwarded-For`.
    client_ip: HeaderValue,
    /// The listener's port, for `X-Forwarded-Port`.
    port: HeaderValue,
}

impl ForwardedValues {
    /// The values for a client at `client` on a listener at `port`.
    pub fn new(client: IpAddr, port: u16) -> Self {
        Self {
            client_ip: display_value(client),
            port: HeaderValue::from(port),
        }
    }
}

/// A header value holding `value`'s text, formatted on the stack.
fn display_value(value: impl std::fmt::Display) -> HeaderValue {
    let mut text = [0; 64];
    let mut rest = &mut text[..];
    let written = write!(rest, "{value}").map(|()| 64 - rest.len());
    written
        .ok()
        .and_then(|len| HeaderValue::from_bytes(&text[..len]).ok())
        .unwrap_or_else(|| HeaderValue::from_static(""))
}

/// The protocol an HTTP/1.1 request asks to upgrade to, when it asks with `Connection: upgrade`.
pub(crate) fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Removes hop-by-hop headers, including those the `Connection` header names, and restores the
/// pair needed to carry an upgrade.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    // Names that are hop-by-hop anyway (`keep-alive`, `upgrade`) go below without being
    // collected here.
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .map(str::trim)
        .filter(|token| {
            !HOP_BY_HOP
                .iter()
                .any(|name| name.as_str().eq_ignore_ascii_case(token))
        })
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(protocol) = upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol);
    }
}

/// Sets `Host` and the `X-Forwarded-*`, `X-Real-IP` and `X-Request-ID` headers a backend expects
/// from an ingress controller.
pub(crate) fn add_forwarding_headers(headers: &mut HeaderMap, host: &HeaderValue, origin: &Origin) {
    let client_ip = &origin.forwarded.client_ip;
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::to_str) {
        Some(Ok(previous)) if !previous.trim().is_empty() => appended(previous, client_ip),
        _ => client_ip.clone(),
    };
    headers.insert(HOST, host.clone());
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    headers.insert(X_REAL_IP.clone(), client_ip.clone());
    headers.insert(X_FORWARDED_PORT.clone(), origin.forwarded.port.clone());
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(origin.scheme.as_str()),
    );
    headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), new_request_id());
    }
}

/// A new random `X-Request-ID`: 32 hex digits, in a value that is cloned without copying.
pub(crate) fn new_request_id() -> HeaderValue {
    let mut id = [0; 32];
    write_hex(&mut id, fastrand::u128(..));
    shared_value(id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A header value of `bytes` that is cloned without copying: the request's headers are cloned
/// for each attempt, and the request id for the access log.
fn shared_value<const N: usize>(bytes: [u8; N]) -> Result<HeaderValue, InvalidHeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from_owner(bytes))
}

/// `previous, client`: an `X-Forwarded-For` with the client appended.
fn appended(previous: &str, client: &HeaderValue) -> HeaderValue {
    let mut value = Vec::with_capacity(previous.len() + 2 + client.len());
    value.extend_from_slice(previous.as_bytes());
    value.extend_from_slice(b", ");
    value.extend_from_slice(client.as_bytes());
    HeaderValue::from_maybe_shared(Bytes::from(value)).unwrap_or_else(|_| client.clone())
}

/// The W3C trace context of one proxied request: the caller's trace (or a new one), and the
/// span this hop opens, whose id goes to the backend as its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceContext {
    /// The trace id.
    pub trace_id: u128,
    /// This hop's span id, sent to the backend in `traceparent`.
    pub span_id: u64,
    /// The caller's span id, when the request came with a valid `traceparent`.
    pub parent_id: Option<u64>,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// Whether the trace is sampled, so its spans are recorded.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// Continues the caller's W3C trace (`traceparent`) with a new span for this hop, or starts a
/// sampled trace when there is none or it is invalid.
pub(crate) fn propagate_trace(headers: &mut HeaderMap) -> TraceContext {
    let caller = headers
        .get(&TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_traceparent);
    let span_id = fastrand::u64(1..);
    let context = match caller {
        Some((trace_id, parent_id, flags)) => TraceContext {
            trace_id,
            span_id,
            parent_id: Some(parent_id),
            flags,
        },
        None => TraceContext {
            trace_id: fastrand::u128(1..),
            span_id,
            parent_id: None,
            flags: 1,
        },
    };
    if let Ok(value) = shared_value(traceparent(&context)) {
        headers.insert(TRACEPARENT.clone(), value);
    }
    context
}

/// `00-TRACE_ID-SPAN_ID-FLAGS`: the `traceparent` that sends `context` on.
fn traceparent(context: &TraceContext) -> [u8; 55] {
    let mut value = *b"00-00000000000000000000000000000000-0000000000000000-00";
    write_hex(&mut value[3..35], context.trace_id);
    write_hex(&mut value[36..52], u128::from(context.span_id));
    write_hex(&mut value[53..55], u128::from(context.flags));
    value
}

/// The trace id, parent span id and flags of a valid `traceparent` (W3C Trace Context, version
/// 00 or later).
fn parse_traceparent(value: &str) -> Option<(u128, u64, u8)> {
    let mut fields = value.trim().split('-');
    let (version, trace_id, parent_id, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || fields.next().is_none())
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2);
    if !valid {
        return None;
    }
    let trace_id = u128::from_str_radix(trace_id, 16).ok()?;
    let parent_id = u64::from_str_radix(parent_id, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            peer: "192.0.2.7:5555".parse().expect("address"),
            forwarded: ForwardedValues::new([192, 0, 2, 7].into(), 8080),
            scheme: Scheme::Http,
            sni: None,
            framing: crate::framing::FramingFlag::default(),
            tls_version: None,
        }
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, None);
        let names: Vec<_> = headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn upgrades_keep_their_pair() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        let upgrade = requested_upgrade(&headers);
        assert_eq!(upgrade, Some(HeaderValue::from_static("websocket")));
        strip_hop_by_hop(&mut headers, upgrade);
        assert_eq!(headers[CONNECTION], "upgrade");
        assert_eq!(headers[UPGRADE], "websocket");
    }

    #[test]
    fn forwarding_headers_append_and_set() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        headers.insert("x-real-ip", HeaderValue::from_static("spoofed"));
        add_forwarding_headers(
            &mut headers,
            &HeaderValue::from_static("shop.example:8080"),
            &origin(),
        );
        assert_eq!(headers["x-forwarded-for"], "203.0.113.1, 192.0.2.7");
        assert_eq!(headers["x-real-ip"], "192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "shop.example:8080");
        assert_eq!(headers["x-forwarded-port"], "8080");
        assert_eq!(headers["host"], "shop.example:8080");
        assert_eq!(headers["x-request-id"].len(), 32);
    }

    #[test]
    fn traces_continue_or_start() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let trace = propagate_trace(&mut headers);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert!(trace.sampled());
        let sent = headers["traceparent"].to_str().expect("ascii");
        assert_eq!(
            sent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01",
                trace.span_id
            )
        );
        assert_ne!(
            trace.span_id, 0x00f0_67aa_0ba9_02b7,
            "a new span id for this hop"
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let unsampled = propagate_trace(&mut headers);
        assert!(
            !unsampled.sampled(),
            "the caller's sampling decision is kept"
        );
        assert!(
            headers["traceparent"]
                .to_str()
                .expect("ascii")
                .ends_with("-00")
        );

        for invalid in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_static(invalid));
            let trace = propagate_trace(&mut headers);
            assert_ne!(trace.trace_id, 0);
            assert_eq!(trace.parent_id, None);
            assert!(trace.sampled(), "new traces are sampled");
        }
        let mut headers = HeaderMap::new();
        let started = propagate_trace(&mut headers);
        assert_eq!(headers["traceparent"].len(), 55);
        assert!(
            headers["traceparent"]
                .to_str()
                .expect("ascii")
                .starts_with(&format!("00-{}-", started.trace_id_hex()))
        );
    }

    #[test]
    fn forwarded_values_are_made_once_per_connection() {
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .expect("address");
        for (client, text) in [
            (IpAddr::from([192, 0, 2, 7]), "192.0.2.7"),
            ("2001:db8::1".parse().expect("address"), "2001:db8::1"),
            (longest, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ] {
            let values = ForwardedValues::new(client, 443);
            assert_eq!(values.client_ip, text);
            assert_eq!(values.port, "443");
        }
    }

    #[test]
    fn an_existing_request_id_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        add_forwarding_headers(&mut headers, &HeaderValue::from_static("h"), &origin());
        assert_eq!(headers["x-request-id"], "abc");
    }
}
