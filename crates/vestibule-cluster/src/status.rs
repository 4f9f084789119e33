//! Publishing the controller's addresses in `status.loadBalancer` of the Ingresses it serves.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use vestibule_resources::Snapshot;

use crate::error::ClusterError;

/// Where the addresses written to Ingress status come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishAddress {
    /// A Service's load-balancer IPs or hostnames, or its ClusterIP when it has none
    /// (`--publish-service`).
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Fixed IPs or hostnames (`--publish-status-address`).
    Fixed(Vec<String>),
}

/// Keeps Ingress status in line with which Ingresses this controller serves.
pub struct StatusWriter {
    client: Client,
    source: PublishAddress,
}

impl StatusWriter {
    /// A writer publishing the addresses `source` gives.
    pub fn new(client: Client, source: PublishAddress) -> Self {
        Self { client, source }
    }

    /// Writes our addresses into every Ingress in `ours` (namespace, name) whose status differs,
    /// and clears the status of Ingresses that are no longer ours but still carry exactly our
    /// addresses. Uses `update` on `ingresses/status` with the observed resourceVersion, so a
    /// concurrent change wins and is retried on the next sync. Returns how many were updated.
    pub async fn sync(
        &self,
        snapshot: &Snapshot,
        ours: &BTreeSet<(String, String)>,
    ) -> Result<usize, ClusterError> {
        let addresses = self.addresses().await?;
        let mut updated = 0;
        for ingress in &snapshot.ingresses {
            let namespace = ingress.namespace.to_string();
            let name = ingress.name.to_string();
            let current = &ingress.load_balancer;
            let desired = if ours.contains(&(namespace.clone(), name.clone())) {
                addresses.clone()
            } else if !current.is_empty() && *current == addresses {
                Vec::new()
            } else {
                continue;
            };
            if *current == desired {
                continue;
            }
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), &namespace);
            // The status subresource takes the status from what is sent and keeps the rest.
            let changed = Ingress {
                metadata: ObjectMeta {
                    namespace: Some(namespace.clone()),
                    name: Some(name.clone()),
                    resource_version: ingress.resource_version.as_deref().map(str::to_owned),
                    ..ObjectMeta::default()
                },
                status: Some(IngressStatus {
                    load_balancer: Some(IngressLoadBalancerStatus {
                        ingress: Some(desired.clone()),
                    }),
                }),
                ..Ingress::default()
            };
            match api
                .replace_status(&name, &PostParams::default(), &changed)
                .await
            {
                Ok(_) => {
                    tracing::info!(%namespace, %name, addresses = ?desired, "Ingress status updated");
                    updated += 1;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::debug!(%namespace, %name, "Ingress changed meanwhile; status is retried on the next sync");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(updated)
    }

    async fn addresses(&self) -> Result<Vec<IngressLoadBalancerIngress>, ClusterError> {
        let names = match &self.source {
            PublishAddress::Fixed(names) => names.clone(),
            PublishAddress::Service { namespace, name } => {
                let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
                let service = api.get_opt(name).await?.ok_or_else(|| {
                    ClusterError::PublishServiceNotFound {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    }
                })?;
                service_addresses(&service)
            }
        };
        Ok(names.iter().map(|name| load_balancer_entry(name)).collect())
    }
}

/// A Service's load-balancer addresses, else its external IPs, else its ClusterIP.
fn service_addresses(service: &Service) -> Vec<String> {
    let balanced: Vec<String> = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ip.clone().or_else(|| entry.hostname.clone()))
        .collect();
    if !balanced.is_empty() {
        return balanced;
    }
    let spec = service.spec.as_ref();
    let external = spec
        .and_then(|spec| spec.external_ips.clone())
        .unwrap_or_default();
    if !external.is_empty() {
        return external;
    }
    spec.and_then(|spec| spec.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
        .into_iter()
        .collect()
}

fn load_balancer_entry(address: &str) -> IngressLoadBalancerIngress {
    if address.parse::<IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(address.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(address.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };

    #[test]
    fn addresses_are_ips_or_hostnames() {
        assert_eq!(
            load_balancer_entry("10.1.2.3").ip.as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            load_balancer_entry("lb.example.com").hostname.as_deref(),
            Some("lb.example.com")
        );
    }

    #[test]
    fn service_addresses_prefer_the_load_balancer() {
        let mut service = Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.10".into()),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        };
        assert_eq!(service_addresses(&service), ["10.96.0.10"]);
        service.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![
                    LoadBalancerIngress {
                        ip: Some("203.0.113.5".into()),
                        ..LoadBalancerIngress::default()
                    },
                    LoadBalancerIngress {
                        hostname: Some("lb.example.com".into()),
                        ..LoadBalancerIngress::default()
                    },
                ]),
            }),
            ..ServiceStatus::default()
        });
        assert_eq!(
            service_addresses(&service),
            ["203.0.113.5", "lb.example.com"]
        );
    }
}
