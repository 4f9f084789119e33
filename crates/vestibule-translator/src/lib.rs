//! Translation of a resource [`Snapshot`] into what the data plane serves.
//!
//! [`translate`] is a pure function: no I/O, no clock, no panics. It is applied as ordered steps:
//! select the Ingresses that are ours, order them by age, load the certificates their `spec.tls`
//! names, read each one's annotations into a route policy and add its rules to a routing table
//! (first come first kept), attach canary Ingresses to the routes they share, collect the hosts
//! passed through (`ssl-passthrough`), then resolve every referenced Service port to its ready endpoints.

mod annotations;
mod backends;
mod canary;
mod class;
mod passthrough;
mod regex_paths;
mod rules;
mod tls;
mod warning;

use std::collections::BTreeMap;

use vestibule_resources::Snapshot;
use vestibule_routing::{BackendId, Endpoint, IngressRef, PassthroughTable, Route, RouteTable};
use vestibule_tls::TlsTable;

pub use annotations::{AnnotationVerdict, Verdict, review_annotations};
pub use class::CONTROLLER_NAME;
pub use tls::SecretName;
pub use warning::{Warning, WarningReason};

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
    /// The routing table.
    pub routes: RouteTable<Route>,
    /// The ready endpoints of every backend the table refers to; empty when none is ready.
    pub backends: BTreeMap<BackendId, Vec<Endpoint>>,
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
    let mut warnings = Vec::new();
    let ingresses = class::select_ours(snapshot, options);
    let tls = tls::build(
        snapshot,
        &ingresses,
        options.default_certificate.as_ref(),
        &mut warnings,
    );
    let (routes, referenced, passthrough) =
        rules::build_table(snapshot, &ingresses, &tls, options, &mut warnings);
    let backends = backends::resolve(snapshot, &referenced, &mut warnings);
    Translation {
        routes,
        backends,
        tls: tls.table,
        passthrough,
        ingresses: ingresses
            .iter()
            .map(|ingress| rules::ingress_ref(ingress))
            .collect(),
        warnings,
    }
}
