//! `vestibule routes`: the routing table a manifest directory translates to, printed once as
//! the same JSON view `/debug/routes` serves.

use std::io::Write as _;
use std::process::ExitCode;

use vestibule_manifests::ManifestDir;
use vestibule_proxy::{DataPlane, routes_view};
use vestibule_translator::translate;

use crate::cli::RoutesArgs;
use crate::control::expired_certificates;
use crate::serve::translator_options;

/// The exit code when the directory has problems or its translation has warnings.
const EXIT_WARNINGS: u8 = 1;
/// The exit code when the directory cannot be read (or the view cannot be written).
const EXIT_UNREADABLE: u8 = 2;

/// Reads the directory once, translates it as `serve` would, prints the view on stdout and
/// every problem and warning on stderr, one line each.
pub fn run(args: &RoutesArgs) -> ExitCode {
    let scan = match ManifestDir::open(&args.manifests).and_then(|mut dir| dir.scan()) {
        Ok(scan) => scan,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let translation = translate(&scan.snapshot, &translator_options(&args.translation));
    let plane = DataPlane::default();
    plane.apply(&translation.routes, &translation.backends, &translation.tls);
    plane.apply_passthrough(&translation.passthrough);
    let json = routes_view(&plane).to_pretty_json();
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(json.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("error: cannot write the routes: {error}");
        return ExitCode::from(EXIT_UNREADABLE);
    }
    let messages: Vec<String> = scan
        .problems
        .iter()
        .map(ToString::to_string)
        .chain(translation.warnings.iter().map(ToString::to_string))
        .chain(expired_certificates(&translation.tls))
        .collect();
    for message in &messages {
        eprintln!("warning: {}", one_line(message));
    }
    if messages.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_WARNINGS)
    }
}

/// `message` with line breaks folded into spaces, so that each message is one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_one_line() {
        assert_eq!(
            one_line("a.yaml: document 1:\n  bad\r\nindent"),
            "a.yaml: document 1: bad indent"
        );
    }
}
