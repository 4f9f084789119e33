//! The one point where the control plane hands configuration to the data plane.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use vestibule_routing::{BackendId, Endpoint, PassthroughTable, Route, RouteTable};
use vestibule_tls::TlsTable;

use crate::canary::{CanaryTarget, live_canary};
use crate::metrics::RouteLabels;
use crate::passthrough::LivePassthrough;
use crate::rate_limit::{Zone, Zones};
use crate::upstream::Upstream;

/// What a matched rule leads to in the data plane.
#[derive(Debug)]
pub struct RouteTarget {
    /// The route as the translator produced it.
    pub route: Route,
    /// The live upstream of the route's backend.
    pub upstream: Arc<Upstream>,
    /// The route's metric labels, computed once per table and shared by its requests.
    pub labels: Arc<RouteLabels>,
    /// The route's canary, which some requests go to instead.
    pub canary: Option<CanaryTarget>,
    /// The limiter state of the route's Ingress, when it has rate or connection limits.
    pub(crate) limiter: Option<Arc<Zone>>,
}

/// The routing table the data plane serves from.
pub type LiveTable = RouteTable<Arc<RouteTarget>>;

/// What one [`DataPlane::apply`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Whether a new routing table was published.
    pub routes_changed: bool,
    /// How many backends got a new endpoint set.
    pub endpoint_sets_changed: usize,
    /// Whether new TLS handshakes get a new certificate table.
    pub tls_changed: bool,
}

/// Control-side bookkeeping, touched only when configuration is applied.
#[derive(Default)]
struct Registry {
    /// The translated table the live one was built from, shared with the translation.
    routes: Option<Arc<RouteTable<Route>>>,
    upstreams: HashMap<BackendId, Arc<Upstream>>,
    zones: Zones,
}

/// The live configuration: listeners read it once per request, the control plane replaces it.
///
/// In-flight requests keep the table and upstream they started with; new requests see the new
/// configuration as soon as [`apply`](Self::apply) returns.
pub struct DataPlane {
    table: ArcSwap<LiveTable>,
    tls: ArcSwap<TlsTable>,
    passthrough: ArcSwap<LivePassthrough>,
    registry: Mutex<Registry>,
    changes: watch::Sender<u64>,
}

