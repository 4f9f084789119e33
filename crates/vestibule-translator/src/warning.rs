//! What the translator reports about an Ingress it serves.

use std::fmt;

use vestibule_resources::{ObjectKey, ObjectKind};
use vestibule_routing::IngressRef;

/// Why a warning was raised; its name is the Kubernetes Event reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningReason {
    /// A rule's host, path or path type is invalid; the rule is ignored.
    InvalidRule,
    /// A backend that is not a Service (a `resource` backend, or none at all).
    UnsupportedBackend,
    /// The referenced Service does not exist in the Ingress's namespace.
    ServiceNotFound,
    /// The Service exists but has no such port.
    ServicePortNotFound,
    /// The Service has no ready endpoint.
    NoReadyEndpoints,
    /// An older Ingress already serves the same host, path and path type (or default backend).
    Conflict,
    /// The Ingress has neither rules nor a default backend.
    NothingToRoute,
    /// A TLS Secret does not exist in the Ingress's namespace.
    SecretNotFound,
    /// A TLS Secret holds no usable certificate and key.
    InvalidSecret,
    /// A `spec.tls` entry is invalid and ignored.
    InvalidTls,
    /// An annotation that would inject proxy configuration text (a `*-snippet`); never applied.
    RefusedAnnotation,
    /// An annotation's value is invalid; that setting keeps its default.
    InvalidAnnotation,
    /// An annotation Vestibule does not provide (known from ingress-nginx, or unknown).
    UnsupportedAnnotation,
    /// A canary Ingress's rule has no main Ingress rule to attach to; it is ignored.
    UnmatchedCanary,
}

impl WarningReason {
    /// The reason as a Kubernetes Event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRule => "InvalidRule",
            Self::UnsupportedBackend => "UnsupportedBackend",
            Self::ServiceNotFound => "ServiceNotFound",
            Self::ServicePortNotFound => "ServicePortNotFound",
            Self::NoReadyEndpoints => "NoReadyEndpoints",
            Self::Conflict => "Conflict",
            Self::NothingToRoute => "NothingToRoute",
            Self::SecretNotFound => "SecretNotFound",
            Self::InvalidSecret => "InvalidSecret",
            Self::InvalidTls => "InvalidTls",
            Self::RefusedAnnotation => "RefusedAnnotation",
            Self::InvalidAnnotation => "InvalidAnnotation",
            Self::UnsupportedAnnotation => "UnsupportedAnnotation",
            Self::UnmatchedCanary => "UnmatchedCanary",
        }
    }
}

/// One problem found in one object (usually an Ingress).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// The object concerned: the Kubernetes Event goes to it.
    pub object: ObjectKey,
    /// Why.
    pub reason: WarningReason,
    /// A sentence for operators.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.object,
            self.reason.as_str(),
            self.message
        )
    }
}

impl Warning {
    /// A warning about an Ingress.
    pub(crate) fn on_ingress(ingress: &IngressRef, reason: WarningReason, message: String) -> Self {
        Self {
            object: ObjectKey {
                kind: ObjectKind::Ingress,
                namespace: ingress.namespace.to_string(),
                name: ingress.name.to_string(),
            },
            reason,
            message,
        }
    }
}
