//! The live configuration as data: what `/debug/routes` on the admin listener and
//! `vestibule routes` print.
//!
//! The view is read from what requests are routed by now: the live routing table (hosts and
//! paths in precedence order), the live passthrough hosts, the upstreams they point at with
//! their endpoints' passive health, and the live certificate table.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use vestibule_routing::{BackendId, PathMatch, ServicePortRef};
use vestibule_tls::Certificate;

use crate::plane::{DataPlane, RouteTarget};
use crate::upstream::Upstream;

/// The live configuration: routes, passthrough hosts, backends with their endpoints, and
/// certificates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoutesView {
    /// Every virtual host, in precedence order: exact names, then `*.suffix` wildcards, then
    /// `*` (the rules without a host).
    pub hosts: Vec<HostView>,
    /// Where requests that match no rule go; `None` answers them 404.
    pub default_backend: Option<RouteView>,
    /// The hosts whose TLS connections are relayed unterminated (`ssl-passthrough` with
    /// `--enable-ssl-passthrough`), in precedence order: exact names, then `*.suffix`.
    pub passthrough: Vec<PassthroughView>,
    /// Every backend the routes and passthrough hosts lead to, ordered by namespace, Service
    /// and port, with its endpoints.
    pub backends: Vec<BackendView>,
    /// The certificates TLS handshakes choose from.
    pub tls: TlsView,
}

/// One virtual host and its path rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostView {
    /// The host pattern: `foo.example`, `*.example` or `*`.
    pub host: String,
    /// The path rules, in precedence order (the first that matches wins).
    pub paths: Vec<PathView>,
}

/// One path rule of a virtual host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathView {
    /// The path (a `Prefix` path in its normal form, without trailing slash; a `Regex` path
    /// as written).
    pub path: String,
    /// `Exact`, `Prefix` (`ImplementationSpecific` is served as `Prefix`), or `Regex` on a
    /// host where an Ingress uses `use-regex` or `rewrite-target`.
    pub path_type: &'static str,
    /// Where matching requests go.
    #[serde(flatten)]
    pub route: RouteView,
}

/// What a rule (or the default backend) leads to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteView {
    /// The Service port that answers.
    pub backend: BackendRef,
    /// The Ingress the rule came from, as `namespace/name`.
    pub ingress: String,
    /// The host is configured for TLS: HTTPS responses carry HSTS.
    pub tls: bool,
    /// Plain-HTTP requests are redirected to HTTPS.
    pub https_redirect: bool,
    /// The path requests are sent upstream with (`rewrite-target`), when it is rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_target: Option<String>,
    /// The canary Service port some requests go to instead; absent without a canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<BackendRef>,
}

/// A host whose TLS connections are relayed as raw TCP to an endpoint of its backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PassthroughView {
    /// The host pattern: `foo.example` or `*.example`.
    pub host: String,
    /// The Service port of the host's `/` rule, whose endpoints get the connections.
    pub backend: BackendRef,
    /// The Ingress that rule came from, as `namespace/name`.
    pub ingress: String,
}

/// A Service port, by name and by parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendRef {
    /// `namespace/service:port`.
    pub name: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// The Service port, by number or by name as the Ingress names it.
    pub port: PortView,
}

/// A Service port as an Ingress names it: a JSON number or a JSON string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PortView {
    /// `port.number`.
    Number(u16),
    /// `port.name`.
    Name(String),
}

/// One backend and its endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendView {
    /// Which Service port.
    #[serde(flatten)]
    pub backend: BackendRef,
    /// Its endpoints, in balancing order; empty when no endpoint is ready (requests get 503).
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint and its passive health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointView {
    /// `ip:port`, or `host:port` for an ExternalName Service.
    pub address: String,
    /// Whether it gets traffic.
    pub state: EndpointState,
    /// How many attempts in a row have failed on it.
    pub consecutive_failures: u32,
}

/// Whether an endpoint gets traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// It gets its share of requests.
    Ready,
    /// It failed repeatedly and gets no traffic until its backoff ends (unless every endpoint
    /// of its backend is ejected).
    Ejected,
}

/// The certificate table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsView {
    /// The certificate for each host pattern, in precedence order.
    pub hosts: Vec<TlsHostView>,
    /// The certificate for other names and for clients without SNI; `None` means the
    /// listener's self-signed certificate generated at start-up.
    pub default_certificate: Option<CertificateView>,
}

/// The certificate for one host pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsHostView {
    /// The host pattern: `foo.example` or `*.example`.
    pub host: String,
    /// Its certificate.
    #[serde(flatten)]
    pub certificate: CertificateView,
}

