//! `spec.tls` into the certificate for each server name.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use k8s_openapi::api::core::v1::Secret;
use vestibule_resources::{IngressSummary, ObjectKey, ObjectKind, Snapshot};
use vestibule_routing::{HostMap, HostMatch};
use vestibule_tls::{Certificate, TlsTable};

use crate::by_name::by_namespaced_name;
use crate::rules::ingress_ref;
use crate::warning::{Warning, WarningReason};

/// The TLS configuration the rules are built against.
pub(crate) struct Tls {
    /// Certificates by server name, and the default.
    pub table: TlsTable,
    /// Every host listed in some `spec.tls`, with or without a usable certificate.
    pub hosts: HostMap<()>,
}

impl Tls {
    /// Whether a rule's host is configured for TLS: listed itself, or covered by a wildcard.
    pub fn covers(&self, host: &HostMatch) -> bool {
        match host {
            HostMatch::Exact(name) => self.hosts.get_normalized(name).is_some(),
            HostMatch::Wildcard(_) => self.hosts.get_pattern(host).is_some(),
            HostMatch::Any => false,
        }
    }
}

/// A Secret named by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretName {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

/// Loads the certificates the Ingresses (oldest first) name. The first Ingress to name a
/// certificate for a host keeps it; a host whose Secret is missing or broken is still a TLS host
/// and gets the default certificate.
pub(crate) fn build(
    snapshot: &Snapshot,
    ingresses: &[Arc<IngressSummary>],
    default_certificate: Option<&SecretName>,
    certificates: &mut Certificates,
    warnings: &mut Vec<Warning>,
) -> Tls {
    let mut secrets = Secrets::new(snapshot, std::mem::take(&mut certificates.loaded));
    let mut tls = Tls {
        table: TlsTable::default(),
        hosts: HostMap::default(),
    };
    if let Some(name) = default_certificate {
        match secrets.load(name) {
            Ok(certificate) => tls.table.default = Some(certificate),
            Err(problem) => warnings.push(Warning {
                object: ObjectKey {
                    kind: ObjectKind::Secret,
                    namespace: name.namespace.clone(),
                    name: name.name.clone(),
                },
                reason: problem.reason,
                message: format!(
                    "{}; the default certificate is self-signed instead",
                    problem.message
                ),
            }),
        }
    }
    for ingress in ingresses {
        let entries = ingress.spec.as_ref().map(|spec| &spec.tls[..]);
        let entries = entries.unwrap_or_default();
        if entries.is_empty() {
            continue;
        }
        let owner = ingress_ref(ingress);
        for entry in entries {
            let hosts = &entry.hosts;
            if hosts.is_empty() {
                warnings.push(Warning::on_ingress(
                    &owner,
                    WarningReason::InvalidTls,
                    "a spec.tls entry lists no hosts; it is ignored".to_owned(),
                ));
                continue;
            }
            let certificate = match &entry.secret_name {
                None => None,
                Some(name) => {
                    let name = SecretName {
                        namespace: owner.namespace.to_string(),
                        name: name.clone(),
                    };
                    match secrets.load(&name) {
                        Ok(certificate) => Some(certificate),
                        Err(problem) => {
                            warnings.push(Warning::on_ingress(
                                &owner,
                                problem.reason,
                                format!(
                                    "{}; hosts {} get the default certificate",
                                    problem.message,
                                    hosts.join(", ")
                                ),
                            ));
                            None
                        }
                    }
                }
            };
            for host in hosts {
                let pattern = match HostMatch::parse(host) {
                    Ok(HostMatch::Any) | Err(_) => {
                        warnings.push(Warning::on_ingress(
                            &owner,
                            WarningReason::InvalidTls,
                            format!("spec.tls host {host:?} is not a valid host name; ignored"),
                        ));
                        continue;
                    }
                    Ok(pattern) => pattern,
                };
                tls.hosts.insert(pattern.clone(), ());
                let Some(certificate) = &certificate else {
                    continue;
                };
                let kept = tls
                    .table
                    .by_host
                    .get_or_insert_with(pattern, || certificate.clone());
                if kept.source() != certificate.source() {
                    warnings.push(Warning::on_ingress(
                        &owner,
                        WarningReason::Conflict,
                        format!(
                            "TLS host {host} already has the certificate from {} (an older Ingress); {} is not used for it",
                            kept.source(),
                            certificate.source()
                        ),
                    ));
                }
            }
        }
    }
    certificates.loaded = secrets.loaded;
    tls
}

/// The certificates the last translation loaded, kept while their Secrets are the same
/// objects: reading a key pair costs more than translating the Ingress that names it.
#[derive(Debug, Default)]
pub(crate) struct Certificates {
    loaded: HashMap<SecretName, Loaded>,
}

/// A Secret and what loading its certificate gave.
#[derive(Debug)]
struct Loaded {
    secret: Arc<Secret>,
    certificate: Result<Arc<Certificate>, String>,
}

/// Why a Secret's certificate cannot be used.
struct SecretProblem {
    reason: WarningReason,
    message: String,
}

/// The snapshot's Secrets, each loaded at most once per translation, and not again if the last
/// translation loaded the very same object.
struct Secrets<'a> {
    by_name: HashMap<(&'a str, &'a str), &'a Arc<Secret>>,
    /// What the last translation loaded.
    earlier: HashMap<SecretName, Loaded>,
    loaded: HashMap<SecretName, Loaded>,
}

impl<'a> Secrets<'a> {
    fn new(snapshot: &'a Snapshot, earlier: HashMap<SecretName, Loaded>) -> Self {
        Self {
            by_name: by_namespaced_name(&snapshot.secrets),
            earlier,
            loaded: HashMap::new(),
        }
    }

    fn load(&mut self, name: &SecretName) -> Result<Arc<Certificate>, SecretProblem> {
        let Some(secret) = self
            .by_name
            .get(&(name.namespace.as_str(), name.name.as_str()))
            .copied()
        else {
            return Err(SecretProblem {
                reason: WarningReason::SecretNotFound,
                message: format!(
                    "Secret {} not found in namespace {}",
                    name.name, name.namespace
                ),
            });
        };
        let source = format!("Secret {}/{}", name.namespace, name.name);
        let earlier = &mut self.earlier;
        let loaded = self.loaded.entry(name.clone()).or_insert_with(|| {
            let same = |earlier: &Loaded| Arc::ptr_eq(&earlier.secret, secret);
            earlier.remove(name).filter(same).unwrap_or_else(|| Loaded {
                secret: Arc::clone(secret),
                certificate: certificate_of(secret, &source).map(Arc::new),
            })
        });
        loaded.certificate.clone().map_err(|reason| SecretProblem {
            reason: WarningReason::InvalidSecret,
            message: format!("{source} cannot be used: {reason}"),
        })
    }
}

fn certificate_of(secret: &Secret, source: &str) -> Result<Certificate, String> {
    let data = secret.data.as_ref();
    let field = |key: &str| {
        data.and_then(|data| data.get(key))
            .map(|bytes| bytes.0.as_slice())
    };
    match (field("tls.crt"), field("tls.key")) {
        (Some(chain), Some(key)) => {
            Certificate::from_pem(chain, key, source).map_err(|error| error.to_string())
        }
        _ => Err("it has no tls.crt and tls.key".to_owned()),
    }
}
