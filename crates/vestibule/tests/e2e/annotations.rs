//! ingress-nginx annotations, one family per test, against real backends: each behaves as the
//! ingress-nginx documentation describes.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::support::*;

/// An Ingress name, its host, and its annotations without prefix.
pub(crate) type AnnotatedHost<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// One Ingress per [`AnnotatedHost`], all to one echo backend named `web`.
pub(crate) async fn annotated_hosts(hosts: &[AnnotatedHost<'_>]) -> (Manifests, Vestibule) {
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    for (name, host, annotations) in hosts {
        manifests.write(
            &format!("{name}.yaml"),
            &nginx_ingress(name, host, annotations),
        );
    }
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

/// An Ingress `name` routing all of `host` to the Service `web`, with `annotations` under the
/// ingress-nginx prefix.
fn nginx_ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    nginx_annotated(&ingress(name, &[(host, "/", "Prefix", "web")]), annotations)
}

/// Sends `request` to `proxy` over a new HTTP/1.1 connection made from `source`.
pub(crate) async fn send_from(
    source: &str,
    proxy: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("address"))
        .expect("bind the source address");
    let stream = socket.connect(proxy).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("response");
    read_answer(response).await.expect("whole answer")
}

pub(crate) fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::default()).expect("request")
}

fn location(answer: &Answer) -> &str {
    answer.headers["location"].to_str().expect("ASCII location")
}

#[tokio::test]
async fn redirects_are_answered_at_the_edge() {
    let (_manifests, vestibule) = annotated_hosts(&[
        (
            "moved",
            "old.example",
            &[
                ("permanent-redirect", "https://new.example$request_uri"),
                ("permanent-redirect-code", "308"),
            ],
        ),
        (
            "away",
            "away.example",
            &[("temporal-redirect", "https://elsewhere.example/")],
        ),
        (
            "perm",
            "perm.example",
            &[("permanent-redirect", "https://perm.example.org")],
        ),
        ("app", "app.example", &[("app-root", "/dashboard")]),
    ])
    .await;
    let moved = get_via(vestibule.http, "old.example", "/a/b?c=1")
        .await
        .expect("answer");
    assert_eq!(
        (moved.status, location(&moved)),
        (308, "https://new.example/a/b?c=1")
    );
    assert_eq!(moved.backend(), "");
    let away = get_via(vestibule.http, "away.example", "/x")
        .await
        .expect("answer");
    assert_eq!(
        (away.status, location(&away)),
        (302, "https://elsewhere.example/")
    );
    let perm = get_via(vestibule.http, "perm.example", "/")
        .await
        .expect("answer");
    assert_eq!(
        (perm.status, location(&perm)),
        (301, "https://perm.example.org")
    );
    let root = get_via(vestibule.http, "app.example", "/")
        .await
        .expect("answer");
    assert_eq!(
        (root.status, location(&root)),
        (302, "http://app.example/dashboard")
    );
    let page = get_via(vestibule.http, "app.example", "/dashboard")
        .await
        .expect("answer");
    assert_eq!((page.status, page.backend().as_str()), (200, "web"));
}

#[tokio::test]
async fn force_ssl_redirect_redirects_hosts_without_tls() {
    let (_manifests, vestibule) = annotated_hosts(&[
        (
            "forced",
            "forced.example",
            &[("force-ssl-redirect", "true")],
        ),
        ("plain", "plain.example", &[]),
    ])
    .await;
    let forced = get_via(vestibule.http, "forced.example", "/p?q")
        .await
        .expect("answer");
    assert_eq!(
        (forced.status, location(&forced)),
        (308, "https://forced.example/p?q")
    );
    let acme = get_via(
        vestibule.http,
        "forced.example",
        "/.well-known/acme-challenge/t",
    )
    .await
    .expect("answer");
    assert_eq!(acme.backend(), "web");
    let plain = get_via(vestibule.http, "plain.example", "/")
        .await
        .expect("answer");
    assert_eq!(plain.backend(), "web");
}

