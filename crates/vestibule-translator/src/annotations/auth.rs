//! `auth-type: basic` with `auth-secret`, `auth-secret-type` and `auth-realm`.
//!
//! Authentication fails closed: when an Ingress asks for it and it cannot be set up (no Secret,
//! a Secret in another namespace, no usable credentials), the Ingress's routes answer 503
//! instead of serving without it, as ingress-nginx does for a location it cannot configure.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use vestibule_htpasswd::Credentials;
use vestibule_resources::Snapshot;
use vestibule_routing::BasicAuth;

use super::Reader;
use super::values;
use crate::warning::WarningReason;

/// The realm when `auth-realm` is not set.
const DEFAULT_REALM: &str = "Authentication Required";

/// How an `auth-secret` stores its credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SecretType {
    /// An htpasswd file under the key `auth`.
    File,
    /// One key per user, whose value is the password hash.
    Map,
}

/// What basic authentication an Ingress gets: the setting, or why its routes must be refused.
pub(super) enum Outcome {
    /// No authentication asked for.
    None,
    /// Authentication as configured.
    Basic(BasicAuth),
    /// Authentication was asked for and cannot be provided.
    Denied(String),
}

/// Reads the basic-authentication settings of an Ingress in `namespace`, resolving its
/// Secret in `snapshot`.
pub(super) fn read(reader: &mut Reader<'_>, snapshot: &Snapshot, namespace: &str) -> Outcome {
    let auth_type = reader.parse("auth-type", |text| match text.trim() {
        "basic" => Ok(()),
        "digest" => Err("digest authentication is not supported; use basic".to_owned()),
        _ => Err("expected basic".to_owned()),
    });
    let secret_name = reader.parse("auth-secret", values::object_name);
    let secret_type = reader.parse("auth-secret-type", |text| match text.trim() {
        "auth-file" => Ok(SecretType::File),
        "auth-map" => Ok(SecretType::Map),
        _ => Err("expected auth-file or auth-map".to_owned()),
    });
    let realm = reader.parse("auth-realm", values::quoted_text);
    let asked = reader.has("auth-type");
    if !asked {
        return Outcome::None;
    }
    if auth_type.is_none() {
        return Outcome::Denied("its auth-type is invalid".to_owned());
    }
    let Some((secret_namespace, name)) = secret_name else {
        return Outcome::Denied(
            "auth-type is basic but auth-secret names no valid Secret".to_owned(),
        );
    };
    if secret_namespace
        .as_deref()
        .is_some_and(|other| other != namespace)
    {
        return Outcome::Denied(format!(
            "auth-secret {}/{name} is in another namespace; an Ingress may only use Secrets of its own",
            secret_namespace.unwrap_or_default()
        ));
    }
    let Some(secret) = find_secret(snapshot, namespace, &name) else {
        return Outcome::Denied(format!("auth-secret {namespace}/{name} does not exist"));
    };
    let (credentials, problems) = credentials_of(secret, secret_type.unwrap_or(SecretType::File));
    for problem in problems {
        reader.problem(
            WarningReason::InvalidSecret,
            format!("auth-secret {namespace}/{name}: {problem}"),
        );
    }
    if credentials.is_empty() {
        return Outcome::Denied(format!(
            "auth-secret {namespace}/{name} holds no usable credentials"
        ));
    }
    Outcome::Basic(BasicAuth {
        realm: realm.unwrap_or_else(|| DEFAULT_REALM.to_owned()),
        credentials: Arc::new(credentials),
    })
}

fn find_secret<'a>(snapshot: &'a Snapshot, namespace: &str, name: &str) -> Option<&'a Secret> {
    snapshot
        .secrets
        .iter()
        .find(|secret| {
            secret.metadata.namespace.as_deref() == Some(namespace)
                && secret.metadata.name.as_deref() == Some(name)
        })
        .map(AsRef::as_ref)
}

fn credentials_of(secret: &Secret, secret_type: SecretType) -> (Credentials, Vec<String>) {
    let data = secret.data.as_ref();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let (credentials, problems) = match secret_type {
        SecretType::File => {
            let Some(file) = data.and_then(|data| data.get("auth")) else {
                return (
                    Credentials::default(),
                    vec!["it has no key auth".to_owned()],
                );
            };
            Credentials::from_htpasswd(&text(&file.0))
        }
        SecretType::Map => {
            let pairs: Vec<(String, String)> = data
                .into_iter()
                .flatten()
                .map(|(user, hash)| (user.clone(), text(&hash.0)))
                .collect();
            Credentials::from_pairs(pairs.iter().map(|(u, h)| (u.as_str(), h.as_str())))
        }
    };
    (
        credentials,
        problems.iter().map(ToString::to_string).collect(),
    )
}
