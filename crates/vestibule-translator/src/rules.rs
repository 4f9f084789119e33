//! Ingress rules into virtual hosts, one host at a time, and default backends.

use std::fmt;
use std::sync::Arc;

use foldhash::HashSet;
use vestibule_resources::{IngressBackendSummary, IngressSummary};
use vestibule_routing::{
    BackendId, CanaryRule, HostMatch, IngressRef, PathMatch, Route, RouteTableBuilder,
    ServicePortRef, VirtualHost,
};

use crate::Options;
use crate::canary;
use crate::plan::IngressPlan;
use crate::regex_paths::rule_policy;
use crate::tls::Tls;
use crate::warning::{Warning, WarningReason};

/// The namespace and name of an Ingress.
pub(crate) fn ingress_ref(ingress: &IngressSummary) -> IngressRef {
    IngressRef {
        namespace: ingress.namespace.as_ref().into(),
        name: ingress.name.as_ref().into(),
    }
}

/// What every virtual host is built against.
pub(crate) struct Context<'a> {
    /// The TLS hosts and certificates.
    pub tls: &'a Tls,
    /// The translation options.
    pub options: &'a Options,
    /// The hosts whose non-`Exact` paths are regular expressions.
    pub regex_hosts: &'a HashSet<HostMatch>,
}

/// What building one virtual host produced.
#[derive(Debug, Default)]
pub(crate) struct HostOutcome {
    /// The virtual host; `None` when no rule for the host was kept.
    pub vhost: Option<Arc<VirtualHost<Arc<Route>>>>,
    /// What was wrong with the rules for the host, in the order found.
    pub warnings: Vec<Warning>,
}

/// Builds the virtual host for `host` from the plans of the Ingresses with rules for it, oldest
/// first: the first main Ingress to claim a path and path type keeps it, then each canary
/// Ingress attaches to the routes it shares.
pub(crate) fn build_host(
    host: &HostMatch,
    plans: &[&IngressPlan],
    context: &Context<'_>,
) -> HostOutcome {
    let mut builder = RouteTableBuilder::default();
    let mut outcome = HostOutcome::default();
    for plan in plans.iter().filter(|plan| plan.settings.canary.is_none()) {
        IngressRules::new(plan, context, &mut outcome.warnings).add_on(host, &mut builder);
    }
    for (plan, rule) in canaries(plans.iter().copied()) {
        let mut own = RouteTableBuilder::default();
        IngressRules::new(plan, context, &mut outcome.warnings).add_on(host, &mut own);
        if let Some(own) = own.take_virtual_host(host) {
            canary::attach_rules(plan, rule, &own, &mut builder, &mut outcome.warnings);
        }
    }
    outcome.vhost = builder.take_virtual_host(host).map(Arc::new);
    outcome
}

/// The table's default backend: the oldest main Ingress's, with the oldest canary's attached.
pub(crate) fn default_backend(
    plans: &[Arc<IngressPlan>],
    context: &Context<'_>,
    warnings: &mut Vec<Warning>,
) -> Option<Arc<Route>> {
    let backend_of = |plan: &IngressPlan| plan.ingress.spec.as_ref()?.default_backend.clone();
    let mut chosen: Option<Arc<Route>> = None;
    let mains = plans
        .iter()
        .filter(|plan| plan.settings.canary.is_none())
        .filter_map(|plan| Some((plan.as_ref(), backend_of(plan)?)));
    for (plan, backend) in mains {
        let mut rules = IngressRules::new(plan, context, warnings);
        let Some(route) = rules.route_to(&backend, &HostMatch::Any, &"the default backend") else {
            continue;
        };
        match &chosen {
            None => chosen = Some(Arc::new(route)),
            Some(kept) => {
                let message = format!(
                    "the default backend is already set by the older Ingress {}; this one is ignored",
                    kept.ingress
                );
                rules.warn(WarningReason::Conflict, message);
            }
        }
    }
    for (plan, rule) in canaries(plans.iter().map(AsRef::as_ref)) {
        let Some(backend) = backend_of(plan) else {
            continue;
        };
        let own = IngressRules::new(plan, context, warnings).route_to(
            &backend,
            &HostMatch::Any,
            &"the default backend",
        );
        if let Some(own) = own {
            canary::attach_default(plan, rule, &own, chosen.as_mut(), warnings);
        }
    }
    chosen
}

/// The canary Ingresses among `plans`, with their rules.
fn canaries<'a>(
    plans: impl Iterator<Item = &'a IngressPlan>,
) -> impl Iterator<Item = (&'a IngressPlan, &'a CanaryRule)> {
    plans.filter_map(|plan| Some((plan, plan.settings.canary.as_deref()?)))
}

/// Adds one Ingress's rules for one host to a builder.
struct IngressRules<'a> {
    plan: &'a IngressPlan,
    context: &'a Context<'a>,
    warnings: &'a mut Vec<Warning>,
    /// The route of the path added last, which the next path shares when it can.
    last_route: Option<Arc<Route>>,
}

impl<'a> IngressRules<'a> {
    fn new(
        plan: &'a IngressPlan,
        context: &'a Context<'a>,
        warnings: &'a mut Vec<Warning>,
    ) -> Self {
        Self {
            plan,
            context,
            warnings,
            last_route: None,
        }
    }

