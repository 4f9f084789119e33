//! The parts of an Ingress that the translator and the controller read.
//!
//! A decoded k8s-openapi Ingress holds every field of its schema: about 1.5 KB for an Ingress
//! with one rule of three paths, before any text. The snapshot keeps this summary instead,
//! whose layout follows the Ingress's own so the translator reads it the same way.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, Ingress, IngressBackend, IngressLoadBalancerIngress, IngressRule, IngressSpec,
    IngressTLS,
};
use k8s_openapi::jiff::Timestamp;

/// What is read of an Ingress: its identity, annotations, spec and published addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngressSummary {
    /// The namespace.
    pub namespace: Box<str>,
    /// The name.
    pub name: Box<str>,
    /// The object's UID, which Kubernetes Events refer to; unset in manifest files.
    pub uid: Option<Box<str>>,
    /// The version of the object a status update is based on; unset in manifest files.
    pub resource_version: Option<Box<str>>,
    /// When the object was created; older Ingresses take precedence.
    pub created: Option<Timestamp>,
    /// The annotations.
    pub annotations: BTreeMap<String, String>,
    /// The spec; `None` when the Ingress has none.
    pub spec: Option<IngressSpecSummary>,
    /// The addresses in `status.loadBalancer.ingress`.
    pub load_balancer: Vec<IngressLoadBalancerIngress>,
}

/// An Ingress's spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngressSpecSummary {
    /// `ingressClassName`.
    pub ingress_class_name: Option<Box<str>>,
    /// `defaultBackend`; boxed, as few Ingresses have one.
    pub default_backend: Option<Box<IngressBackendSummary>>,
    /// `rules`, in order.
    pub rules: Box<[IngressRuleSummary]>,
    /// `tls`, in order.
    pub tls: Box<[IngressTlsSummary]>,
}

/// One entry of `spec.rules`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressRuleSummary {
    /// `host`; `None` for a rule that matches every host.
    pub host: Option<Box<str>>,
    /// `http.paths`, in order.
    pub paths: Box<[IngressPathSummary]>,
}

/// One entry of a rule's `http.paths`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPathSummary {
    /// `path`; `None` when unset, which means `/`.
    pub path: Option<Box<str>>,
    /// `pathType`, as written.
    pub path_type: Box<str>,
    /// `backend`.
    pub backend: IngressBackendSummary,
}

/// A backend an Ingress names: a Service port, or some other resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressBackendSummary {
    /// `service`.
    pub service: Option<ServiceBackendSummary>,
    /// The `kind` of `resource`, for a backend that is not a Service.
    pub resource_kind: Option<Box<str>>,
}

/// `backend.service`: a Service and one of its ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceBackendSummary {
    /// The Service's name.
    pub name: Box<str>,
    /// `port.number`.
    pub port_number: Option<i32>,
    /// `port.name`.
    pub port_name: Option<Box<str>>,
}

/// One entry of `spec.tls`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressTlsSummary {
    /// `hosts`, in order.
    pub hosts: Box<[String]>,
    /// `secretName`.
    pub secret_name: Option<String>,
}

impl From<Ingress> for IngressSummary {
    fn from(ingress: Ingress) -> Self {
        let metadata = ingress.metadata;
        Self {
            namespace: boxed(metadata.namespace),
            name: boxed(metadata.name),
            uid: metadata.uid.map(Box::from),
            resource_version: metadata.resource_version.map(Box::from),
            created: metadata.creation_timestamp.map(|time| time.0),
            annotations: metadata.annotations.unwrap_or_default(),
            spec: ingress.spec.map(IngressSpecSummary::from),
            load_balancer: ingress
                .status
                .and_then(|status| status.load_balancer?.ingress)
                .unwrap_or_default(),
        }
    }
}

impl From<IngressSpec> for IngressSpecSummary {
    fn from(spec: IngressSpec) -> Self {
        Self {
            ingress_class_name: spec.ingress_class_name.map(Box::from),
            default_backend: spec
                .default_backend
                .map(|backend| Box::new(IngressBackendSummary::from(backend))),
            rules: spec
                .rules
                .unwrap_or_default()
                .into_iter()
                .map(IngressRuleSummary::from)
                .collect(),
            tls: spec
                .tls
                .unwrap_or_default()
                .into_iter()
                .map(IngressTlsSummary::from)
                .collect(),
        }
    }
}

