//! Which Ingresses this controller serves, and in which order they take precedence.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::jiff::Timestamp;
use vestibule_resources::{IngressSummary, Snapshot};

use crate::Options;

/// The default `spec.controller` of IngressClasses this controller serves.
pub const CONTROLLER_NAME: &str = "vestibule.dev/ingress-controller";

const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The Ingresses that are ours, oldest first (then by namespace and name).
pub(crate) fn select_ours(
    snapshot: &Snapshot,
    options: &Options,
    precedence: &mut Precedence,
) -> Vec<Arc<IngressSummary>> {
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
    let is_ours = |ingress: &&Arc<IngressSummary>| {
        let class_name = ingress
            .spec
            .as_ref()
            .and_then(|spec| spec.ingress_class_name.as_deref());
        let legacy = ingress.annotations.get(LEGACY_CLASS_ANNOTATION);
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
    };
    precedence
        .order(&snapshot.ingresses)
        .iter()
        .map(|&position| &snapshot.ingresses[position])
        .filter(is_ours)
        .cloned()
        .collect()
}

/// The precedence order of the last snapshot's Ingresses, kept while each of them is the same
/// object or has the same order key: a change to one Ingress then costs no sort.
#[derive(Debug, Default)]
pub(crate) struct Precedence {
    /// The last snapshot's Ingresses, in its order.
    ingresses: Vec<Arc<IngressSummary>>,
    /// Positions in `ingresses`, oldest first.
    order: Vec<usize>,
}

impl Precedence {
    /// Positions in `ingresses`, oldest first, then by namespace and name.
    fn order(&mut self, ingresses: &[Arc<IngressSummary>]) -> &[usize] {
        let same_keys =
            self.ingresses.len() == ingresses.len()
                && self.ingresses.iter().zip(ingresses).all(|(old, new)| {
                    Arc::ptr_eq(old, new) || OrderKey::of(old) == OrderKey::of(new)
                });
        if !same_keys {
            // Namespace and name are unique among a snapshot's Ingresses, so an unstable sort
            // orders them the same way every time; with the keys taken out once it is also a
            // cheap one.
            let mut keyed: Vec<(OrderKey<'_>, usize)> = ingresses
                .iter()
                .enumerate()
                .map(|(position, ingress)| (OrderKey::of(ingress), position))
                .collect();
            keyed.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            self.order = keyed.into_iter().map(|(_, position)| position).collect();
        }
        self.ingresses.clear();
        self.ingresses.extend_from_slice(ingresses);
        &self.order
    }
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
    fn of(ingress: &'a IngressSummary) -> Self {
        let created = ingress.created.as_ref();
        Self {
            undated: created.is_none(),
            created,
            namespace: &ingress.namespace,
            name: &ingress.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(namespace: &str, name: &str, created: Option<&str>) -> Arc<IngressSummary> {
        Arc::new(IngressSummary {
            namespace: namespace.into(),
            name: name.into(),
            created: created.map(|time| time.parse().expect("a timestamp")),
            ..IngressSummary::default()
        })
    }

    fn names(ingresses: &[Arc<IngressSummary>], order: &[usize]) -> Vec<String> {
        order
            .iter()
            .map(|&position| {
                let ingress = &ingresses[position];
                format!("{}/{}", ingress.namespace, ingress.name)
            })
            .collect()
    }

    #[test]
    fn precedence_is_kept_while_keys_stay_and_redone_when_they_change() {
        let mut snapshot = vec![
            ingress("shop", "web", None),
            ingress("shop", "api", None),
            ingress("blog", "www", Some("2026-01-02T00:00:00Z")),
            ingress("admin", "old", Some("2026-01-01T00:00:00Z")),
        ];
        let expected = ["admin/old", "blog/www", "shop/api", "shop/web"];
        let mut precedence = Precedence::default();
        assert_eq!(names(&snapshot, precedence.order(&snapshot)), expected);

        snapshot[1] = ingress("shop", "api", None);
        assert_eq!(names(&snapshot, precedence.order(&snapshot)), expected);

        snapshot[1] = ingress("shop", "zzz", None);
        assert_eq!(
            names(&snapshot, precedence.order(&snapshot)),
            ["admin/old", "blog/www", "shop/web", "shop/zzz"]
        );

        snapshot[0] = ingress("shop", "web", Some("2025-12-31T00:00:00Z"));
        assert_eq!(
            names(&snapshot, precedence.order(&snapshot)),
            ["shop/web", "admin/old", "blog/www", "shop/zzz"]
        );

        snapshot.pop();
        assert_eq!(
            names(&snapshot, precedence.order(&snapshot)),
            ["shop/web", "blog/www", "shop/zzz"]
        );
    }
}
