//! Cluster mode against a real kube-apiserver 1.20 with etcd: the controller runs with the
//! ServiceAccount token and nothing but the RBAC in `deploy/`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::discovery::Discovery;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::support::apiserver::{self, ApiServer, CONTROLLER_TOKEN};
use crate::support::*;

/// The objects in a YAML text, created (or, with `dry_run`, validated) through the API; objects
/// that already exist are left as they are.
async fn apply_yaml(client: &kube::Client, text: &str, dry_run: bool) {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).expect("YAML");
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        let object: DynamicObject = serde_json::from_value(document).expect("object");
        let types = object.types.clone().expect("apiVersion and kind");
        let gvk = GroupVersionKind::try_from(&types).expect("group version kind");
        let (resource, capabilities) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("the API server does not serve {gvk:?}"));
        let api: Api<DynamicObject> = match (&object.metadata.namespace, capabilities.scope) {
            (Some(namespace), kube::discovery::Scope::Namespaced) => {
                Api::namespaced_with(client.clone(), namespace, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        let params = PostParams {
            dry_run,
            ..PostParams::default()
        };
        match api.create(&params, &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("{} {:?}: {error}", types.kind, object.metadata.name),
        }
    }
}

fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} exists", path.display()))
}

/// The shared API server with the controller's namespace, RBAC and IngressClass from `deploy/`.
async fn cluster() -> (&'static ApiServer, kube::Client) {
    static PREPARED: OnceCell<()> = OnceCell::const_new();
    let server = apiserver::shared();
    let admin = server.admin().await;
    PREPARED
        .get_or_init(|| async {
            for file in ["00-namespace.yaml", "10-rbac.yaml", "20-ingressclass.yaml"] {
                apply_yaml(&admin, &deploy_file(file), false).await;
            }
        })
        .await;
    (server, admin)
}

async fn namespace(admin: &kube::Client, name: &str) {
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    match Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("namespace {name}: {error}"),
    }
}

async fn create<K>(api: &Api<K>, object: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("created")
}

/// A Service `name` on port 80 (named `http`) and its v1beta1 EndpointSlice (all 1.20 serves).
async fn service(admin: &kube::Client, ns: &str, name: &str, backends: &[SocketAddr]) {
    create(
        &Api::<Service>::namespaced(admin.clone(), ns),
        json!({"metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    let slices = slice_api(admin, ns);
    slices
        .create(&PostParams::default(), &slice(name, backends))
        .await
        .expect("slice created");
}

fn slice_api(admin: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "discovery.k8s.io",
        "v1beta1",
        "EndpointSlice",
    ));
    Api::namespaced_with(admin.clone(), ns, &resource)
}

fn slice(service: &str, backends: &[SocketAddr]) -> DynamicObject {
    let endpoints: Vec<_> = backends
        .iter()
        .map(|addr| json!({"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}))
        .collect();
    let port = backends.first().map_or(80, SocketAddr::port);
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1beta1",
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-1"), "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port}],
        "endpoints": endpoints,
    }))
    .expect("slice")
}

fn ingress_json(
    name: &str,
    class: &str,
    host: &str,
    path: &str,
    service: &str,
) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": class,
            "rules": [{"host": host, "http": {"paths": [{
                "path": path, "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": {"number": 80}}}
            }]}}]
        }
    })
}

fn status_ips(ingress: &Ingress) -> Vec<String> {
    ingress
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ip.clone())
        .collect()
}

fn controller(server: &ApiServer, ns: &str, extra: &[&str]) -> Vestibule {
    let kubeconfig = server.kubeconfig(CONTROLLER_TOKEN);
    let mut args = vec![
        "--watch-namespace",
        ns,
        "--election-namespace",
        apiserver::CONTROLLER_NAMESPACE,
    ];
    args.extend_from_slice(extra);
    Vestibule::start_cluster(&kubeconfig, &args)
}

