//! The live configuration: `/debug/routes` on the admin listener, and `vestibule routes`, which
//! prints the same view for a manifest directory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::tls::*;
use crate::support::*;

/// A served site and the addresses of its backends.
struct Site {
    manifests: Manifests,
    /// The two endpoints of `web`.
    web: Vec<SocketAddr>,
    /// The endpoint of `api`.
    api: SocketAddr,
}

/// Writes the site's manifests:
/// - Ingress `shop`: `shop.example` (TLS, Secret `shop-tls`) with `/` to `web` and `/api/` and
///   `/api/health` (Exact) to `api`; `*.apps.example` to `api`; `spec.defaultBackend` is `web`.
/// - Ingress `status`: `/status` (Exact) to `api` for every host.
async fn site() -> Site {
    let web = echo_backends(&["web-1", "web-2"]).await;
    let api = echo_backend("api").await;
    let manifests = Manifests::new();
    manifests.write(
        "services.yaml",
        &[service("web", &web), service("api", &[api])].join("\n---\n"),
    );
    let pair = generate(&["shop.example"]);
    manifests.write(
        "secret.yaml",
        &tls_secret("shop-tls", &pair.cert_pem, &pair.key_pem),
    );
    let mut shop = tls_ingress(
        "shop",
        &[
            ("shop.example", "/", "Prefix", "web"),
            ("shop.example", "/api/", "Prefix", "api"),
            ("shop.example", "/api/health", "Exact", "api"),
            ("*.apps.example", "/", "Prefix", "api"),
        ],
        &[(&["shop.example"], "shop-tls")],
    );
    shop.push_str("  defaultBackend: {service: {name: web, port: {number: 80}}}\n");
    manifests.write("shop.yaml", &shop);
    manifests.write(
        "status.yaml",
        &ingress("status", &[("", "/status", "Exact", "api")]),
    );
    Site {
        manifests,
        web,
        api,
    }
}

/// The `backend` field of a route to Service `name` port 80 in `default`.
pub(crate) fn backend(name: &str) -> Value {
    json!({
        "name": format!("default/{name}:80"),
        "namespace": "default",
        "service": name,
        "port": 80,
    })
}

/// A path rule as the view shows it.
fn rule(path: &str, path_type: &str, service: &str, ingress: &str, tls: bool) -> Value {
    json!({
        "path": path,
        "path_type": path_type,
        "backend": backend(service),
        "ingress": format!("default/{ingress}"),
        "tls": tls,
        "https_redirect": tls,
    })
}

/// GET `/debug/routes` on the admin listener.
pub(crate) async fn debug_routes(vestibule: &Vestibule) -> Value {
    let answer = get(&format!("http://{}/debug/routes", vestibule.admin), &[])
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer
            .headers
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/json")
    );
    answer.json()
}

/// The endpoint addresses of backend `name` (`namespace/service:port`) in a view, sorted.
pub(crate) fn endpoint_addresses(view: &Value, name: &str) -> Vec<String> {
    let backend = view["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|backend| backend["name"] == name)
        .unwrap_or_else(|| panic!("no backend {name} in {view:#}"));
    let mut addresses: Vec<String> = backend["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|endpoint| {
            assert_eq!(endpoint["state"], "ready", "{endpoint}");
            assert_eq!(endpoint["consecutive_failures"], 0, "{endpoint}");
            endpoint["address"].as_str().expect("address").to_owned()
        })
        .collect();
    addresses.sort();
    addresses
}

/// `vestibule routes --manifests DIR` with `flags`.
pub(crate) fn routes_command(dir: &Path, flags: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .args(["routes", "--manifests"])
        .arg(dir)
        .args(flags)
        .output()
        .expect("vestibule runs")
}

/// A view without the endpoints' health, which depends on the traffic so far.
pub(crate) fn without_health(mut view: Value) -> Value {
    for backend in view["backends"].as_array_mut().into_iter().flatten() {
        for endpoint in backend["endpoints"].as_array_mut().into_iter().flatten() {
            if let Some(endpoint) = endpoint.as_object_mut() {
                endpoint.remove("state");
                endpoint.remove("consecutive_failures");
            }
        }
    }
    view
}

