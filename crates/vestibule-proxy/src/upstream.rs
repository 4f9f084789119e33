//! A backend's live endpoint set, its balancer and the endpoints' passive health.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::uri::Authority;
use vestibule_routing::{BackendId, Endpoint};

use crate::balancer::{Balancer, RoundRobin};
use crate::ewma::Ewma;
use crate::selection::{Strategy, endpoint_hash, session_id};

/// Consecutive failures after which an endpoint is ejected.
const EJECT_AFTER_FAILURES: u32 = 3;
/// How long a first ejection lasts; each further one doubles it, up to [`MAX_EJECTION`].
const BASE_EJECTION: Duration = Duration::from_secs(5);
/// The longest ejection.
const MAX_EJECTION: Duration = Duration::from_secs(60);

/// One endpoint, with the authority requests to it are addressed to and its health.
#[derive(Debug)]
pub struct UpstreamEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `host:port` for the request URI, built once.
    pub authority: Authority,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// The value of a session cookie naming this endpoint, worked out when first asked for.
    session_id: OnceLock<String>,
    /// Where the endpoint stands for consistent hashing.
    pub(crate) hash: u64,
    /// Its response times.
    pub(crate) latency: Ewma,
}

impl UpstreamEndpoint {
    /// The value of a session cookie naming this endpoint.
    pub(crate) fn session_id(&self) -> &str {
        self.session_id.get_or_init(|| session_id(&self.authority))
    }

    /// Whether passive health has ejected it at `now_ms` (see [`now_ms`]).
    pub(crate) fn ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// One endpoint's passive health at one moment, for reports such as `/debug/routes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Whether it is ejected now (it gets traffic only when every endpoint is).
    pub ejected: bool,
    /// How many attempts in a row have failed on it.
    pub consecutive_failures: u32,
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

/// The endpoint chosen for one attempt of one request; report how it went with
/// [`succeeded`](Self::succeeded) or [`failed`](Self::failed).
#[derive(Debug)]
pub struct Pick {
    selector: Arc<Selector>,
    index: usize,
    started: Instant,
}

impl Pick {
    /// The authority to address the request to.
    pub fn authority(&self) -> &Authority {
        &self.selector.endpoints[self.index].authority
    }

    fn new(selector: Arc<Selector>, index: usize) -> Self {
        Self {
            selector,
            index,
            started: Instant::now(),
        }
    }

    /// The endpoint answered: its failure count starts over.
    pub fn succeeded(&self) {
        let endpoint = &self.selector.endpoints[self.index];
        endpoint.latency.observe(self.started.elapsed(), now_ms());
        if endpoint.consecutive_failures.load(Ordering::Relaxed) != 0 {
            endpoint.consecutive_failures.store(0, Ordering::Relaxed);
            endpoint.ejections.store(0, Ordering::Relaxed);
        }
    }

    /// The endpoint failed (refused, reset or timed out). After repeated failures it is ejected
    /// for a backoff period; when that ends, the next request to it probes it back in. Requests
    /// that were already in flight when it was ejected do not extend the ejection: only a failed
    /// probe doubles it.
    pub fn failed(&self) {
        let endpoint = &self.selector.endpoints[self.index];
        let now = now_ms();
        endpoint.latency.observe(self.started.elapsed(), now);
        let failures = endpoint
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if failures >= EJECT_AFTER_FAILURES && !endpoint.ejected(now) {
            let ejections = endpoint.ejections.fetch_add(1, Ordering::Relaxed).min(16);
            let backoff = BASE_EJECTION
                .saturating_mul(1 << ejections)
                .min(MAX_EJECTION);
            let until = now + u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
            endpoint.ejected_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(endpoint = %endpoint.endpoint, ?backoff, "endpoint ejected after repeated failures");
        }
    }
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

    /// Whether `authority` is still one of the endpoints.
    pub fn serves(&self, authority: &Authority) -> bool {
        self.selector
            .load()
            .endpoints
            .iter()
            .any(|endpoint| endpoint.authority == *authority)
    }

