//! `ssl-passthrough`: hosts whose TLS connections go unterminated to the backend of their `/`
//! rule.
//!
//! As in ingress-nginx, a host is passed through when any Ingress with a rule for it asks for
//! it, and its connections go to the backend of the host's `/` rule in the table, whichever
//! Ingress that rule belongs to. The host's other rules are then reachable over plain HTTP only,
//! which is reported. Server aliases are not passed through, and neither are rules without a
//! host, since connections are told apart by the server name of their ClientHello. Without
//! `--enable-ssl-passthrough` the annotation is ignored with a warning.

use std::collections::BTreeMap;
use std::sync::Arc;

use vestibule_resources::IngressSummary;
use vestibule_routing::{
    HostMatch, IngressRef, Passthrough, PassthroughTable, PathRule, Route, RouteTable, VirtualHost,
};

use crate::rules::ingress_ref;
use crate::warning::{Warning, WarningReason};

/// The Ingresses that ask for passthrough, oldest first, with the hosts of their rules.
#[derive(Default)]
pub(crate) struct Requests {
    asked: Vec<(IngressRef, Vec<HostMatch>)>,
}

impl Requests {
    /// Records that `ingress` asks for its hosts to be passed through.
    pub(crate) fn ask(&mut self, ingress: &IngressSummary) {
        let rules = ingress.spec.as_ref().map(|spec| &spec.rules[..]);
        let hosts = rules
            .unwrap_or_default()
            .iter()
            .filter_map(|rule| HostMatch::parse(rule.host.as_deref().unwrap_or_default()).ok())
            .collect();
        self.asked.push((ingress_ref(ingress), hosts));
    }

    /// The passthrough table for the finished routing `table`; empty when `enabled` is off.
    pub(crate) fn resolve(
        self,
        table: &RouteTable<Arc<Route>>,
        enabled: bool,
        warnings: &mut Vec<Warning>,
    ) -> PassthroughTable {
        let mut passthrough = PassthroughTable::default();
        for (ingress, hosts) in self.asked {
            let warn = |warnings: &mut Vec<Warning>, message: String| {
                let reason = WarningReason::UnsupportedAnnotation;
                warnings.push(Warning::on_ingress(&ingress, reason, message));
            };
            if !enabled {
                warn(
                    warnings,
                    "ssl-passthrough is ignored: Vestibule runs without --enable-ssl-passthrough, so it terminates TLS for this Ingress's hosts".to_owned(),
                );
                continue;
            }
            for host in hosts {
                if host == HostMatch::Any {
                    warn(
                        warnings,
                        "ssl-passthrough does not apply to rules without a host: passthrough connections are chosen by server name".to_owned(),
                    );
                    continue;
                }
                if passthrough.get_pattern(&host).is_some() {
                    continue;
                }
                let vhost = table.virtual_host_of(&host);
                let Some((vhost, root)) = vhost.and_then(|vhost| Some((vhost, root_rule(vhost)?)))
                else {
                    warn(
                        warnings,
                        format!("host {host} is not passed through: it has no rule for path /"),
                    );
                    continue;
                };
                report_shadowed(&ingress, vhost, root, warnings);
                passthrough.insert(
                    host,
                    Passthrough {
                        backend: root.target.backend.clone(),
                        ingress: root.target.ingress.clone(),
                    },
                );
            }
        }
        passthrough
    }
}

/// A virtual host's rule for `/` (the first in precedence order).
fn root_rule(vhost: &VirtualHost<Arc<Route>>) -> Option<&PathRule<Arc<Route>>> {
    vhost.rules().iter().find(|rule| rule.path.as_str() == "/")
}

/// Warns every Ingress whose routes on a passed-through host are no longer reachable over
/// HTTPS, and the owner of the `/` rule when another Ingress asked for passthrough.
fn report_shadowed(
    asker: &IngressRef,
    vhost: &VirtualHost<Arc<Route>>,
    root_rule: &PathRule<Arc<Route>>,
    warnings: &mut Vec<Warning>,
) {
    let root = &root_rule.target;
    let host = vhost.host();
    let service = &root.backend.service;
    if root.ingress != *asker {
        let message = format!(
            "host {host} is passed through because Ingress {asker} asks for ssl-passthrough: its TLS connections go unterminated to Service {service} of this Ingress's / rule"
        );
        warnings.push(Warning::on_ingress(
            &root.ingress,
            WarningReason::Conflict,
            message,
        ));
    }
    let mut others: BTreeMap<&IngressRef, Vec<&str>> = BTreeMap::new();
    for rule in vhost.rules() {
        if !std::ptr::eq(rule, root_rule) {
            others
                .entry(&rule.target.ingress)
                .or_default()
                .push(rule.path.as_str());
        }
    }
    for (ingress, paths) in others {
        let paths = match paths.as_slice() {
            [path] => format!("path {path} is"),
            _ => format!("paths {} are", paths.join(", ")),
        };
        let (reason, why) = if ingress == asker {
            (
                WarningReason::UnsupportedAnnotation,
                "ssl-passthrough sends every TLS connection for it".to_owned(),
            )
        } else {
            (
                WarningReason::Conflict,
                format!(
                    "Ingress {asker} asks for ssl-passthrough, which sends every TLS connection for it"
                ),
            )
        };
        let message = format!(
            "host {host} is passed through ({why} unterminated to Service {service} of its / rule): {paths} served over plain HTTP only"
        );
        warnings.push(Warning::on_ingress(ingress, reason, message));
    }
}
