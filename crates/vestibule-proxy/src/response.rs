//! Responses the proxy writes itself, and the headers every response carries.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, DATE, SERVER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// The body of any response a listener sends: a backend's, streamed, or one of our own.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// A short plain-text response naming only the status.
pub(crate) fn local(status: StatusCode) -> Response<ResponseBody> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    stamp(response.headers_mut());
    response
}

/// Sets `Server` to ours (as nginx hides the backend's) and `Date` when the backend sent none.
pub(crate) fn stamp(headers: &mut HeaderMap) {
    headers.insert(SERVER, HeaderValue::from_static("vestibule"));
    if !headers.contains_key(DATE) {
        headers.insert(DATE, current_date());
    }
}

thread_local! {
    static DATE_CACHE: RefCell<(u64, HeaderValue)> = const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
}

/// The current time as an HTTP date, formatted at most once a second per thread.
fn current_date() -> HeaderValue {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default();
    DATE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let formatted = httpdate::fmt_http_date(now);
            if let Ok(value) = HeaderValue::from_str(&formatted) {
                *cache = (second, value);
            }
        }
        cache.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_responses_carry_status_server_and_date() {
        let response = local(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[SERVER], "vestibule");
        let date = response.headers()[DATE].to_str().expect("ascii");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }
}
