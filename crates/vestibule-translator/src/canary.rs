//! Canary Ingresses onto the routes they share with main Ingresses.
//!
//! This step runs after every main Ingress's rules are in the table. A canary Ingress never
//! claims a host and path of its own: each of its rules (host, path and path type, as
//! ingress-nginx matches them) attaches its backend as the canary of the main route with the
//! same key, and its default backend to the table's default backend. The route keeps the main
//! Ingress's settings. A rule with no main route is ignored, as in ingress-nginx; a route takes
//! one canary, the oldest canary Ingress's.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use vestibule_routing::{Canary, CanaryRule, IngressRef, Route, RouteTableBuilder};

use crate::annotations::IngressSettings;
use crate::rules::{Context, References, add_ingress, ingress_ref};
use crate::warning::{Warning, WarningReason};

/// Attaches each canary Ingress (oldest first) with its rule to the main routes in `builder`.
pub(crate) fn attach(
    canaries: &[(Arc<Ingress>, CanaryRule)],
    builder: &mut RouteTableBuilder<Route>,
    references: &mut References,
    context: &Context<'_>,
    warnings: &mut Vec<Warning>,
) {
    for (ingress, rule) in canaries {
        let mut own = RouteTableBuilder::default();
        let mut unused = References::new();
        let settings = IngressSettings::default();
        add_ingress(ingress, settings, &mut own, &mut unused, context, warnings);
        let own = own.build();
        let mut attacher = Attacher {
            ingress: ingress_ref(ingress),
            rule,
            references,
            warnings,
        };
        for vhost in own.virtual_hosts() {
            for path_rule in vhost.rules() {
                let place = format!("host {} path {}", vhost.host(), path_rule.path);
                let main = builder.rule_mut(vhost.host(), &path_rule.path);
                attacher.attach(main, &path_rule.target, &place);
            }
        }
        if let Some(route) = own.default_backend() {
            let main = builder.default_backend_mut();
            attacher.attach(main, route, "the default backend");
        }
    }
}

/// Attaches the routes of one canary Ingress.
struct Attacher<'a> {
    ingress: IngressRef,
    rule: &'a CanaryRule,
    references: &'a mut References,
    warnings: &'a mut Vec<Warning>,
}

impl Attacher<'_> {
    fn warn(&mut self, reason: WarningReason, message: String) {
        self.warnings
            .push(Warning::on_ingress(&self.ingress, reason, message));
    }

    /// Makes the backend of `canary` the canary of `main`, the main route with the same key.
    fn attach(&mut self, main: Option<&mut Route>, canary: &Route, place: &str) {
        let Some(main) = main else {
            let message = format!(
                "{place} is served by no main Ingress, so this canary rule is ignored (a canary only adds a backend to a main Ingress's rule)"
            );
            return self.warn(WarningReason::UnmatchedCanary, message);
        };
        if main.backend == canary.backend {
            let message = format!(
                "{place} of the main Ingress {} already goes to {}; this canary rule is ignored",
                main.ingress, canary.backend
            );
            return self.warn(WarningReason::Conflict, message);
        }
        if let Some(existing) = &main.canary {
            let message = format!(
                "{place} already has a canary, from the older Ingress {}; a rule takes one canary, so this one is ignored",
                existing.ingress
            );
            return self.warn(WarningReason::Conflict, message);
        }
        main.canary = Some(Canary {
            backend: canary.backend.clone(),
            ingress: self.ingress.clone(),
            rule: self.rule.clone(),
        });
        let referrers = self.references.entry(canary.backend.clone()).or_default();
        if !referrers.contains(&self.ingress) {
            referrers.push(self.ingress.clone());
        }
    }
}