    /// Every endpoint with its passive health now, in balancing order.
    pub fn endpoint_health(&self) -> Vec<EndpointHealth> {
        let now = now_ms();
        self.selector
            .load()
            .endpoints
            .iter()
            .map(|endpoint| EndpointHealth {
                endpoint: endpoint.endpoint.clone(),
                ejected: endpoint.ejected(now),
                consecutive_failures: endpoint.consecutive_failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The endpoint the next request goes to: the balancer's choice among endpoints that are not
    /// ejected, or its plain choice when every endpoint is ejected (traffic is still tried).
    /// `None` when there is no endpoint.
    pub fn pick(&self) -> Option<Pick> {
        self.pick_avoiding(None)
    }

    /// Like [`pick`](Self::pick), but another endpoint than `avoid` when there is one: for
    /// retrying a request that failed on `avoid`.
    pub fn pick_other(&self, avoid: &Pick) -> Option<Pick> {
        let selector = self.selector.load_full();
        if !Arc::ptr_eq(&selector, &avoid.selector) {
            return self.pick();
        }
        self.pick_avoiding(Some(avoid.index))
            .filter(|pick| pick.index != avoid.index)
    }

    /// The endpoint `strategy` chooses among those not ejected, or the plain
    /// [`pick`](Self::pick) when it leaves the choice to round robin.
    pub(crate) fn pick_by(&self, strategy: &Strategy<'_>) -> Option<Pick> {
        let selector = self.selector.load_full();
        match strategy.choose(&selector.endpoints, now_ms()) {
            Some(index) => Some(Pick::new(selector, index)),
            None => self.pick(),
        }
    }

    fn pick_avoiding(&self, avoid: Option<usize>) -> Option<Pick> {
        let selector = self.selector.load_full();
        let len = selector.endpoints.len();
        let start = selector.balancer.pick(len)?;
        let now = now_ms();
        let healthy = (0..len)
            .map(|offset| (start + offset) % len)
            .find(|&index| Some(index) != avoid && !selector.endpoints[index].ejected(now));
        let index = healthy.unwrap_or(start);
        Some(Pick::new(selector, index))
    }
}

/// Milliseconds since the process first asked.
pub(crate) fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn build_selector(endpoints: &[Endpoint]) -> Selector {
    // Sized exactly: collecting from a filter would leave room for four, and an upstream is
    // kept for every backend.
    let mut live = Vec::with_capacity(endpoints.len());
    live.extend(endpoints.iter().filter_map(UpstreamEndpoint::new));
    Selector {
        endpoints: live,
        balancer: Box::new(RoundRobin::default()),
    }
}

impl UpstreamEndpoint {
    /// A fresh, healthy endpoint; `None` when it cannot be addressed.
    pub(crate) fn new(endpoint: &Endpoint) -> Option<Self> {
        // Copied from the formatted text, so the authority holds no spare capacity.
        let authority = match endpoint {
            Endpoint::Socket(addr) => Authority::try_from(addr.to_string().as_str()),
            Endpoint::Name { host, port } => Authority::try_from(format!("{host}:{port}").as_str()),
        };
        match authority {
            Ok(authority) => Some(Self {
                endpoint: endpoint.clone(),
                consecutive_failures: AtomicU32::new(0),
                ejections: AtomicU32::new(0),
                ejected_until_ms: AtomicU64::new(0),
                session_id: OnceLock::new(),
                hash: endpoint_hash(&authority),
                latency: Ewma::default(),
                authority,
            }),
            Err(error) => {
                tracing::warn!(%endpoint, %error, "endpoint is not a valid authority; skipped");
                None
            }
        }
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

    fn picked(upstream: &Upstream) -> Option<String> {
        upstream.pick().map(|pick| pick.authority().to_string())
    }

    #[test]
    fn picks_round_robin_and_reports_changes() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        let picks: Vec<_> = (0..4).filter_map(|_| picked(&upstream)).collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"]
        );
        assert!(!upstream.set_endpoints(&[socket("10.0.0.1:80"), socket("10.0.0.2:80")]));
        assert!(upstream.set_endpoints(&[socket("[fd00::1]:8080")]));
        assert_eq!(picked(&upstream), Some("[fd00::1]:8080".to_owned()));
        assert!(upstream.set_endpoints(&[]));
        assert!(upstream.pick().is_none());
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
        assert_eq!(picked(&upstream), Some("api.example.net:443".to_owned()));
    }

    #[test]
    fn repeated_failures_eject_an_endpoint_until_every_one_is_ejected() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        for _ in 0..EJECT_AFTER_FAILURES {
            let pick = upstream.pick_avoiding(Some(1)).expect("an endpoint");
            assert_eq!(pick.authority().as_str(), "10.0.0.1:80");
            pick.failed();
        }
        let picks: Vec<_> = (0..4).filter_map(|_| picked(&upstream)).collect();
        assert_eq!(
            picks, ["10.0.0.2:80"; 4],
            "the ejected endpoint gets no traffic"
        );

        for _ in 0..EJECT_AFTER_FAILURES {
            upstream.pick().expect("an endpoint").failed();
        }
        assert!(
            upstream.pick().is_some(),
            "with every endpoint ejected, traffic is still tried"
        );
    }

    #[test]
    fn failures_in_flight_during_an_ejection_do_not_extend_it() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        let in_flight: Vec<Pick> = (0..EJECT_AFTER_FAILURES + 5)
            .map(|_| upstream.pick_avoiding(Some(1)).expect("an endpoint"))
            .collect();
        for pick in &in_flight {
            pick.failed();
        }
        let endpoint = &in_flight[0].selector.endpoints[0];
        assert_eq!(endpoint.ejections.load(Ordering::Relaxed), 1);
        let until = endpoint.ejected_until_ms.load(Ordering::Relaxed);
        let first = u64::try_from(BASE_EJECTION.as_millis()).expect("small");
        assert!(
            until <= now_ms() + first,
            "ejected for the first backoff only"
        );
    }