#[tokio::test]
async fn source_ranges_allow_and_deny_client_addresses() {
    let (_manifests, vestibule) = annotated_hosts(&[
        (
            "office",
            "office.example",
            &[
                ("whitelist-source-range", "127.0.0.0/8"),
                ("denylist-source-range", "127.0.0.2"),
            ],
        ),
        (
            "remote",
            "remote.example",
            &[("allowlist-source-range", "10.0.0.0/8, 192.168.0.0/16")],
        ),
    ])
    .await;
    let get = |host: &'static str| request("GET", host, "/", &[]);
    let allowed = send_from("127.0.0.1", vestibule.http, get("office.example")).await;
    assert_eq!((allowed.status, allowed.backend().as_str()), (200, "web"));
    let denied = send_from("127.0.0.2", vestibule.http, get("office.example")).await;
    assert_eq!((denied.status, denied.backend().as_str()), (403, ""));
    let outside = send_from("127.0.0.1", vestibule.http, get("remote.example")).await;
    assert_eq!(outside.status, 403);
}

#[tokio::test]
async fn cors_preflights_are_answered_and_responses_carry_cors_headers() {
    let (_manifests, vestibule) = annotated_hosts(&[
        (
            "api",
            "api.example",
            &[
                ("enable-cors", "true"),
                (
                    "cors-allow-origin",
                    "https://app.example, https://*.tools.example",
                ),
                ("cors-allow-methods", "GET, POST"),
                ("cors-expose-headers", "X-Total"),
                ("cors-max-age", "600"),
            ],
        ),
        ("open", "open.example", &[("enable-cors", "true")]),
    ])
    .await;
    let preflight_headers = [
        ("origin", "https://a.tools.example"),
        ("access-control-request-method", "POST"),
    ];
    let preflight = send_from(
        "127.0.0.1",
        vestibule.http,
        request("OPTIONS", "api.example", "/items", &preflight_headers),
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert!(preflight.body.is_empty());
    let headers = &preflight.headers;
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://a.tools.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(headers["access-control-max-age"], "600");
    assert_eq!(headers["access-control-allow-credentials"], "true");

    let foreign = send_from(
        "127.0.0.1",
        vestibule.http,
        request(
            "OPTIONS",
            "api.example",
            "/items",
            &[("origin", "https://evil.example")],
        ),
    )
    .await;
    assert_eq!(foreign.status, 204);
    assert!(!foreign.headers.contains_key("access-control-allow-origin"));

    let simple = send_from(
        "127.0.0.1",
        vestibule.http,
        request(
            "GET",
            "api.example",
            "/items",
            &[("origin", "https://app.example")],
        ),
    )
    .await;
    assert_eq!(simple.backend(), "web");
    assert_eq!(
        simple.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(simple.headers["access-control-expose-headers"], "X-Total");

    let open = send_from(
        "127.0.0.1",
        vestibule.http,
        request(
            "GET",
            "open.example",
            "/",
            &[("origin", "https://anyone.example")],
        ),
    )
    .await;
    assert_eq!(open.headers["access-control-allow-origin"], "*");
    assert_eq!(
        open.headers["access-control-allow-methods"],
        "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    );
}

#[tokio::test]
async fn upstream_headers_and_server_aliases() {
    let (_manifests, vestibule) = annotated_hosts(&[(
        "site",
        "site.example",
        &[
            ("upstream-vhost", "internal.site.svc"),
            ("x-forwarded-prefix", "/site"),
            ("server-alias", "www.site.example, *.sites.example"),
        ],
    )])
    .await;
    for host in ["site.example", "www.site.example", "a.sites.example"] {
        let answer = get_via(vestibule.http, host, "/").await.expect("answer");
        assert_eq!(answer.backend(), "web", "host {host}");
        let json = answer.json();
        assert_eq!(json["headers"]["host"], "internal.site.svc");
        assert_eq!(json["headers"]["x-forwarded-host"], host);
        assert_eq!(json["headers"]["x-forwarded-prefix"], "/site");
    }
    let other = get_via(vestibule.http, "b.c.sites.example", "/")
        .await
        .expect("answer");
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn body_size_and_read_timeout_apply_per_ingress() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    manifests.write("silent.yaml", &service("silent", &[silent_addr]));
    let small = annotated(
        &ingress("small", &[("small.example", "/", "Prefix", "web")]),
        &[("nginx.ingress.kubernetes.io/proxy-body-size", "1k")],
    );
    let big = annotated(
        &ingress("big", &[("big.example", "/", "Prefix", "web")]),
        &[("vestibule.dev/proxy-body-size", "4m")],
    );
    let hurried = annotated(
        &ingress("hurried", &[("hurried.example", "/", "Prefix", "silent")]),
        &[("nginx.ingress.kubernetes.io/proxy-read-timeout", "1")],
    );
    manifests.write("small.yaml", &small);
    manifests.write("big.yaml", &big);
    manifests.write("hurried.yaml", &hurried);
    let vestibule = Vestibule::start(manifests.path(), &["--proxy-read-timeout", "120s"]);
    vestibule.wait_ready().await;
    let upload = |host: &str, size: usize| {
        http::Request::post(format!("http://{}/?echo=body", vestibule.http))
            .header("host", host)
            .body(Full::new(Bytes::from(vec![b'x'; size])))
            .expect("request")
    };
    let client = http1_client();
    let refused = send(&client, upload("small.example", 2048))
        .await
        .expect("answer");
    assert_eq!(refused.status, 413);
    let fits = send(&client, upload("small.example", 1000))
        .await
        .expect("answer");
    assert_eq!(fits.status, 200);
    let large = send(&client, upload("big.example", 3 << 20))
        .await
        .expect("answer");
    assert_eq!((large.status, large.body.len()), (200, 3 << 20));
    let timed_out = get_via(vestibule.http, "hurried.example", "/")
        .await
        .expect("answer");
    assert_eq!(timed_out.status, 504);
}

#[tokio::test]
async fn next_upstream_tries_bounds_retries() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = dead.local_addr().expect("address").port();
    drop(dead);
    let live = echo_backend_at(
        format!("127.0.0.2:{port}").parse().expect("address"),
        "live",
    )
    .await;
    let dead = SocketAddr::from(([127, 0, 0, 1], port));
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("pair", &[dead, live]));
    let once = annotated(
        &ingress("once", &[("once.example", "/", "Prefix", "pair")]),
        &[("nginx.ingress.kubernetes.io/proxy-next-upstream-tries", "1")],
    );
    manifests.write("once.yaml", &once);
    manifests.write(
        "retried.yaml",
        &ingress("retried", &[("retried.example", "/", "Prefix", "pair")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    for _ in 0..4 {
        let answer = get_via(vestibule.http, "retried.example", "/")
            .await
            .expect("answer");
        assert_eq!(answer.backend(), "live");
    }
    let vestibule = {
        drop(vestibule);
        let fresh = Vestibule::start(manifests.path(), &[]);
        fresh.wait_ready().await;
        fresh
    };
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let answer = get_via(vestibule.http, "once.example", "/")
            .await
            .expect("answer");
        statuses.push(answer.status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 502],
        "one of two round-robin picks is the dead endpoint"
    );
}

#[tokio::test]
async fn snippets_and_unsupported_annotations_are_reported_and_the_rest_applies() {
    let (_manifests, vestibule) = annotated_hosts(&[(
        "mixed",
        "mixed.example",
        &[
            ("configuration-snippet", "return 200 'injected';"),
            ("server-snippet", "location /x { return 418; }"),
            ("proxy-read-timeout", "soon"),
            ("x-forwarded-prefix", "/mixed"),
        ],
    )])
    .await;
    let answer = get_via(vestibule.http, "mixed.example", "/x")
        .await
        .expect("answer");
    assert_eq!(answer.backend(), "web");
    assert_eq!(answer.json()["headers"]["x-forwarded-prefix"], "/mixed");
    vestibule
        .wait_for_log("configuration-snippet is refused")
        .await;
    vestibule.wait_for_log("server-snippet is refused").await;
    vestibule
        .wait_for_log("proxy-read-timeout is invalid")
        .await;
}

/// A Secret named `name` with `data` (key, text) pairs.
fn opaque_secret(name: &str, data: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    let data: Vec<String> = data
        .iter()
        .map(|(key, text)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            format!("  {key}: {encoded}\n")
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: Opaque\ndata:\n{}",
        data.concat()
    )
}

#[tokio::test]
async fn basic_auth_checks_htpasswd_credentials() {
    use base64::Engine as _;
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    let htpasswd = "alice:$2y$05$F8v33s3F9xwI36YoExsWXOSTu5WXxYxL4L/xApQQ1//QpZdFDGnmO\nbob:{SHA}9SMYoF5RilWWASry7TjeaKwmpGg=\ncarol:$apr1$s4Lee7dk$t/SSvzId5wxWP9d9ne7Mp.\n";
    manifests.write(
        "file.yaml",
        &opaque_secret("team-file", &[("auth", htpasswd)]),
    );
    manifests.write(
        "map.yaml",
        &opaque_secret("team-map", &[("bob", "{SHA}9SMYoF5RilWWASry7TjeaKwmpGg=")]),
    );
    manifests.write(
        "file-ing.yaml",
        &nginx_ingress(
            "file",
            "file.example",
            &[
                ("auth-type", "basic"),
                ("auth-secret", "team-file"),
                ("auth-realm", "Team only"),
            ],
        ),
    );
    manifests.write(
        "map-ing.yaml",
        &nginx_ingress(
            "map",
            "map.example",
            &[
                ("auth-type", "basic"),
                ("auth-secret", "default/team-map"),
                ("auth-secret-type", "auth-map"),
            ],
        ),
    );
    manifests.write(
        "missing-ing.yaml",
        &nginx_ingress(
            "missing",
            "missing.example",
            &[("auth-type", "basic"), ("auth-secret", "no-such-secret")],
        ),
    );
    manifests.write(
        "foreign-ing.yaml",
        &nginx_ingress(
            "foreign",
            "foreign.example",
            &[
                ("auth-type", "basic"),
                ("auth-secret", "kube-system/team-file"),
            ],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let client = http1_client();
    let login = |host: &str, credentials: Option<&str>| {
        let mut request =
            http::Request::get(format!("http://{}/", vestibule.http)).header("host", host);
        if let Some(credentials) = credentials {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.header("authorization", format!("Basic {encoded}"));
        }
        request.body(Full::default()).expect("request")
    };
    let anonymous = send(&client, login("file.example", None))
        .await
        .expect("answer");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.headers["www-authenticate"],
        "Basic realm=\"Team only\""
    );
    assert_eq!(anonymous.backend(), "");
    for good in ["alice:wonderland", "bob:builder", "carol:pa:ss"] {
        let answer = send(&client, login("file.example", Some(good)))
            .await
            .expect("answer");
        assert_eq!(
            (answer.status, answer.backend().as_str()),
            (200, "web"),
            "{good}"
        );
    }
    for bad in ["alice:wonderlan", "mallory:builder", "bob"] {
        let answer = send(&client, login("file.example", Some(bad)))
            .await
            .expect("answer");
        assert_eq!(answer.status, 401, "{bad}");
    }
    let map = send(&client, login("map.example", Some("bob:builder")))
        .await
        .expect("answer");
    assert_eq!(map.backend(), "web");
    let map_default_realm = send(&client, login("map.example", None))
        .await
        .expect("answer");
    assert_eq!(
        map_default_realm.headers["www-authenticate"],
        "Basic realm=\"Authentication Required\""
    );
    for host in ["missing.example", "foreign.example"] {
        let answer = send(&client, login(host, Some("bob:builder")))
            .await
            .expect("answer");
        assert_eq!(
            (answer.status, answer.backend().as_str()),
            (503, ""),
            "{host}"
        );
    }
    vestibule
        .wait_for_log("auth-secret default/no-such-secret does not exist")
        .await;
    vestibule
        .wait_for_log("kube-system/team-file is in another namespace")
        .await;
}
