//! What one Ingress brings to the translation, read once per version of the Ingress.

use std::sync::Arc;

use foldhash::HashMap;
use k8s_openapi::api::core::v1::Secret;
use vestibule_resources::{IngressSummary, Snapshot};
use vestibule_routing::{HostMatch, IngressRef};

use crate::annotations::{IngressSettings, settings_of};
use crate::regex_paths::regex_hosts;
use crate::reuse::{address, same_objects};
use crate::rules::ingress_ref;
use crate::warning::{Warning, WarningReason};

/// One Ingress's settings, and the hosts its rules land on.
#[derive(Debug)]
pub(crate) struct IngressPlan {
    /// The Ingress.
    pub ingress: Arc<IngressSummary>,
    /// Its namespace and name.
    pub reference: IngressRef,
    /// What its annotations ask for.
    pub settings: IngressSettings,
    /// What is wrong with the Ingress as a whole: its annotations, a missing spec, rules
    /// without routes, hosts that do not parse.
    pub warnings: Vec<Warning>,
    /// Every host its rules land on (rule hosts, and the aliases of rules with a host), each
    /// once, in rule order.
    pub hosts: Vec<HostMatch>,
    /// The hosts it puts in regex mode.
    pub regex_hosts: Vec<HostMatch>,
}

impl IngressPlan {
    /// Reads `ingress`; the Secrets its settings name are looked up in `snapshot`.
    fn read(ingress: &Arc<IngressSummary>, snapshot: &Snapshot) -> Self {
        let mut warnings = Vec::new();
        let settings = settings_of(ingress, snapshot, &mut warnings);
        let reference = ingress_ref(ingress);
        let mut hosts: Vec<HostMatch> = Vec::new();
        let mut land_on = |host: &HostMatch| {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        };
        match &ingress.spec {
            None => warnings.push(Warning::on_ingress(
                &reference,
                WarningReason::NothingToRoute,
                "has no spec, so it routes nothing".to_owned(),
            )),
            Some(spec) => {
                let rules = &spec.rules;
                if rules.is_empty() && spec.default_backend.is_none() {
                    warnings.push(Warning::on_ingress(
                        &reference,
                        WarningReason::NothingToRoute,
                        "has neither rules nor a default backend, so it routes nothing".to_owned(),
                    ));
                }
                for rule in rules {
                    match HostMatch::parse(rule.host.as_deref().unwrap_or_default()) {
                        Ok(host) => {
                            land_on(&host);
                            if host != HostMatch::Any {
                                settings.aliases.iter().for_each(&mut land_on);
                            }
                        }
                        Err(error) => warnings.push(Warning::on_ingress(
                            &reference,
                            WarningReason::InvalidRule,
                            format!("{error}; rule ignored"),
                        )),
                    }
                }
            }
        }
        // A plan is kept for every Ingress, most of which have one host.
        hosts.shrink_to_fit();
        let regex_hosts = regex_hosts([(ingress.as_ref(), &settings)])
            .into_iter()
            .collect();
        Self {
            ingress: Arc::clone(ingress),
            reference,
            settings,
            warnings,
            hosts,
            regex_hosts,
        }
    }
}

/// The plans of the last translation, kept so an Ingress that did not change is not read again.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    /// In the order of their Ingresses.
    last: Vec<Arc<IngressPlan>>,
    /// The Secrets the plans were read against.
    secrets: Vec<Arc<Secret>>,
}

/// Up to this many Ingresses that are not where last time's were, each is read again rather
/// than looked for among last time's.
const READ_IN_PLACE_UP_TO: usize = 16;

impl Plans {
    /// The plans of `ingresses` (in the same order), reusing those of Ingresses that are the
    /// same objects as last time, unless the plan was read from a Secret and the Secrets
    /// changed.
    pub fn update(
        &mut self,
        ingresses: &[Arc<IngressSummary>],
        snapshot: &Snapshot,
    ) -> Vec<Arc<IngressPlan>> {
        // A plan read from a Secret is read again when the Secrets change.
        let secrets_changed = !same_objects(&self.secrets, &snapshot.secrets);
        if secrets_changed {
            self.secrets.clone_from(&snapshot.secrets);
        }
        let reusable = |plan: &IngressPlan| !(secrets_changed && plan.settings.reads_secrets);
        let read = |ingress| Arc::new(IngressPlan::read(ingress, snapshot));
        let in_place = |i: usize| {
            self.last
                .get(i)
                .filter(|plan| Arc::ptr_eq(&plan.ingress, &ingresses[i]) && reusable(plan))
        };
        // A change to a few Ingresses leaves the others where they were.
        let moved = (0..ingresses.len())
            .filter(|&i| in_place(i).is_none())
            .take(READ_IN_PLACE_UP_TO + 1)
            .count();
        let plans: Vec<Arc<IngressPlan>> =
            if self.last.len() == ingresses.len() && moved <= READ_IN_PLACE_UP_TO {
                (0..ingresses.len())
                    .map(|i| in_place(i).map_or_else(|| read(&ingresses[i]), Arc::clone))
                    .collect()
            } else {
                let mut previous: HashMap<usize, &Arc<IngressPlan>> = self
                    .last
                    .iter()
                    .filter(|plan| reusable(plan))
                    .map(|plan| (address(&plan.ingress), plan))
                    .collect();
                ingresses
                    .iter()
                    .map(|ingress| match previous.remove(&address(ingress)) {
                        Some(plan) => Arc::clone(plan),
                        None => read(ingress),
                    })
                    .collect()
            };
        self.last.clone_from(&plans);
        plans
    }
}