    #[test]
    fn endpoint_health_reports_failures_and_ejection() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        let pick = upstream.pick_avoiding(Some(1)).expect("an endpoint");
        pick.failed();
        let health = upstream.endpoint_health();
        assert_eq!(health.len(), 2);
        assert_eq!(health[0].endpoint, socket("10.0.0.1:80"));
        assert_eq!(health[0].consecutive_failures, 1);
        assert!(!health[0].ejected);
        for _ in 1..EJECT_AFTER_FAILURES {
            pick.failed();
        }
        let health = upstream.endpoint_health();
        assert!(health[0].ejected);
        assert_eq!(health[0].consecutive_failures, EJECT_AFTER_FAILURES);
        assert_eq!(
            health[1],
            EndpointHealth {
                endpoint: socket("10.0.0.2:80"),
                ejected: false,
                consecutive_failures: 0,
            }
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80")]);
        let pick = upstream.pick().expect("an endpoint");
        pick.failed();
        pick.failed();
        pick.succeeded();
        pick.failed();
        pick.failed();
        let endpoint = &pick.selector.endpoints[0];
        assert!(!endpoint.ejected(now_ms()));
    }

    #[test]
    fn retries_go_to_another_endpoint() {
        let upstream = Upstream::new(id(), &[socket("10.0.0.1:80"), socket("10.0.0.2:80")]);
        let first = upstream.pick().expect("an endpoint");
        let other = upstream.pick_other(&first).expect("another endpoint");
        assert_ne!(first.authority(), other.authority());
        let single = Upstream::new(id(), &[socket("10.0.0.1:80")]);
        let only = single.pick().expect("an endpoint");
        assert!(single.pick_other(&only).is_none());
    }
}