    fn warn(&mut self, reason: WarningReason, message: String) {
        self.warnings
            .push(Warning::on_ingress(&self.plan.reference, reason, message));
    }

    /// Adds the paths of the rules for `host`, and of the rules whose aliases include it. A
    /// path's own problems are reported with the rule's host, not with its aliases.
    fn add_on(&mut self, host: &HostMatch, builder: &mut RouteTableBuilder<Arc<Route>>) {
        let plan = self.plan;
        let spec = plan.ingress.spec.as_ref();
        for rule in spec.map(|spec| &spec.rules[..]).unwrap_or_default() {
            let Ok(rule_host) = HostMatch::parse(rule.host.as_deref().unwrap_or_default()) else {
                continue;
            };
            let on_rule_host = rule_host == *host;
            let as_alias = if rule_host == HostMatch::Any {
                0
            } else {
                plan.settings
                    .aliases
                    .iter()
                    .filter(|alias| *alias == host)
                    .count()
            };
            if !on_rule_host && as_alias == 0 {
                continue;
            }
            for http_path in &rule.paths {
                let path_text = http_path.path.as_deref().unwrap_or("/");
                let path_type = &http_path.path_type;
                let Some(path) = self.path_match(path_text, path_type, &rule_host, on_rule_host)
                else {
                    continue;
                };
                let times = usize::from(on_rule_host) + as_alias;
                for _ in 0..times {
                    self.add_path(host, &path, &http_path.backend, builder);
                }
            }
        }
    }

    fn add_path(
        &mut self,
        host: &HostMatch,
        path: &PathMatch,
        backend: &IngressBackendSummary,
        builder: &mut RouteTableBuilder<Arc<Route>>,
    ) {
        let place = RulePlace { host, path };
        let Some(mut route) = self.route_to(backend, host, &place) else {
            return;
        };
        route.policy = rule_policy(&route.policy, path);
        // An Ingress's paths mostly lead to one backend with one policy: they share the route.
        let route = match &self.last_route {
            Some(last) if **last == route => Arc::clone(last),
            _ => Arc::new(route),
        };
        self.last_route = Some(Arc::clone(&route));
        if let Err(kept) = builder.add_rule(host.clone(), path.clone(), route) {
            let message = format!(
                "{place} is already served by the older Ingress {}; this rule is ignored",
                kept.ingress
            );
            self.warn(WarningReason::Conflict, message);
        }
    }

    /// The path a rule for `host` matches; what is wrong with it is reported when `report`.
    fn path_match(
        &mut self,
        path: &str,
        path_type: &str,
        host: &HostMatch,
        report: bool,
    ) -> Option<PathMatch> {
        let problem = match path_type {
            _ if !path.starts_with('/') => {
                format!("path {path:?} must begin with '/'; path ignored")
            }
            "Exact" => return Some(PathMatch::exact(path)),
            "Prefix" | "ImplementationSpecific" | "" if self.context.regex_hosts.contains(host) => {
                match PathMatch::regex(path) {
                    Ok(regex) => return Some(regex),
                    Err(error) => format!("{error}; path ignored"),
                }
            }
            "Prefix" | "ImplementationSpecific" | "" => return Some(PathMatch::prefix(path)),
            other => format!(
                "path {path:?} has pathType {other:?}; expected Exact, Prefix or ImplementationSpecific; path ignored"
            ),
        };
        if report {
            self.warn(WarningReason::InvalidRule, problem);
        }
        None
    }

    fn route_to(
        &mut self,
        backend: &IngressBackendSummary,
        host: &HostMatch,
        place: &dyn fmt::Display,
    ) -> Option<Route> {
        let Some(service) = &backend.service else {
            let message = match &backend.resource_kind {
                Some(kind) => format!(
                    "{place} refers to a {kind} resource; only Service backends are supported"
                ),
                None => format!("{place} names no backend service"),
            };
            self.warn(WarningReason::UnsupportedBackend, message);
            return None;
        };
        let port = match (service.port_number, service.port_name.as_deref()) {
            (Some(number), _) => u16::try_from(number).ok().map(ServicePortRef::Number),
            (None, Some(name)) if !name.is_empty() => Some(ServicePortRef::Name(name.to_owned())),
            _ => None,
        };
        let Some(port) = port else {
            let message = format!(
                "{place} refers to Service {} without a valid port number or name",
                service.name
            );
            self.warn(WarningReason::UnsupportedBackend, message);
            return None;
        };
        let id = match &self.last_route {
            Some(last) if *last.backend.service == *service.name && last.backend.port == port => {
                last.backend.clone()
            }
            _ => BackendId {
                namespace: self.plan.reference.namespace.clone(),
                service: service.name.as_ref().into(),
                port,
            },
        };
        let settings = &self.plan.settings;
        let tls = self.context.tls.covers(host);
        let ssl_redirect = settings
            .ssl_redirect
            .unwrap_or(self.context.options.ssl_redirect);
        Some(Route {
            backend: id,
            ingress: self.plan.reference.clone(),
            tls,
            https_redirect: (tls && ssl_redirect) || settings.force_ssl_redirect,
            policy: settings.policy.clone(),
            canary: None,
        })
    }
}

/// Where a rule sits, for warnings about it; formatted only when one is given.
struct RulePlace<'a> {
    host: &'a HostMatch,
    path: &'a PathMatch,
}

impl fmt::Display for RulePlace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host {} path {}", self.host, self.path)
    }
}
