//! The parts of Services and EndpointSlices that resolving a backend reads.
//!
//! A large cluster has a few EndpointSlices per Service, and a decoded k8s-openapi object
//! holds every field of its schema: an EndpointSlice with one endpoint takes about 1.5 KB
//! before any text. The snapshot keeps these summaries instead, a few hundred bytes each.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that names the Service an EndpointSlice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What routing reads of a Service: where it is, its ports, and whether it names an external
/// host instead of selecting pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSummary {
    /// The namespace.
    pub namespace: Box<str>,
    /// The name.
    pub name: Box<str>,
    /// For a Service of type ExternalName, the host it names (empty when unset).
    pub external_name: Option<Box<str>>,
    /// The ports, in the Service's order.
    pub ports: Box<[ServicePortSummary]>,
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortSummary {
    /// The port's name; a Service with a single port may leave it unnamed.
    pub name: Option<Box<str>>,
    /// The port number.
    pub port: i32,
}

impl From<&Service> for ServiceSummary {
    fn from(service: &Service) -> Self {
        let spec = service.spec.as_ref();
        let external_name = (spec.and_then(|spec| spec.type_.as_deref()) == Some("ExternalName"))
            .then(|| boxed(spec.and_then(|spec| spec.external_name.as_deref())));
        let ports = spec
            .and_then(|spec| spec.ports.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|port| ServicePortSummary {
                name: port.name.as_deref().map(Box::from),
                port: port.port,
            })
            .collect();
        Self {
            namespace: boxed(service.metadata.namespace.as_deref()),
            name: boxed(service.metadata.name.as_deref()),
            external_name,
            ports,
        }
    }
}

/// What routing reads of an EndpointSlice: the Service it belongs to, its ports, and the
/// addresses of its ready endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceSummary {
    /// The namespace.
    pub namespace: Box<str>,
    /// The name.
    pub name: Box<str>,
    /// The Service named by the `kubernetes.io/service-name` label; a slice without one
    /// serves no Service.
    pub service: Option<Box<str>>,
    /// The ports every endpoint of the slice serves.
    pub ports: Box<[SlicePortSummary]>,
    /// The addresses of the endpoints that are ready (or do not say), in the slice's order.
    pub ready: ReadyAddresses,
}

/// The addresses of a slice's ready endpoints, by the slice's `addressType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadyAddresses {
    /// IP addresses (`IPv4` or `IPv6`), parsed once here: an address that does not parse
    /// cannot be sent to, and is left out.
    Ips(Box<[IpAddr]>),
    /// Host names (`FQDN`).
    Names(Box<[Box<str>]>),
}

impl Default for ReadyAddresses {
    fn default() -> Self {
        Self::Ips(Box::default())
    }
}

/// One port of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePortSummary {
    /// The name of the Service port it serves; unnamed for a Service's single unnamed port.
    pub name: Option<Box<str>>,
    /// The port number; a slice may leave it unset.
    pub port: Option<i32>,
}

impl From<&EndpointSlice> for EndpointSliceSummary {
    fn from(slice: &EndpointSlice) -> Self {
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            .map(|service| Box::from(service.as_str()));
        let ports = slice
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|port| SlicePortSummary {
                name: port.name.as_deref().map(Box::from),
                port: port.port,
            })
            .collect();
        let addresses = slice
            .endpoints
            .iter()
            .filter(|endpoint| {
                endpoint
                    .conditions
                    .as_ref()
                    .and_then(|conditions| conditions.ready)
                    .unwrap_or(true)
            })
            .flat_map(|endpoint| &endpoint.addresses);
        let ready = if slice.address_type == "FQDN" {
            ReadyAddresses::Names(addresses.map(|name| Box::from(name.as_str())).collect())
        } else {
            ReadyAddresses::Ips(addresses.filter_map(|ip| ip.parse().ok()).collect())
        };
        Self {
            namespace: boxed(slice.metadata.namespace.as_deref()),
            name: boxed(slice.metadata.name.as_deref()),
            service,
            ports,
            ready,
        }
    }
}

fn boxed(text: Option<&str>) -> Box<str> {
    Box::from(text.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: serde_json::Value) -> ServiceSummary {
        let service: Service = serde_json::from_value(json).expect("a Service");
        ServiceSummary::from(&service)
    }

    fn slice(json: serde_json::Value) -> EndpointSliceSummary {
        let slice: EndpointSlice = serde_json::from_value(json).expect("an EndpointSlice");
        EndpointSliceSummary::from(&slice)
    }

    #[test]
    fn a_service_keeps_its_ports_in_order() {
        let summary = service(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"port": 443}]}
        }));
        assert_eq!(
            summary,
            ServiceSummary {
                namespace: "shop".into(),
                name: "web".into(),
                external_name: None,
                ports: Box::new([
                    ServicePortSummary {
                        name: Some("http".into()),
                        port: 80
                    },
                    ServicePortSummary {
                        name: None,
                        port: 443
                    },
                ]),
            }
        );
    }

    #[test]
    fn only_an_external_name_service_names_a_host() {
        let external = service(serde_json::json!({
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "api.example.com"}
        }));
        assert_eq!(external.external_name.as_deref(), Some("api.example.com"));
        let unset = service(serde_json::json!({
            "metadata": {"name": "ext"}, "spec": {"type": "ExternalName"}
        }));
        assert_eq!(unset.external_name.as_deref(), Some(""));
        let cluster_ip = service(serde_json::json!({
            "metadata": {"name": "web"}, "spec": {"externalName": "ignored.example.com"}
        }));
        assert_eq!(cluster_ip.external_name, None);
    }

    #[test]
    fn a_slice_keeps_the_addresses_of_ready_endpoints_only() {
        let summary = slice(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3", "10.0.0.4"]}
            ]
        }));
        assert_eq!(summary.service.as_deref(), Some("web"));
        assert_eq!(
            summary.ports[..],
            [SlicePortSummary {
                name: Some("http".into()),
                port: Some(8080)
            }]
        );
        let ip = |text: &str| text.parse::<IpAddr>().expect("an IP address");
        assert_eq!(
            summary.ready,
            ReadyAddresses::Ips(Box::new([ip("10.0.0.1"), ip("10.0.0.3"), ip("10.0.0.4")]))
        );
    }

    #[test]
    fn a_slice_without_the_service_label_serves_no_service() {
        let summary = slice(serde_json::json!({
            "metadata": {"name": "orphan"}, "addressType": "FQDN", "endpoints": []
        }));
        assert_eq!(summary.service, None);
        assert_eq!(summary.ready, ReadyAddresses::Names(Box::default()));
    }
}
