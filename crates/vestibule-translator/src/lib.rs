//! Translation of a resource [`Snapshot`] into what the data plane serves.
//!
//! [`translate`] is a pure function: no I/O, no clock, no panics. It is applied as ordered steps:
//! select the Ingresses that are ours, order them by age, load the certificates their `spec.tls`
//! names, read each one's annotations into a plan (its route policy and the hosts its rules land
//! on), build each virtual host from the rules of the Ingresses that name it (first come first
//! kept, then canary Ingresses attached to the routes they share), choose the default backend,
//! collect the hosts passed through (`ssl-passthrough`), then resolve every referenced Service
//! port to its ready endpoints.
//!
//! A [`Translator`] gives the same results for a sequence of snapshots, reusing the
//! certificates, plans, virtual hosts and resolved backends whose inputs are the very same
//! objects as last time, so a change to one Ingress among thousands costs little more than that
//! Ingress. When the Ingresses that changed still name the same hosts and backends, the other
//! hosts and the backends are not even looked at: the last routing table is patched.

mod annotations;
mod backends;
mod by_name;
mod canary;
mod class;
mod hosts;
mod passthrough;
mod plan;
mod regex_paths;
mod reuse;
mod rules;
mod tls;
mod warning;

use std::sync::Arc;

use foldhash::HashSet;
use vestibule_resources::Snapshot;
use vestibule_routing::{Backends, HostMatch, IngressRef, PassthroughTable, Route, RouteTable};
use vestibule_tls::TlsTable;

pub use annotations::{AnnotationVerdict, Verdict, review_annotations};
pub use class::CONTROLLER_NAME;
pub use tls::SecretName;
pub use warning::{Warning, WarningReason};

use backends::Resolutions;
use class::Precedence;
use hosts::{HostChanges, Hosts};
use plan::Plans;
use rules::HostOutcome;

/// Settings that change how a snapshot is translated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The class this controller serves (`--ingress-class`).
    pub ingress_class: String,
    /// The `spec.controller` of the IngressClasses this controller serves
    /// (`--controller-class`).
    pub controller_class: String,
    /// Serve Ingresses that name no class at all (`--watch-ingress-without-class`).
    pub watch_ingress_without_class: bool,
    /// Redirect plain-HTTP requests for TLS hosts to HTTPS (`--default-ssl-redirect`).
    pub ssl_redirect: bool,
    /// The Secret holding the certificate for unknown server names
    /// (`--default-ssl-certificate`); without one the listener's self-signed certificate is used.
    pub default_certificate: Option<SecretName>,
    /// Honour `ssl-passthrough` (`--enable-ssl-passthrough`); without it the annotation is
    /// ignored with a warning.
    pub ssl_passthrough: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ingress_class: "vestibule".to_owned(),
            controller_class: CONTROLLER_NAME.to_owned(),
            watch_ingress_without_class: false,
            ssl_redirect: true,
            default_certificate: None,
            ssl_passthrough: false,
        }
    }
}

/// Everything a translation produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The routing table; shared, as the next translation may patch it.
    pub routes: Arc<RouteTable<Arc<Route>>>,
    /// The ready endpoints of every backend the table refers to; empty when none is ready.
    /// Shared: a translation that resolves the same hands out the same map.
    pub backends: Backends,
    /// The certificate for each TLS server name.
    pub tls: TlsTable,
    /// The hosts whose TLS connections go unterminated to a backend.
    pub passthrough: PassthroughTable,
    /// The Ingresses this controller serves, oldest first.
    pub ingresses: Vec<IngressRef>,
    /// What was wrong, per Ingress, in the order found.
    pub warnings: Vec<Warning>,
}

/// Translates a snapshot into a routing table, backends, the Ingresses served and warnings.
pub fn translate(snapshot: &Snapshot, options: &Options) -> Translation {
    Translator::new(options.clone()).translate(snapshot)
}

