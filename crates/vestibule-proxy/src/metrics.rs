//! Prometheus metrics of the data plane. Labels are bounded: Ingress, Service, status and
//! listener names, never paths or client addresses.

use std::sync::{Arc, LazyLock};

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vestibule_routing::{BackendId, Route};

use crate::plane::DataPlane;
use crate::rate_limit::Limited;

/// Latency buckets, in seconds, as ingress-nginx uses them.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Which Ingress and Service a request went to; empty when no rule matched.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The Ingress's namespace.
    pub namespace: Arc<str>,
    /// The Ingress's name.
    pub ingress: Arc<str>,
    /// The Service's name.
    pub service: Arc<str>,
}

impl RouteLabels {
    /// The empty labels of requests no rule matched, shared.
    pub fn unrouted() -> Arc<Self> {
        static UNROUTED: LazyLock<Arc<RouteLabels>> = LazyLock::new(Arc::default);
        UNROUTED.clone()
    }

    /// The labels of a route, computed once per routing table.
    pub fn of(route: &Route) -> Self {
        Self {
            namespace: route.ingress.namespace.clone(),
            ingress: route.ingress.name.clone(),
            service: route.backend.service.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    #[prometheus(flatten)]
    route: RouteLabels,
    status: u16,
}

/// A traffic listener.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ListenerKind {
    /// The plain HTTP listener.
    Http,
    /// The HTTPS listener.
    Https,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: ListenerKind,
}

impl EncodeLabelValue for ListenerKind {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Http => "http",
            Self::Https => "https",
        })
    }
}

/// How a TLS handshake ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum HandshakeResult {
    /// Completed.
    Success,
    /// Failed or timed out.
    Failure,
}

impl EncodeLabelValue for HandshakeResult {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Success => "success",
            Self::Failure => "failure",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    result: HandshakeResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    namespace: Arc<str>,
    service: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitedLabels {
    namespace: Arc<str>,
    ingress: Arc<str>,
    limit: Limited,
}

impl EncodeLabelValue for Limited {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.name())
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The data plane's metrics, registered once and shared by every listener.
#[derive(Debug)]
pub struct ProxyMetrics {
    enabled: bool,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    upstream_response: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_bytes: Family<RouteLabels, Counter>,
    response_bytes: Family<RouteLabels, Counter>,
    open_connections: Family<ListenerLabels, Gauge>,
    tls_handshakes: Family<HandshakeLabels, Counter>,
    upstream_connections: Family<BackendLabels, Gauge>,
    limited_requests: Family<LimitedLabels, Counter>,
    passthrough_connections: Family<RouteLabels, Counter>,
}

/// One finished request, as the metrics record it.
#[derive(Debug)]
pub struct RequestSample<'a> {
    /// Where it went.
    pub route: &'a RouteLabels,
    /// The status answered.
    pub status: u16,
    /// From the request's arrival to the last response byte, in seconds.
    pub duration: f64,
    /// How long the endpoint took to answer, in seconds, if one was asked.
    pub upstream: Option<f64>,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
}

impl ProxyMetrics {
    /// Metrics that record nothing (`--metrics=false`), for measuring what recording costs.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::unregistered()
        }
    }

    fn unregistered() -> Self {
        Self {
            enabled: true,
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_response: Family::new_with_constructor(latency_histogram),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            open_connections: Family::default(),
            tls_handshakes: Family::default(),
            upstream_connections: Family::default(),
            limited_requests: Family::default(),
            passthrough_connections: Family::default(),
        }
    }

    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "requests",
            "Requests answered, by Ingress, Service and status",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its last response byte",
            metrics.request_duration.clone(),
        );
        registry.register(
            "upstream_response_seconds",
            "Time an endpoint took to start answering",
            metrics.upstream_response.clone(),
        );
        registry.register(
            "request_bytes",
            "Request body bytes received",
            metrics.request_bytes.clone(),
        );
        registry.register(
            "response_bytes",
            "Response body bytes sent",
            metrics.response_bytes.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open, by listener",
            metrics.open_connections.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes, by result",
            metrics.tls_handshakes.clone(),
        );
        registry.register(
            "upstream_connections",
            "Connections open to endpoints (idle in the pool or in use), by namespace and Service",
            metrics.upstream_connections.clone(),
        );
        registry.register(
            "limited_requests",
            "Requests refused by an Ingress's rate or connection limits, by limit",
            metrics.limited_requests.clone(),
        );
        registry.register(
            "passthrough_connections",
            "TLS connections relayed unterminated (ssl-passthrough), by Ingress and Service",
            metrics.passthrough_connections.clone(),
        );
        metrics
    }

    /// Counts a request refused by the rate or connection limits of `route`'s Ingress.
    pub fn limited(&self, route: &RouteLabels, limit: Limited) {
        if !self.enabled {
            return;
        }
        let labels = LimitedLabels {
            namespace: route.namespace.clone(),
            ingress: route.ingress.clone(),
            limit,
        };
        self.limited_requests.get_or_create(&labels).inc();
    }

    /// Records one finished request.
    pub fn record(&self, sample: &RequestSample<'_>) {
        if !self.enabled {
            return;
        }
        let labels = RequestLabels {
            route: sample.route.clone(),
            status: sample.status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(sample.route)
            .observe(sample.duration);
        if let Some(upstream) = sample.upstream {
            self.upstream_response
                .get_or_create(sample.route)
                .observe(upstream);
        }
        self.request_bytes
            .get_or_create(sample.route)
            .inc_by(sample.bytes_in);
        self.response_bytes
            .get_or_create(sample.route)
            .inc_by(sample.bytes_out);
    }

    /// Counts a TLS handshake.
    pub fn handshake(&self, result: HandshakeResult) {
        if !self.enabled {
            return;
        }
        self.tls_handshakes
            .get_or_create(&HandshakeLabels { result })
            .inc();
    }

    /// Counts a TLS connection relayed unterminated to the passthrough host `route`.
    pub fn passthrough(&self, route: &RouteLabels) {
        if self.enabled {
            self.passthrough_connections.get_or_create(route).inc();
        }
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection(&self, listener: ListenerKind) -> ConnectionGuard {
        self.count(&self.open_connections, &ListenerLabels { listener })
    }

    /// Counts a connection to an endpoint of `backend` as open until the returned guard is
    /// dropped; `None` counts it under empty labels.
    pub fn upstream_connection(&self, backend: Option<&BackendId>) -> ConnectionGuard {
        let labels = BackendLabels {
            namespace: backend.map(|id| id.namespace.clone()).unwrap_or_default(),
            service: backend.map(|id| id.service.clone()).unwrap_or_default(),
        };
        self.count(&self.upstream_connections, &labels)
    }

    fn count<L>(&self, family: &Family<L, Gauge>, labels: &L) -> ConnectionGuard
    where
        L: Clone + std::hash::Hash + Eq,
    {
        if !self.enabled {
            return ConnectionGuard(None);
        }
        let gauge = family.get_or_create(labels).clone();
        gauge.inc();
        ConnectionGuard(Some(gauge))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    namespace: Arc<str>,
    service: Arc<str>,
    state: &'static str,
}

/// Reports each backend's endpoints by passive-health state when metrics are scraped.
pub struct EndpointCollector {
    plane: Arc<DataPlane>,
}

impl std::fmt::Debug for EndpointCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCollector").finish_non_exhaustive()
    }
}

