//! Reflectors over the Kubernetes API that yield resource snapshots.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Endpoints, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};
use vestibule_resources::{EndpointSliceSummary, IngressSummary, ServiceSummary, Snapshot};

use crate::error::ClusterError;
use crate::slices::{SliceVersion, summarize_v1beta1};
use crate::summarized::{Summarized, Summary, summaries, summarize_event};

/// TLS Secrets hold certificates. Only they and Opaque Secrets (which hold `auth-secret`
/// credentials) are read, so a large cluster's other Secrets (Helm releases, service account
/// tokens, image pull credentials) cost no memory.
const TLS_SECRETS: &str = "type=kubernetes.io/tls";
/// Opaque Secrets, for `auth-secret`.
const OPAQUE_SECRETS: &str = "type=Opaque";

/// The stores of every kind Vestibule reads.
struct Stores {
    ingresses: Store<Summarized<IngressSummary>>,
    ingress_classes: Store<IngressClass>,
    services: Store<Summarized<ServiceSummary>>,
    slices: Store<Summarized<EndpointSliceSummary>>,
    endpoints: Store<Endpoints>,
    secrets: Store<Secret>,
    opaque_secrets: Store<Secret>,
}

impl Stores {
    /// Waits until every store has completed its first list.
    async fn ready(&self) -> bool {
        self.slices.wait_until_ready().await.is_ok()
            && self.ingresses.wait_until_ready().await.is_ok()
            && self.ingress_classes.wait_until_ready().await.is_ok()
            && self.services.wait_until_ready().await.is_ok()
            && self.endpoints.wait_until_ready().await.is_ok()
            && self.secrets.wait_until_ready().await.is_ok()
            && self.opaque_secrets.wait_until_ready().await.is_ok()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            ingresses: summaries(&self.ingresses),
            ingress_classes: self.ingress_classes.state(),
            services: summaries(&self.services),
            endpoint_slices: summaries(&self.slices),
            endpoints: self.endpoints.state(),
            secrets: [self.secrets.state(), self.opaque_secrets.state()].concat(),
        }
    }
}

/// Watches Ingresses, IngressClasses, Services, EndpointSlices (v1, or v1beta1 where that is
/// all the server has), Endpoints and TLS and Opaque Secrets, in `namespace` or in all
/// namespaces.
///
/// The first snapshot is sent only after every reflector has completed its first list, so a
/// partial configuration is never published. After that a snapshot follows each burst of
/// changes, once the watches have been quiet for `debounce`. When the API server is
/// unreachable the watches retry with backoff and no snapshot is sent; a relist replaces a
/// store's contents in one step, so it never yields an empty snapshot in between.
pub async fn watch(
    client: Client,
    namespace: Option<String>,
    debounce: Duration,
) -> Result<mpsc::Receiver<Snapshot>, ClusterError> {
    let version = SliceVersion::discover(&client).await?;
    tracing::info!(?version, "watching EndpointSlices");
    let changed = Arc::new(Notify::new());
    let scope = ApiScope(client.clone(), namespace.clone());
    let all = watcher::Config::default;
    let slices = match version {
        SliceVersion::V1 => {
            reflect_summaries(scope.api::<EndpointSlice>(), all(), &changed, |slice| {
                EndpointSliceSummary::from(&slice)
            })
        }
        SliceVersion::V1Beta1 => {
            let resource = SliceVersion::v1beta1_resource();
            let api = match &namespace {
                Some(namespace) => {
                    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
                }
                None => Api::<DynamicObject>::all_with(client.clone(), &resource),
            };
            reflect_summaries(api, all(), &changed, |slice| summarize_v1beta1(&slice))
        }
    };
    let stores = Stores {
        ingresses: reflect_summaries(scope.api::<Ingress>(), all(), &changed, |mut ingress| {
            drop_unread_metadata(&mut ingress);
            IngressSummary::from(ingress)
        }),
        ingress_classes: reflect(Api::all(client.clone()), all(), &changed, ()),
        services: reflect_summaries(scope.api::<Service>(), all(), &changed, |service| {
            ServiceSummary::from(&service)
        }),
        slices,
        endpoints: reflect(scope.api(), all(), &changed, ()),
        secrets: reflect(scope.api(), all().fields(TLS_SECRETS), &changed, ()),
        opaque_secrets: reflect(scope.api(), all().fields(OPAQUE_SECRETS), &changed, ()),
    };
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        if !stores.ready().await {
            tracing::error!("a reflector stopped before its first list completed");
            return;
        }
        tracing::info!("every reflector has completed its first list");
        loop {
            if sender.send(stores.snapshot()).await.is_err() {
                return;
            }
            changed.notified().await;
            while tokio::time::timeout(debounce, changed.notified())
                .await
                .is_ok()
            {}
        }
    });
    Ok(receiver)
}

