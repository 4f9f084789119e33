//! Broken input is reported and costs nothing else: every other route keeps serving.

use std::process::Command;

use crate::support::*;

async fn serving_site() -> (Manifests, Vestibule) {
    let web = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[web]));
    manifests.write(
        "site.yaml",
        &ingress("site", &[("site.example", "/", "Prefix", "web")]),
    );
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    (manifests, vestibule)
}

async fn site_serves(vestibule: &Vestibule) -> bool {
    get_via(vestibule.http, "site.example", "/")
        .await
        .is_some_and(|answer| answer.status == 200 && answer.backend() == "web")
}

#[tokio::test]
async fn broken_files_are_reported_and_the_rest_applies() {
    let web = echo_backend("web").await;
    let manifests = Manifests::new();
    manifests.write("svc.yaml", &service("web", &[web]));
    manifests.write(
        "site.yaml",
        &ingress("site", &[("site.example", "/", "Prefix", "web")]),
    );
    manifests.write(
        "malformed.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n",
    );
    manifests.write(
        "old-api.yaml",
        "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\nspec: {backend: {serviceName: web, servicePort: 80}}\n",
    );
    manifests.write(
        "empty-ingress.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: empty}\nspec: {ingressClassName: vestibule}\n",
    );
    manifests.write(
        "dangling.yaml",
        &ingress(
            "dangling",
            &[("dangling.example", "/", "Prefix", "nowhere")],
        ),
    );
    manifests.write("copy-of-svc.yaml", &service("web", &[web]));
    let vestibule = Vestibule::start(manifests.path(), &[]);
    vestibule.wait_ready().await;
    assert!(site_serves(&vestibule).await);
    vestibule
        .wait_for_log("malformed.yaml: document 1: not valid YAML")
        .await;
    vestibule
        .wait_for_log(
            "old-api.yaml: document 0: Ingress \"old\" has apiVersion \"extensions/v1beta1\"",
        )
        .await;
    vestibule
        .wait_for_log("Ingress default/empty: NothingToRoute")
        .await;
    vestibule
        .wait_for_log("Ingress default/dangling: ServiceNotFound: Service nowhere not found")
        .await;
    vestibule
        .wait_for_log("Service default/web is in both")
        .await;
    let dangling = get_via(vestibule.http, "dangling.example", "/")
        .await
        .expect("answer");
    assert_eq!(dangling.status, 503);
}

#[tokio::test]
async fn a_file_broken_by_an_edit_keeps_its_last_good_content() {
    let (manifests, vestibule) = serving_site().await;
    assert!(site_serves(&vestibule).await);

    manifests.write(
        "site.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\n  bad: [indent\n",
    );
    vestibule
        .wait_for_log("site.yaml: document 0: not valid YAML")
        .await;
    vestibule
        .wait_for_log("its last good content stays in force")
        .await;
    assert!(site_serves(&vestibule).await);

    manifests.write(
        "site.yaml",
        &ingress("site", &[("renamed.example", "/", "Prefix", "web")]),
    );
    eventually(|| async {
        get_via(vestibule.http, "renamed.example", "/")
            .await
            .is_some_and(|answer| answer.status == 200)
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_do_not_disturb_other_clients() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (_manifests, vestibule) = serving_site().await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/1.1\r\nHost: site.example\r\nBad Header\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(vestibule.http)
            .await
            .expect("connect");
        stream.write_all(garbage).await.expect("write");
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
            "{garbage:?} got {reply}"
        );
    }
    assert!(site_serves(&vestibule).await);
}

#[test]
fn an_unreadable_manifest_directory_fails_at_startup() {
    let output = Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .args(["serve", "--manifests", "/nonexistent/manifests"])
        .args(["--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .output()
        .expect("vestibule runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot serve manifests from /nonexistent/manifests"),
        "{stderr}"
    );
}
