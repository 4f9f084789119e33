//! ingress-nginx's regex mode. When an Ingress uses `use-regex`, or a `rewrite-target` that
//! differs from one of its paths, every `Prefix` and `ImplementationSpecific` path of that host
//! becomes a regular expression matched case-insensitively from the start of the request path,
//! whichever Ingress it comes from. `Exact` paths stay exact.

use std::sync::Arc;

use foldhash::{HashSet, HashSetExt};
use vestibule_resources::IngressSummary;
use vestibule_routing::{HostMatch, PathMatch, RoutePolicy};

use crate::annotations::IngressSettings;

/// The hosts, with their `server-alias` hosts, that some Ingress puts in regex mode.
pub(crate) fn regex_hosts<'a>(
    ingresses: impl IntoIterator<Item = (&'a IngressSummary, &'a IngressSettings)>,
) -> HashSet<HostMatch> {
    let mut hosts = HashSet::new();
    for (ingress, settings) in ingresses {
        let rules = ingress.spec.as_ref().map(|spec| &spec.rules[..]);
        for rule in rules.unwrap_or_default() {
            let Ok(host) = HostMatch::parse(rule.host.as_deref().unwrap_or_default()) else {
                continue;
            };
            let mut paths = rule.paths.iter();
            if !paths.any(|path| asks_for_regex(settings, path.path.as_deref().unwrap_or("/"))) {
                continue;
            }
            if host != HostMatch::Any {
                hosts.extend(settings.aliases.iter().cloned());
            }
            hosts.insert(host);
        }
    }
    hosts
}

/// Whether ingress-nginx makes `path` of an Ingress with these settings a regex location.
fn asks_for_regex(settings: &IngressSettings, path: &str) -> bool {
    settings.use_regex || rewrites(&settings.policy, path)
}

/// Whether the policy's rewrite changes requests that `path`, as written, matched: ingress-nginx
/// leaves a path alone when the rewrite target is that path.
fn rewrites(policy: &RoutePolicy, path: &str) -> bool {
    policy
        .rewrite
        .as_ref()
        .is_some_and(|target| target.to_string() != path)
}

/// The policy a rule for `path` carries: the Ingress's, without its rewrite when the rewrite
/// does not apply to that path. `Prefix` rules exist only on hosts out of regex mode, where
/// every path of a rewriting Ingress equals its target.
pub(crate) fn rule_policy(policy: &Arc<RoutePolicy>, path: &PathMatch) -> Arc<RoutePolicy> {
    let applies = !matches!(path, PathMatch::Prefix(_)) && rewrites(policy, path.as_str());
    if policy.rewrite.is_none() || applies {
        return policy.clone();
    }
    Arc::new(RoutePolicy {
        rewrite: None,
        ..RoutePolicy::clone(policy)
    })
}
