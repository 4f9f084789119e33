//! `vestibule check`: the migration report. For every Ingress in the given manifests (any
//! class), which annotations Vestibule honours, ignores as harmless, refuses or does not
//! provide.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use vestibule_resources::{IngressSummary, ManifestFormat, Object, decode_manifest};
use vestibule_translator::review_annotations;

use crate::cli::CheckArgs;

/// The exit code when some annotation would not behave as it does under ingress-nginx.
const EXIT_NOT_FINE: u8 = 1;
/// The exit code when the input cannot be read or decoded.
const EXIT_UNREADABLE: u8 = 2;

/// Prints the report on stdout; errors reading the input go to stderr.
pub fn run(args: &CheckArgs) -> ExitCode {
    let mut ingresses = Vec::new();
    let mut unreadable = false;
    for source in &args.inputs {
        match read_source(source) {
            Ok(found) => ingresses.extend(found),
            Err(error) => {
                eprintln!("error: {error}");
                unreadable = true;
            }
        }
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (origin, ingress) in &ingresses {
        println!("Ingress {}/{} ({origin})", ingress.namespace, ingress.name);
        let verdicts = review_annotations(ingress);
        if verdicts.is_empty() {
            println!("  no ingress-nginx annotations");
        }
        for verdict in verdicts {
            *counts.entry(verdict.verdict.label()).or_default() += 1;
            let label = verdict.verdict.label();
            match verdict.verdict.reason() {
                Some(reason) => println!("  {label:<12} {}: {reason}", verdict.key),
                None => println!("  {label:<12} {}", verdict.key),
            }
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(label, count)| format!("{count} {label}"))
        .collect();
    println!(
        "{} checked; annotations: {}",
        match ingresses.len() {
            1 => "1 Ingress".to_owned(),
            count => format!("{count} Ingresses"),
        },
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        }
    );
    let fine = ["honoured", "ignored"];
    if unreadable {
        ExitCode::from(EXIT_UNREADABLE)
    } else if counts.keys().any(|label| !fine.contains(label)) {
        ExitCode::from(EXIT_NOT_FINE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The Ingresses in a file, a directory (every `.yaml`, `.yml` and `.json` file in it and its
/// subdirectories, in name order) or standard input (`-`), each with where it came from.
/// One Ingress and where it was read from.
type Found = (String, Arc<IngressSummary>);

fn read_source(source: &Path) -> Result<Vec<Found>, String> {
    if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| format!("cannot read standard input: {error}"))?;
        let format = if text.trim_start().starts_with('{') {
            ManifestFormat::Json
        } else {
            ManifestFormat::Yaml
        };
        return ingresses_in(&text, format, "stdin");
    }
    let mut files = Vec::new();
    collect_files(source, &mut files)?;
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        let format = match file.extension().and_then(|ext| ext.to_str()) {
            Some("json") => ManifestFormat::Json,
            _ => ManifestFormat::Yaml,
        };
        found.extend(ingresses_in(&text, format, &file.display().to_string())?);
    }
    Ok(found)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if !metadata.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let manifest = entry
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"));
        if entry.is_dir() || manifest {
            collect_files(&entry, files)?;
        }
    }
    Ok(())
}

fn ingresses_in(text: &str, format: ManifestFormat, origin: &str) -> Result<Vec<Found>, String> {
    let objects = decode_manifest(text, format).map_err(|error| format!("{origin}: {error}"))?;
    Ok(objects
        .into_iter()
        .filter_map(|object| match object {
            Object::Ingress(ingress) => Some((origin.to_owned(), ingress)),
            _ => None,
        })
        .collect())
}