fn assert_no_forbidden(vestibule: &Vestibule) {
    let forbidden: Vec<_> = vestibule
        .log()
        .into_iter()
        .filter(|line| line.contains("forbidden") || line.contains("Forbidden"))
        .collect();
    assert!(
        forbidden.is_empty(),
        "RBAC from deploy/ is not enough: {forbidden:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_from_the_api_route_traffic_and_get_status() {
    let (server, admin) = cluster().await;
    let ns = "routes";
    namespace(&admin, ns).await;
    let backends = echo_backends(&["one", "two"]).await;
    service(&admin, ns, "web", &backends[..1]).await;
    let ingresses = Api::<Ingress>::namespaced(admin.clone(), ns);
    create(
        &ingresses,
        ingress_json("web", "vestibule", "web.example", "/", "web"),
    )
    .await;
    create(
        &ingresses,
        ingress_json("other", "nginx", "other.example", "/", "web"),
    )
    .await;

    let vestibule = controller(
        server,
        ns,
        &[
            "--publish-status-address",
            "203.0.113.9",
            "--election-id",
            "routes-leader",
        ],
    );
    vestibule.wait_ready().await;
    let answer = get_via(vestibule.http, "web.example", "/x")
        .await
        .expect("answer");
    assert_eq!(answer.backend(), "one");
    let other = get_via(vestibule.http, "other.example", "/")
        .await
        .expect("answer");
    assert_eq!(other.status, 404, "an Ingress of another class is ignored");

    eventually(|| async {
        let web = ingresses.get("web").await.expect("ingress");
        status_ips(&web) == ["203.0.113.9"]
    })
    .await;
    assert!(status_ips(&ingresses.get("other").await.expect("ingress")).is_empty());

    slice_api(&admin, ns)
        .replace("web-1", &PostParams::default(), &{
            let mut moved = slice("web", &backends[1..]);
            let current = slice_api(&admin, ns).get("web-1").await.expect("slice");
            moved.metadata.resource_version = current.metadata.resource_version;
            moved
        })
        .await
        .expect("slice replaced");
    eventually(|| async {
        get_via(vestibule.http, "web.example", "/")
            .await
            .is_some_and(|answer| answer.backend() == "two")
    })
    .await;

    let mut web = ingresses.get("web").await.expect("ingress");
    if let Some(spec) = web.spec.as_mut() {
        spec.ingress_class_name = Some("nginx".to_owned());
    }
    ingresses
        .replace("web", &PostParams::default(), &web)
        .await
        .expect("class changed");
    eventually(|| async { status_ips(&ingresses.get("web").await.expect("ingress")).is_empty() })
        .await;

    ingresses
        .delete("web", &DeleteParams::default())
        .await
        .expect("deleted");
    eventually(|| async {
        get_via(vestibule.http, "web.example", "/")
            .await
            .is_some_and(|answer| answer.status == 404)
    })
    .await;
    assert_no_forbidden(&vestibule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_become_events_on_the_ingress() {
    let (server, admin) = cluster().await;
    let ns = "events";
    namespace(&admin, ns).await;
    let ingresses = Api::<Ingress>::namespaced(admin.clone(), ns);
    create(
        &ingresses,
        ingress_json("dangling", "vestibule", "d.example", "/", "nowhere"),
    )
    .await;
    let vestibule = controller(server, ns, &["--election-id", "events-leader"]);
    vestibule.wait_ready().await;
    let events = Api::<Event>::namespaced(admin.clone(), ns);
    eventually(|| async {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=dangling"))
            .await
            .expect("events");
        list.items.iter().any(|event| {
            event.reason.as_deref() == Some("ServiceNotFound")
                && event.type_.as_deref() == Some("Warning")
                && event.involved_object.kind.as_deref() == Some("Ingress")
                && event.involved_object.uid.is_some()
        })
    })
    .await;
    assert_no_forbidden(&vestibule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_another_takes_over() {
    let (server, admin) = cluster().await;
    let ns = "election";
    namespace(&admin, ns).await;
    let backend = echo_backend("web").await;
    service(&admin, ns, "web", &[backend]).await;
    let ingresses = Api::<Ingress>::namespaced(admin.clone(), ns);
    create(
        &ingresses,
        ingress_json("web", "vestibule", "web.example", "/", "web"),
    )
    .await;
    let replica = |name: &'static str, address: &'static str| {
        controller(
            server,
            ns,
            &[
                "--election-id",
                "election-leader",
                "--election-lease-duration",
                "2s",
                "--pod-name",
                name,
                "--publish-status-address",
                address,
            ],
        )
    };
    let mut first = replica("replica-a", "192.0.2.1");
    first.wait_ready().await;
    let leases = Api::<Lease>::namespaced(admin.clone(), apiserver::CONTROLLER_NAMESPACE);
    let holder = || async {
        leases
            .get_opt("election-leader")
            .await
            .expect("lease")
            .and_then(|lease| lease.spec.and_then(|spec| spec.holder_identity))
    };
    eventually(|| async { holder().await.as_deref() == Some("replica-a") }).await;
    let second = replica("replica-b", "192.0.2.2");
    second.wait_ready().await;
    eventually(|| async {
        status_ips(&ingresses.get("web").await.expect("ingress")) == ["192.0.2.1"]
    })
    .await;
    for proxy in [first.http, second.http] {
        let answer = get_via(proxy, "web.example", "/").await.expect("answer");
        assert_eq!(answer.status, 200, "every replica serves traffic");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        holder().await.as_deref(),
        Some("replica-a"),
        "the leader keeps its lease"
    );
    assert_eq!(
        status_ips(&ingresses.get("web").await.expect("ingress")),
        ["192.0.2.1"],
        "only the leader writes status"
    );

    first.terminate();
    assert!(first.wait(), "the leader exits cleanly on SIGTERM");
    eventually(|| async { holder().await.as_deref() == Some("replica-b") }).await;
    eventually(|| async {
        status_ips(&ingresses.get("web").await.expect("ingress")) == ["192.0.2.2"]
    })
    .await;
    assert_no_forbidden(&second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_survives_an_api_server_outage() {
    let mut server = ApiServer::start();
    let admin = server.admin().await;
    for file in ["00-namespace.yaml", "10-rbac.yaml", "20-ingressclass.yaml"] {
        apply_yaml(&admin, &deploy_file(file), false).await;
    }
    let ns = "outage";
    namespace(&admin, ns).await;
    let web = echo_backend("web").await;
    let late = echo_backend("late").await;
    service(&admin, ns, "web", &[web]).await;
    service(&admin, ns, "late", &[late]).await;
    let ingresses = Api::<Ingress>::namespaced(admin.clone(), ns);
    create(
        &ingresses,
        ingress_json("web", "vestibule", "web.example", "/", "web"),
    )
    .await;
    let vestibule = controller(&server, ns, &["--election-id", "outage-leader"]);
    vestibule.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, failures, succeeded) = (stop.clone(), failures.clone(), succeeded.clone());
        let proxy = vestibule.http;
        tokio::spawn(async move {
            let client = http1_client();
            while !stop.load(Ordering::Relaxed) {
                match get_with(&client, proxy, "web.example", "/").await {
                    Some(answer) if answer.status == 200 => {
                        succeeded.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    server.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = succeeded.load(Ordering::Relaxed);
    server.start_apiserver();
    let admin = server.admin().await;
    let ingresses = Api::<Ingress>::namespaced(admin.clone(), ns);
    create(
        &ingresses,
        ingress_json("late", "vestibule", "late.example", "/", "late"),
    )
    .await;
    // The watches reconnect with exponential backoff (up to 30 s between attempts).
    eventually_within(Duration::from_secs(60), || async {
        get_via(vestibule.http, "late.example", "/")
            .await
            .is_some_and(|answer| answer.backend() == "late")
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no request failed");
    assert!(during > 0, "traffic flowed while the API server was down");
    assert!(succeeded.load(Ordering::Relaxed) > during);
}

#[tokio::test]
async fn every_deploy_manifest_is_accepted_by_the_api_server() {
    let (_, admin) = cluster().await;
    let mut files: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy"))
            .expect("deploy/")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        apply_yaml(&admin, &text, true).await;
    }
}
