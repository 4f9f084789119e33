//! Ingress rules and default backends into a routing table.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use vestibule_routing::{
    BackendId, HostMatch, IngressRef, PassthroughTable, PathMatch, Route, RouteTable,
    RouteTableBuilder, ServicePortRef,
};

use vestibule_resources::Snapshot;

use crate::Options;
use crate::annotations::{IngressSettings, settings_of};
use crate::canary;
use crate::passthrough;
use crate::regex_paths::{regex_hosts, rule_policy};
use crate::tls::Tls;
use crate::warning::{Warning, WarningReason};

/// The Ingresses that refer to each backend, in order of first reference.
pub(crate) type References = BTreeMap<BackendId, Vec<IngressRef>>;

/// The namespace and name of an Ingress.
pub(crate) fn ingress_ref(ingress: &Ingress) -> IngressRef {
    IngressRef {
        namespace: ingress.metadata.namespace.clone().unwrap_or_default(),
        name: ingress.metadata.name.clone().unwrap_or_default(),
    }
}

/// Adds the rules of `ingresses`, in the order given, to a new table; the first Ingress to
/// claim a host, path and path type keeps it. Also returns the hosts passed through.
pub(crate) fn build_table(
    snapshot: &Snapshot,
    ingresses: &[Arc<Ingress>],
    tls: &Tls,
    options: &Options,
    warnings: &mut Vec<Warning>,
) -> (RouteTable<Route>, References, PassthroughTable) {
    let mut builder = RouteTableBuilder::default();
    let mut references = References::new();
    let read: Vec<(IngressSettings, Vec<Warning>)> = ingresses
        .iter()
        .map(|ingress| {
            let mut found = Vec::new();
            (settings_of(ingress, snapshot, &mut found), found)
        })
        .collect();
    let regex_hosts = regex_hosts(
        ingresses
            .iter()
            .map(AsRef::as_ref)
            .zip(read.iter().map(|(settings, _)| settings)),
    );
    let context = Context {
        tls,
        options,
        regex_hosts: &regex_hosts,
    };
    let mut canaries = Vec::new();
    let mut passthrough = passthrough::Requests::default();
    for (ingress, (settings, mut found)) in ingresses.iter().zip(read) {
        warnings.append(&mut found);
        if let Some(rule) = settings.canary.clone() {
            canaries.push((ingress.clone(), rule));
            continue;
        }
        if settings.ssl_passthrough {
            passthrough.ask(ingress);
        }
        add_ingress(
            ingress,
            settings,
            &mut builder,
            &mut references,
            &context,
            warnings,
        );
    }
    canary::attach(&canaries, &mut builder, &mut references, &context, warnings);
    let table = builder.build();
    let passthrough = passthrough.resolve(&table, options.ssl_passthrough, warnings);
    (table, references, passthrough)
}

/// Adds the rules and default backend of one Ingress to `builder`, recording the backends they
/// refer to in `references`.
pub(crate) fn add_ingress(
    ingress: &Ingress,
    settings: IngressSettings,
    builder: &mut RouteTableBuilder<Route>,
    references: &mut References,
    context: &Context<'_>,
    warnings: &mut Vec<Warning>,
) {
    let mut adder = IngressRules {
        ingress: ingress_ref(ingress),
        settings,
        builder,
        references,
        warnings,
        tls: context.tls,
        options: context.options,
        regex_hosts: context.regex_hosts,
    };
    adder.add(ingress);
}

/// What every Ingress's rules are added with.
pub(crate) struct Context<'a> {
    /// The TLS hosts and certificates.
    pub tls: &'a Tls,
    /// The translation options.
    pub options: &'a Options,
    /// The hosts whose non-`Exact` paths are regular expressions.
    pub regex_hosts: &'a HashSet<HostMatch>,
}

struct IngressRules<'a> {
    ingress: IngressRef,
    settings: IngressSettings,
    builder: &'a mut RouteTableBuilder<Route>,
    references: &'a mut References,
    warnings: &'a mut Vec<Warning>,
    tls: &'a Tls,
    options: &'a Options,
    /// The hosts whose non-`Exact` paths are regular expressions.
    regex_hosts: &'a HashSet<HostMatch>,
}

