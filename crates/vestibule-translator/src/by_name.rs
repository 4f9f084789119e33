//! Snapshot objects looked up by namespace and name.

use std::sync::Arc;

use foldhash::HashMap;
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// `objects` keyed by their namespace and name.
pub(crate) fn by_namespaced_name<T>(objects: &[Arc<T>]) -> HashMap<(&str, &str), &Arc<T>>
where
    T: Metadata<Ty = ObjectMeta>,
{
    objects
        .iter()
        .map(|object| {
            let metadata = object.metadata();
            let key = (
                metadata.namespace.as_deref().unwrap_or_default(),
                metadata.name.as_deref().unwrap_or_default(),
            );
            (key, object)
        })
        .collect()
}
