//! Decoding manifest text (YAML or JSON, single objects, multi-document streams or `List`s).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ByteString, Metadata};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ingress_summary::IngressSummary;
use crate::object::{Object, ObjectKind};
use crate::quick_yaml;
use crate::summary::{EndpointSliceSummary, ServiceSummary};

/// The namespace a namespaced object without one is placed in.
const DEFAULT_NAMESPACE: &str = "default";

/// How manifest text is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    /// YAML, possibly several documents separated by `---`.
    Yaml,
    /// One JSON value.
    Json,
}

/// Why manifest text could not be decoded. Names the document (counted from 0) where it can.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The text is not well-formed YAML or JSON.
    #[error("document {document}: not valid {format}: {reason}")]
    Syntax {
        /// The document the error is in.
        document: usize,
        /// "YAML" or "JSON".
        format: &'static str,
        /// The parser's message, with its line and column.
        reason: String,
    },
    /// A document is well-formed but not a Kubernetes object.
    #[error("document {document}: {reason}")]
    NotAnObject {
        /// The document.
        document: usize,
        /// What is missing.
        reason: String,
    },
    /// A kind Vestibule reads, in an API version it does not.
    #[error(
        "document {document}: {kind} {name:?} has apiVersion {found:?}; Vestibule reads {kind} as {expected:?}"
    )]
    UnsupportedVersion {
        /// The document.
        document: usize,
        /// The kind.
        kind: ObjectKind,
        /// The object's name.
        name: String,
        /// The version found.
        found: String,
        /// The version Vestibule reads.
        expected: &'static str,
    },
    /// A document of a kind Vestibule reads whose fields do not fit the kind's schema.
    #[error("document {document}: {kind} {name:?} is invalid: {reason}")]
    Invalid {
        /// The document.
        document: usize,
        /// The kind.
        kind: ObjectKind,
        /// The object's name, if it has one.
        name: String,
        /// What does not fit.
        reason: String,
    },
}

/// Decodes every object of a kind Vestibule reads from manifest text.
///
/// Objects of other kinds are skipped quietly; `List` kinds (as `kubectl get -o yaml` prints)
/// are unpacked. Namespaced objects without a namespace are placed in `default`. A Secret's
/// `stringData` is merged into `data`, as the API server does.
pub fn decode_manifest(text: &str, format: ManifestFormat) -> Result<Vec<Object>, DecodeError> {
    let documents = match format {
        ManifestFormat::Yaml => match quick_yaml::read_documents(text) {
            Some(documents) => documents,
            None => {
                serde_saphyr::from_multiple::<Value>(text).map_err(|error| DecodeError::Syntax {
                    document: yaml_document_at(text, error.location().map(|at| at.line())),
                    format: "YAML",
                    reason: error.to_string(),
                })?
            }
        },
        ManifestFormat::Json => {
            vec![
                serde_json::from_str(text).map_err(|error| DecodeError::Syntax {
                    document: 0,
                    format: "JSON",
                    reason: error.to_string(),
                })?,
            ]
        }
    };
    let mut objects = Vec::new();
    for (document, value) in documents.into_iter().enumerate() {
        decode_value(document, value, &mut objects)?;
    }
    Ok(objects)
}

/// The index of the YAML document that holds `line` (1-based), counting `---` separators.
fn yaml_document_at(text: &str, line: Option<u64>) -> usize {
    let Some(line) = line else { return 0 };
    let before = text.lines().take(line.saturating_sub(1) as usize);
    let mut separators = 0;
    let mut content_seen = false;
    for text_line in before {
        if text_line.starts_with("---") {
            if content_seen {
                separators += 1;
            }
            content_seen = false;
        } else if !text_line.trim().is_empty() && !text_line.trim_start().starts_with('#') {
            content_seen = true;
        }
    }
    separators
}

