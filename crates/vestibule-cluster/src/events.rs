//! Translation warnings as Kubernetes Events on the objects concerned.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use vestibule_resources::{ObjectKey, ObjectKind, Snapshot};

/// Publishes each distinct warning once while it lasts, as a `Warning` Event.
pub struct EventPublisher {
    recorder: Recorder,
    published: HashSet<(ObjectKey, String, String)>,
}

impl EventPublisher {
    /// A publisher reporting as `controller` (and this replica as `instance`).
    pub fn new(client: Client, controller: String, instance: Option<String>) -> Self {
        Self {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller,
                    instance,
                },
            ),
            published: HashSet::new(),
        }
    }

    /// Publishes the warnings (object, reason, message) not published since they last
    /// appeared; the objects' UIDs come from `snapshot` so `kubectl describe` finds the Events.
    pub async fn publish(
        &mut self,
        snapshot: &Snapshot,
        warnings: Vec<(ObjectKey, String, String)>,
    ) {
        let current: HashSet<_> = warnings.into_iter().collect();
        for warning in current.difference(&self.published) {
            let (object, reason, message) = warning;
            let event = Event {
                type_: EventType::Warning,
                reason: reason.clone(),
                note: Some(message.clone()),
                action: "Translate".to_owned(),
                secondary: None,
            };
            if let Err(error) = self
                .recorder
                .publish(&event, &reference(snapshot, object))
                .await
            {
                tracing::warn!(%object, %error, "could not publish an Event");
            }
        }
        self.published = current;
    }
}

fn reference(snapshot: &Snapshot, object: &ObjectKey) -> ObjectReference {
    let same = |namespace: &Option<String>, name: &Option<String>| {
        namespace.as_deref().unwrap_or_default() == object.namespace
            && name.as_deref() == Some(object.name.as_str())
    };
    let uid = match object.kind {
        ObjectKind::Ingress => snapshot
            .ingresses
            .iter()
            .find(|o| *o.namespace == object.namespace && *o.name == object.name)
            .and_then(|o| o.uid.as_deref().map(str::to_owned)),
        ObjectKind::Secret => snapshot
            .secrets
            .iter()
            .find(|o| same(&o.metadata.namespace, &o.metadata.name))
            .and_then(|o| o.metadata.uid.clone()),
        _ => None,
    };
    ObjectReference {
        api_version: Some(object.kind.api_version().to_owned()),
        kind: Some(object.kind.as_str().to_owned()),
        namespace: (!object.namespace.is_empty()).then(|| object.namespace.clone()),
        name: Some(object.name.clone()),
        uid,
        ..ObjectReference::default()
    }
}
