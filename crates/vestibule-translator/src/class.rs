//! Which Ingresses this controller serves, and in which order they take precedence.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
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
    let mut ours: Vec<Arc<Ingress>> = snapshot
        .ingresses
        .iter()
        .filter(|ingress| {
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
        })
        .cloned()
        .collect();
    ours.sort_by(|a, b| {
        let age = |ingress: &Ingress| ingress.metadata.creation_timestamp.as_ref().map(|t| t.0);
        match (age(a), age(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    ours
}
