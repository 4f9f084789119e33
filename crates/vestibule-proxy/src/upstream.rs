//! A backend's live endpoint set and balancer, replaced whole when its endpoints change.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::uri::Authority;
use vestibule_routing::{BackendId, Endpoint};

use crate::balancer::{Balancer, RoundRobin};

/// One endpoint, with the authority requests to it are addressed to.
#[derive(Debug)]
pub struct UpstreamEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `host:port` for the request URI, built once.
    pub authority: Authority,
}

/// An endpoint set and the balancer over it; immutable once built.
#[derive(Debug)]
struct Selector {
    endpoints: Vec<UpstreamEndpoint>,
    balancer: Box<dyn Balancer>,
}

/// One backend (a Service port) as the data plane serves it.
///
/// Routing tables point at `Upstream`s; endpoint changes swap the selector inside, so a pod
/// restart never rebuilds a routing table.
#[derive(Debug)]
pub struct Upstream {
    id: Arc<BackendId>,
    selector: ArcSwap<Selector>,
}

impl Upstream {
    /// An upstream for `id` with these endpoints.
    pub fn new(id: BackendId, endpoints: &[Endpoint]) -> Self {
        Self {
            id: Arc::new(id),
            selector: ArcSwap::from_pointee(build_selector(endpoints)),
        }
    }

    /// The backend this upstream serves.
    pub fn id(&self) -> &Arc<BackendId> {
        &self.id
    }

    /// Replaces the endpoint set if it differs; returns whether it did.
    pub fn set_endpoints(&self, endpoints: &[Endpoint]) -> bool {
        let current = self.selector.load();
        let unchanged = current.endpoints.len() == endpoints.len()
            && current
                .endpoints
                .iter()
                .zip(endpoints)
                .all(|(live, new)| live.endpoint == *new);
        if !unchanged {
            self.selector.store(Arc::new(build_selector(endpoints)));
        }
        !unchanged
    }

    /// The authority of the endpoint the next request goes to, or `None` when none is ready.
    pub fn pick(&self) -> Option<Authority> {
        let selector = self.selector.load();
        let index = selector.balancer.pick(selector.endpoints.len())?;
        Some(selector.endpoints[index].authority.clone())
    }
}

fn build_selector(endpoints: &[Endpoint]) -> Selector {
    let endpoints = endpoints
        .iter()
        .filter_map(|endpoint| {
            let authority = match endpoint {
                Endpoint::Socket(addr) => Authority::try_from(addr.to_string()),
                Endpoint::Name { host, port } => Authority::try_from(format!("{host}:{port}")),
            };
            match authority {
                Ok(authority) => Some(UpstreamEndpoint {
                    endpoint: endpoint.clone(),
                    authority,
                }),
                Err(error) => {
                    tracing::warn!(%endpoint, %error, "endpoint is not a valid authority; skipped");
                    None
                }
            }
        })
        .collect();
    Selector {
        endpoints,
        balancer: Box::new(RoundRobin::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_routing::ServicePortRef;

    fn id() -> BackendId {
        BackendId {
            namespace: "default".into(),
            service: "web".into(),
            port: ServicePortRef::Number(80),
        }
    }

    fn socket(text: &str) -> Endpoint {
        Endpoint::Socket(text.parse().expect("socket address"))
    }

    #[test]
    fn picks_round_robin_and_reports_changes() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        let picks: Vec<_> = (0..4)
            .filter_map(|_| upstream.pick())
            .map(|authority| authority.to_string())
            .collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"]
        );
        assert!(!upstream.set_endpoints(&[socket("10.0.0.1:80"), socket("10.0.0.2:80")]));
        assert!(upstream.set_endpoints(&[socket("[fd00::1]:8080")]));
        assert_eq!(
            upstream.pick().map(|a| a.to_string()),
            Some("[fd00::1]:8080".to_owned())
        );
        assert!(upstream.set_endpoints(&[]));
        assert_eq!(upstream.pick(), None);
    }

    #[test]
    fn external_names_become_authorities() {
        let upstream = Upstream::new(
            id(),
            &[Endpoint::Name {
                host: "api.example.net".into(),
                port: 443,
            }],
        );
        assert_eq!(
            upstream.pick().map(|a| a.to_string()),
            Some("api.example.net:443".to_owned())
        );
    }
}
