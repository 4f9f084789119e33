//! External authentication (`auth-url`) against a real authentication service written here: it
//! admits `Authorization: Bearer good` (answering `X-Auth-User: alice` and a cookie), forbids
//! `Bearer banned`, and challenges everyone else with 401. The backend echoes the body it got.
//! Both record every request they receive.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;

use crate::backend_protocol::{backend_acceptor, silent_backend};
use crate::support::*;

/// A request a recording server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    /// The values of header `name`, as text.
    fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().expect("ASCII header"))
            .collect()
    }

    fn header(&self, name: &str) -> &str {
        match self.values(name).as_slice() {
            [value] => value,
            values => panic!("{name}: expected one value, got {values:?}"),
        }
    }
}

/// The requests a recording server received, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn last(&self) -> Seen {
        self.all().pop().expect("a recorded request")
    }
}

/// Serves HTTP/1.1 on a loopback port (over TLS with `tls`), recording each request (body
/// included) in `log` and answering with `answer`.
async fn recording_server(
    log: Log,
    answer: fn(&Seen) -> Response<Full<Bytes>>,
    tls: Option<TlsAcceptor>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let log = log.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.map(|body| body.to_bytes());
                    let seen = Seen {
                        method: parts.method.to_string(),
                        uri: parts.uri.to_string(),
                        headers: parts.headers,
                        body: body.unwrap_or_default(),
                    };
                    let response = answer(&seen);
                    log.0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(seen);
                    Ok::<_, Infallible>(response)
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match tls.clone() {
                None => {
                    tokio::spawn(http.serve_connection(TokioIo::new(stream), service));
                }
                Some(tls) => {
                    tokio::spawn(async move {
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    });
                }
            }
        }
    });
    addr
}

fn auth_service(seen: &Seen) -> Response<Full<Bytes>> {
    let authorization = seen
        .headers
        .get("authorization")
        .map(|value| value.as_bytes());
    let response = match authorization {
        Some(b"Bearer good") => Response::builder()
            .header("x-auth-user", "alice")
            .header("set-cookie", "session=fresh; Path=/"),
        Some(b"Bearer banned") => Response::builder().status(403),
        _ => Response::builder()
            .status(401)
            .header("www-authenticate", "Bearer realm=\"vestibule-test\""),
    };
    response
        .body(Full::new(Bytes::from_static(b"auth service body")))
        .expect("response")
}

fn echoing_backend(seen: &Seen) -> Response<Full<Bytes>> {
    Response::new(Full::new(seen.body.clone()))
}

/// The authentication service, the backend, and Vestibule with three Ingresses to the backend:
/// `plain.example` asks the service, `signin.example` also redirects browsers to a sign-in
/// page, and `down.example` asks a service that is not listening.
struct Setup {
    _manifests: Manifests,
    vestibule: Vestibule,
    auth: Log,
    backend: Log,
}

async fn setup() -> Setup {
    let auth = Log::default();
    let auth_addr = recording_server(auth.clone(), auth_service, None).await;
    let backend = Log::default();
    let backend_addr = recording_server(backend.clone(), echoing_backend, None).await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend_addr]));
    let url = format!("http://{auth_addr}/check?host=$host");
    let down_url = format!("http://{down}/check");
    let ingresses: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "plain",
            vec![("auth-url", &url), ("auth-response-headers", "X-Auth-User")],
        ),
        (
            "signin",
            vec![
                ("auth-url", &url),
                ("auth-signin", "https://login.example/start"),
            ],
        ),
        ("down", vec![("auth-url", &down_url)]),
    ];
    for (name, annotations) in ingresses {
        let host = format!("{name}.example");
        manifests.write(
            &format!("{name}.yaml"),
            &nginx_annotated(
                &ingress(name, &[(&host, "/", "Prefix", "web")]),
                &annotations,
            ),
        );
    }
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    Setup {
        _manifests: manifests,
        vestibule,
        auth,
        backend,
    }
}

impl Setup {
    async fn send(
        &self,
        method: &str,
        host: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &'static [u8],
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{target}", self.vestibule.http))
            .header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from_static(body)))
            .expect("request");
        send(&http1_client(), request).await.expect("an answer")
    }
}

#[tokio::test]
async fn admitted_requests_reach_the_backend_with_the_services_headers() {
    let setup = setup().await;
    let answer = setup
        .send(
            "GET",
            "plain.example",
            "/some/page?q=1",
            &[
                ("authorization", "Bearer good"),
                ("x-auth-user", "mallory"),
                ("x-forwarded-host", "forged.example"),
                ("cookie", "session=old"),
            ],
            b"",
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["set-cookie"], "session=fresh; Path=/");

    let asked = setup.auth.last();
    assert_eq!(asked.method, "GET");
    assert_eq!(asked.uri, "/check?host=plain.example");
    assert!(asked.body.is_empty());
    assert!(asked.values("content-length").is_empty());
    assert_eq!(asked.header("host"), "127.0.0.1");
    assert_eq!(asked.header("authorization"), "Bearer good");
    assert_eq!(asked.header("cookie"), "session=old");
    assert_eq!(
        asked.header("x-original-url"),
        "http://plain.example/some/page?q=1"
    );
    assert_eq!(asked.header("x-original-method"), "GET");
    assert_eq!(asked.header("x-sent-from"), "nginx-ingress-controller");
    assert_eq!(asked.header("x-real-ip"), "127.0.0.1");
    assert_eq!(asked.header("x-forwarded-for"), "127.0.0.1");
    assert_eq!(asked.header("x-forwarded-host"), "plain.example");
    assert_eq!(asked.header("x-forwarded-proto"), "http");
    assert_eq!(asked.header("x-auth-request-redirect"), "/some/page?q=1");
    assert!(asked.values("x-original-uri").is_empty());

    let proxied = setup.backend.last();
    assert_eq!(proxied.uri, "/some/page?q=1");
    assert_eq!(proxied.values("x-auth-user"), ["alice"]);
    assert_eq!(
        proxied.header("x-request-id"),
        asked.header("x-request-id"),
        "the service and the backend see the same request id"
    );
}

