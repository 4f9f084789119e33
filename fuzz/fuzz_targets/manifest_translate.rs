//! Manifest text through the whole control plane: `decode_manifest` (YAML and JSON),
//! `Snapshot::from_objects`, `translate` (default options and with
//! `watch_ingress_without_class`), then requests routed through the result, with hosts and paths
//! taken from the input itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vestibule_fuzz::check_route;
use vestibule_resources::{ManifestFormat, Snapshot, decode_manifest};
use vestibule_routing::HostMatch;
use vestibule_translator::{Options, SecretName, Translation, translate};

/// Hosts and paths taken from one input, at most each.
const MAX_PROBES: usize = 6;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for format in [ManifestFormat::Yaml, ManifestFormat::Json] {
        let Ok(objects) = decode_manifest(&text, format) else {
            continue;
        };
        let (snapshot, _duplicates) = Snapshot::from_objects(objects);
        let (hosts, paths) = probes(&snapshot, &text);
        let default_certificate = snapshot.secrets.first().map(|secret| SecretName {
            namespace: secret.metadata.namespace.clone().unwrap_or_default(),
            name: secret.metadata.name.clone().unwrap_or_default(),
        });
        let all_options = [
            Options::default(),
            Options {
                watch_ingress_without_class: true,
                ssl_redirect: false,
                default_certificate,
                ssl_passthrough: true,
                ..Options::default()
            },
        ];
        for options in &all_options {
            let translation = translate(&snapshot, options);
            check(&translation, &hosts, &paths);
        }
    }
});

/// Request hosts and paths to probe with: the Ingresses' own rule and TLS hosts and rule paths,
/// `# probe: HOST PATH` lines (as in the golden tests), and a few variants of each.
fn probes(snapshot: &Snapshot, text: &str) -> (Vec<String>, Vec<String>) {
    let mut hosts = vec![String::new(), "unknown.example".to_owned()];
    let mut paths = vec!["/".to_owned()];
    for line in text.lines() {
        if let Some(probe) = line.strip_prefix("# probe:") {
            let mut words = probe.split_whitespace();
            hosts.extend(words.next().map(str::to_owned));
            paths.extend(words.next().map(str::to_owned));
        }
    }
    for ingress in &snapshot.ingresses {
        let Some(spec) = &ingress.spec else { continue };
        for rule in &spec.rules {
            hosts.extend(rule.host.as_deref().map(str::to_owned));
            let rule_paths = rule.paths.iter().filter_map(|path| path.path.as_deref());
            paths.extend(rule_paths.map(str::to_owned));
        }
        for tls in &spec.tls {
            hosts.extend(tls.hosts.iter().cloned());
        }
    }
    hosts.truncate(MAX_PROBES);
    paths.truncate(MAX_PROBES);
    let host_variants: Vec<String> = hosts
        .iter()
        .flat_map(|host| {
            let concrete = match host.strip_prefix("*.") {
                Some(suffix) => format!("a.{suffix}"),
                None => host.clone(),
            };
            [format!("{}:8443", concrete.to_ascii_uppercase()), concrete]
        })
        .collect();
    let path_variants: Vec<String> = paths
        .iter()
        .flat_map(|path| [format!("{path}/"), format!("{path}/sub?q=1"), path.clone()])
        .collect();
    (host_variants, path_variants)
}

/// Routes every probe and checks what a translation promises.
fn check(translation: &Translation, hosts: &[String], paths: &[String]) {
    let routes = &translation.routes;
    // Every backend the table refers to has an entry (possibly empty) in `backends`.
    let rules = routes
        .virtual_hosts()
        .into_iter()
        .flat_map(|vhost| vhost.rules());
    let targets = rules
        .map(|rule| &rule.target)
        .chain(routes.default_backend());
    for route in targets {
        assert!(
            translation.backends.contains_key(&route.backend),
            "the table routes to {} but backends has no entry for it",
            route.backend
        );
    }
    // Passthrough hosts go to the backend of one of the table's rules for that same pattern.
    for (host, passthrough) in translation.passthrough.iter() {
        assert!(
            host != HostMatch::Any,
            "a host-less rule was passed through"
        );
        let vhost = routes
            .virtual_hosts()
            .into_iter()
            .find(|vhost| *vhost.host() == host);
        assert!(
            vhost.is_some_and(|vhost| vhost
                .rules()
                .iter()
                .any(|rule| rule.target.backend == passthrough.backend)),
            "passthrough {host} -> {} matches no rule of the table",
            passthrough.backend
        );
    }
    for host in hosts {
        let _ = translation.tls.resolve(Some(host));
        for path in paths {
            let path = path.split_once('?').map_or(path.as_str(), |(path, _)| path);
            check_route(routes, host, path);
        }
    }
    let _ = translation.tls.resolve(None);
    let _ = translation.tls.certificates();
}
