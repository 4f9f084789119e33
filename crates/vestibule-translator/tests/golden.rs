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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vestibule_resources::k8s_openapi::ByteString;
use vestibule_resources::k8s_openapi::api::core::v1::Secret;
use vestibule_resources::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use vestibule_resources::{IngressPathSummary, ManifestFormat, Object, Snapshot, decode_manifest};
use vestibule_routing::{Route, RoutePolicy, Selected};
use vestibule_translator::{Options, SecretName, Translation, Translator, translate};

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
    for (backend, endpoints) in translation.backends.iter() {
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

/// Every case's path, in name order.
fn case_inputs() -> Vec<PathBuf> {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut inputs: Vec<_> = std::fs::read_dir(&cases)
        .expect("cases directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no cases found");
    inputs
}

/// A case's text and snapshot.
fn read_case(input: &Path) -> (String, Snapshot) {
    let text = std::fs::read_to_string(input).expect("readable case");
    let mut objects = decode_manifest(&text, ManifestFormat::Yaml)
        .unwrap_or_else(|error| panic!("{}: {error}", input.display()));
    objects.extend(generated_secrets(&text));
    let (snapshot, duplicates) = Snapshot::from_objects(objects);
    assert!(duplicates.is_empty(), "{}: duplicates", input.display());
    (text, snapshot)
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for input in case_inputs() {
        let (text, snapshot) = read_case(&input);
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

/// Snapshots that differ from `snapshot` in one object each: every object in turn removed, or
/// replaced by an equal copy (a new object, as a changed file or watch event gives).
fn one_object_changed(snapshot: &Snapshot) -> Vec<Snapshot> {
    let mut changed = Vec::new();
    changed.extend(each_changed(snapshot, |s| &mut s.ingresses));
    changed.extend(each_ingress_edited(snapshot));
    changed.extend(each_secret_emptied(snapshot));
    changed.extend(each_changed(snapshot, |s| &mut s.secrets));
    changed.extend(each_changed(snapshot, |s| &mut s.services));
    changed.extend(each_changed(snapshot, |s| &mut s.endpoint_slices));
    changed.extend(each_changed(snapshot, |s| &mut s.endpoints));
    changed
}

/// The snapshots with one object of the list `kind` picks removed or copied.
fn each_changed<T: Clone>(
    snapshot: &Snapshot,
    kind: impl Fn(&mut Snapshot) -> &mut Vec<Arc<T>>,
) -> Vec<Snapshot> {
    let mut changed = Vec::new();
    let count = kind(&mut snapshot.clone()).len();
    for index in 0..count {
        let mut without = snapshot.clone();
        let removed = kind(&mut without).remove(index);
        changed.push(without);
        let mut copied = snapshot.clone();
        kind(&mut copied)[index] = Arc::new(removed.as_ref().clone());
        changed.push(copied);
    }
    changed
}

/// The snapshots with one Ingress edited in place, keeping its hosts: every path moved under
/// `/edited`, or every Service backend renamed.
fn each_ingress_edited(snapshot: &Snapshot) -> Vec<Snapshot> {
    let edits: [fn(&mut IngressPathSummary); 2] = [
        |path| path.path = Some(format!("/edited{}", path.path.as_deref().unwrap_or("")).into()),
        |path| {
            if let Some(service) = &mut path.backend.service {
                service.name = format!("{}-edited", service.name).into();
            }
        },
    ];
    let mut changed = Vec::new();
    for index in 0..snapshot.ingresses.len() {
        for edit in edits {
            let mut ingress = snapshot.ingresses[index].as_ref().clone();
            let rules = ingress
                .spec
                .iter_mut()
                .flat_map(|spec| spec.rules.iter_mut());
            rules.flat_map(|rule| rule.paths.iter_mut()).for_each(edit);
            let mut edited = snapshot.clone();
            edited.ingresses[index] = Arc::new(ingress);
            changed.push(edited);
        }
    }
    changed
}

/// The snapshots with one Secret replaced by one of the same name without data.
fn each_secret_emptied(snapshot: &Snapshot) -> Vec<Snapshot> {
    (0..snapshot.secrets.len())
        .map(|index| {
            let mut emptied = snapshot.clone();
            let secret = Secret {
                data: None,
                ..snapshot.secrets[index].as_ref().clone()
            };
            emptied.secrets[index] = Arc::new(secret);
            emptied
        })
        .collect()
}

#[test]
fn a_translator_fed_snapshot_after_snapshot_agrees_with_translating_each_afresh() {
    for input in case_inputs() {
        let (text, snapshot) = read_case(&input);
        let options = options_from(&text);
        let mut translator = Translator::new(options.clone());
        let fresh = translate(&snapshot, &options);
        assert_eq!(
            translator.translate(&snapshot),
            fresh,
            "{}",
            input.display()
        );
        for changed in one_object_changed(&snapshot) {
            let expected = translate(&changed, &options);
            assert_eq!(
                translator.translate(&changed),
                expected,
                "{}",
                input.display()
            );
            assert_eq!(
                translator.translate(&snapshot),
                fresh,
                "{}",
                input.display()
            );
        }
    }
}
