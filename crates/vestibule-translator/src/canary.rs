//! Canary Ingresses onto the routes they share with main Ingresses.
//!
//! This step runs for each host once the main Ingresses' rules for it are in place. A canary Ingress never
//! claims a host and path of its own: each of its rules (host, path and path type, as
//! ingress-nginx matches them) attaches its backend as the canary of the main route with the
//! same key, and its default backend to the table's default backend. The route keeps the main
//! Ingress's settings. A rule with no main route is ignored, as in ingress-nginx; a route takes
//! one canary, the oldest canary Ingress's.

use std::sync::Arc;

use vestibule_routing::{Canary, CanaryRule, Route, RouteTableBuilder, VirtualHost};

use crate::plan::IngressPlan;
use crate::warning::{Warning, WarningReason};

/// Attaches the rules a canary Ingress has for one host (`own`, built with the canary's default
/// settings) to the main routes for that host in `main`.
pub(crate) fn attach_rules(
    plan: &IngressPlan,
    rule: &CanaryRule,
    own: &VirtualHost<Arc<Route>>,
    main: &mut RouteTableBuilder<Arc<Route>>,
    warnings: &mut Vec<Warning>,
) {
    let mut attacher = Attacher {
        plan,
        rule,
        warnings,
    };
    for path_rule in own.rules() {
        let place = format!("host {} path {}", own.host(), path_rule.path);
        let route = main.rule_mut(own.host(), &path_rule.path);
        attacher.attach(route, &path_rule.target, &place);
    }
}

/// Attaches a canary Ingress's default backend (`own`) to the table's (`main`).
pub(crate) fn attach_default(
    plan: &IngressPlan,
    rule: &CanaryRule,
    own: &Route,
    main: Option<&mut Arc<Route>>,
    warnings: &mut Vec<Warning>,
) {
    let mut attacher = Attacher {
        plan,
        rule,
        warnings,
    };
    attacher.attach(main, own, "the default backend");
}

/// Attaches the routes of one canary Ingress.
struct Attacher<'a> {
    plan: &'a IngressPlan,
    rule: &'a CanaryRule,
    warnings: &'a mut Vec<Warning>,
}

impl Attacher<'_> {
    fn warn(&mut self, reason: WarningReason, message: String) {
        self.warnings
            .push(Warning::on_ingress(&self.plan.reference, reason, message));
    }

    /// Makes the backend of `canary` the canary of `main`, the main route with the same key.
    fn attach(&mut self, main: Option<&mut Arc<Route>>, canary: &Route, place: &str) {
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
        // Routes the main Ingress's paths share are shared: the canary goes on this one alone.
        Arc::make_mut(main).canary = Some(Box::new(Canary {
            backend: canary.backend.clone(),
            ingress: self.plan.reference.clone(),
            rule: self.rule.clone(),
        }));
    }
}
