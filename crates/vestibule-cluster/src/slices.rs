//! EndpointSlices in whichever API version the server offers.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, Discovery};
use vestibule_resources::{EndpointSliceSummary, ReadyAddresses};

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

/// The summary of a v1beta1 slice, read as v1. A slice that does not read as v1 is kept as
/// one that serves no Service, so whatever it held before is forgotten.
pub(crate) fn summarize_v1beta1(slice: &DynamicObject) -> EndpointSliceSummary {
    match from_v1beta1(slice) {
        Some(slice) => EndpointSliceSummary::from(&slice),
        None => EndpointSliceSummary {
            namespace: slice
                .metadata
                .namespace
                .as_deref()
                .unwrap_or_default()
                .into(),
            name: slice.metadata.name.as_deref().unwrap_or_default().into(),
            service: None,
            ports: Box::default(),
            ready: ReadyAddresses::default(),
        },
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
        let slice = summarize_v1beta1(&beta);
        assert_eq!(slice.service.as_deref(), Some("web"));
        let ip = "10.0.0.1".parse().expect("an IP address");
        assert_eq!(slice.ready, ReadyAddresses::Ips(Box::new([ip])));
        assert_eq!(slice.ports[0].port, Some(8080));
        assert_eq!(&*slice.namespace, "shop");
    }

    #[test]
    fn a_v1beta1_slice_that_does_not_read_as_v1_serves_no_service() {
        let broken: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1beta1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": "not a list"
        }))
        .expect("dynamic object");
        let slice = summarize_v1beta1(&broken);
        assert_eq!((&*slice.namespace, &*slice.name), ("shop", "web-1"));
        assert_eq!(slice.service, None);
    }
}
