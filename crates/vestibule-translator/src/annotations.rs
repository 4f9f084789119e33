//! Annotations that are never honoured, whatever their value.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;

use crate::rules::ingress_ref;
use crate::warning::{Warning, WarningReason};

/// The annotation prefixes Vestibule reads settings from.
const PREFIXES: [&str; 2] = ["nginx.ingress.kubernetes.io/", "vestibule.dev/"];

/// Warns about every `*-snippet` annotation (`configuration-snippet`, `server-snippet`,
/// `auth-snippet`, `stream-snippet`, ...): they carry proxy configuration text, which
/// Vestibule never interprets.
pub(crate) fn refuse_snippets(ingresses: &[Arc<Ingress>], warnings: &mut Vec<Warning>) {
    for ingress in ingresses {
        let Some(annotations) = &ingress.metadata.annotations else {
            continue;
        };
        for key in annotations.keys() {
            let snippet = PREFIXES
                .iter()
                .filter_map(|prefix| key.strip_prefix(prefix))
                .any(|name| name.ends_with("-snippet"));
            if snippet {
                warnings.push(Warning::on_ingress(
                    &ingress_ref(ingress),
                    WarningReason::RefusedAnnotation,
                    format!(
                        "annotation {key} is refused: Vestibule never runs annotation text as proxy configuration"
                    ),
                ));
            }
        }
    }
}
