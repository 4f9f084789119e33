//! Virtual hosts built from the Ingresses with rules for them, kept while those do not change.
//!
//! A virtual host depends only on the Ingresses whose rules land on it, in precedence order, and
//! on whether their hosts are TLS hosts and in regex mode. When all of that is what the last
//! translation saw, the host it built is taken over as is, so a change to one Ingress rebuilds
//! only the hosts that Ingress names. When the Ingresses that changed still name the same hosts,
//! the other hosts are not even looked at.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};
use vestibule_routing::{HostMap, HostMatch};

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

impl Contribution {
    fn of(plan: &Arc<IngressPlan>, context: &Context<'_>) -> Self {
        Self {
            plan: Arc::clone(plan),
            flags: plan
                .hosts
                .iter()
                .map(|host| HostFlags {
                    tls: context.tls.covers(host),
                    regex: context.regex_hosts.contains(host),
                })
                .collect(),
        }
    }
}

impl PartialEq for Contribution {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan) && self.flags == other.flags
    }
}

/// One host as the last translation built it.
#[derive(Debug)]
struct Built {
    /// What it was built from, oldest Ingress first.
    contributions: Box<[Contribution]>,
    outcome: Arc<HostOutcome>,
    /// Where its outcome sits in [`Last::outcomes`].
    position: usize,
}

/// What the last update was given and gave back.
#[derive(Debug, Default)]
struct Last {
    plans: Vec<Arc<IngressPlan>>,
    outcomes: Vec<Arc<HostOutcome>>,
    /// The TLS hosts and regex hosts the flags were taken from.
    tls_hosts: HostMap<()>,
    regex_hosts: HashSet<HostMatch>,
}

/// A host whose outcome an update replaced.
#[derive(Debug)]
pub(crate) struct Replaced {
    pub host: HostMatch,
    pub old: Arc<HostOutcome>,
    pub new: Arc<HostOutcome>,
}

/// Which outcomes an update replaced.
#[derive(Debug)]
pub(crate) enum HostChanges {
    /// Only these; every other host, and the order of all, is as it was.
    Only(Vec<Replaced>),
    /// Any of them, and the hosts and their order may differ too.
    All,
}

/// The virtual hosts of the last translation, with what each was built from.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    built: HashMap<HostMatch, Built>,
    last: Last,
}

impl Hosts {
    /// The outcome for every host the rules of `plans` (oldest first) land on, in the order of
    /// the first Ingress to name each host, and which of them changed. A host whose
    /// contributions are the same as last time keeps its outcome.
    pub fn update(
        &mut self,
        plans: &[Arc<IngressPlan>],
        context: &Context<'_>,
    ) -> (&[Arc<HostOutcome>], HostChanges) {
        let changes = match self.patch(plans, context) {
            Some(replaced) => HostChanges::Only(replaced),
            None => {
                self.rebuild(plans, context);
                HostChanges::All
            }
        };
        (&self.last.outcomes, changes)
    }

    /// Rebuilds only the hosts of the plans that changed, when every changed plan sits where
    /// its predecessor did and names the same hosts, and the flags are taken from the same TLS
    /// and regex hosts; otherwise changes nothing and returns `None`.
    fn patch(
        &mut self,
        plans: &[Arc<IngressPlan>],
        context: &Context<'_>,
    ) -> Option<Vec<Replaced>> {
        let Self { built, last } = self;
        if last.plans.len() != plans.len()
            || last.tls_hosts != context.tls.hosts
            || last.regex_hosts != *context.regex_hosts
        {
            return None;
        }
        let changed: Vec<usize> = (0..plans.len())
            .filter(|&i| !Arc::ptr_eq(&last.plans[i], &plans[i]))
            .collect();
        let same_hosts = changed.iter().all(|&i| {
            last.plans[i].hosts == plans[i].hosts
                && plans[i].hosts.iter().all(|host| built.contains_key(host))
        });
        if !same_hosts {
            return None;
        }
        // From here on every host looked up is built: checked above.
        let mut dirty: Vec<&HostMatch> = Vec::new();
        for &i in &changed {
            let (old, new) = (&last.plans[i], &plans[i]);
            let contribution = Contribution::of(new, context);
            for host in &new.hosts {
                let places = built.get_mut(host).into_iter().flat_map(|slot| {
                    let places = slot.contributions.iter_mut();
                    places.filter(|place| Arc::ptr_eq(&place.plan, old))
                });
                places.for_each(|place| *place = contribution.clone());
                dirty.push(host);
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        let mut replaced = Vec::with_capacity(dirty.len());
        for host in dirty {
            let Some(slot) = built.get_mut(host) else {
                continue;
            };
            let inputs: Vec<&IngressPlan> = slot.contributions.iter().map(|c| &*c.plan).collect();
            let outcome = Arc::new(build_host(host, &inputs, context));
            last.outcomes[slot.position] = Arc::clone(&outcome);
            replaced.push(Replaced {
                host: host.clone(),
                old: std::mem::replace(&mut slot.outcome, Arc::clone(&outcome)),
                new: outcome,
            });
        }
        for i in changed {
            last.plans[i] = Arc::clone(&plans[i]);
        }
        Some(replaced)
    }

    /// Builds every host again, taking over the outcomes whose contributions did not change.
    fn rebuild(&mut self, plans: &[Arc<IngressPlan>], context: &Context<'_>) {
        let mut order: Vec<&HostMatch> = Vec::with_capacity(self.built.len());
        let mut contributions: HashMap<&HostMatch, Vec<Contribution>> =
            HashMap::with_capacity(self.built.len());
        for plan in plans {
            let contribution = Contribution::of(plan, context);
            for host in &plan.hosts {
                contributions
                    .entry(host)
                    .or_insert_with(|| {
                        order.push(host);
                        Vec::new()
                    })
                    .push(contribution.clone());
            }
        }
        let mut outcomes = Vec::with_capacity(order.len());
        for &host in &order {
            let inputs = contributions.remove(host).unwrap_or_default();
            let position = outcomes.len();
            if let Some(built) = self.built.get_mut(host)
                && *built.contributions == *inputs
            {
                built.position = position;
                outcomes.push(Arc::clone(&built.outcome));
                continue;
            }
            let plans: Vec<&IngressPlan> = inputs.iter().map(|c| c.plan.as_ref()).collect();
            let outcome = Arc::new(build_host(host, &plans, context));
            outcomes.push(Arc::clone(&outcome));
            // Boxed to its length: most hosts have one Ingress, and a vector would keep room
            // for four.
            let built = Built {
                contributions: inputs.into_boxed_slice(),
                outcome,
                position,
            };
            self.built.insert(host.clone(), built);
        }
        // Forget the hosts no Ingress names any more.
        if self.built.len() > order.len() {
            let named: HashSet<&HostMatch> = order.into_iter().collect();
            self.built.retain(|host, _| named.contains(host));
        }
        self.last = Last {
            plans: plans.to_vec(),
            outcomes,
            tls_hosts: context.tls.hosts.clone(),
            regex_hosts: context.regex_hosts.clone(),
        };
    }
}
