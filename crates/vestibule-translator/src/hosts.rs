//! Virtual hosts built from the Ingresses with rules for them, kept while those do not change.
//!
//! A virtual host depends only on the Ingresses whose rules land on it, in precedence order, and
//! on whether their hosts are TLS hosts and in regex mode. When all of that is what the last
//! translation saw, the host it built is taken over as is, so a change to one Ingress rebuilds
//! only the hosts that Ingress names.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};
use vestibule_routing::HostMatch;

use crate::plan::IngressPlan;
use crate::rules::{Context, HostOutcome, build_host};

/// Whether a host of an Ingress is a TLS host and in regex mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HostFlags {
    tls: bool,
    regex: bool,
}

/// What one Ingress brings to a host.
#[derive(Clone, Debug)]
struct Contribution {
    plan: Arc<IngressPlan>,
    /// The flags of each of the plan's hosts, in the plan's order.
    flags: Arc<[HostFlags]>,
}

impl PartialEq for Contribution {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan) && self.flags == other.flags
    }
}

/// The virtual hosts of the last translation, with what each was built from.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    built: HashMap<HostMatch, (Box<[Contribution]>, Arc<HostOutcome>)>,
}

impl Hosts {
    /// The outcome for every host the rules of `plans` (oldest first) land on, in the order of
    /// the first Ingress to name each host. A host whose contributions are the same as last
    /// time keeps its outcome.
    pub fn update(
        &mut self,
        plans: &[Arc<IngressPlan>],
        context: &Context<'_>,
    ) -> Vec<Arc<HostOutcome>> {
        let mut order: Vec<&HostMatch> = Vec::with_capacity(self.built.len());
        let mut contributions: HashMap<&HostMatch, Vec<Contribution>> =
            HashMap::with_capacity(self.built.len());
        for plan in plans {
            let flags: Arc<[HostFlags]> = plan
                .hosts
                .iter()
                .map(|host| HostFlags {
                    tls: context.tls.covers(host),
                    regex: context.regex_hosts.contains(host),
                })
                .collect();
            for host in &plan.hosts {
                let contribution = Contribution {
                    plan: Arc::clone(plan),
                    flags: Arc::clone(&flags),
                };
                contributions
                    .entry(host)
                    .or_insert_with(|| {
                        order.push(host);
                        Vec::new()
                    })
                    .push(contribution);
            }
        }
        let mut outcomes = Vec::with_capacity(order.len());
        for &host in &order {
            let inputs = contributions.remove(host).unwrap_or_default();
            let slot = self.built.get_mut(host);
            if let Some((built_from, outcome)) = &slot
                && **built_from == *inputs
            {
                outcomes.push(Arc::clone(outcome));
                continue;
            }
            let plans: Vec<&IngressPlan> = inputs.iter().map(|c| c.plan.as_ref()).collect();
            let outcome = Arc::new(build_host(host, &plans, context));
            outcomes.push(Arc::clone(&outcome));
            // Boxed to its length: most hosts have one Ingress, and a vector would keep room
            // for four.
            let inputs = inputs.into_boxed_slice();
            match slot {
                Some(slot) => *slot = (inputs, outcome),
                None => {
                    self.built.insert(host.clone(), (inputs, outcome));
                }
            }
        }
        // Forget the hosts no Ingress names any more.
        if self.built.len() > order.len() {
            let named: HashSet<&HostMatch> = order.into_iter().collect();
            self.built.retain(|host, _| named.contains(host));
        }
        outcomes
    }
}
