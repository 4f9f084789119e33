//! The one point where the control plane hands configuration to the data plane.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use foldhash::{HashMap, HashSet, HashSetExt};
use tokio::sync::watch;
use vestibule_routing::{BackendId, Backends, PassthroughTable, Previous, Route, RouteTable};
use vestibule_tls::TlsTable;

use crate::canary::{CanaryTarget, live_canary};
use crate::metrics::RouteLabels;
use crate::passthrough::LivePassthrough;
use crate::rate_limit::{Zone, Zones};
use crate::upstream::Upstream;

/// What a matched rule leads to in the data plane.
#[derive(Debug)]
pub struct RouteTarget {
    /// The route as the translator produced it, shared with the translator's table.
    pub route: Arc<Route>,
    /// The live upstream of the route's backend.
    pub upstream: Arc<Upstream>,
    /// The route's metric labels, computed once per table and shared by its requests.
    pub labels: Arc<RouteLabels>,
    /// The route's canary, which some requests go to instead.
    pub canary: Option<CanaryTarget>,
    /// The limiter state of the route's Ingress, when it has rate or connection limits.
    pub(crate) limiter: Option<Arc<Zone>>,
}

impl RouteTarget {
    /// Whether this live target is what `route` would become now: the same route, sending to
    /// the upstreams and the limiter zone that are live for it.
    fn is_current(
        &self,
        route: &Route,
        upstreams: &HashMap<BackendId, Arc<Upstream>>,
        zones: &mut Zones,
    ) -> bool {
        let live = |id: &BackendId, upstream: &Arc<Upstream>| {
            upstreams
                .get(id)
                .is_some_and(|current| Arc::ptr_eq(current, upstream))
        };
        let same_canary = match (&route.canary, &self.canary) {
            (Some(canary), Some(target)) => live(&canary.backend, &target.upstream),
            (None, None) => true,
            _ => false,
        };
        let same_zone = match (zones.zone_for(route), &self.limiter) {
            (Some(zone), Some(limiter)) => Arc::ptr_eq(&zone, limiter),
            (None, None) => true,
            _ => false,
        };
        *self.route == *route && live(&route.backend, &self.upstream) && same_canary && same_zone
    }
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
    upstreams: HashMap<BackendId, Arc<Upstream>>,
    zones: Zones,
    /// The table the live one was converted from.
    source: Arc<RouteTable<Arc<Route>>>,
    /// The backends last applied.
    backends: Backends,
}