fn decode_value(document: usize, value: Value, out: &mut Vec<Object>) -> Result<(), DecodeError> {
    if value.is_null() {
        return Ok(());
    }
    let not_object = |reason: &str| DecodeError::NotAnObject {
        document,
        reason: reason.to_owned(),
    };
    let Value::Object(mut fields) = value else {
        return Err(not_object("not a mapping with apiVersion and kind"));
    };
    let kind = match fields.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(not_object("has no kind")),
    };
    let api_version = match fields.get("apiVersion") {
        Some(Value::String(version)) => version.clone(),
        _ => return Err(not_object("has no apiVersion")),
    };
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = fields.remove("items") {
            for item in items {
                decode_value(document, item, out)?;
            }
        }
        return Ok(());
    }
    let Some(kind) = ObjectKind::from_kind(&kind) else {
        return Ok(());
    };
    let name = fields
        .get("metadata")
        .and_then(|metadata| metadata.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if api_version != kind.api_version() {
        return Err(DecodeError::UnsupportedVersion {
            document,
            kind,
            name,
            found: api_version,
            expected: kind.api_version(),
        });
    }
    let invalid = |reason: String| DecodeError::Invalid {
        document,
        kind,
        name: name.clone(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("metadata.name is missing".to_owned()));
    }
    let value = Value::Object(fields);
    let object = match kind {
        ObjectKind::Ingress => {
            let ingress: Ingress = namespaced(typed(value).map_err(invalid)?);
            Object::Ingress(Arc::new(IngressSummary::from(ingress)))
        }
        ObjectKind::IngressClass => Object::IngressClass(Arc::new(typed(value).map_err(invalid)?)),
        ObjectKind::Service => {
            let service: Service = namespaced(typed(value).map_err(invalid)?);
            Object::Service(Arc::new(ServiceSummary::from(&service)))
        }
        ObjectKind::EndpointSlice => {
            let slice: EndpointSlice = namespaced(typed(value).map_err(invalid)?);
            Object::EndpointSlice(Arc::new(EndpointSliceSummary::from(&slice)))
        }
        ObjectKind::Endpoints => {
            Object::Endpoints(Arc::new(namespaced(typed(value).map_err(invalid)?)))
        }
        ObjectKind::Secret => Object::Secret(Arc::new(namespaced(merge_string_data(
            typed(value).map_err(invalid)?,
        )))),
    };
    out.push(object);
    Ok(())
}

/// Places a namespaced object without a namespace in `default`.
fn namespaced<T: Metadata<Ty = ObjectMeta>>(mut object: T) -> T {
    object
        .metadata_mut()
        .namespace
        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned());
    object
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|error| error.to_string())
}

fn merge_string_data(mut secret: Secret) -> Secret {
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (key, value) in string_data {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Vec<Object>, DecodeError> {
        decode_manifest(text, ManifestFormat::Yaml)
    }

    #[test]
    fn decodes_multi_document_yaml_and_skips_other_kinds() {
        let objects = yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\n",
        )
        .expect("valid");
        let keys: Vec<_> = objects.iter().map(|o| o.key().to_string()).collect();
        assert_eq!(keys, ["Service default/web", "Ingress shop/web"]);
    }

    #[test]
    fn unpacks_lists_and_reads_json() {
        let objects = decode_manifest(
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}]}"#,
            ManifestFormat::Json,
        )
        .expect("valid");
        assert_eq!(objects.len(), 1);
    }

    #[test]
    fn syntax_errors_name_the_document() {
        let error =
            yaml("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n")
                .expect_err("broken");
        assert!(
            matches!(error, DecodeError::Syntax { document: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn old_api_versions_are_named() {
        let error = yaml("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n")
            .expect_err("unsupported");
        assert_eq!(
            error.to_string(),
            "document 0: Ingress \"old\" has apiVersion \"extensions/v1beta1\"; Vestibule reads Ingress as \"networking.k8s.io/v1\""
        );
    }

    #[test]
    fn schema_mismatches_are_invalid() {
        let error = yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports: not-a-list\n",
        )
        .expect_err("invalid");
        assert!(matches!(error, DecodeError::Invalid { .. }), "{error}");
        let nameless = yaml("apiVersion: v1\nkind: Service\nmetadata: {}\n").expect_err("nameless");
        assert!(nameless.to_string().contains("metadata.name is missing"));
    }

    #[test]
    fn string_data_is_merged_into_data() {
        let objects =
            yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {user: admin}\n")
                .expect("valid");
        let Object::Secret(secret) = &objects[0] else {
            panic!("not a secret")
        };
        let data = secret.data.as_ref().expect("data");
        assert_eq!(data["user"].0, b"admin");
    }

    #[test]
    fn empty_documents_are_fine() {
        assert_eq!(yaml("---\n# nothing\n---\n").expect("valid"), vec![]);
    }
}
