//! Requests land where the Ingress rules say, and nowhere else.

use crate::support::*;

async fn shop_and_blog() -> (Manifests, Vestibule) {
    let shop = echo_backend("shop").await;
    let cart = echo_backend("cart").await;
    let blog = echo_backend("blog").await;
    let wildcard = echo_backend("wildcard").await;
    let manifests = Manifests::new();
    manifests.write(
        "services.yaml",
        &[
            service("shop", &[shop]),
            service("cart", &[cart]),
            service("blog", &[blog]),
            service("wildcard", &[wildcard]),
        ]
        .join("\n---\n"),
    );
    manifests.write(
        "shop.yaml",
        &ingress(
            "shop",
            &[
                ("shop.example", "/", "Prefix", "shop"),
                ("shop.example", "/cart", "Prefix", "cart"),
                ("shop.example", "/checkout", "Exact", "cart"),
                ("*.apps.example", "/", "Prefix", "wildcard"),
            ],
        ),
    );
    manifests.write(
        "blog.yaml",
        &ingress("blog", &[("blog.example", "/posts", "Prefix", "blog")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

#[tokio::test]
async fn hosts_and_paths_select_backends() {
    let (_manifests, vestibule) = shop_and_blog().await;
    let cases = [
        ("shop.example", "/", Some("shop")),
        ("SHOP.example:8080", "/cart/items?id=1", Some("cart")),
        ("shop.example", "/cartoon", Some("shop")),
        ("shop.example", "/checkout", Some("cart")),
        ("shop.example", "/checkout/", Some("shop")),
        ("blog.example", "/posts/1", Some("blog")),
        ("blog.example", "/", None),
        ("a.apps.example", "/x", Some("wildcard")),
        ("a.b.apps.example", "/x", None),
        ("unknown.example", "/", None),
    ];
    for (host, path, expected) in cases {
        let answer = get_via(vestibule.http, host, path).await.expect("answer");
        match expected {
            Some(backend) => {
                assert_eq!(answer.status, 200, "{host}{path}");
                assert_eq!(answer.backend(), backend, "{host}{path}");
            }
            None => {
                assert_eq!(answer.status, 404, "{host}{path}");
                assert_eq!(answer.body.as_ref(), b"404 Not Found\n");
            }
        }
    }
}

#[tokio::test]
async fn backend_sees_the_path_and_query_unchanged() {
    let (_manifests, vestibule) = shop_and_blog().await;
    let answer = get_via(vestibule.http, "shop.example", "/cart/a%20b?x=1&y=%2F")
        .await
        .expect("answer");
    assert_eq!(answer.json()["uri"], "/cart/a%20b?x=1&y=%2F");
}

#[tokio::test]
async fn http2_prior_knowledge_routes_by_authority() {
    let (_manifests, vestibule) = shop_and_blog().await;
    let connection = Http2::connect(vestibule.http).await;
    let answer = connection
        .get("blog.example", "/posts/9")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.backend(), "blog");
    let seen = answer.json();
    assert_eq!(seen["version"], "HTTP/1.1", "upstream leg is HTTP/1.1");
    assert_eq!(seen["headers"]["host"], "blog.example");
}

#[tokio::test]
async fn missing_services_and_empty_endpoints_answer_503_without_internals() {
    let manifests = Manifests::new();
    manifests.write("idle.yaml", &service("idle", &[]));
    manifests.write(
        "ingress.yaml",
        &ingress(
            "broken",
            &[
                ("broken.example", "/missing", "Prefix", "nowhere"),
                ("broken.example", "/idle", "Prefix", "idle"),
            ],
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    for path in ["/missing", "/idle"] {
        let answer = get_via(vestibule.http, "broken.example", path)
            .await
            .expect("answer");
        assert_eq!(answer.status, 503, "{path}");
        assert_eq!(answer.body.as_ref(), b"503 Service Unavailable\n");
    }
    vestibule
        .wait_for_log("Service nowhere not found in namespace default")
        .await;
    vestibule.wait_for_log("has no ready endpoint").await;
}

#[tokio::test]
async fn endpoints_take_turns() {
    let backends = echo_backends(&["one", "two", "three"]).await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &backends));
    manifests.write("ing.yaml", &ingress("web", &[("", "/", "Prefix", "web")]));
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let answer = get_via(vestibule.http, "any.example", "/")
            .await
            .expect("answer");
        *seen.entry(answer.backend()).or_insert(0) += 1;
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            ("one".to_owned(), 10),
            ("three".to_owned(), 10),
            ("two".to_owned(), 10)
        ]
    );
}

#[tokio::test]
async fn default_backend_serves_unmatched_requests() {
    let fallback = echo_backend("fallback").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("fallback", &[fallback]));
    manifests.write(
        "ing.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: default}\nspec:\n  ingressClassName: vestibule\n  defaultBackend: {service: {name: fallback, port: {number: 80}}}\n",
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "whatever.example", "/x")
        .await
        .expect("answer");
    assert_eq!(answer.backend(), "fallback");
}

#[tokio::test]
async fn external_name_services_resolve_by_dns() {
    let backend = echo_backend("external").await;
    let manifests = Manifests::new();
    manifests.write(
        "svc.yaml",
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: ext}}\nspec: {{type: ExternalName, externalName: localhost, ports: [{{port: {}}}]}}\n",
            backend.port()
        ),
    );
    manifests.write(
        "ing.yaml",
        &ingress("ext", &[("ext.example", "/", "Prefix", "ext")]).replace(
            "port: {number: 80}",
            &format!("port: {{number: {}}}", backend.port()),
        ),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "ext.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.backend(), "external");
}

#[tokio::test]
async fn ingresses_of_other_classes_are_ignored() {
    let backend = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[backend]));
    manifests.write(
        "ing.yaml",
        &ingress("nginx-one", &[("nginx.example", "/", "Prefix", "web")])
            .replace("ingressClassName: vestibule", "ingressClassName: nginx"),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "nginx.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn admin_endpoints_live_apart_from_traffic() {
    let manifests = Manifests::new();
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let health = get(&format!("http://{}/healthz", vestibule.admin), &[])
        .await
        .expect("answer");
    assert_eq!(health.status, 200);
    let on_traffic_port = get_via(vestibule.http, "x", "/healthz")
        .await
        .expect("answer");
    assert_eq!(on_traffic_port.status, 404);
}

#[tokio::test]
async fn the_quickstart_examples_load_without_warnings() {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    let vestibule = Vestibule::start(&examples, &[]);
    vestibule.wait_ready().await;
    vestibule
        .wait_for_log("configuration applied ingresses=1 backends=2")
        .await;
    let warnings: Vec<_> = vestibule
        .log()
        .into_iter()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
