//! Service ports to ready endpoints, the way kube-proxy resolves them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use k8s_openapi::api::core::v1::Endpoints;
use vestibule_resources::{
    EndpointSliceSummary, ReadyAddresses, ServicePortSummary, ServiceSummary, Snapshot,
};
use vestibule_routing::{BackendId, Backends, Endpoint, IngressRef, Route, ServicePortRef};

use crate::by_name::by_namespaced_name;
use crate::reuse::same_objects;
use crate::warning::{Warning, WarningReason};

/// The Ingresses whose kept rules lead to each backend.
pub(crate) type References<'a> = HashMap<&'a BackendId, Vec<&'a IngressRef>>;

/// The backends `routes` lead to, main and canary, each with the Ingresses of those routes,
/// each once, by name; room is made for `expected` backends at once.
pub(crate) fn references<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    expected: usize,
) -> References<'a> {
    let mut references = References::with_capacity(expected);
    // The routes of a host mostly share one backend and Ingress: look each run up once.
    let mut last: Option<&Route> = None;
    for route in routes {
        let repeats =
            last.is_some_and(|last| last.backend == route.backend && last.ingress == route.ingress);
        if !repeats {
            let referrers = references.entry(&route.backend).or_default();
            referrers.push(&route.ingress);
            last = Some(route);
        }
        if let Some(canary) = &route.canary {
            let referrers = references.entry(&canary.backend).or_default();
            referrers.push(&canary.ingress);
        }
    }
    for referrers in references.values_mut() {
        referrers.sort_unstable();
        referrers.dedup();
    }
    references
}

type Key<'a> = (&'a str, &'a str);

/// The objects of a snapshot indexed by namespace and (Service) name.
struct Index<'a> {
    services: HashMap<Key<'a>, &'a ServiceSummary>,
    slices: HashMap<Key<'a>, Vec<&'a EndpointSliceSummary>>,
    endpoints: HashMap<Key<'a>, &'a Arc<Endpoints>>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let mut slices: HashMap<Key<'a>, Vec<&'a EndpointSliceSummary>> = HashMap::new();
        for slice in &snapshot.endpoint_slices {
            if let Some(service) = &slice.service {
                slices
                    .entry((&slice.namespace, service))
                    .or_default()
                    .push(slice);
            }
        }
        Self {
            services: snapshot
                .services
                .iter()
                .map(|service| ((&*service.namespace, &*service.name), service.as_ref()))
                .collect(),
            slices,
            endpoints: by_namespaced_name(&snapshot.endpoints),
        }
    }
}

/// Why a backend has no endpoints.
#[derive(Clone, Debug)]
enum Unresolved {
    ServiceNotFound,
    PortNotFound,
}

/// The backends resolved by the last translation, kept while the snapshot's Services,
/// EndpointSlices and Endpoints are the same objects.
#[derive(Debug, Default)]
pub(crate) struct Resolutions {
    services: Vec<Arc<ServiceSummary>>,
    slices: Vec<Arc<EndpointSliceSummary>>,
    endpoints: Vec<Arc<Endpoints>>,
    /// Exactly the backends of `last`.
    by_backend: HashMap<BackendId, Result<Arc<[Endpoint]>, Unresolved>>,
    /// What the last translation handed out.
    last: Backends,
    /// The backends of `last` that resolved to no endpoint, in order.
    unresolved: Vec<BackendId>,
    /// What the last translation was told about them.
    warnings: Vec<Warning>,
}

impl Resolutions {
    /// How many backends the last translation resolved.
    pub fn len(&self) -> usize {
        self.by_backend.len()
    }

