//! Which Ingresses this controller serves, and in which order they take precedence.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::jiff::Timestamp;
use vestibule_resources::Snapshot;

use crate::Options;

/// The default `spec.controller` of IngressClasses this controller serves.
pub const CONTROLLER_NAME: &str = "vestibule.dev/ingress-controller";

const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The Ingresses that are ours, oldest first (then by namespace and name).
pub(crate) fn select_ours(snapshot: &Snapshot, options: &Options) -> Vec<Arc<Ingress>> {
    let our_classes: Vec<&IngressClass> = snapshot
        .ingress_classes
        .iter()
        .map(Arc::as_ref)
        .filter(|class| {
            class
                .spec
                .as_ref()
                .and_then(|spec| spec.controller.as_deref())
                == Some(options.controller_class.as_str())
        })
        .collect();
    let we_are_default = our_classes.iter().any(|class| {
        class
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(DEFAULT_CLASS_ANNOTATION))
            .is_some_and(|value| value == "true")
    });
    let ours = snapshot.ingresses.iter().filter(|ingress| {
        let class_name = ingress
            .spec
            .as_ref()
            .and_then(|spec| spec.ingress_class_name.as_deref());
        let legacy = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(LEGACY_CLASS_ANNOTATION));
        match (class_name, legacy) {
            (Some(name), _) => {
                name == options.ingress_class
                    || our_classes
                        .iter()
                        .any(|class| class.metadata.name.as_deref() == Some(name))
            }
            (None, Some(legacy)) => *legacy == options.ingress_class,
            (None, None) => options.watch_ingress_without_class || we_are_default,
        }
    });
    // Namespace and name are unique among a snapshot's Ingresses, so an unstable sort orders
    // them the same way every time; with the keys taken out once it is also a cheap one.
    let mut keyed: Vec<(OrderKey<'_>, &Arc<Ingress>)> = ours
        .map(|ingress| (OrderKey::of(ingress), ingress))
        .collect();
    keyed.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    keyed
        .into_iter()
        .map(|(_, ingress)| Arc::clone(ingress))
        .collect()
}

/// What orders Ingresses: oldest first (those without a creation time last), then by
/// namespace and name.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey<'a> {
    undated: bool,
    created: Option<&'a Timestamp>,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> OrderKey<'a> {
    fn of(ingress: &'a Ingress) -> Self {
        let created = ingress
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|time| &time.0);
        Self {
            undated: created.is_none(),
            created,
            namespace: ingress.metadata.namespace.as_deref().unwrap_or_default(),
            name: ingress.metadata.name.as_deref().unwrap_or_default(),
        }
    }
}