/// Where a certificate came from and when it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateView {
    /// Where the key pair came from, e.g. `Secret shop/shop-tls`.
    pub source: String,
    /// When the leaf certificate expires, RFC 3339 in UTC.
    pub not_after: Option<String>,
    /// The same moment in seconds since the Unix epoch.
    pub not_after_unix: Option<i64>,
}

impl RoutesView {
    /// The view as indented JSON, ending with a newline.
    pub fn to_pretty_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|error| {
            // Serializing these plain structs cannot fail; report rather than panic regardless.
            serde_json::json!({ "error": error.to_string() }).to_string()
        });
        text.push('\n');
        text
    }
}

/// What `plane` serves now: its live routing table, its passthrough hosts, its backends'
/// endpoints with their health, and its live certificate table.
pub fn routes_view(plane: &DataPlane) -> RoutesView {
    let table = plane.table();
    let mut upstreams: BTreeMap<BackendId, Arc<Upstream>> = BTreeMap::new();
    let mut route_view = |target: &Arc<RouteTarget>| {
        upstreams
            .entry(target.route.backend.clone())
            .or_insert_with(|| target.upstream.clone());
        if let Some(canary) = &target.canary {
            upstreams
                .entry(BackendId::clone(canary.upstream.id()))
                .or_insert_with(|| canary.upstream.clone());
        }
        let route = &target.route;
        RouteView {
            backend: backend_ref(&route.backend),
            ingress: route.ingress.to_string(),
            tls: route.tls,
            https_redirect: route.https_redirect,
            rewrite_target: route.policy.rewrite.as_ref().map(ToString::to_string),
            canary: route
                .canary
                .as_ref()
                .map(|canary| backend_ref(&canary.backend)),
        }
    };
    let hosts = table
        .virtual_hosts()
        .into_iter()
        .map(|vhost| HostView {
            host: vhost.host().to_string(),
            paths: vhost
                .rules()
                .iter()
                .map(|rule| PathView {
                    path: rule.path.as_str().to_owned(),
                    path_type: match rule.path {
                        PathMatch::Exact(_) => "Exact",
                        PathMatch::Prefix(_) => "Prefix",
                        PathMatch::Regex(_) => "Regex",
                    },
                    route: route_view(&rule.target),
                })
                .collect(),
        })
        .collect();
    let default_backend = table.default_backend().map(&mut route_view);
    let passthrough = plane
        .passthrough()
        .targets()
        .into_iter()
        .map(|(host, target)| {
            let backend = &target.passthrough.backend;
            upstreams
                .entry(backend.clone())
                .or_insert_with(|| target.upstream.clone());
            PassthroughView {
                host: host.to_string(),
                backend: backend_ref(backend),
                ingress: target.passthrough.ingress.to_string(),
            }
        })
        .collect();
    let backends = upstreams
        .iter()
        .map(|(id, upstream)| BackendView {
            backend: backend_ref(id),
            endpoints: upstream
                .endpoint_health()
                .into_iter()
                .map(|health| EndpointView {
                    address: health.endpoint.to_string(),
                    state: if health.ejected {
                        EndpointState::Ejected
                    } else {
                        EndpointState::Ready
                    },
                    consecutive_failures: health.consecutive_failures,
                })
                .collect(),
        })
        .collect();
    let tls = plane.tls();
    RoutesView {
        hosts,
        default_backend,
        passthrough,
        backends,
        tls: TlsView {
            hosts: tls
                .by_host
                .iter()
                .into_iter()
                .map(|(host, certificate)| TlsHostView {
                    host: host.to_string(),
                    certificate: certificate_view(certificate),
                })
                .collect(),
            default_certificate: tls.default.as_deref().map(certificate_view),
        },
    }
}

fn backend_ref(id: &BackendId) -> BackendRef {
    BackendRef {
        name: id.to_string(),
        namespace: id.namespace.to_string(),
        service: id.service.to_string(),
        port: match &id.port {
            ServicePortRef::Number(number) => PortView::Number(*number),
            ServicePortRef::Name(name) => PortView::Name(name.clone()),
        },
    }
}