impl Registry {
    /// Gives each backend its endpoints, creating the upstreams missing, and counts the endpoint
    /// sets that changed in `applied`. Returns the backends whose upstream was created. The very
    /// map applied last time has nothing new for any upstream.
    fn update_upstreams<'a>(
        &mut self,
        backends: &'a Backends,
        applied: &mut Applied,
    ) -> HashSet<&'a BackendId> {
        let mut created = HashSet::new();
        if Arc::ptr_eq(&self.backends, backends) {
            return created;
        }
        for (id, endpoints) in backends.iter() {
            match self.upstreams.get(id) {
                Some(upstream) => {
                    if upstream.set_endpoints(endpoints) {
                        applied.endpoint_sets_changed += 1;
                    }
                }
                None => {
                    let upstream = Arc::new(Upstream::new(id.clone(), endpoints));
                    self.upstreams.insert(id.clone(), upstream);
                    created.insert(id);
                    applied.endpoint_sets_changed += 1;
                }
            }
        }
        created
    }
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
    /// state) across calls; only backends whose endpoints changed get a new endpoint set, and
    /// none is looked at when `backends` is the very map applied last time. A new
    /// table is published only when the routes themselves changed, and it takes over the live
    /// virtual hosts that did not. Open connections keep the certificate they were established
    /// with.
    pub fn apply(
        &self,
        routes: &Arc<RouteTable<Arc<Route>>>,
        backends: &Backends,
        tls: &TlsTable,
    ) -> Applied {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut applied = Applied::default();
        let created = registry.update_upstreams(backends, &mut applied);
        // A block, so the borrows of the registry's parts end before its upstreams are pruned.
        {
            let Registry {
                upstreams,
                zones,
                source,
                ..
            } = &mut *registry;
            let upstreams = &*upstreams;
            let upstream_of = |id: &BackendId| {
                upstreams
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Upstream::new(id.clone(), &[])))
            };
            // Both the reuse check and the conversion hand out limiter zones.
            let zones = RefCell::new(zones);
            let current = self.table.load();
            let previous = Previous {
                source,
                mapped: &current,
            };
            // A target converted from this very route stays current unless an upstream it
            // uses was just created (its backend had gone); its limiter zone stays live. With
            // no upstream created and no zone live, there is nothing to check.
            let nothing_to_check = created.is_empty() && zones.borrow().none_live();
            let kept = |route: &Arc<Route>| {
                if nothing_to_check {
                    return true;
                }
                let fresh = |id: &BackendId| created.contains(id);
                let canary = route.canary.as_ref().map(|canary| &canary.backend);
                let stale = fresh(&route.backend) || canary.is_some_and(fresh);
                zones.borrow_mut().zone_for(route);
                !stale
            };
            let remapped = routes.map_reusing(
                previous,
                kept,
                |route, live| live.is_current(route, upstreams, &mut zones.borrow_mut()),
                |route| {
                    Arc::new(RouteTarget {
                        labels: Arc::new(RouteLabels::of(route)),
                        route: route.clone(),
                        upstream: upstream_of(&route.backend),
                        canary: live_canary(route, upstream_of),
                        limiter: zones.borrow_mut().zone_for(route),
                    })
                },
            );
            zones.into_inner().finish();
            *source = Arc::clone(routes);
            if remapped.changed {
                self.table.store(Arc::new(remapped.table));
                applied.routes_changed = true;
            }
        }
        // Every backend has an upstream now, so only a surplus can be stale.
        if registry.upstreams.len() > backends.len() {
            registry.upstreams.retain(|id, _| backends.contains_key(id));
        }
        registry.backends = Arc::clone(backends);
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
    use std::collections::BTreeMap;
    use vestibule_routing::{
        Endpoint, HostMatch, IngressRef, PathMatch, RouteTableBuilder, ServicePortRef,
    };

    fn backend(name: &str) -> BackendId {
        BackendId {
            namespace: "default".into(),
            service: name.into(),
            port: ServicePortRef::Number(80),
        }
    }

    fn routes(paths: &[(&str, &str)]) -> Arc<RouteTable<Arc<Route>>> {
        let rules: Vec<_> = paths
            .iter()
            .map(|&(path, service)| ("", path, service))
            .collect();
        hosted(&rules)
    }

    /// A table of (host, prefix path, service) rules; an empty host is any host.
    fn hosted(rules: &[(&str, &str, &str)]) -> Arc<RouteTable<Arc<Route>>> {
        let mut builder = RouteTableBuilder::default();
        for (host, path, service) in rules {
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
            let host = HostMatch::parse(host).expect("valid host");
            builder
                .add_rule(host, PathMatch::prefix(path), Arc::new(route))
                .expect("no conflict");
        }
        Arc::new(builder.build())
    }

    fn endpoints(list: &[(&str, &str)]) -> Backends {
        let mut lists: BTreeMap<BackendId, Vec<Endpoint>> = BTreeMap::new();
        for (service, addr) in list {
            let entry = lists.entry(backend(service)).or_default();
            if !addr.is_empty() {
                entry.push(Endpoint::Socket(addr.parse().expect("socket address")));
            }
        }
        Arc::new(
            lists
                .into_iter()
                .map(|(id, list)| (id, Arc::from(list)))
                .collect(),
        )
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
            &routes(&[("/", "web")]),
            &endpoints(&[("web", "10.0.0.1:80")]),
            &TlsTable::default(),
        );
        assert!(first.routes_changed);
        let before = Arc::as_ptr(&plane.table());
        let second = plane.apply(
            &routes(&[("/", "web")]),
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
    fn the_same_backends_again_change_nothing() {
        let plane = DataPlane::default();
        let table = routes(&[("/", "web")]);
        let backends = endpoints(&[("web", "10.0.0.1:80")]);
        plane.apply(&table, &backends, &TlsTable::default());
        let again = plane.apply(&table, &backends, &TlsTable::default());
        assert_eq!(again, Applied::default());
        assert_eq!(picked(&plane, "/"), Some("10.0.0.1:80".into()));
    }

    #[test]
    fn route_changes_publish_a_new_table_and_keep_upstreams() {
        let plane = DataPlane::default();
        plane.apply(
            &routes(&[("/", "web")]),
            &endpoints(&[("web", "10.0.0.1:80")]),
            &TlsTable::default(),
        );
        let web_before = plane
            .table()
            .route("h", "/")
            .map(|selected| selected.target().upstream.clone())
            .expect("route");
        let applied = plane.apply(
            &routes(&[("/", "web"), ("/api", "api")]),
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
            &routes(&[("/", "web")]),
            &endpoints(&[("web", "")]),
            &TlsTable::default(),
        );
        assert_eq!(picked(&plane, "/"), None);
    }

    fn live_target(plane: &DataPlane, host: &str) -> Arc<RouteTarget> {
        let table = plane.table();
        let selected = table.route(host, "/").expect("routed");
        selected.target().clone()
    }

    #[test]
    fn a_change_to_one_host_keeps_the_live_targets_of_the_others() {
        let plane = DataPlane::default();
        let all = endpoints(&[
            ("a", "10.0.0.1:80"),
            ("b", "10.0.0.2:80"),
            ("c", "10.0.0.3:80"),
        ]);
        let tls = TlsTable::default();
        plane.apply(
            &hosted(&[("a.example", "/", "a"), ("b.example", "/", "b")]),
            &all,
            &tls,
        );
        let (a, b) = (
            live_target(&plane, "a.example"),
            live_target(&plane, "b.example"),
        );
        let applied = plane.apply(
            &hosted(&[("a.example", "/", "a"), ("b.example", "/", "c")]),
            &all,
            &tls,
        );
        assert!(applied.routes_changed);
        assert!(Arc::ptr_eq(&a, &live_target(&plane, "a.example")));
        assert!(!Arc::ptr_eq(&b, &live_target(&plane, "b.example")));
        assert_eq!(live_target(&plane, "b.example").route.backend, backend("c"));
    }

    #[test]
    fn a_rate_limited_host_taken_over_unchanged_keeps_its_zone() {
        let plane = DataPlane::default();
        let limited = |table: Arc<RouteTable<Arc<Route>>>| {
            let limit = vestibule_routing::RateLimit {
                requests: Vec::new(),
                connections: std::num::NonZeroU32::new(5),
                exempt: Vec::new(),
            };
            Arc::new(table.map(|route| {
                Arc::new(Route {
                    policy: Arc::new(vestibule_routing::RoutePolicy {
                        rate_limit: Some(limit.clone()),
                        ..Default::default()
                    }),
                    ..Route::clone(route)
                })
            }))
        };
        let all = endpoints(&[("a", "10.0.0.1:80"), ("b", "10.0.0.2:80")]);
        let tls = TlsTable::default();
        let first = limited(hosted(&[("a.example", "/", "a")]));
        plane.apply(&first, &all, &tls);
        let zone = live_target(&plane, "a.example")
            .limiter
            .clone()
            .expect("a zone");
        // The very same table is taken over; then an equal one built afresh is compared, and
        // finds the zone still live.
        plane.apply(&first, &all, &tls);
        let equal = limited(hosted(&[("a.example", "/", "a"), ("b.example", "/", "b")]));
        plane.apply(&equal, &all, &tls);
        let after = live_target(&plane, "a.example")
            .limiter
            .clone()
            .expect("a zone");
        assert!(Arc::ptr_eq(&zone, &after));
    }

    #[test]
    fn a_backend_that_comes_back_is_routed_to_its_new_upstream() {
        let plane = DataPlane::default();
        let table = hosted(&[("a.example", "/", "a")]);
        let tls = TlsTable::default();
        plane.apply(&table, &endpoints(&[("a", "10.0.0.1:80")]), &tls);
        plane.apply(&table, &Backends::default(), &tls);
        plane.apply(&table, &endpoints(&[("a", "10.0.0.9:80")]), &tls);
        let picked = live_target(&plane, "a.example")
            .upstream
            .pick()
            .map(|pick| pick.authority().to_string());
        assert_eq!(picked.as_deref(), Some("10.0.0.9:80"));
    }
}