impl Default for DataPlane {
    fn default() -> Self {
        Self {
            table: ArcSwap::from_pointee(LiveTable::default()),
            tls: ArcSwap::from_pointee(TlsTable::default()),
            passthrough: ArcSwap::from_pointee(LivePassthrough::default()),
            registry: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl DataPlane {
    /// The table requests are routed by now.
    pub fn table(&self) -> arc_swap::Guard<Arc<LiveTable>> {
        self.table.load()
    }

    /// Notifies whenever routes or endpoints change, for long-lived connections that must end
    /// when their route or endpoint goes away.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Every backend's upstream now.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry.upstreams.values().cloned().collect()
    }

    /// The certificates TLS handshakes choose from now.
    pub fn tls(&self) -> arc_swap::Guard<Arc<TlsTable>> {
        self.tls.load()
    }

    /// The hosts whose TLS connections are relayed unterminated now.
    pub(crate) fn passthrough(&self) -> arc_swap::Guard<Arc<LivePassthrough>> {
        self.passthrough.load()
    }

    /// Makes the passthrough hosts live, bound to the upstreams of the last
    /// [`apply`](Self::apply) (call it right after); returns whether they changed. Relayed
    /// connections whose host or endpoint went away are closed.
    pub fn apply_passthrough(&self, table: &PassthroughTable) -> bool {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if self
            .passthrough
            .load()
            .is_current(table, &registry.upstreams)
        {
            return false;
        }
        let live = LivePassthrough::build(table, &registry.upstreams);
        self.passthrough.store(Arc::new(live));
        self.changes.send_modify(|generation| *generation += 1);
        true
    }

    /// Makes `routes`, `backends` and `tls` live. Backends keep their upstream (and its balancer
    /// state) across calls; only backends whose endpoints changed get a new endpoint set, and the
    /// table is rebuilt only when the routes themselves changed. Open connections keep the
    /// certificate they were established with.
    pub fn apply(
        &self,
        routes: impl Into<Arc<RouteTable<Route>>>,
        backends: &BTreeMap<BackendId, Vec<Endpoint>>,
        tls: &TlsTable,
    ) -> Applied {
        let routes = routes.into();
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut applied = Applied::default();
        for (id, endpoints) in backends {
            match registry.upstreams.get(id) {
                Some(upstream) => {
                    if upstream.set_endpoints(endpoints) {
                        applied.endpoint_sets_changed += 1;
                    }
                }
                None => {
                    let upstream = Arc::new(Upstream::new(id.clone(), endpoints));
                    registry.upstreams.insert(id.clone(), upstream);
                    applied.endpoint_sets_changed += 1;
                }
            }
        }
        if registry.routes.as_ref() != Some(&routes) {
            let Registry {
                upstreams, zones, ..
            } = &mut *registry;
            let upstreams = &*upstreams;
            let upstream_of = |id: &BackendId| {
                upstreams
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Upstream::new(id.clone(), &[])))
            };
            let live = routes.map(|route| {
                Arc::new(RouteTarget {
                    labels: Arc::new(RouteLabels::of(route)),
                    route: route.clone(),
                    upstream: upstream_of(&route.backend),
                    canary: live_canary(route, upstream_of),
                    limiter: zones.zone_for(route),
                })
            });
            zones.finish();
            self.table.store(Arc::new(live));
            registry.routes = Some(routes);
            applied.routes_changed = true;
        }
        registry.upstreams.retain(|id, _| backends.contains_key(id));
        if **self.tls.load() != *tls {
            self.tls.store(Arc::new(tls.clone()));
            applied.tls_changed = true;
        }
        if applied.routes_changed || applied.endpoint_sets_changed > 0 {
            self.changes.send_modify(|generation| *generation += 1);
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_routing::{HostMatch, IngressRef, PathMatch, RouteTableBuilder, ServicePortRef};

    fn backend(name: &str) -> BackendId {
        BackendId {
            namespace: "default".into(),
            service: name.into(),
            port: ServicePortRef::Number(80),
        }
    }

    fn routes(paths: &[(&str, &str)]) -> RouteTable<Route> {
        let mut builder = RouteTableBuilder::default();
        for (path, service) in paths {
            let route = Route {
                backend: backend(service),
                ingress: IngressRef {
                    namespace: "default".into(),
                    name: "ing".into(),
                },
                tls: false,
                https_redirect: false,
                policy: Default::default(),
                canary: None,
            };
            builder
                .add_rule(HostMatch::Any, PathMatch::prefix(path), route)
                .expect("no conflict");
        }
        builder.build()
    }

    fn endpoints(list: &[(&str, &str)]) -> BTreeMap<BackendId, Vec<Endpoint>> {
        let mut map: BTreeMap<BackendId, Vec<Endpoint>> = BTreeMap::new();
        for (service, addr) in list {
            let entry = map.entry(backend(service)).or_default();
            if !addr.is_empty() {
                entry.push(Endpoint::Socket(addr.parse().expect("socket address")));
            }
        }
        map
    }

    fn picked(plane: &DataPlane, path: &str) -> Option<String> {
        let table = plane.table();
        let target = table.route("any.host", path)?.target().clone();
        target
            .upstream
            .pick()
            .map(|pick| pick.authority().to_string())
    }

    #[test]
    fn endpoint_changes_do_not_rebuild_the_table() {
        let plane = DataPlane::default();
        let first = plane.apply(
            routes(&[("/", "web")]),
            &endpoints(&[("web", "10.0.0.1:80")]),
            &TlsTable::default(),
        );
        assert!(first.routes_changed);
        let before = Arc::as_ptr(&plane.table());
        let second = plane.apply(
            routes(&[("/", "web")]),
            &endpoints(&[("web", "10.0.0.2:80")]),
            &TlsTable::default(),
        );
        assert_eq!(
            second,
            Applied {
                routes_changed: false,
                endpoint_sets_changed: 1,
                tls_changed: false,
            }
        );
        assert_eq!(Arc::as_ptr(&plane.table()), before);
        assert_eq!(picked(&plane, "/"), Some("10.0.0.2:80".into()));
    }

    #[test]
    fn route_changes_publish_a_new_table_and_keep_upstreams() {
        let plane = DataPlane::default();
        plane.apply(
            routes(&[("/", "web")]),
            &endpoints(&[("web", "10.0.0.1:80")]),
            &TlsTable::default(),
        );
        let web_before = plane
            .table()
            .route("h", "/")
            .map(|selected| selected.target().upstream.clone())
            .expect("route");
        let applied = plane.apply(
            routes(&[("/", "web"), ("/api", "api")]),
            &endpoints(&[("web", "10.0.0.1:80"), ("api", "10.0.0.9:80")]),
            &TlsTable::default(),
        );
        assert!(applied.routes_changed);
        assert_eq!(applied.endpoint_sets_changed, 1);
        let web_after = plane
            .table()
            .route("h", "/")
            .map(|selected| selected.target().upstream.clone())
            .expect("route");
        assert!(Arc::ptr_eq(&web_before, &web_after));
        assert_eq!(picked(&plane, "/api/x"), Some("10.0.0.9:80".into()));
    }

    #[test]
    fn backends_without_endpoints_pick_nothing() {
        let plane = DataPlane::default();
        plane.apply(
            routes(&[("/", "web")]),
            &endpoints(&[("web", "")]),
            &TlsTable::default(),
        );
        assert_eq!(picked(&plane, "/"), None);
    }
}
