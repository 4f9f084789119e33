//! Choosing between a route's main backend and its canary, per request, as ingress-nginx's
//! balancer does: the canary header, then the canary cookie, then a weighted random draw.

use std::sync::Arc;

use http::HeaderMap;
use http::header::COOKIE;
use vestibule_routing::{Canary, CanaryRule, HeaderMatch, Route};

use crate::metrics::RouteLabels;
use crate::plane::RouteTarget;
use crate::upstream::Upstream;

/// A route's canary as the data plane serves it.
#[derive(Debug)]
pub struct CanaryTarget {
    /// Which requests go to the canary.
    pub rule: CanaryRule,
    /// The live upstream of the canary backend.
    pub upstream: Arc<Upstream>,
    /// The metric labels of requests sent to the canary: its Ingress and Service.
    pub labels: Arc<RouteLabels>,
}

impl CanaryTarget {
    /// The live form of `canary`, sending to `upstream`.
    pub(crate) fn new(canary: &Canary, upstream: Arc<Upstream>) -> Self {
        Self {
            rule: canary.rule.clone(),
            upstream,
            labels: Arc::new(RouteLabels {
                namespace: canary.ingress.namespace.clone(),
                ingress: canary.ingress.name.clone(),
                service: canary.backend.service.clone(),
            }),
        }
    }
}

impl RouteTarget {
    /// The upstream a request with `headers` goes to, and the labels it is counted under.
    pub(crate) fn choose(&self, headers: &HeaderMap) -> (&Arc<Upstream>, &Arc<RouteLabels>) {
        match &self.canary {
            Some(canary) if to_canary(&canary.rule, headers, fastrand::u32) => {
                (&canary.upstream, &canary.labels)
            }
            _ => (&self.upstream, &self.labels),
        }
    }

    /// Whether requests to this target may go to `upstream`.
    pub(crate) fn leads_to(&self, upstream: &Arc<Upstream>) -> bool {
        Arc::ptr_eq(&self.upstream, upstream)
            || self
                .canary
                .as_ref()
                .is_some_and(|canary| Arc::ptr_eq(&canary.upstream, upstream))
    }
}

/// The canary of `route` with the upstream `upstream_of` finds for its backend.
pub(crate) fn live_canary(
    route: &Route,
    upstream_of: impl FnOnce(&vestibule_routing::BackendId) -> Arc<Upstream>,
) -> Option<CanaryTarget> {
    let canary = route.canary.as_ref()?;
    Some(CanaryTarget::new(canary, upstream_of(&canary.backend)))
}

/// Whether a request with `headers` goes to the canary. `draw` returns a uniformly random
/// number in the range it is given; it is called only when the weight decides.
pub(crate) fn to_canary(
    rule: &CanaryRule,
    headers: &HeaderMap,
    draw: impl FnOnce(std::ops::RangeInclusive<u32>) -> u32,
) -> bool {
    if let Some(header) = &rule.header
        && let Some(value) = header_value(headers, &header.name)
    {
        let decided = match &header.matches {
            HeaderMatch::AlwaysNever => match value.as_slice() {
                b"always" => Some(true),
                b"never" => Some(false),
                _ => None,
            },
            HeaderMatch::Value(expected) => (value == expected.as_bytes()).then_some(true),
            HeaderMatch::Pattern(pattern) => pattern.is_match(&value).then_some(true),
        };
        if let Some(decided) = decided {
            return decided;
        }
    }
    if let Some(name) = &rule.cookie {
        match cookie_value(headers, name) {
            Some(b"always") => return true,
            Some(b"never") => return false,
            _ => {}
        }
    }
    let weight = rule.weight;
    weight.weight > 0 && weight.selects(draw(1..=weight.total.max(1)))
}

/// The value of header `name`, its lines joined with `, ` when it has several, as nginx's
/// `$http_` variables read it.
fn header_value(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    let mut lines = headers.get_all(name).iter();
    let mut value = lines.next()?.as_bytes().to_vec();
    for line in lines {
        value.extend_from_slice(b", ");
        value.extend_from_slice(line.as_bytes());
    }
    Some(value)
}

/// The value of the first cookie named `name` (ignoring ASCII case, as nginx's `$cookie_`
/// variables do) in the request's `Cookie` headers.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|line| line.as_bytes().split(|byte| *byte == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let at = pair.iter().position(|byte| *byte == b'=')?;
            let (key, value) = (&pair[..at], &pair[at + 1..]);
            key.trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| value.trim_ascii())
        })
}

#[cfg(test)]
mod tests {
    use vestibule_routing::{HeaderPattern, HeaderRule, Weight};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    fn rule(matches: Option<HeaderMatch>, cookie: Option<&str>, weight: u32) -> CanaryRule {
        CanaryRule {
            header: matches.map(|matches| HeaderRule {
                name: "x-canary".into(),
                matches,
            }),
            cookie: cookie.map(str::to_owned),
            weight: Weight { weight, total: 100 },
        }
    }

    /// Whether the request goes to the canary when the draw, if made, would select it.
    fn decide(rule: &CanaryRule, pairs: &[(&'static str, &'static str)]) -> bool {
        to_canary(rule, &headers(pairs), |range| *range.start())
    }

    fn no_draw(_: std::ops::RangeInclusive<u32>) -> u32 {
        panic!("the weight should not have been consulted")
    }

    #[test]
    fn the_header_says_always_or_never() {
        let rule = rule(Some(HeaderMatch::AlwaysNever), None, 100);
        assert!(to_canary(
            &rule,
            &headers(&[("x-canary", "always")]),
            no_draw
        ));
        assert!(!to_canary(
            &rule,
            &headers(&[("X-Canary", "never")]),
            no_draw
        ));
        assert!(
            decide(&rule, &[("x-canary", "sometimes")]),
            "falls to the weight"
        );
        let light = CanaryRule {
            weight: Weight::default(),
            ..rule
        };
        assert!(!decide(&light, &[("x-canary", "Always")]));
        assert!(to_canary(
            &light,
            &headers(&[("x-canary", "always")]),
            no_draw
        ));
    }

