//! A small demo/test backend in the spirit of the well-known "whoami" image.
//!
//! Every HTTP request is answered with a JSON description of the request as this
//! backend saw it, plus the backend's own name. Query parameters select special
//! behaviour (the path is free so that a proxy can route on it):
//!
//! * `?bytes=N` — stream exactly `N` bytes (at most 1 GiB) of a known pattern:
//!   byte `i` is `b'a' + (i % 26)`.
//! * `?echo=body` — stream the request body straight back.
//! * `?status=CODE` — use `CODE` (200..=599) as the response status; combines
//!   with the other behaviours.
//! * A WebSocket upgrade request is accepted and every text/binary message is
//!   echoed back unchanged.
//!
//! Every response carries an `x-echo-name` header with the backend's name.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Largest body `?bytes=N` will produce (1 GiB).
pub const MAX_BYTES: u64 = 1 << 30;

/// Size of the chunks a `?bytes=N` body is streamed in.
const CHUNK_SIZE: usize = 64 * 1024;

/// Name of the response header that carries the backend's name.
const ECHO_NAME_HEADER: HeaderName = HeaderName::from_static("x-echo-name");

type BoxError = Box<dyn StdError + Send + Sync>;
type ResBody = BoxBody<Bytes, BoxError>;

/// Per-server state shared by all connections.
struct State {
    name: String,
    name_header: Option<HeaderValue>,
}

/// Serves echo responses on `listener` until the process ends; `name` identifies this backend in every answer.
pub async fn serve(listener: TcpListener, name: String) -> std::io::Result<()> {
    let name_header = match HeaderValue::from_str(&name) {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!(%name, "backend name is not a valid header value; x-echo-name is omitted");
            None
        }
    };
    let state = Arc::new(State { name, name_header });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, name = %state.name, "echo backend listening");
    }
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                if !is_per_connection_error(&err) {
                    // E.g. EMFILE/ENFILE: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(req, &state, remote).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%remote, error = %err, "connection ended with an error");
            }
        });
    }
}

/// Whether an accept error concerns only the one connection (no need to back off).
fn is_per_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The special behaviours selected by the query string.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    status: Option<StatusCode>,
    bytes: Option<u64>,
    echo_body: bool,
}

/// Parses the query string by hand; `Err` holds a short explanation for a 400.
fn parse_query(query: Option<&str>) -> Result<Params, String> {
    let mut params = Params::default();
    let Some(query) = query else {
        return Ok(params);
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "status" => {
                let code = value
                    .parse::<u16>()
                    .ok()
                    .filter(|code| (200..=599).contains(code))
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| format!("invalid status {value:?}: expected 200..=599"))?;
                params.status = Some(code);
            }
            "bytes" => {
                let n = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= MAX_BYTES)
                    .ok_or_else(|| format!("invalid bytes {value:?}: expected 0..={MAX_BYTES}"))?;
                params.bytes = Some(n);
            }
            "echo" => {
                if value != "body" {
                    return Err(format!("invalid echo {value:?}: expected \"body\""));
                }
                params.echo_body = true;
            }
            _ => {}
        }
    }
    Ok(params)
}

/// Answers one request.
async fn handle(req: Request<Incoming>, state: &State, remote: SocketAddr) -> Response<ResBody> {
    let mut response = if is_websocket_upgrade(&req) {
        websocket(req)
    } else {
        match parse_query(req.uri().query()) {
            Err(msg) => text(StatusCode::BAD_REQUEST, msg),
            Ok(params) => answer(req, params, state, remote).await,
        }
    };
    if let Some(value) = &state.name_header {
        response
            .headers_mut()
            .insert(ECHO_NAME_HEADER, value.clone());
    }
    response
}

