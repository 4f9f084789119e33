//! Reflector stores that hold the summary routing reads of each object instead of the object.
//!
//! A Service or EndpointSlice as k8s-openapi decodes it holds every field of its schema; a
//! store of summaries keeps a few hundred bytes per object, and each summary stays the same
//! allocation until its object changes, so a translator sees unchanged objects as unchanged.

use std::borrow::Cow;
use std::sync::Arc;

use kube::runtime::reflector::Lookup;
use kube::runtime::watcher::Event;
use vestibule_resources::{EndpointSliceSummary, IngressSummary, ServiceSummary};

/// A summary kept in a store in place of its object.
pub(crate) trait Summary: Send + Sync + 'static {
    /// The kind of the objects summarized.
    const KIND: &'static str;
    /// Their API group, empty for the core group.
    const GROUP: &'static str;
    /// Their API version.
    const VERSION: &'static str;
    /// Their resource name.
    const PLURAL: &'static str;
    /// The object's namespace.
    fn namespace(&self) -> &str;
    /// The object's name.
    fn name(&self) -> &str;
}

impl Summary for ServiceSummary {
    const KIND: &'static str = "Service";
    const GROUP: &'static str = "";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "services";
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Summary for IngressSummary {
    const KIND: &'static str = "Ingress";
    const GROUP: &'static str = "networking.k8s.io";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "ingresses";
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Summary for EndpointSliceSummary {
    const KIND: &'static str = "EndpointSlice";
    const GROUP: &'static str = "discovery.k8s.io";
    const VERSION: &'static str = "v1";
    const PLURAL: &'static str = "endpointslices";
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A summary as a store holds it, shared with every snapshot that includes it.
#[derive(Debug)]
pub(crate) struct Summarized<S>(pub Arc<S>);

impl<S> Clone for Summarized<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S: Summary> Lookup for Summarized<S> {
    type DynamicType = ();

    fn kind(_: &()) -> Cow<'_, str> {
        S::KIND.into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        S::GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        S::VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        S::PLURAL.into()
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(self.0.name().into())
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        Some(self.0.namespace().into())
    }

    fn resource_version(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        None
    }
}

/// The same watch event about the summary of its object.
pub(crate) fn summarize_event<K, S>(
    event: Event<K>,
    summarize: impl Fn(K) -> S,
) -> Event<Summarized<S>> {
    let summarized = |object: K| Summarized(Arc::new(summarize(object)));
    match event {
        Event::Apply(object) => Event::Apply(summarized(object)),
        Event::Delete(object) => Event::Delete(summarized(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(summarized(object)),
        Event::InitDone => Event::InitDone,
    }
}

/// The summaries a store holds, as a snapshot lists them.
pub(crate) fn summaries<S: Summary>(
    store: &kube::runtime::reflector::Store<Summarized<S>>,
) -> Vec<Arc<S>> {
    store
        .state()
        .iter()
        .map(|summarized| Arc::clone(&summarized.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use kube::runtime::reflector::store::Writer;

    use super::*;

    fn service(name: &str, port: i32) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"ports": [{"port": port}]}
        }))
        .expect("a Service")
    }

    #[test]
    fn a_store_of_summaries_follows_the_watch_and_keeps_unchanged_summaries() {
        let mut writer = Writer::<Summarized<ServiceSummary>>::new(());
        let store = writer.as_reader();
        let apply = |writer: &mut Writer<_>, event| {
            writer.apply_watcher_event(&summarize_event(event, |service| {
                ServiceSummary::from(&service)
            }));
        };
        apply(&mut writer, Event::Init);
        apply(&mut writer, Event::InitApply(service("web", 80)));
        apply(&mut writer, Event::InitApply(service("api", 8080)));
        apply(&mut writer, Event::InitDone);
        let first = summaries(&store);
        assert_eq!(first.len(), 2);

        apply(&mut writer, Event::Apply(service("api", 9090)));
        apply(&mut writer, Event::Delete(service("gone", 1)));
        let second = summaries(&store);
        let find = |all: &[Arc<ServiceSummary>], name: &str| {
            all.iter()
                .find(|summary| &*summary.name == name)
                .cloned()
                .expect("listed")
        };
        assert!(Arc::ptr_eq(&find(&first, "web"), &find(&second, "web")));
        assert_eq!(find(&second, "api").ports[0].port, 9090);

        apply(&mut writer, Event::Delete(service("web", 80)));
        let names: Vec<Box<str>> = summaries(&store)
            .iter()
            .map(|summary| summary.name.clone())
            .collect();
        assert_eq!(names, [Box::from("api")]);
    }
}
