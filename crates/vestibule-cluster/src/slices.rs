//! EndpointSlices in whichever API version the server offers.

use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::Store;
use kube::{Client, Discovery};

use crate::error::ClusterError;

const GROUP: &str = "discovery.k8s.io";

/// The EndpointSlice API version to watch, chosen by API discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SliceVersion {
    /// `discovery.k8s.io/v1` (Kubernetes 1.21 and later).
    V1,
    /// `discovery.k8s.io/v1beta1` (Kubernetes 1.17 to 1.24).
    V1Beta1,
}

impl SliceVersion {
    /// Asks the API server which versions it serves, preferring v1.
    pub async fn discover(client: &Client) -> Result<Self, ClusterError> {
        let discovery = Discovery::new(client.clone())
            .filter(&[GROUP])
            .run()
            .await?;
        let group = discovery
            .groups()
            .find(|group| group.name() == GROUP)
            .ok_or(ClusterError::NoEndpointSlices)?;
        let versions: Vec<&str> = group.versions().collect();
        if versions.contains(&"v1") {
            Ok(Self::V1)
        } else if versions.contains(&"v1beta1") {
            Ok(Self::V1Beta1)
        } else {
            Err(ClusterError::NoEndpointSlices)
        }
    }

    /// The resource to watch for v1beta1.
    pub fn v1beta1_resource() -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1beta1", "EndpointSlice"))
    }
}

/// A store of EndpointSlices in the version being watched.
pub(crate) enum SliceStore {
    /// Typed v1 slices.
    V1(Store<EndpointSlice>),
    /// v1beta1 slices, converted to v1 when read.
    V1Beta1(Store<DynamicObject>),
}

impl SliceStore {
    /// Every slice, as v1.
    pub fn slices(&self) -> Vec<Arc<EndpointSlice>> {
        match self {
            Self::V1(store) => store.state(),
            Self::V1Beta1(store) => store
                .state()
                .iter()
                .filter_map(|slice| from_v1beta1(slice).map(Arc::new))
                .collect(),
        }
    }
}

/// Reads a v1beta1 slice as v1: the fields Vestibule uses (addressType, addresses, conditions,
/// ports, the service-name label) are the same in both; v1beta1's `topology` is dropped.
fn from_v1beta1(slice: &DynamicObject) -> Option<EndpointSlice> {
    let mut value = serde_json::to_value(slice).ok()?;
    let fields = value.as_object_mut()?;
    fields.insert("apiVersion".to_owned(), format!("{GROUP}/v1").into());
    fields.insert("kind".to_owned(), "EndpointSlice".into());
    match serde_json::from_value(value) {
        Ok(slice) => Some(slice),
        Err(error) => {
            tracing::warn!(%error, "skipping a v1beta1 EndpointSlice that does not read as v1");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1beta1_slices_read_as_v1() {
        let beta: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1beta1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "topology": {"kubernetes.io/hostname": "node-1"}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .expect("dynamic object");
        let slice = from_v1beta1(&beta).expect("converts");
        assert_eq!(slice.endpoints[0].addresses, ["10.0.0.1"]);
        assert_eq!(slice.ports.as_ref().expect("ports")[0].port, Some(8080));
        assert_eq!(slice.metadata.namespace.as_deref(), Some("shop"));
    }
}
