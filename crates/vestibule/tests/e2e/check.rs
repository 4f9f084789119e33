//! `vestibule check`: the migration report over realistic ingress-nginx manifests.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/ingress-nginx")
}

fn check(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vestibule"))
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vestibule runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("stdin written");
    drop(input);
    let Output { status, stdout, .. } = child.wait_with_output().expect("exits");
    (
        status.code().expect("exit code"),
        String::from_utf8(stdout).expect("UTF-8 report"),
    )
}

/// The report line for `key` under `ingress`.
fn line<'a>(report: &'a str, ingress: &str, key: &str) -> &'a str {
    let section = report
        .split("Ingress ")
        .find(|section| section.starts_with(ingress))
        .unwrap_or_else(|| panic!("no section for {ingress} in\n{report}"));
    section
        .lines()
        .find(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|k| k.trim_end_matches(':') == key)
        })
        .unwrap_or_else(|| panic!("no line for {key} under {ingress} in\n{report}"))
}

#[test]
fn the_report_sorts_every_annotation_of_every_ingress() {
    let dir = examples();
    let (code, report) = check(&[dir.to_str().expect("UTF-8 path")], None);
    assert_eq!(
        code, 1,
        "refused and unsupported annotations fail the check:\n{report}"
    );
    let nginx = |name: &str| format!("nginx.ingress.kubernetes.io/{name}");
    let expectations = [
        ("shop/storefront ", "force-ssl-redirect", "honoured"),
        ("shop/storefront ", "proxy-body-size", "honoured"),
        ("shop/storefront ", "cors-allow-origin", "honoured"),
        ("shop/storefront ", "proxy-buffering", "ignored"),
        (
            "shop/storefront-admin ",
            "whitelist-source-range",
            "honoured",
        ),
        ("portal/legacy-portal ", "configuration-snippet", "refused"),
        ("portal/legacy-portal ", "server-snippet", "refused"),
        ("portal/legacy-portal ", "mirror-uri", "unsupported"),
        ("portal/legacy-portal ", "proxy-conect-timeout", "unknown"),
        ("portal/old-blog ", "permanent-redirect", "honoured"),
        ("billing/billing ", "upstream-vhost", "honoured"),
    ];
    for (ingress, name, verdict) in expectations {
        let found = line(&report, ingress, &nginx(name));
        assert!(found.trim_start().starts_with(verdict), "{found}");
    }
    assert!(
        !report.contains("cert-manager.io") && !report.contains("meta.helm.sh"),
        "other tools' annotations are not ours to judge:\n{report}"
    );
    assert!(report.contains("5 Ingresses checked"), "{report}");
}

#[test]
fn kubectl_output_on_stdin_with_only_honoured_annotations_passes() {
    let list =
        std::fs::read_to_string(examples().join("kubectl-get-ingress.yaml")).expect("example");
    let (code, report) = check(&["-"], Some(&list));
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("Ingress billing/billing (stdin)"),
        "{report}"
    );
    assert!(
        report.contains("1 Ingress checked; annotations: 4 honoured"),
        "{report}"
    );
}

#[test]
fn every_snippet_annotation_is_refused() {
    let names = [
        "configuration-snippet",
        "server-snippet",
        "auth-snippet",
        "stream-snippet",
        "modsecurity-snippet",
        "location-snippet",
    ];
    let mut annotations = String::new();
    for name in names {
        for prefix in ["nginx.ingress.kubernetes.io", "vestibule.dev"] {
            annotations.push_str(&format!("    {prefix}/{name}: \"return 200;\"\n"));
        }
    }
    let manifest = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: snippets\n  annotations:\n{annotations}spec:\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
    );
    let (code, report) = check(&["-"], Some(&manifest));
    assert_eq!(code, 1, "{report}");
    for name in names {
        for prefix in ["nginx.ingress.kubernetes.io", "vestibule.dev"] {
            let found = line(&report, "default/snippets ", &format!("{prefix}/{name}"));
            assert!(found.trim_start().starts_with("refused"), "{found}");
        }
    }
}

#[test]
fn unreadable_input_exits_2() {
    let (code, _) = check(&["/nonexistent/manifests"], None);
    assert_eq!(code, 2);
    let (code, _) = check(&["-"], Some("kind: Ingress\n  bad: [indent"));
    assert_eq!(code, 2);
}
