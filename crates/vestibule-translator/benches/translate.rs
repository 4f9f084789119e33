//! `translate`, and a `Translator` after a change to one Ingress, on generated snapshots of 1,000
//! and 10,000 Ingresses (3 paths each, one Service
//! with one EndpointSlice of 3 ready endpoints per Ingress), and of 1,000 Ingresses that each
//! also name a TLS Secret of their own. The snapshot is decoded from YAML
//! once, outside the timed loop; decoding the same manifests, which is most of a start in file
//! mode, is timed on its own. Run with `cargo bench -p vestibule-translator`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vestibule_resources::{ManifestFormat, Snapshot, decode_manifest};
use vestibule_translator::{Options, Translator, translate};

/// The manifests of application `i`: an Ingress, a Service and an EndpointSlice.
fn manifests(i: usize) -> String {
    let mut text = String::new();
    {
        let namespace = namespace(i);
        let service = format!("service: {{name: app-{i}, port: {{number: 80}}}}");
        let (a, b) = (i / 250, i % 250);
        write!(
            text,
            "---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: app-{i}, namespace: {namespace}}}
spec:
  ingressClassName: vestibule
  rules:
  - host: app-{i}.bench.example
    http:
      paths:
      - {{path: /api, pathType: Prefix, backend: {{{service}}}}}
      - {{path: /web, pathType: Prefix, backend: {{{service}}}}}
      - {{path: /status, pathType: Exact, backend: {{{service}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: app-{i}, namespace: {namespace}}}
spec:
  ports:
  - {{name: http, port: 80, targetPort: http}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-{i}-1
  namespace: {namespace}
  labels: {{kubernetes.io/service-name: app-{i}}}
addressType: IPv4
ports:
- {{name: http, port: 8080}}
endpoints:
- {{addresses: [10.1.{a}.{b}], conditions: {{ready: true}}}}
- {{addresses: [10.2.{a}.{b}], conditions: {{ready: true}}}}
- {{addresses: [10.3.{a}.{b}], conditions: {{ready: true}}}}
"
        )
        .expect("writing to a String");
    }
    text
}

fn namespace(i: usize) -> String {
    format!("team-{}", i / 100)
}

/// Decoded one application at a time, as the manifest directory would hold them (one YAML
/// stream may hold at most 1,024 documents).
fn snapshot(count: usize) -> Snapshot {
    let objects = (0..count)
        .flat_map(|i| decode_manifest(&manifests(i), ManifestFormat::Yaml).expect("valid YAML"));
    let (snapshot, duplicates) = Snapshot::from_objects(objects);
    assert!(duplicates.is_empty());
    snapshot
}

/// [`snapshot`] with a `spec.tls` on each Ingress, naming a Secret of its own with a
/// self-signed certificate for the Ingress's host.
fn tls_snapshot(count: usize) -> Snapshot {
    let indented = |pem: String| {
        pem.lines()
            .map(|line| format!("    {line}\n"))
            .collect::<String>()
    };
    let objects = (0..count).flat_map(|i| {
        let host = format!("app-{i}.bench.example");
        let mut text = manifests(i).replacen(
            "  rules:\n",
            &format!("  tls:\n  - {{hosts: [{host}], secretName: app-{i}-tls}}\n  rules:\n"),
            1,
        );
        let generated = rcgen::generate_simple_self_signed(vec![host]).expect("certificate");
        write!(
            text,
            "---
apiVersion: v1
kind: Secret
metadata: {{name: app-{i}-tls, namespace: {namespace}}}
type: kubernetes.io/tls
stringData:
  tls.crt: |
{crt}  tls.key: |
{key}",
            namespace = namespace(i),
            crt = indented(generated.cert.pem()),
            key = indented(generated.signing_key.serialize_pem()),
        )
        .expect("writing to a String");
        decode_manifest(&text, ManifestFormat::Yaml).expect("valid YAML")
    });
    let (snapshot, duplicates) = Snapshot::from_objects(objects);
    assert!(duplicates.is_empty());
    assert_eq!(snapshot.secrets.len(), count);
    snapshot
}

fn translation(c: &mut Criterion) {
    let options = Options::default();
    let mut group = c.benchmark_group("translate");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    let snapshots = [
        ("ingresses", snapshot(1_000)),
        ("ingresses", snapshot(10_000)),
        ("tls_ingresses", tls_snapshot(1_000)),
    ];
    for (kind, snapshot) in snapshots {
        let count = snapshot.ingresses.len();
        let translation = translate(&snapshot, &options);
        assert_eq!(translation.ingresses.len(), count);
        assert!(
            translation.warnings.is_empty(),
            "{:?}",
            translation.warnings
        );
        group.bench_function(format!("{count}_{kind}"), |b| {
            b.iter(|| translate(black_box(&snapshot), &options))
        });
        // What changing one Ingress costs a translator that has seen the rest: each iteration
        // swaps one Ingress for a new object and back, so it times two translations.
        let mut changed = snapshot.clone();
        changed.ingresses[count / 2] = Arc::new(changed.ingresses[count / 2].as_ref().clone());
        let mut translator = Translator::new(options.clone());
        group.bench_function(format!("{count}_{kind}_one_changed_twice"), |b| {
            b.iter(|| {
                translator.translate(black_box(&snapshot));
                translator.translate(black_box(&changed))
            })
        });
    }
    group.finish();
}

/// `decode_manifest` on the manifests of 1,000 applications, one application per call as the
/// manifest directory reads them.
fn decoding(c: &mut Criterion) {
    let texts: Vec<String> = (0..1_000).map(manifests).collect();
    let mut group = c.benchmark_group("decode_manifest");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("1000_applications", |b| {
        b.iter(|| {
            for text in &texts {
                black_box(decode_manifest(black_box(text), ManifestFormat::Yaml).expect("valid"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, translation, decoding);
criterion_main!(benches);