impl EndpointCollector {
    /// A collector over `plane`'s upstreams.
    pub fn new(plane: Arc<DataPlane>) -> Self {
        Self { plane }
    }
}

impl Collector for EndpointCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let endpoints = Family::<EndpointLabels, Gauge>::default();
        for upstream in self.plane.upstreams() {
            let id = upstream.id();
            for state in ["ready", "ejected"] {
                let labels = EndpointLabels {
                    namespace: id.namespace.clone(),
                    service: id.service.clone(),
                    state,
                };
                endpoints.get_or_create(&labels).set(0);
            }
            for health in upstream.endpoint_health() {
                let labels = EndpointLabels {
                    namespace: id.namespace.clone(),
                    service: id.service.clone(),
                    state: if health.ejected { "ejected" } else { "ready" },
                };
                endpoints.get_or_create(&labels).inc();
            }
        }
        let descriptor = encoder.encode_descriptor(
            "endpoints",
            "Endpoints of each backend, by passive-health state",
            None,
            endpoints.metric_type(),
        )?;
        endpoints.encode(descriptor)
    }
}

/// Keeps a connection counted as open.
#[derive(Debug)]
pub struct ConnectionGuard(Option<Gauge>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn requests_and_connections_are_exported() {
        let mut registry = Registry::with_prefix("vestibule");
        let metrics = ProxyMetrics::register(&mut registry);
        let route = RouteLabels {
            namespace: "shop".into(),
            ingress: "web".into(),
            service: "cart".into(),
        };
        metrics.record(&RequestSample {
            route: &route,
            status: 200,
            duration: 0.02,
            upstream: Some(0.01),
            bytes_in: 10,
            bytes_out: 300,
        });
        let open = metrics.connection(ListenerKind::Https);
        metrics.handshake(HandshakeResult::Failure);
        metrics.limited(&route, Limited::Requests);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoded");
        for expected in [
            r#"vestibule_requests_total{namespace="shop",ingress="web",service="cart",status="200"} 1"#,
            r#"vestibule_response_bytes_total{namespace="shop",ingress="web",service="cart"} 300"#,
            r#"vestibule_open_connections{listener="https"} 1"#,
            r#"vestibule_tls_handshakes_total{result="failure"} 1"#,
            r#"vestibule_limited_requests_total{namespace="shop",ingress="web",limit="requests"} 1"#,
            "vestibule_request_duration_seconds_count",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        drop(open);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoded");
        assert!(text.contains(r#"vestibule_open_connections{listener="https"} 0"#));
    }

    #[test]
    fn upstream_connections_are_counted_per_backend() {
        let mut registry = Registry::with_prefix("vestibule");
        let metrics = ProxyMetrics::register(&mut registry);
        let backend = BackendId {
            namespace: "shop".into(),
            service: "cart".into(),
            port: vestibule_routing::ServicePortRef::Number(80),
        };
        let first = metrics.upstream_connection(Some(&backend));
        let second = metrics.upstream_connection(Some(&backend));
        let gauge = r#"vestibule_upstream_connections{namespace="shop",service="cart"}"#;
        let text = || {
            let mut text = String::new();
            encode(&mut text, &registry).expect("encoded");
            text
        };
        assert!(text().contains(&format!("{gauge} 2")), "{}", text());
        drop(first);
        drop(second);
        assert!(text().contains(&format!("{gauge} 0")), "{}", text());
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let metrics = ProxyMetrics::disabled();
        let route = RouteLabels::default();
        metrics.record(&RequestSample {
            route: &route,
            status: 200,
            duration: 0.1,
            upstream: None,
            bytes_in: 0,
            bytes_out: 0,
        });
        let _open = metrics.connection(ListenerKind::Http);
        assert!(
            metrics
                .requests
                .get(&RequestLabels { route, status: 200 })
                .is_none()
        );
        assert!(
            metrics
                .open_connections
                .get(&ListenerLabels {
                    listener: ListenerKind::Http
                })
                .is_none()
        );
    }
}