#[tokio::test]
async fn debug_routes_shows_hosts_paths_backends_endpoints_and_certificates() {
    let site = site().await;
    let vestibule = Vestibule::start(site.manifests.path(), &[]);
    vestibule.wait_ready().await;
    let view = debug_routes(&vestibule).await;

    assert_eq!(
        view["hosts"],
        json!([
            {
                "host": "shop.example",
                "paths": [
                    rule("/api/health", "Exact", "api", "shop", true),
                    rule("/api", "Prefix", "api", "shop", true),
                    rule("/", "Prefix", "web", "shop", true),
                ]
            },
            {"host": "*.apps.example", "paths": [rule("/", "Prefix", "api", "shop", false)]},
            {"host": "*", "paths": [rule("/status", "Exact", "api", "status", false)]},
        ]),
        "{view:#}"
    );
    assert_eq!(
        view["default_backend"],
        json!({
            "backend": backend("web"),
            "ingress": "default/shop",
            "tls": false,
            "https_redirect": false,
        })
    );
    assert_eq!(view["passthrough"], json!([]), "{view:#}");
    let names: Vec<&str> = view["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .filter_map(|backend| backend["name"].as_str())
        .collect();
    assert_eq!(names, ["default/api:80", "default/web:80"]);
    assert_eq!(
        endpoint_addresses(&view, "default/api:80"),
        [site.api.to_string()]
    );
    let mut web: Vec<String> = site.web.iter().map(ToString::to_string).collect();
    web.sort();
    assert_eq!(endpoint_addresses(&view, "default/web:80"), web);

    let tls = &view["tls"];
    assert_eq!(tls["default_certificate"], Value::Null, "{tls:#}");
    let hosts = tls["hosts"].as_array().expect("TLS hosts");
    assert_eq!(hosts.len(), 1, "{tls:#}");
    assert_eq!(hosts[0]["host"], "shop.example");
    assert_eq!(hosts[0]["source"], "Secret default/shop-tls");
    let not_after = hosts[0]["not_after"].as_str().expect("RFC 3339 expiry");
    assert!(
        not_after.len() == 20 && not_after.ends_with('Z') && not_after.as_bytes()[10] == b'T',
        "{not_after}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let not_after_unix = hosts[0]["not_after_unix"].as_u64().expect("unix expiry");
    assert!(not_after_unix > now, "a fresh certificate is not expired");
}

#[tokio::test]
async fn debug_routes_follows_changes_and_endpoint_health() {
    let site = site().await;
    let vestibule = Vestibule::start(site.manifests.path(), &[]);
    vestibule.wait_ready().await;

    // A new Ingress to a backend whose only endpoint refuses connections, in one file so that
    // it applies at once: each request to it is one failure.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    site.manifests.write(
        "down.yaml",
        &[
            service("down", &[closed]),
            ingress("down", &[("down.example", "/", "Prefix", "down")]),
        ]
        .join("\n---\n"),
    );
    eventually(|| async {
        let view = debug_routes(&vestibule).await;
        let routed = view["hosts"]
            .as_array()
            .is_some_and(|hosts| hosts.iter().any(|host| host["host"] == "down.example"));
        let resolved = view["backends"].as_array().is_some_and(|backends| {
            backends.iter().any(|backend| {
                backend["name"] == "default/down:80"
                    && backend["endpoints"]
                        .as_array()
                        .is_some_and(|endpoints| endpoints.len() == 1)
            })
        });
        routed && resolved
    })
    .await;
    for _ in 0..3 {
        let answer = get_via(vestibule.http, "down.example", "/")
            .await
            .expect("an answer");
        assert_eq!(answer.status, 502, "{answer:?}");
    }

    let view = debug_routes(&vestibule).await;
    let down = view["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|backend| backend["name"] == "default/down:80")
        .unwrap_or_else(|| panic!("no down backend in {view:#}"))
        .clone();
    assert_eq!(
        down["endpoints"],
        json!([{"address": closed.to_string(), "state": "ejected", "consecutive_failures": 3}]),
        "{view:#}"
    );
    assert_eq!(
        endpoint_addresses(&view, "default/api:80"),
        [site.api.to_string()],
        "other backends are unaffected"
    );
}

#[tokio::test]
async fn the_routes_command_prints_what_debug_routes_serves() {
    let site = site().await;
    let output = routes_command(site.manifests.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert!(
        !stderr.contains("warning"),
        "no warning for a clean directory: {stderr}"
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    let vestibule = Vestibule::start(site.manifests.path(), &[]);
    vestibule.wait_ready().await;
    let served = debug_routes(&vestibule).await;
    assert_eq!(without_health(printed), without_health(served));
}

#[tokio::test]
async fn the_routes_command_exits_1_on_warnings_and_2_without_a_directory() {
    let api = echo_backend("api").await;
    let manifests = Manifests::new();
    manifests.write("api.yaml", &service("api", &[api]));
    manifests.write(
        "ing.yaml",
        &ingress(
            "shop",
            &[
                ("shop.example", "/", "Prefix", "api"),
                ("shop.example", "/ghost", "Prefix", "ghost"),
            ],
        ),
    );
    let output = routes_command(manifests.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "stderr: {stderr}");
    assert!(
        warnings[0].contains("Ingress default/shop")
            && warnings[0].contains("ServiceNotFound")
            && warnings[0].contains("ghost"),
        "{stderr}"
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("the view is still printed");
    assert_eq!(printed["hosts"][0]["host"], "shop.example", "{printed:#}");

    let missing = manifests.path().join("missing");
    let output = routes_command(&missing, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing is printed");
}