/// Translates one snapshot after another, reusing what an earlier translation read from the
/// Ingresses that are still the same objects: each result equals [`translate`]'s.
#[derive(Debug)]
pub struct Translator {
    options: Options,
    precedence: Precedence,
    certificates: tls::Certificates,
    plans: Plans,
    hosts: Hosts,
    /// The routing table of the last translation.
    routes: Arc<RouteTable<Arc<Route>>>,
    resolutions: Resolutions,
}

impl Translator {
    /// A translator with these options and nothing translated yet.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            precedence: Precedence::default(),
            certificates: tls::Certificates::default(),
            plans: Plans::default(),
            hosts: Hosts::default(),
            routes: Arc::default(),
            resolutions: Resolutions::default(),
        }
    }

    /// Translates a snapshot into a routing table, backends, the Ingresses served and warnings.
    pub fn translate(&mut self, snapshot: &Snapshot) -> Translation {
        let options = &self.options;
        let mut warnings = Vec::new();
        let ingresses = class::select_ours(snapshot, options, &mut self.precedence);
        let tls = tls::build(
            snapshot,
            &ingresses,
            options.default_certificate.as_ref(),
            &mut self.certificates,
            &mut warnings,
        );
        let plans = self.plans.update(&ingresses, snapshot);
        for plan in &plans {
            warnings.extend(plan.warnings.iter().cloned());
        }
        let regex_hosts: HashSet<HostMatch> = plans
            .iter()
            .flat_map(|plan| plan.regex_hosts.iter().cloned())
            .collect();
        let context = rules::Context {
            tls: &tls,
            options,
            regex_hosts: &regex_hosts,
        };
        let default_backend = rules::default_backend(&plans, &context, &mut warnings);
        let (outcomes, changes) = self.hosts.update(&plans, &context);
        for outcome in outcomes {
            warnings.extend(outcome.warnings.iter().cloned());
        }
        // When only a few hosts changed, their Ingresses still refer to the same backends and
        // the default backend is the same, the backends need not be looked at again.
        let same_references = match &changes {
            HostChanges::Only(replaced) => {
                self.routes.default_backend() == default_backend.as_ref()
                    && replaced.iter().all(|replaced| {
                        backends::references(routes_of([&*replaced.old]), 0)
                            == backends::references(routes_of([&*replaced.new]), 0)
                    })
            }
            HostChanges::All => false,
        };
        let routes = Arc::new(match changes {
            HostChanges::Only(replaced) => self.routes.with_hosts_replaced(
                replaced
                    .into_iter()
                    .map(|replaced| (replaced.host, replaced.new.vhost.clone())),
                default_backend,
            ),
            HostChanges::All => RouteTable::from_virtual_hosts(
                outcomes.iter().filter_map(|outcome| outcome.vhost.clone()),
                default_backend,
            ),
        });
        self.routes = Arc::clone(&routes);
        let mut passthrough = passthrough::Requests::default();
        for plan in &plans {
            if plan.settings.ssl_passthrough && plan.settings.canary.is_none() {
                passthrough.ask(&plan.ingress);
            }
        }
        let passthrough = passthrough.resolve(&routes, options.ssl_passthrough, &mut warnings);
        let unchanged = same_references
            .then(|| self.resolutions.unchanged(snapshot, &mut warnings))
            .flatten();
        let backends = match unchanged {
            Some(backends) => backends,
            None => {
                let references = backends::references(
                    routes_of(outcomes.iter().map(AsRef::as_ref))
                        .chain(routes.default_backend().map(AsRef::as_ref)),
                    self.resolutions.len(),
                );
                self.resolutions
                    .resolve(snapshot, &references, &mut warnings)
            }
        };
        Translation {
            routes,
            backends,
            tls: tls.table,
            passthrough,
            ingresses: plans.iter().map(|plan| plan.reference.clone()).collect(),
            warnings,
        }
    }
}

/// The routes of the virtual hosts of `outcomes`.
fn routes_of<'a>(
    outcomes: impl IntoIterator<Item = &'a HostOutcome>,
) -> impl Iterator<Item = &'a Route> {
    outcomes
        .into_iter()
        .filter_map(|outcome| outcome.vhost.as_deref())
        .flat_map(|vhost| vhost.rules().iter().map(|rule| &*rule.target))
}
