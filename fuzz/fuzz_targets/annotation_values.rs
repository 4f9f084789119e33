//! Annotation values through the translator: each input line `NAME=VALUE` becomes an
//! annotation on one Ingress (under `nginx.ingress.kubernetes.io/`, or `vestibule.dev/` when the
//! name starts with `v:`). The Ingress is translated and reviewed, and the resulting policy is
//! exercised the way the data plane uses it, with request values taken from the input.

#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vestibule_resources::{
    IngressBackendSummary, IngressPathSummary, IngressRuleSummary, IngressSpecSummary,
    IngressSummary, Object, ServiceBackendSummary, Snapshot,
};
use vestibule_routing::{KeyPart, RequestValue, RoutePolicy};
use vestibule_translator::{Options, review_annotations, translate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut annotations = BTreeMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let key = match name.strip_prefix("v:") {
            Some(name) => format!("vestibule.dev/{name}"),
            None => format!("nginx.ingress.kubernetes.io/{name}"),
        };
        annotations.insert(key, value.to_owned());
    }
    let ingress = ingress(annotations.clone());
    let verdicts = review_annotations(&ingress);
    assert_eq!(
        verdicts.len(),
        annotations.len(),
        "every annotation under our prefixes gets exactly one verdict"
    );
    for verdict in &verdicts {
        assert!(annotations.contains_key(&verdict.key));
        let _ = verdict.verdict.to_string();
    }
    let (snapshot, _) = Snapshot::from_objects(vec![Object::Ingress(Arc::new(ingress))]);
    let translation = translate(&snapshot, &Options::default());
    let probe = text.lines().last().unwrap_or_default();
    for vhost in translation.routes.virtual_hosts() {
        for rule in vhost.rules() {
            exercise(&rule.target.policy, probe);
        }
    }
});

/// Uses the policy as the data plane would, with `probe` as every request value.
fn exercise(policy: &RoutePolicy, probe: &str) {
    if let Some(redirect) = &policy.redirect {
        assert!((300..=308).contains(&redirect.status));
        let _ = redirect
            .location
            .render(|value: RequestValue| format!("{probe}{}", value.name()));
    }
    if let Some(root) = &policy.app_root {
        assert!(root.starts_with('/'));
    }
    if let Some(source) = &policy.source {
        if let Ok(addr) = probe.parse() {
            let _ = source.permits(addr);
        }
    }
    if let Some(cors) = &policy.cors {
        let _ = cors.allowed_origin(Some(probe));
        let _ = cors.allowed_origin(None);
    }
    if let Some(auth) = &policy.external_auth {
        let benign = |value: RequestValue| match value {
            RequestValue::Scheme => "https".to_owned(),
            RequestValue::Host | RequestValue::HttpHost => "fuzz.example".to_owned(),
            _ => "/a%2Fb?c=d".to_owned(),
        };
        let url = auth.url.render(benign);
        let uri: http::Uri = url.parse().unwrap_or_else(|error| panic!("{url}: {error}"));
        assert!(matches!(uri.scheme_str(), Some("http" | "https")), "{url}");
        assert!(uri.host().is_some_and(|host| !host.is_empty()), "{url}");
        for name in &auth.response_headers {
            assert!(
                http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "{name}"
            );
        }
        if let Some(signin) = &auth.signin {
            assert!(http::HeaderValue::try_from(signin.render(benign)).is_ok());
        }
        if let Some(redirect) = &auth.request_redirect {
            assert!(http::HeaderValue::try_from(redirect.as_str()).is_ok());
        }
        let _ = auth
            .url
            .render(|value: RequestValue| format!("{probe}{}", value.name()));
    }
    let balancing = &policy.balancing;
    if let Some(key) = &balancing.hash_by {
        assert!(key.0.iter().any(|part| !matches!(part, KeyPart::Text(_))));
        assert!(key.to_string().contains('$'));
    }
    if let Some(cookie) = &balancing.affinity {
        let path = cookie.path.as_deref().unwrap_or("/");
        assert!(path.starts_with('/'));
        let header = format!("{}=0; Path={path}", cookie.name);
        assert!(http::HeaderValue::try_from(header.as_str()).is_ok());
        assert_eq!(
            header.matches(';').count(),
            1,
            "no attribute injected: {header}"
        );
    }
    if let Some(limit) = &policy.rate_limit {
        assert!(limit.requests.len() <= 2);
        assert!(!limit.requests.is_empty() || limit.connections.is_some());
        for rate in &limit.requests {
            assert!(!rate.interval().is_zero());
            assert!(rate.tolerance() <= rate.period.saturating_mul(1_000));
        }
        if let Ok(addr) = probe.parse() {
            let _ = limit.exempts(addr);
        }
    }
}

fn ingress(annotations: BTreeMap<String, String>) -> IngressSummary {
    let backend = IngressBackendSummary {
        service: Some(ServiceBackendSummary {
            name: "web".into(),
            port_number: Some(80),
            port_name: None,
        }),
        resource_kind: None,
    };
    IngressSummary {
        namespace: "default".into(),
        name: "fuzzed".into(),
        annotations,
        spec: Some(IngressSpecSummary {
            ingress_class_name: Some("vestibule".into()),
            rules: [IngressRuleSummary {
                host: Some("fuzz.example".into()),
                paths: [IngressPathSummary {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend,
                }]
                .into(),
            }]
            .into(),
            ..IngressSpecSummary::default()
        }),
        ..IngressSummary::default()
    }
}
