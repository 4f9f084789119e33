//! One decoded object of a kind Vestibule reads.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Secret};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::ingress_summary::IngressSummary;
use crate::summary::{EndpointSliceSummary, ServiceSummary};

/// The kinds of object Vestibule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `networking.k8s.io/v1` IngressClass (cluster-scoped).
    IngressClass,
    /// `v1` Service.
    Service,
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice,
    /// `v1` Endpoints.
    Endpoints,
    /// `v1` Secret.
    Secret,
}

impl ObjectKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::IngressClass => "IngressClass",
            Self::Service => "Service",
            Self::EndpointSlice => "EndpointSlice",
            Self::Endpoints => "Endpoints",
            Self::Secret => "Secret",
        }
    }

    /// The `apiVersion` Vestibule reads this kind in.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Ingress | Self::IngressClass => "networking.k8s.io/v1",
            Self::EndpointSlice => "discovery.k8s.io/v1",
            Self::Service | Self::Endpoints | Self::Secret => "v1",
        }
    }

    /// The kind named `kind`, whatever its API version.
    pub fn from_kind(kind: &str) -> Option<Self> {
        [
            Self::Ingress,
            Self::IngressClass,
            Self::Service,
            Self::EndpointSlice,
            Self::Endpoints,
            Self::Secret,
        ]
        .into_iter()
        .find(|candidate| candidate.as_str() == kind)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies an object: kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The kind.
    pub kind: ObjectKind,
    /// The namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One decoded object, shared: the manifest cache and every snapshot built from it hold the
/// same allocation, so a rescan copies no object.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// An Ingress, as much of it as is read.
    Ingress(Arc<IngressSummary>),
    /// An IngressClass.
    IngressClass(Arc<IngressClass>),
    /// A Service, as much of it as routing reads.
    Service(Arc<ServiceSummary>),
    /// An EndpointSlice, as much of it as routing reads.
    EndpointSlice(Arc<EndpointSliceSummary>),
    /// An Endpoints object.
    Endpoints(Arc<Endpoints>),
    /// A Secret.
    Secret(Arc<Secret>),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Ingress(_) => ObjectKind::Ingress,
            Self::IngressClass(_) => ObjectKind::IngressClass,
            Self::Service(_) => ObjectKind::Service,
            Self::EndpointSlice(_) => ObjectKind::EndpointSlice,
            Self::Endpoints(_) => ObjectKind::Endpoints,
            Self::Secret(_) => ObjectKind::Secret,
        }
    }

    /// The object's namespace (empty for cluster-scoped kinds) and name.
    fn namespace_and_name(&self) -> (&str, &str) {
        fn metadata(metadata: &ObjectMeta) -> (&str, &str) {
            (
                metadata.namespace.as_deref().unwrap_or_default(),
                metadata.name.as_deref().unwrap_or_default(),
            )
        }
        match self {
            Self::Ingress(o) => (&o.namespace, &o.name),
            Self::IngressClass(o) => metadata(&o.metadata),
            Self::Service(o) => (&o.namespace, &o.name),
            Self::EndpointSlice(o) => (&o.namespace, &o.name),
            Self::Endpoints(o) => metadata(&o.metadata),
            Self::Secret(o) => metadata(&o.metadata),
        }
    }

    /// The parts of [`Object::key`], borrowed from the object.
    pub(crate) fn borrowed_key(&self) -> (ObjectKind, &str, &str) {
        let (namespace, name) = self.namespace_and_name();
        (self.kind(), namespace, name)
    }

    /// Whether two objects have the same key, without building either key.
    pub fn same_key(&self, other: &Object) -> bool {
        self.borrowed_key() == other.borrowed_key()
    }

    /// The key that identifies the object.
    pub fn key(&self) -> ObjectKey {
        let (namespace, name) = self.namespace_and_name();
        ObjectKey {
            kind: self.kind(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}