    /// Resolves every referenced backend; a backend that cannot be resolved, or has no ready
    /// endpoint, maps to an empty list (the data plane answers 503) and a warning on each
    /// Ingress that refers to it. When the backends and what they resolve from are the same
    /// as last time, the same map is handed out again.
    pub fn resolve(
        &mut self,
        snapshot: &Snapshot,
        references: &References<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Backends {
        let same_inputs = self.same_inputs(snapshot);
        if !same_inputs {
            self.by_backend.clear();
            self.services.clone_from(&snapshot.services);
            self.slices.clone_from(&snapshot.endpoint_slices);
            self.endpoints.clone_from(&snapshot.endpoints);
        }
        let same_backends = self.by_backend.len() == references.len()
            && references
                .keys()
                .all(|id| self.by_backend.contains_key(*id));
        if !(same_inputs && same_backends) {
            self.resolve_again(snapshot, references);
        }
        self.warnings.clear();
        for id in &self.unresolved {
            let Some(resolved) = self.by_backend.get(id) else {
                continue;
            };
            if let Some((reason, message)) = problem(id, resolved) {
                let referrers = references.get(id).into_iter().flatten();
                self.warnings.extend(
                    referrers.map(|ingress| Warning::on_ingress(ingress, reason, message.clone())),
                );
            }
        }
        warnings.extend(self.warnings.iter().cloned());
        Arc::clone(&self.last)
    }

    /// What [`Resolutions::resolve`] gave last time, for a caller that knows the backends are
    /// referred to as they were then; `None` when what they resolve from are not the same
    /// objects.
    pub fn unchanged(&self, snapshot: &Snapshot, warnings: &mut Vec<Warning>) -> Option<Backends> {
        self.same_inputs(snapshot).then(|| {
            warnings.extend(self.warnings.iter().cloned());
            Arc::clone(&self.last)
        })
    }

    /// Whether the Services, EndpointSlices and Endpoints are those resolved from last time.
    fn same_inputs(&self, snapshot: &Snapshot) -> bool {
        same_objects(&self.services, &snapshot.services)
            && same_objects(&self.slices, &snapshot.endpoint_slices)
            && same_objects(&self.endpoints, &snapshot.endpoints)
    }

    /// Resolves the referenced backends into a new map, reusing what was resolved before.
    fn resolve_again(&mut self, snapshot: &Snapshot, references: &References<'_>) {
        let mut ids: Vec<&BackendId> = references.keys().copied().collect();
        ids.sort_unstable();
        let mut index = None;
        let mut backends = Vec::with_capacity(ids.len());
        self.unresolved.clear();
        for id in ids {
            let resolved = match self.by_backend.get(id) {
                Some(resolved) => resolved,
                None => {
                    let index = index.get_or_insert_with(|| Index::new(snapshot));
                    self.by_backend
                        .entry(id.clone())
                        .or_insert(resolve_one(index, id))
                }
            };
            if resolves_to_nothing(resolved) {
                self.unresolved.push(id.clone());
            }
            let endpoints = resolved
                .as_ref()
                .map_or_else(|_| Arc::default(), Arc::clone);
            backends.push((id.clone(), endpoints));
        }
        if self.by_backend.len() > references.len() {
            self.by_backend.retain(|id, _| references.contains_key(id));
        }
        // Already in order, so the map is built without comparing keys again.
        self.last = Arc::new(BTreeMap::from_iter(backends));
    }
}

/// Whether a backend has no endpoint to send to: unresolved, or none ready.
fn resolves_to_nothing(resolved: &Result<Arc<[Endpoint]>, Unresolved>) -> bool {
    resolved
        .as_ref()
        .is_ok_and(|endpoints| endpoints.is_empty())
        || resolved.is_err()
}

/// What to tell the Ingresses of a backend that resolved to no endpoint.
fn problem(
    id: &BackendId,
    resolved: &Result<Arc<[Endpoint]>, Unresolved>,
) -> Option<(WarningReason, String)> {
    match resolved {
        Ok(endpoints) if endpoints.is_empty() => Some((
            WarningReason::NoReadyEndpoints,
            format!(
                "Service {} has no ready endpoint for port {}; its routes answer 503",
                id.service, id.port
            ),
        )),
        Ok(_) => None,
        Err(Unresolved::ServiceNotFound) => Some((
            WarningReason::ServiceNotFound,
            format!(
                "Service {} not found in namespace {}; its routes answer 503",
                id.service, id.namespace
            ),
        )),
        Err(Unresolved::PortNotFound) => Some((
            WarningReason::ServicePortNotFound,
            format!(
                "Service {} has no port {}; its routes answer 503",
                id.service, id.port
            ),
        )),
    }
}

fn resolve_one(index: &Index<'_>, id: &BackendId) -> Result<Arc<[Endpoint]>, Unresolved> {
    let key = (&*id.namespace, &*id.service);
    let service = index
        .services
        .get(&key)
        .ok_or(Unresolved::ServiceNotFound)?;
    let port = service.ports.iter().find(|port| match &id.port {
        ServicePortRef::Number(number) => port.port == i32::from(*number),
        ServicePortRef::Name(name) => port.name.as_deref() == Some(name.as_str()),
    });
    if let Some(host) = &service.external_name {
        let number = match (port, &id.port) {
            (Some(port), _) => u16::try_from(port.port).ok(),
            (None, ServicePortRef::Number(number)) => Some(*number),
            (None, ServicePortRef::Name(_)) => None,
        };
        let number = number.ok_or(Unresolved::PortNotFound)?;
        return Ok(if host.is_empty() {
            Arc::default()
        } else {
            Arc::new([Endpoint::Name {
                host: host.to_string(),
                port: number,
            }])
        });
    }
    let port = port.ok_or(Unresolved::PortNotFound)?;
    Ok(match index.slices.get(&key) {
        Some(slices) => from_slices(slices, port),
        None => index
            .endpoints
            .get(&key)
            .map(|endpoints| from_endpoints(endpoints, port))
            .unwrap_or_default(),
    })
}

/// Whether an endpoint port serves a Service port: they carry the same name (both unnamed when
/// the Service has a single unnamed port).
fn same_port_name(endpoint_port: Option<&str>, service_port: &ServicePortSummary) -> bool {
    endpoint_port.unwrap_or_default() == service_port.name.as_deref().unwrap_or_default()
}

fn from_slices(
    slices: &[&EndpointSliceSummary],
    service_port: &ServicePortSummary,
) -> Arc<[Endpoint]> {
    let mut found = BTreeSet::new();
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .find(|port| same_port_name(port.name.as_deref(), service_port))
            .and_then(|port| port.port)
            .and_then(|port| u16::try_from(port).ok());
        let Some(port) = port else { continue };
        match &slice.ready {
            ReadyAddresses::Ips(ips) => {
                found.extend(
                    ips.iter()
                        .map(|&ip| Endpoint::Socket(SocketAddr::new(ip, port))),
                );
            }
            ReadyAddresses::Names(names) => {
                found.extend(names.iter().map(|host| Endpoint::Name {
                    host: host.to_string(),
                    port,
                }));
            }
        }
    }
    found.into_iter().collect()
}

fn from_endpoints(endpoints: &Endpoints, service_port: &ServicePortSummary) -> Arc<[Endpoint]> {
    let mut found = BTreeSet::new();
    for subset in endpoints.subsets.as_deref().unwrap_or_default() {
        let port = subset
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|port| same_port_name(port.name.as_deref(), service_port))
            .and_then(|port| u16::try_from(port.port).ok());
        let Some(port) = port else { continue };
        for address in subset.addresses.as_deref().unwrap_or_default() {
            if let Ok(ip) = address.ip.parse::<IpAddr>() {
                found.insert(Endpoint::Socket(SocketAddr::new(ip, port)));
            }
        }
    }
    found.into_iter().collect()
}
