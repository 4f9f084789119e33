//! One request: route it, pick an endpoint, forward it, stream the answer back.

use std::sync::Arc;

use http::header::{HOST, LOCATION, STRICT_TRANSPORT_SECURITY};
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;

use crate::error::{Fault, ProxyError};
use crate::forward::{Origin, Scheme, add_forwarding_headers, requested_upgrade, strip_hop_by_hop};
use crate::listener::ProxySettings;
use crate::plane::DataPlane;
use crate::response::{ResponseBody, local, stamp};
use crate::tls::misdirected;

/// Requests under this path are never redirected to HTTPS, so ACME HTTP-01 challenges (as
/// cert-manager solves them) keep working.
const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// The client that carries requests to backends, pooling keep-alive connections per endpoint.
pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// What every request on one listener shares.
pub(crate) struct Handler {
    pub plane: Arc<DataPlane>,
    pub client: UpstreamClient,
    pub settings: ProxySettings,
}

impl Handler {
    /// Answers one request: the backend's response, or our own when proxying failed.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Response<ResponseBody> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        match self.proxy(request, origin).await {
            Ok(response) => response,
            Err(error) => {
                match error.fault() {
                    Fault::Client => tracing::debug!(%method, %uri, %error, "request refused"),
                    Fault::Configuration | Fault::Upstream => {
                        tracing::warn!(%method, %uri, %error, status = error.status().as_u16(), "request failed")
                    }
                }
                local(error.status())
            }
        }
    }

    async fn proxy(
        &self,
        mut request: Request<Incoming>,
        origin: &Origin,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        let host = request_host(&request)?;
        let host_text = host.to_str().unwrap_or_default();
        if let Some(sni) = &origin.sni
            && misdirected(&self.plane, sni, host_text)
        {
            return Err(ProxyError::Misdirected {
                host: host_text.to_owned(),
                sni: sni.to_string(),
            });
        }
        let target = {
            let table = self.plane.table();
            let selected = table.route(host_text, request.uri().path());
            selected.map(|selected| selected.target().clone())
        }
        .ok_or(ProxyError::NoRoute)?;
        if origin.scheme == Scheme::Http
            && target.route.https_redirect
            && !request.uri().path().starts_with(ACME_CHALLENGE_PATH)
        {
            return Ok(self.redirect_to_https(host_text, request.uri()));
        }
        let backend = target.upstream.id();
        let endpoint = target
            .upstream
            .pick()
            .ok_or_else(|| ProxyError::NoReadyEndpoint {
                backend: backend.clone(),
            })?;

        let upgrade = match request.version() {
            Version::HTTP_11 => requested_upgrade(request.headers()),
            _ => None,
        };
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
            .authority(endpoint.clone())
            .path_and_query(path_and_query)
            .build()?;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers, upgrade);
        add_forwarding_headers(&mut parts.headers, &host, origin);

        let mut response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|error| ProxyError::upstream(backend, endpoint, &error))?;

        let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        match client_upgrade {
            Some(client_upgrade) if upgraded => {
                let backend_upgrade = hyper::upgrade::on(&mut response);
                let backend = backend.clone();
                tokio::spawn(async move {
                    match tokio::try_join!(client_upgrade, backend_upgrade) {
                        Ok((client, server)) => {
                            let mut client = TokioIo::new(client);
                            let mut server = TokioIo::new(server);
                            if let Err(error) =
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            {
                                tracing::debug!(%backend, %error, "upgraded connection ended");
                            }
                        }
                        Err(error) => tracing::debug!(%backend, %error, "upgrade failed"),
                    }
                });
            }
            _ => {}
        }
        let headers = response.headers_mut();
        let response_upgrade = upgraded
            .then(|| headers.get(http::header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(headers, response_upgrade);
        stamp(headers);
        if origin.scheme == Scheme::Https
            && target.route.tls
            && let Some(hsts) = &self.settings.hsts
        {
            headers
                .entry(STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        Ok(response.map(Either::Left))
    }

    /// A 308 to the same URL on HTTPS, as ingress-nginx's `ssl-redirect` answers.
    fn redirect_to_https(&self, host: &str, uri: &Uri) -> Response<ResponseBody> {
        let name = vestibule_routing::normalize_request_host(host);
        let port = match self.settings.https_redirect_port {
            443 => String::new(),
            port => format!(":{port}"),
        };
        let target = uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let mut response = local(StatusCode::PERMANENT_REDIRECT);
        if let Ok(location) = HeaderValue::try_from(format!("https://{name}{port}{target}")) {
            response.headers_mut().insert(LOCATION, location);
        }
        response
    }
}

/// The host a request is for: the URI's authority (HTTP/2, absolute-form) or its `Host`.
fn request_host(request: &Request<Incoming>) -> Result<HeaderValue, ProxyError> {
    if let Some(authority) = request.uri().authority() {
        return HeaderValue::from_str(authority.as_str()).map_err(|_| ProxyError::MissingHost);
    }
    match request.headers().get(HOST) {
        Some(host) => Ok(host.clone()),
        None if request.version() <= Version::HTTP_10 => Ok(HeaderValue::from_static("")),
        None => Err(ProxyError::MissingHost),
    }
}
