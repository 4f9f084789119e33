//! Sending OTLP/JSON export requests over plain HTTP with the hyper client.

use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// How long one export may take, connecting included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to the collector may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a collector's answer that is read.
const MOST_ANSWER_BYTES: usize = 64 * 1024;

/// Why the OTLP exporter could not be set up, or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not an `http://host:port[/prefix]` URL.
    #[error("invalid OTLP endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The spans could not be encoded.
    #[error("cannot encode spans: {0}")]
    Encode(#[from] serde_json::Error),
    /// The collector could not be reached, or the exchange broke off.
    #[error("cannot reach the OTLP collector: {0}")]
    Send(#[from] hyper_util::client::legacy::Error),
    /// The collector's answer broke off or was too large.
    #[error("cannot read the OTLP collector's answer: {0}")]
    Answer(String),
    /// The collector refused the export.
    #[error("the OTLP collector answered {0}")]
    Status(http::StatusCode),
    /// The export took longer than its timeout.
    #[error("the OTLP export timed out after {0:?}")]
    TimedOut(Duration),
}

/// Where spans go: `<endpoint>/v1/traces`, over plain HTTP.
#[derive(Clone, Debug)]
pub(crate) struct Collector {
    url: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Collector {
    /// The collector at `endpoint` (`http://host:port`, optionally with a path prefix).
    pub fn new(endpoint: &str) -> Result<Self, OtlpError> {
        let invalid = |reason: &str| OtlpError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let base: Uri = endpoint
            .parse()
            .map_err(|error: http::uri::InvalidUri| invalid(&error.to_string()))?;
        match base.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("only plain http:// endpoints are supported")),
            _ => return Err(invalid("expected http://host:port")),
        }
        let authority = base
            .authority()
            .ok_or_else(|| invalid("expected http://host:port"))?
            .clone();
        let prefix = base.path().trim_end_matches('/');
        let url = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(format!("{prefix}/v1/traces"))
            .build()
            .map_err(|error| invalid(&error.to_string()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self { url, client })
    }

    /// The URL export requests are posted to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// Posts one export request.
    pub async fn send(&self, body: Vec<u8>) -> Result<(), OtlpError> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            Limited::new(response.into_body(), MOST_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| OtlpError::Answer(error.to_string()))?;
            if status.is_success() {
                Ok(())
            } else {
                Err(OtlpError::Status(status))
            }
        };
        tokio::time::timeout(EXPORT_TIMEOUT, exchange)
            .await
            .map_err(|_| OtlpError::TimedOut(EXPORT_TIMEOUT))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_become_trace_urls() {
        for (endpoint, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("http://gateway/otlp/", "http://gateway/otlp/v1/traces"),
        ] {
            let collector = Collector::new(endpoint).expect("valid endpoint");
            assert_eq!(collector.url().to_string(), url);
        }
        for invalid in [
            "https://collector:4318",
            "collector:4318",
            "/v1/traces",
            "http://",
        ] {
            assert!(Collector::new(invalid).is_err(), "{invalid}");
        }
    }
}
