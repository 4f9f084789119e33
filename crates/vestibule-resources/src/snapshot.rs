//! The immutable set of objects the translator reads.

use std::sync::Arc;

use foldhash::{HashSet, HashSetExt};
use k8s_openapi::api::core::v1::{Endpoints, Secret};
use k8s_openapi::api::networking::v1::IngressClass;

use crate::ingress_summary::IngressSummary;
use crate::object::{Object, ObjectKey};
use crate::summary::{EndpointSliceSummary, ServiceSummary};

/// Every object of the kinds Vestibule reads, as one consistent, immutable value.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Ingresses, whatever their class.
    pub ingresses: Vec<Arc<IngressSummary>>,
    /// IngressClasses.
    pub ingress_classes: Vec<Arc<IngressClass>>,
    /// Services.
    pub services: Vec<Arc<ServiceSummary>>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<Arc<EndpointSliceSummary>>,
    /// Endpoints, used for Services that have no EndpointSlice.
    pub endpoints: Vec<Arc<Endpoints>>,
    /// Secrets.
    pub secrets: Vec<Arc<Secret>>,
}

/// An object that appeared more than once; the first one was kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateObject {
    /// The object's key.
    pub key: ObjectKey,
    /// Where the dropped copy sits in the input sequence.
    pub index: usize,
}

impl Snapshot {
    /// Gathers objects into a snapshot. When two objects share a key the first is kept and
    /// the later ones are reported.
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> (Self, Vec<DuplicateObject>) {
        let objects: Vec<Object> = objects.into_iter().collect();
        let mut seen = HashSet::with_capacity(objects.len());
        let duplicates: Vec<DuplicateObject> = objects
            .iter()
            .enumerate()
            .filter(|(_, object)| !seen.insert(object.borrowed_key()))
            .map(|(index, object)| DuplicateObject {
                key: object.key(),
                index,
            })
            .collect();
        drop(seen);
        let snapshot = Self::from_objects_without(objects, &duplicates);
        (snapshot, duplicates)
    }

    /// Gathers objects into a snapshot, leaving out the `duplicates` that
    /// [`Snapshot::from_objects`] found among objects with the same keys in the same order.
    pub fn from_objects_without(
        objects: impl IntoIterator<Item = Object>,
        duplicates: &[DuplicateObject],
    ) -> Self {
        let mut dropped = duplicates
            .iter()
            .map(|duplicate| duplicate.index)
            .peekable();
        let mut snapshot = Self::default();
        for (index, object) in objects.into_iter().enumerate() {
            if dropped.next_if_eq(&index).is_some() {
                continue;
            }
            match object {
                Object::Ingress(o) => snapshot.ingresses.push(o),
                Object::IngressClass(o) => snapshot.ingress_classes.push(o),
                Object::Service(o) => snapshot.services.push(o),
                Object::EndpointSlice(o) => snapshot.endpoint_slices.push(o),
                Object::Endpoints(o) => snapshot.endpoints.push(o),
                Object::Secret(o) => snapshot.secrets.push(o),
            }
        }
        snapshot
    }
}