impl From<IngressRule> for IngressRuleSummary {
    fn from(rule: IngressRule) -> Self {
        Self {
            host: rule.host.map(Box::from),
            paths: rule
                .http
                .map(|http| http.paths)
                .unwrap_or_default()
                .into_iter()
                .map(IngressPathSummary::from)
                .collect(),
        }
    }
}

impl From<HTTPIngressPath> for IngressPathSummary {
    fn from(path: HTTPIngressPath) -> Self {
        Self {
            path: path.path.map(Box::from),
            path_type: path.path_type.into(),
            backend: path.backend.into(),
        }
    }
}

impl From<IngressBackend> for IngressBackendSummary {
    fn from(backend: IngressBackend) -> Self {
        Self {
            service: backend.service.map(|service| {
                let port = service.port.unwrap_or_default();
                ServiceBackendSummary {
                    name: service.name.into(),
                    port_number: port.number,
                    port_name: port.name.map(Box::from),
                }
            }),
            resource_kind: backend.resource.map(|resource| resource.kind.into()),
        }
    }
}

impl From<IngressTLS> for IngressTlsSummary {
    fn from(tls: IngressTLS) -> Self {
        Self {
            hosts: tls.hosts.unwrap_or_default().into(),
            secret_name: tls.secret_name,
        }
    }
}

fn boxed(text: Option<String>) -> Box<str> {
    text.unwrap_or_default().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(json: serde_json::Value) -> IngressSummary {
        let ingress: Ingress = serde_json::from_value(json).expect("an Ingress");
        IngressSummary::from(ingress)
    }

    #[test]
    fn keeps_what_routing_reads_in_order() {
        let summary = summary(serde_json::json!({
            "metadata": {
                "name": "shop", "namespace": "web", "uid": "u-1", "resourceVersion": "7",
                "creationTimestamp": "2026-01-02T03:04:05Z",
                "annotations": {"nginx.ingress.kubernetes.io/use-regex": "true"},
                "labels": {"team": "a"},
            },
            "spec": {
                "ingressClassName": "vestibule",
                "defaultBackend": {"resource": {"kind": "Bucket", "name": "b"}},
                "rules": [
                    {"host": "a.example", "http": {"paths": [
                        {"path": "/x", "pathType": "Prefix",
                         "backend": {"service": {"name": "s", "port": {"number": 80}}}},
                        {"pathType": "Exact",
                         "backend": {"service": {"name": "t", "port": {"name": "http"}}}},
                    ]}},
                    {},
                ],
                "tls": [{"hosts": ["a.example"], "secretName": "cert"}, {}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        }));
        assert_eq!(&*summary.namespace, "web");
        assert_eq!(summary.uid.as_deref(), Some("u-1"));
        assert_eq!(summary.resource_version.as_deref(), Some("7"));
        assert_eq!(
            summary.created.map(|time| time.to_string()).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(summary.annotations.len(), 1);
        assert_eq!(summary.load_balancer[0].ip.as_deref(), Some("10.0.0.1"));
        let spec = summary.spec.expect("a spec");
        assert_eq!(spec.ingress_class_name.as_deref(), Some("vestibule"));
        let default = spec.default_backend.expect("a default backend");
        assert_eq!(default.service, None);
        assert_eq!(default.resource_kind.as_deref(), Some("Bucket"));
        assert_eq!(spec.rules.len(), 2);
        let paths = &spec.rules[0].paths;
        assert_eq!(spec.rules[0].host.as_deref(), Some("a.example"));
        assert_eq!(paths[0].path.as_deref(), Some("/x"));
        assert_eq!(paths[1].path, None);
        assert_eq!(&*paths[1].path_type, "Exact");
        let named = paths[1].backend.service.as_ref().expect("a service");
        assert_eq!(
            (named.port_number, named.port_name.as_deref()),
            (None, Some("http"))
        );
        assert_eq!(spec.rules[1], IngressRuleSummary::default());
        assert_eq!(spec.tls[0].secret_name.as_deref(), Some("cert"));
        assert_eq!(spec.tls[1], IngressTlsSummary::default());
    }

    #[test]
    fn an_ingress_without_spec_or_status_has_none() {
        let summary = summary(serde_json::json!({"metadata": {"name": "bare"}}));
        assert_eq!(summary.spec, None);
        assert!(summary.load_balancer.is_empty());
        assert_eq!(&*summary.namespace, "");
    }
}
