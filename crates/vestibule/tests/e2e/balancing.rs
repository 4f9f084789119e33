//! Load balancing and session affinity annotations against three real backends on
//! 127.0.0.1, .2 and .3: cookie affinity, consistent hashing on the request URI, and EWMA.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::support::*;

/// Vestibule with Service `web` on `backends` and one Ingress for `host` and `path` with
/// `annotations` (without prefix).
async fn balanced(
    backends: &[SocketAddr],
    host: &str,
    path: &str,
    annotations: &[(&str, &str)],
) -> (Manifests, Vestibule) {
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", backends));
    let rules = ingress("web", &[(host, path, "Prefix", "web")]);
    manifests.write("ing.yaml", &nginx_annotated(&rules, annotations));
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

/// GET `path` on `host` through `proxy` on a new connection, with these headers.
async fn fetch(proxy: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    get(&format!("http://{proxy}{path}"), &all)
        .await
        .expect("an answer")
}

/// The `name=value` part of the response's `Set-Cookie`, if it set one.
fn set_cookie(answer: &Answer) -> Option<String> {
    let header = answer.headers.get("set-cookie")?.to_str().expect("ASCII");
    Some(header.split(';').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn cookie_affinity_keeps_a_session_on_its_endpoint_until_it_leaves() {
    let backends = echo_backends(&["a", "b", "c"]).await;
    let (manifests, vestibule) = balanced(
        &backends,
        "sticky.example",
        "/shop",
        &[("affinity", "cookie"), ("session-cookie-max-age", "3600")],
    )
    .await;
    let proxy = vestibule.http;

    let first = fetch(proxy, "sticky.example", "/shop/cart", &[]).await;
    assert_eq!(first.status, 200);
    let header = first.headers["set-cookie"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(header.starts_with("INGRESSCOOKIE="), "{header}");
    assert!(header.contains("; Max-Age=3600"), "{header}");
    assert!(header.contains("; Path=/shop"), "{header}");
    assert!(header.contains("; HttpOnly"), "{header}");
    assert!(
        !header.contains("127.0.0"),
        "the endpoint address is not revealed: {header}"
    );
    let cookie = set_cookie(&first).expect("a cookie");
    let home = first.backend();

    for _ in 0..20 {
        let again = fetch(
            proxy,
            "sticky.example",
            "/shop/cart",
            &[("cookie", &cookie)],
        )
        .await;
        assert_eq!(again.backend(), home, "the session stays on its endpoint");
        assert_eq!(set_cookie(&again), None, "a valid cookie is not set again");
    }

    let mut seen = HashSet::new();
    for _ in 0..15 {
        let fresh = fetch(proxy, "sticky.example", "/shop/cart", &[]).await;
        assert!(
            set_cookie(&fresh).is_some(),
            "every new session gets a cookie"
        );
        seen.insert(fresh.backend());
    }
    assert!(seen.len() > 1, "new sessions spread: {seen:?}");

    let names = ["a", "b", "c"];
    let remaining: Vec<SocketAddr> = backends
        .iter()
        .zip(names)
        .filter(|(_, name)| *name != home)
        .map(|(addr, _)| *addr)
        .collect();
    manifests.write("svc.yaml", &service("web", &remaining));
    let deadline = std::time::Instant::now() + PATIENCE;
    let moved = loop {
        let answer = fetch(
            proxy,
            "sticky.example",
            "/shop/cart",
            &[("cookie", &cookie)],
        )
        .await;
        if answer.status == 200 && answer.backend() != home {
            break answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session never left the removed endpoint"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let renewed = set_cookie(&moved).expect("the cookie is set again");
    assert_ne!(renewed, cookie);
    let new_home = moved.backend();
    for _ in 0..5 {
        let again = fetch(proxy, "sticky.example", "/shop/x", &[("cookie", &renewed)]).await;
        assert_eq!(again.backend(), new_home, "the renewed session sticks");
    }
}

#[tokio::test]
async fn hashing_on_the_request_uri_places_each_uri_on_one_endpoint() {
    let backends = echo_backends(&["a", "b", "c"]).await;
    let (_manifests, vestibule) = balanced(
        &backends,
        "hashed.example",
        "/",
        &[("upstream-hash-by", "$request_uri")],
    )
    .await;
    let mut placed: HashMap<String, String> = HashMap::new();
    for round in 0..3 {
        for item in 0..20 {
            let uri = format!("/item/{item}?v=1");
            let answer = fetch(vestibule.http, "hashed.example", &uri, &[]).await;
            assert_eq!(answer.status, 200);
            let backend = answer.backend();
            let first = placed.entry(uri.clone()).or_insert_with(|| backend.clone());
            assert_eq!(*first, backend, "{uri} moved in round {round}");
        }
    }
    let used: HashSet<&String> = placed.values().collect();
    assert!(
        used.len() > 1,
        "different URIs spread over endpoints: {used:?}"
    );
}

/// A backend that answers like an echo backend named `slow`, after `delay`.
async fn slow_backend(addr: SocketAddr, delay: Duration) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| async move {
                    tokio::time::sleep(delay).await;
                    let body = Full::new(Bytes::from_static(br#"{"name":"slow"}"#));
                    Ok::<_, std::convert::Infallible>(http::Response::new(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn ewma_gives_a_slow_endpoint_a_smaller_share() {
    let mut backends = echo_backends(&["a", "b"]).await;
    let slow = SocketAddr::from(([127, 0, 0, 3], backends[0].port()));
    slow_backend(slow, Duration::from_millis(300)).await;
    backends.push(slow);
    let (_manifests, vestibule) =
        balanced(&backends, "ewma.example", "/", &[("load-balance", "ewma")]).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    let total = 30;
    for _ in 0..total {
        let answer = fetch(vestibule.http, "ewma.example", "/", &[]).await;
        assert_eq!(answer.status, 200);
        *counts.entry(answer.backend()).or_default() += 1;
    }
    let share = |name: &str| counts.get(name).copied().unwrap_or(0);
    assert!(
        share("slow") <= 4,
        "round robin would send {} to the slow endpoint: {counts:?}",
        total / 3
    );
    assert!(
        share("a") > share("slow") && share("b") > share("slow"),
        "{counts:?}"
    );
}
