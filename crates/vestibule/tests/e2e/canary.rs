//! Canary releases (`canary`, `canary-by-header`, `canary-by-cookie`, `canary-weight`): one
//! main Ingress to the echo backend `main`, and canary Ingresses for the same hosts and paths
//! that send some requests to the echo backend `canary`.

use crate::support::*;

/// A canary Ingress's name, its host, and its annotations without prefix.
type CanaryIngress = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// A canary Ingress per host; the main Ingress serves every one of these hosts.
const CANARIES: [CanaryIngress; 6] = [
    (
        "by-header",
        "header.example",
        &[("canary-by-header", "X-Canary")],
    ),
    (
        "by-pattern",
        "pattern.example",
        &[
            ("canary-by-header", "X-Version"),
            ("canary-by-header-pattern", "^v2(\\.[0-9]+)?$"),
        ],
    ),
    (
        "by-cookie",
        "cookie.example",
        &[("canary-by-cookie", "use_canary")],
    ),
    ("weight-zero", "zero.example", &[("canary-weight", "0")]),
    ("weight-all", "all.example", &[("canary-weight", "100")]),
    ("weight-half", "half.example", &[("canary-weight", "50")]),
];

async fn canary_setup() -> (Manifests, Vestibule) {
    let main = echo_backend("main").await;
    let canary = echo_backend("canary").await;
    let manifests = Manifests::new();
    manifests.write("main-svc.yaml", &service("main", &[main]));
    manifests.write("canary-svc.yaml", &service("canary", &[canary]));
    let main_rules: Vec<(&str, &str, &str, &str)> = CANARIES
        .iter()
        .map(|(_, host, _)| (*host, "/", "Prefix", "main"))
        .collect();
    manifests.write("main.yaml", &ingress("main", &main_rules));
    for (name, host, annotations) in CANARIES {
        let mut settings = vec![("canary", "true")];
        settings.extend_from_slice(annotations);
        manifests.write(
            &format!("{name}.yaml"),
            &nginx_annotated(
                &ingress(name, &[(host, "/", "Prefix", "canary")]),
                &settings,
            ),
        );
    }
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

/// The backend that answers a GET of `/` on `host` with `headers`.
async fn backend_for(vestibule: &Vestibule, host: &str, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    let answer = get(&format!("http://{}/", vestibule.http), &all)
        .await
        .expect("answer");
    assert_eq!(answer.status, 200, "{host} {headers:?}");
    answer.backend()
}

/// How many of `count` requests to `host` the canary answered.
async fn canary_share(vestibule: &Vestibule, host: &str, count: usize) -> usize {
    let client = http1_client();
    let mut canary = 0;
    for _ in 0..count {
        let answer = get_with(&client, vestibule.http, host, "/")
            .await
            .expect("answer");
        match answer.backend().as_str() {
            "canary" => canary += 1,
            "main" => {}
            other => panic!("unexpected backend {other:?}"),
        }
    }
    canary
}

#[tokio::test]
async fn canaries_take_requests_by_header_cookie_and_weight() {
    let (_manifests, vestibule) = canary_setup().await;
    let v = &vestibule;

    assert_eq!(backend_for(v, "header.example", &[]).await, "main");
    let always = [("x-canary", "always")];
    assert_eq!(backend_for(v, "header.example", &always).await, "canary");
    let never = [("X-Canary", "never")];
    assert_eq!(backend_for(v, "header.example", &never).await, "main");
    let other = [("X-Canary", "yes")];
    assert_eq!(backend_for(v, "header.example", &other).await, "main");

    let v2 = [("x-version", "v2.1")];
    assert_eq!(backend_for(v, "pattern.example", &v2).await, "canary");
    let v3 = [("x-version", "v3")];
    assert_eq!(backend_for(v, "pattern.example", &v3).await, "main");

    let cookie = [("cookie", "theme=dark; use_canary=always")];
    assert_eq!(backend_for(v, "cookie.example", &cookie).await, "canary");
    let cookie = [("cookie", "use_canary=never")];
    assert_eq!(backend_for(v, "cookie.example", &cookie).await, "main");
    assert_eq!(backend_for(v, "cookie.example", &[]).await, "main");

    assert_eq!(canary_share(v, "zero.example", 50).await, 0);
    assert_eq!(canary_share(v, "all.example", 50).await, 50);
    let half = canary_share(v, "half.example", 200).await;
    assert!(
        (1..200).contains(&half),
        "both backends answer a 50% canary: {half} of 200 went to the canary"
    );

    let metrics = get(&format!("http://{}/metrics", v.admin), &[])
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    for line in [
        r#"vestibule_requests_total{namespace="default",ingress="weight-all",service="canary",status="200"} 50"#,
        r#"vestibule_requests_total{namespace="default",ingress="by-header",service="canary",status="200"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    let routes = get(&format!("http://{}/debug/routes", v.admin), &[])
        .await
        .expect("routes")
        .json();
    let hosts = routes["hosts"].as_array().expect("hosts");
    assert!(hosts.iter().all(|host| {
        host["paths"][0]["backend"]["service"] == "main"
            && host["paths"][0]["canary"]["service"] == "canary"
    }));
    let backends = routes["backends"].as_array().expect("backends");
    assert!(
        backends
            .iter()
            .any(|backend| backend["service"] == "canary")
    );
}

#[tokio::test]
async fn a_canary_without_a_main_ingress_is_ignored_and_reported() {
    let main = echo_backend("main").await;
    let canary = echo_backend("canary").await;
    let manifests = Manifests::new();
    manifests.write("main-svc.yaml", &service("main", &[main]));
    manifests.write("canary-svc.yaml", &service("canary", &[canary]));
    manifests.write(
        "main.yaml",
        &ingress("main", &[("shop.example", "/", "Prefix", "main")]),
    );
    let canary_only = ingress("lonely", &[("other.example", "/", "Prefix", "canary")]);
    let settings = [("canary", "true"), ("canary-weight", "100")];
    manifests.write("lonely.yaml", &nginx_annotated(&canary_only, &settings));
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    vestibule
        .wait_for_log("Ingress default/lonely: UnmatchedCanary")
        .await;
    let answer = get_via(vestibule.http, "other.example", "/")
        .await
        .expect("answer");
    assert_eq!(answer.status, 404);
    assert_eq!(backend_for(&vestibule, "shop.example", &[]).await, "main");
}
