//! gRPC requests on `GRPC` and `GRPCS` routes: what is forwarded and how failures are answered.
//!
//! When the proxy itself fails a gRPC request after its route matched (no ready endpoint, a
//! refused connection, a timeout, a refused body), it answers the way a gRPC server does: HTTP
//! 200, `content-type: application/grpc` and the status in `grpc-status` and `grpc-message`, as a
//! "Trailers-Only" response (headers that end the stream). ingress-nginx answers these failures
//! with plain 502, 503 or 504 pages, which gRPC clients turn into `UNAVAILABLE`; answering in
//! gRPC gives them the same code for unavailable endpoints and `DEADLINE_EXCEEDED` for timeouts.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::response::{ResponseBody, stamp};

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Whether a request is a gRPC call: its content type is `application/grpc`, alone or with a
/// `+format` or parameters.
pub(crate) fn is_call(headers: &HeaderMap) -> bool {
    let value = headers
        .get(CONTENT_TYPE)
        .map_or(&[][..], HeaderValue::as_bytes);
    value.split_at_checked(16).is_some_and(|(prefix, rest)| {
        prefix.eq_ignore_ascii_case(b"application/grpc")
            && matches!(rest.first(), None | Some(b'+' | b';' | b' '))
    })
}

/// Whether the client said it accepts trailers (`TE: trailers`), which gRPC servers may
/// require; it is the one `TE` that HTTP/2 forwards, as nginx's gRPC proxy does.
pub(crate) fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(TE)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or_default().split(','))
        .any(|token| {
            token
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("trailers"))
        })
}

/// Asks the endpoint for trailers (`TE: trailers`).
pub(crate) fn ask_for_trailers(headers: &mut HeaderMap) {
    headers.insert(TE, HeaderValue::from_static("trailers"));
}

/// The gRPC answer to a failure the proxy would answer with `status`.
pub(crate) fn failure(status: StatusCode) -> Response<ResponseBody> {
    let message = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(&GRPC_STATUS, HeaderValue::from(code(status)));
    if let Ok(message) = HeaderValue::try_from(message) {
        headers.insert(&GRPC_MESSAGE, message);
    }
    stamp(headers);
    response
}

/// The gRPC status code for a failure answered with `status` in HTTP: the gRPC project's
/// mapping of HTTP statuses, except that a gateway timeout is `DEADLINE_EXCEEDED` and a body
/// too large is `RESOURCE_EXHAUSTED`.
fn code(status: StatusCode) -> u16 {
    const INTERNAL: u16 = 13;
    const UNAVAILABLE: u16 = 14;
    const UNKNOWN: u16 = 2;
    match status {
        StatusCode::GATEWAY_TIMEOUT => 4,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::FORBIDDEN => 7,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::NOT_FOUND => 12,
        StatusCode::BAD_REQUEST => INTERNAL,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn calls_are_recognised_by_content_type() {
        assert!(is_call(&content_type("application/grpc")));
        assert!(is_call(&content_type("application/grpc+proto")));
        assert!(is_call(&content_type("Application/GRPC; charset=x")));
        assert!(!is_call(&content_type("application/grpc-web")));
        assert!(!is_call(&content_type("application/json")));
        assert!(!is_call(&HeaderMap::new()));
    }

    #[test]
    fn trailers_are_asked_for_only_when_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_trailers(&headers));
        headers.insert(TE, HeaderValue::from_static("gzip, Trailers;q=1"));
        assert!(accepts_trailers(&headers));
    }

    #[test]
    fn failures_are_trailers_only_answers() {
        let response = failure(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], "14");
        assert_eq!(
            response.headers()["grpc-message"],
            "503 Service Unavailable"
        );
        assert_eq!(
            failure(StatusCode::GATEWAY_TIMEOUT).headers()["grpc-status"],
            "4"
        );
        assert_eq!(
            failure(StatusCode::BAD_GATEWAY).headers()["grpc-status"],
            "14"
        );
    }
}