    #[test]
    fn a_header_value_or_pattern_only_selects_the_canary() {
        let value = rule(Some(HeaderMatch::Value("v2".into())), None, 0);
        assert!(to_canary(&value, &headers(&[("x-canary", "v2")]), no_draw));
        assert!(!decide(&value, &[("x-canary", "always")]));
        assert!(!decide(&value, &[("x-canary", "v2x")]));
        let never_with_weight = rule(Some(HeaderMatch::Value("v2".into())), None, 100);
        assert!(
            decide(&never_with_weight, &[("x-canary", "never")]),
            "with a value set, never is just another value"
        );
        let pattern = HeaderPattern::new("^v[23]$").expect("valid");
        let pattern = rule(Some(HeaderMatch::Pattern(pattern)), None, 0);
        assert!(to_canary(
            &pattern,
            &headers(&[("x-canary", "v3")]),
            no_draw
        ));
        assert!(!decide(&pattern, &[("x-canary", "v4")]));
        assert!(!decide(&pattern, &[]));
    }

    #[test]
    fn the_cookie_says_always_or_never() {
        let rule = rule(None, Some("canary"), 100);
        let always = [("cookie", "a=1; Canary=always; b=2")];
        assert!(to_canary(&rule, &headers(&always), no_draw));
        let never = [("cookie", "a=1"), ("cookie", "canary=never")];
        assert!(!to_canary(&rule, &headers(&never), no_draw));
        assert!(decide(&rule, &[("cookie", "canary=maybe")]));
        assert!(decide(&rule, &[("cookie", "notcanary=never")]));
    }

    #[test]
    fn the_header_comes_before_the_cookie_before_the_weight() {
        let rule = rule(Some(HeaderMatch::AlwaysNever), Some("canary"), 100);
        let header_never = [("x-canary", "never"), ("cookie", "canary=always")];
        assert!(!to_canary(&rule, &headers(&header_never), no_draw));
        let header_always = [("x-canary", "always"), ("cookie", "canary=never")];
        assert!(to_canary(&rule, &headers(&header_always), no_draw));
        let cookie_never = [("x-canary", "other"), ("cookie", "canary=never")];
        assert!(!to_canary(&rule, &headers(&cookie_never), no_draw));
        assert!(decide(&rule, &[("x-canary", "other")]));
    }

    #[test]
    fn applied_routes_get_an_upstream_for_their_canary() {
        use std::collections::BTreeMap;
        use vestibule_routing::{
            BackendId, Endpoint, HostMatch, IngressRef, PathMatch, RouteTableBuilder,
            ServicePortRef,
        };
        let backend = |service: &str| BackendId {
            namespace: "default".into(),
            service: service.into(),
            port: ServicePortRef::Number(80),
        };
        let ingress = |name: &str| IngressRef {
            namespace: "default".into(),
            name: name.into(),
        };
        let route = Route {
            backend: backend("web"),
            ingress: ingress("main"),
            tls: false,
            https_redirect: false,
            policy: Default::default(),
            canary: Some(Box::new(Canary {
                backend: backend("web-v2"),
                ingress: ingress("canary"),
                rule: rule(Some(HeaderMatch::AlwaysNever), None, 0),
            })),
        };
        let mut builder = RouteTableBuilder::default();
        builder
            .add_rule(HostMatch::Any, PathMatch::prefix("/"), Arc::new(route))
            .expect("no conflict");
        let endpoints: BTreeMap<BackendId, Arc<[Endpoint]>> = [
            (backend("web"), "10.0.0.1:80"),
            (backend("web-v2"), "10.0.0.2:80"),
        ]
        .into_iter()
        .map(|(id, addr)| {
            (
                id,
                Arc::from([Endpoint::Socket(addr.parse().expect("address"))]),
            )
        })
        .collect();
        let plane = crate::DataPlane::default();
        plane.apply(
            &Arc::new(builder.build()),
            &Arc::new(endpoints),
            &Default::default(),
        );
        let table = plane.table();
        let target = table.route("h", "/").expect("route").target().clone();
        let (main, labels) = target.choose(&HeaderMap::new());
        assert_eq!(&*main.id().service, "web");
        assert_eq!(&*labels.ingress, "main");
        let (canary, labels) = target.choose(&headers(&[("x-canary", "always")]));
        assert_eq!(&*canary.id().service, "web-v2");
        assert_eq!((&*labels.ingress, &*labels.service), ("canary", "web-v2"));
        assert!(target.leads_to(canary) && target.leads_to(main));
        assert_eq!(plane.upstreams().len(), 2);
    }

    #[test]
    fn weights_of_zero_and_the_total_decide_every_request() {
        let none = rule(None, None, 0);
        assert!(!to_canary(&none, &HeaderMap::new(), no_draw));
        let all = CanaryRule {
            weight: Weight {
                weight: 1000,
                total: 1000,
            },
            ..none.clone()
        };
        for _ in 0..1000 {
            assert!(to_canary(&all, &HeaderMap::new(), fastrand::u32));
        }
        let half = rule(None, None, 50);
        assert!(to_canary(&half, &HeaderMap::new(), |_| 50));
        assert!(!to_canary(&half, &HeaderMap::new(), |_| 51));
        assert!(to_canary(&half, &HeaderMap::new(), |range| {
            assert_eq!(range, 1..=100);
            1
        }));
    }
}
