//! Table-driven translator tests: each `cases/NAME.yaml` holds manifests, and `cases/NAME.golden`
//! the expected translation. Comment lines in the YAML drive the harness:
//! - `# options: ...` sets translator options;
//! - `# probe: HOST PATH` routes a request through the result;
//! - `# tls-secret: NAMESPACE/NAME HOST...` adds a `kubernetes.io/tls` Secret with a freshly
//!   generated certificate for those hosts.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the golden files after an intended change, and review
//! the diff.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use vestibule_resources::k8s_openapi::ByteString;
use vestibule_resources::k8s_openapi::api::core::v1::Secret;
use vestibule_resources::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use vestibule_resources::{ManifestFormat, Object, Snapshot, decode_manifest};
use vestibule_routing::{Route, RoutePolicy, Selected};
use vestibule_translator::{Options, SecretName, Translation, translate};

fn options_from(text: &str) -> Options {
    let mut options = Options::default();
    for line in text.lines() {
        let Some(settings) = line.strip_prefix("# options:") else {
            continue;
        };
        for setting in settings.split_whitespace() {
            match setting.split_once('=') {
                None if setting == "watch-ingress-without-class" => {
                    options.watch_ingress_without_class = true;
                }
                Some(("ingress-class", class)) => options.ingress_class = class.to_owned(),
                Some(("ssl-redirect", "false")) => options.ssl_redirect = false,
                None if setting == "enable-ssl-passthrough" => options.ssl_passthrough = true,
                Some(("default-ssl-certificate", secret)) => {
                    let (namespace, name) = secret.split_once('/').expect("NAMESPACE/NAME");
                    options.default_certificate = Some(SecretName {
                        namespace: namespace.to_owned(),
                        name: name.to_owned(),
                    });
                }
                _ => panic!("unknown option {setting}"),
            }
        }
    }
    options
}

fn generated_secrets(text: &str) -> Vec<Object> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# tls-secret:"))
        .map(|spec| {
            let mut words = spec.split_whitespace();
            let (namespace, name) = words
                .next()
                .and_then(|secret| secret.split_once('/'))
                .expect("tls-secret: NAMESPACE/NAME HOST...");
            let hosts: Vec<String> = words.map(str::to_owned).collect();
            let generated = rcgen::generate_simple_self_signed(hosts).expect("certificate");
            let data = [
                ("tls.crt", generated.cert.pem()),
                ("tls.key", generated.signing_key.serialize_pem()),
            ]
            .into_iter()
            .map(|(key, pem)| (key.to_owned(), ByteString(pem.into_bytes())))
            .collect();
            Object::Secret(Arc::new(Secret {
                metadata: ObjectMeta {
                    namespace: Some(namespace.to_owned()),
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(data),
                ..Secret::default()
            }))
        })
        .collect()
}

fn render(translation: &Translation, probes: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let served: Vec<String> = translation
        .ingresses
        .iter()
        .map(ToString::to_string)
        .collect();
    writeln!(out, "ingresses: {}", served.join(", ")).unwrap();
    for vhost in translation.routes.virtual_hosts() {
        for rule in vhost.rules() {
            let route = &rule.target;
            let flags = match (route.tls, route.https_redirect) {
                (true, true) => " [tls, redirect]",
                (true, false) => " [tls]",
                (false, true) => " [redirect]",
                _ => "",
            };
            writeln!(
                out,
                "route {} {} -> {} (from {}){flags}",
                vhost.host(),
                rule.path,
                route.backend,
                route.ingress
            )
            .unwrap();
            render_canary(&mut out, route);
        }
    }
    if let Some(route) = translation.routes.default_backend() {
        writeln!(out, "default -> {} (from {})", route.backend, route.ingress).unwrap();
        render_canary(&mut out, route);
    }
    let mut policies = std::collections::BTreeMap::new();
    for vhost in translation.routes.virtual_hosts() {
        for rule in vhost.rules() {
            policies.insert(rule.target.ingress.to_string(), rule.target.policy.clone());
        }
    }
    for (ingress, policy) in policies {
        if *policy != RoutePolicy::default() {
            writeln!(out, "policy {ingress}: {policy:?}").unwrap();
        }
    }
    for (backend, endpoints) in &translation.backends {
        let endpoints: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
        let endpoints = if endpoints.is_empty() {
            "(none)".to_owned()
        } else {
            endpoints.join(", ")
        };
        writeln!(out, "backend {backend} = {endpoints}").unwrap();
    }
    for (host, certificate) in translation.tls.by_host.iter() {
        writeln!(out, "tls {host} -> {}", certificate.source()).unwrap();
    }
    if let Some(certificate) = &translation.tls.default {
        writeln!(out, "tls default -> {}", certificate.source()).unwrap();
    }
    for (host, passthrough) in translation.passthrough.iter() {
        writeln!(
            out,
            "passthrough {host} -> {} (from {})",
            passthrough.backend, passthrough.ingress
        )
        .unwrap();
    }
    for warning in &translation.warnings {
        writeln!(out, "warning {warning}").unwrap();
    }
    for (host, path) in probes {
        let answer = match translation.routes.route(host, path) {
            Some(Selected::Rule(rule)) => {
                let mut answer = format!("{} via {}", rule.target.backend, rule.path);
                if let Some(rewrite) = &rule.target.policy.rewrite {
                    let upstream = rewrite.rewrite(&rule.path, path);
                    write!(answer, ", upstream path {upstream}").unwrap();
                }
                answer
            }
            Some(Selected::DefaultBackend(route)) => format!("{} via default", route.backend),
            None => "404".to_owned(),
        };
        writeln!(out, "probe {host} {path} -> {answer}").unwrap();
    }
    out
}

fn render_canary(out: &mut String, route: &Route) {
    if let Some(canary) = &route.canary {
        let rule = &canary.rule;
        writeln!(
            out,
            "  canary -> {} (from {}) header {:?} cookie {:?} weight {}/{}",
            canary.backend,
            canary.ingress,
            rule.header,
            rule.cookie,
            rule.weight.weight,
            rule.weight.total
        )
        .unwrap();
    }
}

#[test]
fn golden_cases() {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&cases)
        .expect("cases directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no cases found");
    let mut failures = Vec::new();
    for input in inputs {
        let text = std::fs::read_to_string(&input).expect("readable case");
        let mut objects = decode_manifest(&text, ManifestFormat::Yaml)
            .unwrap_or_else(|error| panic!("{}: {error}", input.display()));
        objects.extend(generated_secrets(&text));
        let (snapshot, duplicates) = Snapshot::from_objects(objects);
        assert!(duplicates.is_empty(), "{}: duplicates", input.display());
        let probes: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# probe:"))
            .map(|probe| probe.trim().split_once(' ').expect("probe: HOST PATH"))
            .collect();
        let actual = render(&translate(&snapshot, &options_from(&text)), &probes);
        let golden = input.with_extension("golden");
        if update {
            std::fs::write(&golden, &actual).expect("golden written");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{}\n--- expected\n{expected}--- actual\n{actual}",
                input.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
