//! `use-regex` and `rewrite-target` against real echo backends, which report the path they
//! received: the examples of the ingress-nginx documentation behave as documented.

use serde_json::Value;

use crate::support::*;

const USE_REGEX: &str = "nginx.ingress.kubernetes.io/use-regex";
const REWRITE_TARGET: &str = "nginx.ingress.kubernetes.io/rewrite-target";

/// The backend that answered and the path and query it received.
async fn upstream(vestibule: &Vestibule, host: &str, target: &str) -> (u16, String, String) {
    let answer = get_via(vestibule.http, host, target)
        .await
        .expect("an answer");
    let uri = if answer.status == 200 {
        answer.json()["uri"].as_str().expect("uri").to_owned()
    } else {
        String::new()
    };
    (answer.status, answer.backend(), uri)
}

fn expect(status: u16, backend: &str, uri: &str) -> (u16, String, String) {
    (status, backend.to_owned(), uri.to_owned())
}

#[tokio::test]
async fn rewrite_target_sends_the_rewritten_path_and_the_query_upstream() {
    let backend = echo_backend("http-svc").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("http-svc", &[backend]));
    manifests.write(
        "rewrite.yaml",
        &annotated(
            &ingress(
                "rewrite",
                &[(
                    "rewrite.bar.com",
                    "/something(/|$)(.*)",
                    "ImplementationSpecific",
                    "http-svc",
                )],
            ),
            &[(USE_REGEX, "true"), (REWRITE_TARGET, "/$2")],
        ),
    );
    manifests.write(
        "plain.yaml",
        &annotated(
            &ingress("plain", &[("plain.example", "/foo", "Prefix", "http-svc")]),
            &[(REWRITE_TARGET, "/")],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;

    let host = "rewrite.bar.com";
    for (requested, received) in [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new", "/new"),
        ("/something/new?x=1", "/new?x=1"),
        ("/SomeThing/a/b?x=1&y", "/a/b?x=1&y"),
    ] {
        assert_eq!(
            upstream(&vestibule, host, requested).await,
            expect(200, "http-svc", received),
            "{requested}"
        );
    }
    assert_eq!(
        upstream(&vestibule, host, "/somethingelse").await,
        expect(404, "", "")
    );
    for requested in ["/foo", "/foo/bar/baz", "/FOO/x"] {
        assert_eq!(
            upstream(&vestibule, "plain.example", &format!("{requested}?q=2")).await,
            expect(200, "http-svc", "/?q=2"),
            "{requested}"
        );
    }

    let view = get(&format!("http://{}/debug/routes", vestibule.admin), &[])
        .await
        .expect("an answer")
        .json();
    let paths = |host: &str| -> Vec<Value> {
        let hosts = view["hosts"].as_array().expect("hosts");
        let vhost = hosts.iter().find(|vhost| vhost["host"] == host);
        vhost.expect("the host")["paths"]
            .as_array()
            .expect("paths")
            .clone()
    };
    let rewrite = &paths("rewrite.bar.com")[0];
    assert_eq!(rewrite["path"], "/something(/|$)(.*)", "{view:#}");
    assert_eq!(rewrite["path_type"], "Regex");
    assert_eq!(rewrite["rewrite_target"], "/$2");
    assert_eq!(paths("plain.example")[0]["rewrite_target"], "/");
}

/// The "Path Priority" example of the ingress-nginx docs: the rewrite on one Ingress puts the
/// whole host in regex mode, so the other Ingress's paths are matched as case-insensitive
/// regular expressions too, longest first. `Exact` paths stay exact. An invalid pattern is
/// ignored and the Ingress's other paths still route.
#[tokio::test]
async fn one_rewriting_ingress_puts_its_host_in_regex_mode() {
    let backends = [
        echo_backend("service1").await,
        echo_backend("service2").await,
        echo_backend("service3").await,
        echo_backend("exact").await,
    ];
    let manifests = Manifests::new();
    let services: Vec<String> = ["service1", "service2", "service3", "exact"]
        .iter()
        .zip(backends)
        .map(|(name, addr)| service(name, &[addr]))
        .collect();
    manifests.write("svc.yaml", &services.join("\n---\n"));
    manifests.write(
        "one.yaml",
        &ingress(
            "test-ingress-1",
            &[
                ("test.com", "/foo/bar", "Prefix", "service1"),
                ("test.com", "/foo/bar/", "Prefix", "service2"),
                ("test.com", "/foo/bar/exact", "Exact", "exact"),
            ],
        ),
    );
    manifests.write(
        "two.yaml",
        &annotated(
            &ingress(
                "test-ingress-2",
                &[(
                    "test.com",
                    "/foo/bar/(.+)",
                    "ImplementationSpecific",
                    "service3",
                )],
            ),
            &[(REWRITE_TARGET, "/$1")],
        ),
    );
    manifests.write(
        "broken.yaml",
        &annotated(
            &ingress(
                "broken",
                &[
                    (
                        "broken.example",
                        "/api/(v1",
                        "ImplementationSpecific",
                        "service1",
                    ),
                    (
                        "broken.example",
                        "/ok/[0-9]+",
                        "ImplementationSpecific",
                        "service2",
                    ),
                ],
            ),
            &[(USE_REGEX, "true")],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;

    for (requested, answer) in [
        ("/foo/bar/1?x=1", expect(200, "service3", "/1?x=1")),
        ("/foo/bar/", expect(200, "service2", "/foo/bar/")),
        ("/foo/bar", expect(200, "service1", "/foo/bar")),
        ("/FOO/BAR", expect(200, "service1", "/FOO/BAR")),
        ("/foo/barn", expect(200, "service1", "/foo/barn")),
        ("/foo/bar/exact", expect(200, "exact", "/foo/bar/exact")),
        ("/foo/bar/Exact", expect(200, "service3", "/Exact")),
        ("/foo", expect(404, "", "")),
    ] {
        assert_eq!(
            upstream(&vestibule, "test.com", requested).await,
            answer,
            "{requested}"
        );
    }
    assert_eq!(
        upstream(&vestibule, "broken.example", "/ok/7").await,
        expect(200, "service2", "/ok/7")
    );
    assert_eq!(
        upstream(&vestibule, "broken.example", "/api/v1").await,
        expect(404, "", "")
    );
}