#[tokio::test]
async fn request_bodies_reach_the_backend_intact_after_authentication() {
    let setup = setup().await;
    let body: &'static [u8] = b"{\"order\": 42, \"items\": [\"tea\", \"scones\"]}";
    let answer = setup
        .send(
            "POST",
            "plain.example",
            "/orders",
            &[
                ("authorization", "Bearer good"),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, body);

    let asked = setup.auth.last();
    assert_eq!(asked.method, "GET");
    assert_eq!(asked.header("x-original-method"), "POST");
    assert!(asked.body.is_empty());
    assert!(asked.values("content-length").is_empty());
    let proxied = setup.backend.last();
    assert_eq!(proxied.method, "POST");
    assert_eq!(proxied.body, body);
    assert_eq!(proxied.values("x-auth-user"), ["alice"]);
}

#[tokio::test]
async fn refused_requests_get_the_services_answer_and_never_reach_the_backend() {
    let setup = setup().await;
    let forged = [("x-auth-user", "alice")];
    let challenged = setup.send("GET", "plain.example", "/", &forged, b"").await;
    assert_eq!(challenged.status, 401);
    assert_eq!(
        challenged.headers["www-authenticate"],
        "Bearer realm=\"vestibule-test\""
    );
    assert!(challenged.headers.get("set-cookie").is_none());

    let banned = [("authorization", "Bearer banned")];
    let forbidden = setup.send("GET", "plain.example", "/", &banned, b"").await;
    assert_eq!(forbidden.status, 403);

    let browser = setup
        .send("GET", "signin.example", "/private/page?x=1&y=2", &[], b"")
        .await;
    assert_eq!(browser.status, 302);
    assert_eq!(
        browser.headers["location"],
        "https://login.example/start?rd=http://signin.example%2Fprivate%2Fpage%3Fx%3D1%26y%3D2"
    );
    let banned_browser = setup.send("GET", "signin.example", "/", &banned, b"").await;
    assert_eq!(banned_browser.status, 403, "only a 401 becomes a redirect");

    let down = [("authorization", "Bearer good")];
    let failed = setup.send("GET", "down.example", "/", &down, b"").await;
    assert_eq!(failed.status, 500);

    assert_eq!(setup.auth.all().len(), 4, "the service was asked each time");
    assert!(
        setup.backend.all().is_empty(),
        "the backend saw nothing: {:?}",
        setup.backend.all()
    );
}

#[tokio::test]
async fn services_over_https_are_asked_and_silent_ones_time_out_with_500() {
    let auth = Log::default();
    let tls = backend_acceptor(&[b"http/1.1"]);
    let https_auth = recording_server(auth.clone(), auth_service, Some(tls)).await;
    let silent = silent_backend().await;
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    let hosts = [
        ("tls", format!("https://{https_auth}/check")),
        ("slow", format!("http://{silent}/check")),
    ];
    for (name, url) in &hosts {
        let host = format!("{name}.example");
        manifests.write(
            &format!("{name}.yaml"),
            &nginx_annotated(
                &ingress(name, &[(&host, "/", "Prefix", "web")]),
                &[("auth-url", url)],
            ),
        );
    }
    let vestibule = Vestibule::start(manifests.path(), &["--proxy-read-timeout", "1s"]);
    vestibule.wait_ready().await;
    let request = |host: &str, token: &str| {
        http::Request::get(format!("http://{}/x", vestibule.http))
            .header("host", host)
            .header("authorization", token)
            .body(Full::default())
            .expect("request")
    };

    let admitted = send(&http1_client(), request("tls.example", "Bearer good"))
        .await
        .expect("an answer");
    assert_eq!(admitted.status, 200);
    assert_eq!(admitted.backend(), "web");
    let refused = send(&http1_client(), request("tls.example", "Bearer bad"))
        .await
        .expect("an answer");
    assert_eq!(refused.status, 401);
    assert_eq!(auth.all().len(), 2);
    assert!(
        auth.all()
            .iter()
            .all(|seen| seen.header("x-original-url") == "http://tls.example/x")
    );

    let asked = Instant::now();
    let timed_out = send(&http1_client(), request("slow.example", "Bearer good"))
        .await
        .expect("an answer");
    assert_eq!(timed_out.status, 500);
    let waited = asked.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(10)).contains(&waited),
        "answered after {waited:?}"
    );
}