/// A client and the namespace (or all namespaces) namespaced kinds are watched in.
struct ApiScope(Client, Option<String>);

impl ApiScope {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.1 {
            Some(namespace) => Api::namespaced(self.0.clone(), namespace),
            None => Api::all(self.0.clone()),
        }
    }
}

/// Starts a reflector and returns its store; every change wakes `changed`.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: &Arc<Notify>,
    dynamic_type: K::DynamicType,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let kind = K::kind(&dynamic_type).into_owned();
    let writer = Writer::new(dynamic_type);
    let store = writer.as_reader();
    let events = watcher(api, config).modify(drop_unread_metadata);
    spawn_reflector(kind, writer, events, changed);
    store
}

/// kubectl's copy of the configuration it last applied to an object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops metadata that nothing in Vestibule reads and that can be larger than the rest of the
/// object: the managed fields, and kubectl's last applied configuration (for a Secret, a second
/// copy of its data).
fn drop_unread_metadata<K: Resource>(object: &mut K) {
    let metadata = object.meta_mut();
    metadata.managed_fields = None;
    if let Some(annotations) = &mut metadata.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

/// Starts a reflector whose store keeps the summary of each object, and returns the store;
/// every change wakes `changed`.
fn reflect_summaries<K, S>(
    api: Api<K>,
    config: watcher::Config,
    changed: &Arc<Notify>,
    summarize: fn(K) -> S,
) -> Store<Summarized<S>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    S: Summary,
{
    let writer = Writer::new(());
    let store = writer.as_reader();
    let events = watcher(api, config).map_ok(move |event| summarize_event(event, summarize));
    spawn_reflector(S::KIND.to_owned(), writer, events, changed);
    store
}

/// Applies `events` about objects of `kind` to `writer`'s store, retrying with backoff; every
/// change wakes `changed`.
fn spawn_reflector<K>(
    kind: String,
    writer: Writer<K>,
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    changed: &Arc<Notify>,
) where
    K: Lookup + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let changed = changed.clone();
    let events = reflector::reflector(writer, events).default_backoff();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(error) => tracing::warn!(%kind, %error, "watch failed; retrying with backoff"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_objects_lose_only_metadata_nothing_reads() {
        let mut ingress: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "5c1a",
                "annotations": {
                    LAST_APPLIED: "{\"apiVersion\":\"networking.k8s.io/v1\"}",
                    "nginx.ingress.kubernetes.io/ssl-redirect": "false"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            }
        }))
        .expect("an Ingress");
        drop_unread_metadata(&mut ingress);
        let metadata = &ingress.metadata;
        assert_eq!(metadata.managed_fields, None);
        let annotations = metadata.annotations.as_ref().expect("annotations");
        let names: Vec<&str> = annotations.keys().map(String::as_str).collect();
        assert_eq!(names, ["nginx.ingress.kubernetes.io/ssl-redirect"]);
        assert_eq!(metadata.uid.as_deref(), Some("5c1a"));
    }
}
