//! Configuration changes apply while traffic flows, without a failed request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::*;

#[tokio::test]
async fn adding_a_path_and_removing_a_file_apply_live() {
    let web = echo_backend("web").await;
    let api = echo_backend("api").await;
    let manifests = Manifests::new();
    manifests.write(
        "svc.yaml",
        &[service("web", &[web]), service("api", &[api])].join("\n---\n"),
    );
    manifests.write(
        "web.yaml",
        &ingress("web", &[("site.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    let http = vestibule.http;
    let at = |path: &'static str| async move {
        get_via(http, "site.example", path)
            .await
            .map(|answer| (answer.status, answer.body))
    };
    assert_eq!(
        get_via(http, "site.example", "/api/v1")
            .await
            .expect("answer")
            .backend(),
        "web"
    );

    manifests.write(
        "api.yaml",
        &ingress("api", &[("site.example", "/api", "Prefix", "api")]),
    );
    eventually(|| async {
        get_via(http, "site.example", "/api/v1")
            .await
            .is_some_and(|answer| answer.status == 200 && answer.backend() == "api")
    })
    .await;

    manifests.remove("web.yaml");
    eventually(|| async { at("/home").await.is_some_and(|(status, _)| status == 404) }).await;
    assert_eq!(
        get_via(http, "site.example", "/api")
            .await
            .expect("answer")
            .backend(),
        "api"
    );
}

#[tokio::test]
async fn endpoint_changes_move_traffic() {
    let backends = echo_backends(&["old", "new"]).await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &backends[..1]));
    manifests.write("ing.yaml", &ingress("web", &[("", "/", "Prefix", "web")]));
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    assert_eq!(
        get_via(vestibule.http, "x", "/")
            .await
            .expect("answer")
            .backend(),
        "old"
    );
    manifests.write("svc.yaml", &service("web", &backends[1..]));
    eventually(|| async {
        get_via(vestibule.http, "x", "/")
            .await
            .is_some_and(|answer| answer.backend() == "new")
    })
    .await;
    vestibule
        .wait_for_log("routes_changed=false endpoint_sets_changed=1")
        .await;
}

/// 100 consecutive configuration changes under concurrent keep-alive load: every request of
/// the load must succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_reloads_under_load_fail_no_request() {
    let web = echo_backend("web").await;
    let probe = echo_backend("probe").await;
    let manifests = Manifests::new();
    manifests.write(
        "svc.yaml",
        &[service("web", &[web]), service("probe", &[probe])].join("\n---\n"),
    );
    manifests.write(
        "stable.yaml",
        &ingress("stable", &[("load.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for worker in 0..8 {
        let (stop, succeeded, failures) = (stop.clone(), succeeded.clone(), failures.clone());
        let proxy = vestibule.http;
        load.push(tokio::spawn(async move {
            let http1 = http1_client();
            let http2 = Http2::connect(proxy).await;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/item/{worker}");
                let answer = if worker % 2 == 0 {
                    get_with(&http1, proxy, "load.example", &path).await
                } else {
                    http2.get("load.example", &path).await
                };
                match answer {
                    Some(answer) if answer.status == 200 => {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures
                        .lock()
                        .expect("lock")
                        .push(format!("{:?}", other.map(|a| a.status))),
                }
            }
        }));
    }

    for change in 0..100 {
        let path = format!("/v{change}");
        manifests.write(
            "changing.yaml",
            &ingress("changing", &[("load.example", &path, "Exact", "probe")]),
        );
        let http = vestibule.http;
        eventually(|| {
            let path = path.clone();
            async move {
                get_via(http, "load.example", &path)
                    .await
                    .is_some_and(|answer| answer.backend() == "probe")
            }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.expect("load worker");
    }
    let failures = failures.lock().expect("lock");
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(succeeded.load(Ordering::Relaxed) > 100, "load ran");
}
