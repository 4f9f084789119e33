//! The Kubernetes objects Vestibule reads, gathered into one immutable [`Snapshot`].
//!
//! Both configuration sources produce a `Snapshot`: the manifest directory by decoding text with
//! [`decode_manifest`], the cluster source from its reflectors. The translator reads nothing else.
//! Ingresses, Services and EndpointSlices are held as summaries of what is read of them
//! ([`IngressSummary`], [`ServiceSummary`], [`EndpointSliceSummary`]), the other kinds as
//! k8s-openapi objects.

mod decode;
mod ingress_summary;
mod object;
mod quick_yaml;
mod snapshot;
mod summary;

pub use decode::{DecodeError, ManifestFormat, decode_manifest};
pub use ingress_summary::{
    IngressBackendSummary, IngressPathSummary, IngressRuleSummary, IngressSpecSummary,
    IngressSummary, IngressTlsSummary, ServiceBackendSummary,
};
pub use object::{Object, ObjectKey, ObjectKind};
pub use snapshot::{DuplicateObject, Snapshot};
pub use summary::{
    EndpointSliceSummary, ReadyAddresses, ServicePortSummary, ServiceSummary, SlicePortSummary,
};

pub use k8s_openapi;