fn certificate_view(certificate: &Certificate) -> CertificateView {
    CertificateView {
        source: certificate.source().to_owned(),
        not_after: certificate.not_after().map(rfc3339),
        not_after_unix: certificate.not_after(),
    }
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
fn rfc3339(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use vestibule_routing::{
        Endpoint, HostMatch, IngressRef, Passthrough, PassthroughTable, PathMatch, Route,
        RouteTable, RouteTableBuilder,
    };
    use vestibule_tls::TlsTable;

    use super::*;

    fn backend(service: &str, port: ServicePortRef) -> BackendId {
        BackendId {
            namespace: "shop".into(),
            service: service.into(),
            port,
        }
    }

    fn ingress(name: &str) -> IngressRef {
        IngressRef {
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn route(backend: BackendId, ingress_name: &str, tls: bool) -> Arc<Route> {
        Arc::new(Route {
            backend,
            ingress: ingress(ingress_name),
            tls,
            https_redirect: tls,
            policy: Default::default(),
            canary: None,
        })
    }

    fn table() -> RouteTable<Arc<Route>> {
        let web = backend("web", ServicePortRef::Number(80));
        let api = backend("api", ServicePortRef::Name("http".into()));
        let mut builder = RouteTableBuilder::default();
        let shop = HostMatch::parse("shop.example").expect("valid host");
        builder
            .add_rule(
                shop.clone(),
                PathMatch::prefix("/"),
                route(web.clone(), "web", true),
            )
            .expect("no conflict");
        builder
            .add_rule(
                shop,
                PathMatch::prefix("/api/"),
                route(api.clone(), "api", true),
            )
            .expect("no conflict");
        builder
            .add_rule(
                HostMatch::Any,
                PathMatch::exact("/status"),
                route(api, "api", false),
            )
            .expect("no conflict");
        builder
            .set_default_backend(route(web, "web", false))
            .expect("first default");
        builder.build()
    }

    fn endpoints() -> vestibule_routing::Backends {
        let socket = |text: &str| Endpoint::Socket(text.parse().expect("socket address"));
        Arc::new(BTreeMap::from([
            (
                backend("web", ServicePortRef::Number(80)),
                Arc::from([socket("10.0.0.1:8080"), socket("10.0.0.2:8080")]),
            ),
            (
                backend("api", ServicePortRef::Name("http".into())),
                Arc::default(),
            ),
        ]))
    }

    fn tls_table() -> TlsTable {
        let certificate =
            Certificate::self_signed(&["shop.example"]).expect("certificate generated");
        let not_after = certificate.not_after().expect("expiry");
        let mut tls = TlsTable::default();
        let certificate = Arc::new(certificate);
        tls.by_host.insert(
            HostMatch::parse("shop.example").expect("valid host"),
            certificate.clone(),
        );
        tls.by_host.insert(
            HostMatch::parse("*.shop.example").expect("valid host"),
            certificate,
        );
        assert!(not_after > 0);
        tls
    }

    #[test]
    fn the_view_shows_routes_backends_and_certificates() {
        let plane = DataPlane::default();
        let tls = tls_table();
        plane.apply(&Arc::new(table()), &endpoints(), &tls);
        let not_after = tls.by_host.iter()[0].1.not_after().expect("expiry");

        let view = serde_json::to_value(routes_view(&plane)).expect("serializes");
        let web = json!({
            "name": "shop/web:80", "namespace": "shop", "service": "web", "port": 80
        });
        let api = json!({
            "name": "shop/api:http", "namespace": "shop", "service": "api", "port": "http"
        });
        let certificate = json!({
            "source": "self-signed default",
            "not_after": rfc3339(not_after),
            "not_after_unix": not_after,
        });
        let expected = json!({
            "hosts": [
                {
                    "host": "shop.example",
                    "paths": [
                        {
                            "path": "/api", "path_type": "Prefix", "backend": api,
                            "ingress": "shop/api", "tls": true, "https_redirect": true
                        },
                        {
                            "path": "/", "path_type": "Prefix", "backend": web,
                            "ingress": "shop/web", "tls": true, "https_redirect": true
                        }
                    ]
                },
                {
                    "host": "*",
                    "paths": [
                        {
                            "path": "/status", "path_type": "Exact", "backend": api,
                            "ingress": "shop/api", "tls": false, "https_redirect": false
                        }
                    ]
                }
            ],
            "default_backend": {
                "backend": web, "ingress": "shop/web", "tls": false, "https_redirect": false
            },
            "passthrough": [],
            "backends": [
                {
                    "name": "shop/api:http", "namespace": "shop", "service": "api",
                    "port": "http", "endpoints": []
                },
                {
                    "name": "shop/web:80", "namespace": "shop", "service": "web", "port": 80,
                    "endpoints": [
                        {"address": "10.0.0.1:8080", "state": "ready", "consecutive_failures": 0},
                        {"address": "10.0.0.2:8080", "state": "ready", "consecutive_failures": 0}
                    ]
                }
            ],
            "tls": {
                "hosts": [
                    {"host": "shop.example", "source": certificate["source"],
                     "not_after": certificate["not_after"],
                     "not_after_unix": certificate["not_after_unix"]},
                    {"host": "*.shop.example", "source": certificate["source"],
                     "not_after": certificate["not_after"],
                     "not_after_unix": certificate["not_after_unix"]}
                ],
                "default_certificate": null
            }
        });
        assert_eq!(view, expected, "{view:#}");
    }

    #[test]
    fn endpoint_health_and_the_default_certificate_are_shown() {
        let plane = DataPlane::default();
        let tls = TlsTable {
            default: Some(Arc::new(
                Certificate::self_signed(&["fallback.example"]).expect("certificate generated"),
            )),
            ..TlsTable::default()
        };
        plane.apply(&Arc::new(table()), &endpoints(), &tls);
        let upstream = plane
            .table()
            .route("shop.example", "/")
            .map(|selected| selected.target().upstream.clone())
            .expect("a route");
        let pick = upstream.pick().expect("an endpoint");
        let failed = pick.authority().to_string();
        for _ in 0..3 {
            pick.failed();
        }

        let view = routes_view(&plane);
        let web = view
            .backends
            .iter()
            .find(|backend| backend.backend.service == "web")
            .expect("web backend");
        let ejected: Vec<_> = web
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.state == EndpointState::Ejected)
            .collect();
        assert_eq!(ejected.len(), 1);
        assert_eq!(ejected[0].address, failed);
        assert_eq!(ejected[0].consecutive_failures, 3);
        let default = view.tls.default_certificate.expect("a default certificate");
        assert_eq!(default.source, "self-signed default");
        assert!(default.not_after.is_some_and(|when| when.ends_with('Z')));
        assert!(view.tls.hosts.is_empty());

        let json: serde_json::Value =
            serde_json::from_str(&routes_view(&plane).to_pretty_json()).expect("valid JSON");
        assert_eq!(
            json["backends"][1]["endpoints"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn passthrough_hosts_and_their_backends_are_shown() {
        let plane = DataPlane::default();
        let pass = backend("pass", ServicePortRef::Number(443));
        let mut backends = BTreeMap::clone(&endpoints());
        let relay = Endpoint::Socket("10.0.0.9:8443".parse().expect("socket address"));
        backends.insert(pass.clone(), Arc::from([relay]));
        plane.apply(
            &Arc::new(table()),
            &Arc::new(backends),
            &TlsTable::default(),
        );
        let mut passthrough = PassthroughTable::default();
        passthrough.insert(
            HostMatch::parse("*.pass.example").expect("valid host"),
            Passthrough {
                backend: backend("web", ServicePortRef::Number(80)),
                ingress: ingress("web"),
            },
        );
        passthrough.insert(
            HostMatch::parse("pass.example").expect("valid host"),
            Passthrough {
                backend: pass,
                ingress: ingress("pass"),
            },
        );
        assert!(plane.apply_passthrough(&passthrough));

        let view = serde_json::to_value(routes_view(&plane)).expect("serializes");
        assert_eq!(
            view["passthrough"],
            json!([
                {
                    "host": "pass.example",
                    "backend": {
                        "name": "shop/pass:443", "namespace": "shop", "service": "pass",
                        "port": 443
                    },
                    "ingress": "shop/pass"
                },
                {
                    "host": "*.pass.example",
                    "backend": {
                        "name": "shop/web:80", "namespace": "shop", "service": "web", "port": 80
                    },
                    "ingress": "shop/web"
                }
            ]),
            "{view:#}"
        );
        assert_eq!(
            view["backends"][1],
            json!({
                "name": "shop/pass:443", "namespace": "shop", "service": "pass", "port": 443,
                "endpoints": [
                    {"address": "10.0.0.9:8443", "state": "ready", "consecutive_failures": 0}
                ]
            }),
            "a backend only passthrough hosts lead to is listed with its endpoints: {view:#}"
        );
        let names: Vec<&str> = view["backends"]
            .as_array()
            .expect("backends")
            .iter()
            .filter_map(|backend| backend["name"].as_str())
            .collect();
        assert_eq!(names, ["shop/api:http", "shop/pass:443", "shop/web:80"]);
    }

    #[test]
    fn an_empty_plane_has_an_empty_view() {
        let view = serde_json::to_value(routes_view(&DataPlane::default())).expect("serializes");
        assert_eq!(
            view,
            json!({
                "hosts": [],
                "default_backend": null,
                "passthrough": [],
                "backends": [],
                "tls": {"hosts": [], "default_certificate": null}
            })
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_609_459_199), "2020-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