/// Answers a non-WebSocket request according to its query parameters.
async fn answer(
    req: Request<Incoming>,
    params: Params,
    state: &State,
    remote: SocketAddr,
) -> Response<ResBody> {
    let status = params.status.unwrap_or(StatusCode::OK);
    if let Some(n) = params.bytes {
        let mut response = Response::new(PatternBody::new(n).map_err(BoxError::from).boxed());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        return response;
    }
    if params.echo_body {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let mut response = Response::new(req.into_body().map_err(BoxError::from).boxed());
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        return response;
    }

    let (parts, mut body) = req.into_parts();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_bytes = body_bytes.saturating_add(data.len() as u64);
                }
            }
            Err(err) => {
                tracing::debug!(%remote, error = %err, "failed to read request body");
                return text(
                    StatusCode::BAD_REQUEST,
                    "error reading request body".to_owned(),
                );
            }
        }
    }
    let description = describe(&parts, &state.name, remote, body_bytes);
    let json = match serde_json::to_vec_pretty(&description) {
        Ok(mut json) => {
            json.push(b'\n');
            json
        }
        Err(err) => {
            tracing::warn!(error = %err, "failed to serialise answer");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            );
        }
    };
    let mut response = Response::new(full(json));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Builds the JSON description of a request.
fn describe(
    parts: &http::request::Parts,
    name: &str,
    remote: SocketAddr,
    body_bytes: u64,
) -> Value {
    let uri = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => parts.uri.to_string(),
    };
    let host = parts
        .headers
        .get(header::HOST)
        .map(header_value_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));

    let mut headers = Map::new();
    for key in parts.headers.keys() {
        let mut values: Vec<Value> = parts
            .headers
            .get_all(key)
            .iter()
            .map(|v| Value::String(header_value_string(v)))
            .collect();
        let value = if values.len() == 1 {
            values.swap_remove(0)
        } else {
            Value::Array(values)
        };
        headers.insert(key.as_str().to_owned(), value);
    }

    json!({
        "name": name,
        "method": parts.method.as_str(),
        "uri": uri,
        "path": parts.uri.path(),
        "version": format!("{:?}", parts.version),
        "host": host,
        "headers": headers,
        "remote_addr": remote.to_string(),
        "body_bytes": body_bytes,
    })
}

/// A header value as a string (non-UTF-8 bytes are replaced).
fn header_value_string(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// Whether the request asks for a WebSocket upgrade.
fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// Whether `key` looks like a base64-encoded 16-byte nonce.
fn is_valid_websocket_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Completes a WebSocket handshake and spawns the echo loop.
fn websocket(mut req: Request<Incoming>) -> Response<ResBody> {
    if req.method() != Method::GET {
        return text(
            StatusCode::BAD_REQUEST,
            "websocket upgrade requires GET".to_owned(),
        );
    }
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .filter(|key| is_valid_websocket_key(key))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "missing or invalid Sec-WebSocket-Key".to_owned(),
        );
    };
    let accept = derive_accept_key(key);
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        );
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "websocket upgrade failed");
                return;
            }
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // Reading also flushes the automatic Pong and Close replies; the stream
        // ends once the close handshake is done.
        while let Some(message) = ws.next().await {
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    tracing::debug!(error = %err, "websocket read failed");
                    return;
                }
            };
            match message {
                Message::Text(_) | Message::Binary(_) => {
                    if let Err(err) = ws.send(message).await {
                        tracing::debug!(error = %err, "websocket write failed");
                        return;
                    }
                }
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
            }
        }
    });

    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// A short plain-text response.
fn text(status: StatusCode, msg: String) -> Response<ResBody> {
    let mut body = msg.into_bytes();
    body.push(b'\n');
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A complete in-memory body.
fn full(data: Vec<u8>) -> ResBody {
    Full::new(Bytes::from(data))
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
fn empty() -> ResBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// `CHUNK_SIZE + 26` bytes of the pattern starting at offset 0, so that any chunk
/// of at most `CHUNK_SIZE` bytes starting at any offset is a zero-copy slice.
static PATTERN: LazyLock<Bytes> = LazyLock::new(|| {
    (0..CHUNK_SIZE + 26)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
});

/// A body of `len` pattern bytes (byte `i` is `b'a' + i % 26`), streamed in chunks.
#[derive(Debug)]
struct PatternBody {
    offset: u64,
    remaining: u64,
}

impl PatternBody {
    /// A body producing `len` pattern bytes.
    fn new(len: u64) -> Self {
        Self {
            offset: 0,
            remaining: len,
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(self.remaining)
            .unwrap_or(CHUNK_SIZE)
            .min(CHUNK_SIZE);
        // `offset % 26` is below 26, so the cast is lossless.
        let start = (self.offset % 26) as usize;
        let chunk = PATTERN.slice(start..start + len);
        self.offset += len as u64;
        self.remaining -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests;