impl IngressRules<'_> {
    fn warn(&mut self, reason: WarningReason, message: String) {
        self.warnings
            .push(Warning::on_ingress(&self.ingress, reason, message));
    }

    fn add(&mut self, ingress: &Ingress) {
        let Some(spec) = &ingress.spec else {
            return self.warn(
                WarningReason::NothingToRoute,
                "has no spec, so it routes nothing".to_owned(),
            );
        };
        let rules = spec.rules.as_deref().unwrap_or_default();
        if rules.is_empty() && spec.default_backend.is_none() {
            self.warn(
                WarningReason::NothingToRoute,
                "has neither rules nor a default backend, so it routes nothing".to_owned(),
            );
        }
        if let Some(backend) = &spec.default_backend
            && let Some(route) = self.route_to(backend, &HostMatch::Any, &"the default backend")
        {
            let backend = route.backend.clone();
            match self.builder.set_default_backend(route) {
                Ok(()) => self.reference(backend),
                Err(kept) => {
                    let message = format!(
                        "the default backend is already set by the older Ingress {}; this one is ignored",
                        kept.ingress
                    );
                    self.warn(WarningReason::Conflict, message);
                }
            }
        }
        for rule in rules {
            let host_text = rule.host.as_deref().unwrap_or_default();
            let host = match HostMatch::parse(host_text) {
                Ok(host) => host,
                Err(error) => {
                    self.warn(WarningReason::InvalidRule, format!("{error}; rule ignored"));
                    continue;
                }
            };
            let paths = rule.http.as_ref().map(|http| http.paths.as_slice());
            for http_path in paths.unwrap_or_default() {
                let path_text = http_path.path.as_deref().unwrap_or("/");
                let Some(path) = self.path_match(path_text, &http_path.path_type, &host) else {
                    continue;
                };
                self.add_path(&host, &path, &http_path.backend);
                if host != HostMatch::Any {
                    for alias in self.settings.aliases.clone() {
                        self.add_path(&alias, &path, &http_path.backend);
                    }
                }
            }
        }
    }

    fn add_path(&mut self, host: &HostMatch, path: &PathMatch, backend: &IngressBackend) {
        let place = RulePlace { host, path };
        let Some(mut route) = self.route_to(backend, host, &place) else {
            return;
        };
        route.policy = rule_policy(&route.policy, path);
        let backend = route.backend.clone();
        match self.builder.add_rule(host.clone(), path.clone(), route) {
            Ok(()) => self.reference(backend),
            Err(kept) => {
                let message = format!(
                    "{place} is already served by the older Ingress {}; this rule is ignored",
                    kept.ingress
                );
                self.warn(WarningReason::Conflict, message);
            }
        }
    }

    fn path_match(&mut self, path: &str, path_type: &str, host: &HostMatch) -> Option<PathMatch> {
        if !path.starts_with('/') {
            let message = format!("path {path:?} must begin with '/'; path ignored");
            self.warn(WarningReason::InvalidRule, message);
            return None;
        }
        match path_type {
            "Exact" => Some(PathMatch::exact(path)),
            "Prefix" | "ImplementationSpecific" | "" if self.regex_hosts.contains(host) => {
                match PathMatch::regex(path) {
                    Ok(regex) => Some(regex),
                    Err(error) => {
                        self.warn(WarningReason::InvalidRule, format!("{error}; path ignored"));
                        None
                    }
                }
            }
            "Prefix" | "ImplementationSpecific" | "" => Some(PathMatch::prefix(path)),
            other => {
                let message = format!(
                    "path {path:?} has pathType {other:?}; expected Exact, Prefix or ImplementationSpecific; path ignored"
                );
                self.warn(WarningReason::InvalidRule, message);
                None
            }
        }
    }

    /// Records that a rule kept in the table leads to `backend`.
    fn reference(&mut self, backend: BackendId) {
        let referrers = self.references.entry(backend).or_default();
        if !referrers.contains(&self.ingress) {
            referrers.push(self.ingress.clone());
        }
    }

    fn route_to(
        &mut self,
        backend: &IngressBackend,
        host: &HostMatch,
        place: &dyn fmt::Display,
    ) -> Option<Route> {
        let Some(service) = &backend.service else {
            let message = match &backend.resource {
                Some(resource) => format!(
                    "{place} refers to a {} resource; only Service backends are supported",
                    resource.kind
                ),
                None => format!("{place} names no backend service"),
            };
            self.warn(WarningReason::UnsupportedBackend, message);
            return None;
        };
        let port =
            service
                .port
                .as_ref()
                .and_then(|port| match (port.number, port.name.as_deref()) {
                    (Some(number), _) => u16::try_from(number).ok().map(ServicePortRef::Number),
                    (None, Some(name)) if !name.is_empty() => {
                        Some(ServicePortRef::Name(name.to_owned()))
                    }
                    _ => None,
                });
        let Some(port) = port else {
            let message = format!(
                "{place} refers to Service {} without a valid port number or name",
                service.name
            );
            self.warn(WarningReason::UnsupportedBackend, message);
            return None;
        };
        let id = BackendId {
            namespace: self.ingress.namespace.clone(),
            service: service.name.clone(),
            port,
        };
        let tls = self.tls.covers(host);
        let ssl_redirect = self
            .settings
            .ssl_redirect
            .unwrap_or(self.options.ssl_redirect);
        Some(Route {
            backend: id,
            ingress: self.ingress.clone(),
            tls,
            https_redirect: (tls && ssl_redirect) || self.settings.force_ssl_redirect,
            policy: self.settings.policy.clone(),
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
