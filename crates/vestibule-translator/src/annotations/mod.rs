//! Ingress annotations into typed per-route settings, and a verdict on every annotation.
//!
//! Settings are read under `nginx.ingress.kubernetes.io/` and `vestibule.dev/`; when both carry
//! the same name, `vestibule.dev/` wins. An invalid value is reported and that one setting is
//! left at its default; the Ingress's other settings still apply. `*-snippet` annotations carry
//! proxy configuration text and are always refused.

mod auth;
mod balancing;
mod canary;
mod catalog;
mod external_auth;
mod protocol;
mod rate_limit;
mod rewrite;
mod settings;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use vestibule_resources::{IngressSummary, Snapshot};
use vestibule_routing::{CanaryRule, HostMatch, RoutePolicy};

use crate::rules::ingress_ref;
use crate::warning::{Warning, WarningReason};
use catalog::Known;
use values::Invalid;

/// The annotation prefix ingress-nginx reads.
const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// Vestibule's own prefix, which takes precedence.
const VESTIBULE_PREFIX: &str = "vestibule.dev/";

/// What an Ingress's annotations ask for.
#[derive(Clone, Debug, Default)]
pub(crate) struct IngressSettings {
    /// The policy every route of the Ingress carries.
    pub policy: Arc<RoutePolicy>,
    /// `ssl-redirect`: whether TLS hosts redirect plain HTTP; `None` keeps the default.
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`: redirect plain HTTP even for hosts without TLS.
    pub force_ssl_redirect: bool,
    /// `server-alias`: more hosts that get the same rules as each rule's host.
    pub aliases: Vec<HostMatch>,
    /// `use-regex`: the Ingress's paths are regular expressions.
    pub use_regex: bool,
    /// `canary`: the Ingress is a canary with this rule, and its other settings are ignored.
    /// Boxed: few Ingresses are canaries, and settings are kept for every Ingress.
    pub canary: Option<Box<CanaryRule>>,
    /// `ssl-passthrough`: TLS connections for the Ingress's hosts go unterminated to the
    /// backend of each host's `/` rule (with `--enable-ssl-passthrough`).
    pub ssl_passthrough: bool,
    /// Whether the settings were read from a Secret (`auth-secret`) as well, so they may change
    /// when the Secrets do.
    pub reads_secrets: bool,
}

/// What Vestibule does with one annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read and applied.
    Honoured,
    /// Accepted without effect; the sentence says why that is harmless.
    Ignored(&'static str),
    /// Never applied: the annotation carries proxy configuration text.
    Refused,
    /// Read, but its value is invalid, so the setting keeps its default.
    Invalid(String),
    /// Known from ingress-nginx, not provided by Vestibule.
    Unsupported(&'static str),
    /// Under a prefix Vestibule reads, but not a setting it knows.
    Unknown,
}

impl Verdict {
    /// Whether the annotation does what an ingress-nginx user expects from it.
    pub fn is_fine(&self) -> bool {
        matches!(self, Self::Honoured | Self::Ignored(_))
    }

    /// A one-word label for reports.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Honoured => "honoured",
            Self::Ignored(_) => "ignored",
            Self::Refused => "refused",
            Self::Invalid(_) => "invalid",
            Self::Unsupported(_) => "unsupported",
            Self::Unknown => "unknown",
        }
    }
}

impl Verdict {
    /// Why the annotation got this verdict; `None` for an honoured one.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Honoured => None,
            Self::Ignored(why) | Self::Unsupported(why) => Some((*why).to_owned()),
            Self::Refused => {
                Some("Vestibule never runs annotation text as proxy configuration".to_owned())
            }
            Self::Invalid(why) => Some(format!("{why}; the setting keeps its default")),
            Self::Unknown => Some("not an annotation Vestibule or ingress-nginx reads".to_owned()),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())?;
        match self.reason() {
            Some(reason) => write!(f, ": {reason}"),
            None => Ok(()),
        }
    }
}

/// The verdict on one annotation of an Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationVerdict {
    /// The annotation's full key.
    pub key: String,
    /// What Vestibule does with it.
    pub verdict: Verdict,
}

/// What Vestibule does with each annotation of `ingress` under the prefixes it reads, in key
/// order; other annotations are not listed.
pub fn review_annotations(ingress: &IngressSummary) -> Vec<AnnotationVerdict> {
    read(ingress, &Snapshot::default()).verdicts
}

/// The settings an Ingress's annotations ask for, with warnings for every annotation that is
/// refused, invalid, unsupported or unknown.
/// Secrets the settings refer to are looked up in `snapshot`.
pub(crate) fn settings_of(
    ingress: &IngressSummary,
    snapshot: &Snapshot,
    warnings: &mut Vec<Warning>,
) -> IngressSettings {
    let Read {
        settings,
        verdicts,
        problems,
    } = read(ingress, snapshot);
    let ingress = ingress_ref(ingress);
    for AnnotationVerdict { key, verdict } in verdicts {
        let reason = match verdict {
            Verdict::Honoured | Verdict::Ignored(_) => continue,
            Verdict::Refused => WarningReason::RefusedAnnotation,
            Verdict::Invalid(_) => WarningReason::InvalidAnnotation,
            Verdict::Unsupported(_) | Verdict::Unknown => WarningReason::UnsupportedAnnotation,
        };
        warnings.push(Warning::on_ingress(
            &ingress,
            reason,
            format!("annotation {key} is {verdict}"),
        ));
    }
    for (reason, message) in problems {
        warnings.push(Warning::on_ingress(&ingress, reason, message));
    }
    if let Some(denied) = &settings.policy.denied {
        warnings.push(Warning::on_ingress(
            &ingress,
            WarningReason::InvalidAnnotation,
            format!("its routes answer 503: {denied}"),
        ));
    }
    settings
}

/// Everything reading one Ingress's annotations produced.
struct Read {
    settings: IngressSettings,
    verdicts: Vec<AnnotationVerdict>,
    problems: Vec<(WarningReason, String)>,
}

fn read(ingress: &IngressSummary, snapshot: &Snapshot) -> Read {
    let annotations = &ingress.annotations;
    let mut reader = Reader::new(annotations);
    let namespace = &ingress.namespace;
    let canary = canary::read(&mut reader);
    let mut settings = match canary {
        Some(_) => IngressSettings::default(),
        None => settings::read(&mut reader, snapshot, namespace),
    };
    let is_canary = canary.is_some();
    settings.canary = canary.map(Box::new);
    let problems = reader.problems;
    let mut verdicts = reader.verdicts;
    for key in annotations.keys() {
        let Some(name) = unprefixed(key) else {
            continue;
        };
        verdicts.entry(key.as_str()).or_insert_with(|| {
            if let Some(verdict) = is_canary.then(|| canary::verdict_on_canary(name)).flatten() {
                verdict
            } else if name.ends_with("-snippet") {
                Verdict::Refused
            } else {
                match catalog::known(name) {
                    Some(Known::Ignored(why)) => Verdict::Ignored(why),
                    Some(Known::Unsupported(why)) => Verdict::Unsupported(why),
                    None => Verdict::Unknown,
                }
            }
        });
    }
    let verdicts = verdicts
        .into_iter()
        .map(|(key, verdict)| AnnotationVerdict {
            key: key.to_owned(),
            verdict,
        })
        .collect();
    Read {
        settings,
        verdicts,
        problems,
    }
}

/// The setting name of an annotation key under a prefix Vestibule reads.
fn unprefixed(key: &str) -> Option<&str> {
    key.strip_prefix(NGINX_PREFIX)
        .or_else(|| key.strip_prefix(VESTIBULE_PREFIX))
}

/// Reads settings by name and records a verdict for every key it reads.
pub(crate) struct Reader<'a> {
    /// The annotations under `vestibule.dev/`, by setting name.
    ours: HashMap<&'a str, Annotation<'a>>,
    /// The annotations under the ingress-nginx prefix, by setting name.
    nginx: HashMap<&'a str, Annotation<'a>>,
    verdicts: BTreeMap<&'a str, Verdict>,
    problems: Vec<(WarningReason, String)>,
}

/// An annotation's full key and its value.
type Annotation<'a> = (&'a String, &'a String);

impl<'a> Reader<'a> {
    /// A reader of `annotations`, indexed by setting name once so that each setting is found
    /// without building its keys.
    fn new(annotations: &'a BTreeMap<String, String>) -> Self {
        let mut ours = HashMap::new();
        let mut nginx = HashMap::new();
        for annotation @ (key, _) in annotations {
            if let Some(name) = key.strip_prefix(VESTIBULE_PREFIX) {
                ours.insert(name, annotation);
            } else if let Some(name) = key.strip_prefix(NGINX_PREFIX) {
                nginx.insert(name, annotation);
            }
        }
        Self {
            ours,
            nginx,
            verdicts: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// The value of setting `name`, from `vestibule.dev/` or else the ingress-nginx prefix.
    fn get(&mut self, name: &str) -> Option<(&'a str, &'a str)> {
        let ours = self.ours.get(name).copied();
        let nginx = self.nginx.get(name).copied();
        if let (Some(_), Some((key, _))) = (ours, nginx) {
            self.verdicts.insert(
                key,
                Verdict::Ignored("the vestibule.dev/ annotation of the same name takes precedence"),
            );
        }
        let (key, value) = ours.or(nginx)?;
        self.verdicts.insert(key, Verdict::Honoured);
        Some((key.as_str(), value.as_str()))
    }

    /// Whether setting `name` is set at all, valid or not.
    fn has(&self, name: &str) -> bool {
        self.ours.contains_key(name) || self.nginx.contains_key(name)
    }

    /// Reports a problem found while applying a setting, beyond its own value.
    fn problem(&mut self, reason: WarningReason, message: String) {
        self.problems.push((reason, message));
    }

    /// Marks setting `name`, read and valid, as having no effect on this Ingress, and why.
    pub(crate) fn overridden(&mut self, name: &str, why: &'static str) {
        for annotations in [&self.ours, &self.nginx] {
            if let Some(&(key, _)) = annotations.get(name)
                && self.verdicts.get(key.as_str()) == Some(&Verdict::Honoured)
            {
                self.verdicts.insert(key, Verdict::Ignored(why));
            }
        }
    }

    /// Setting `name` parsed by `parse`; an invalid value is recorded and gives `None`.
    pub(crate) fn parse<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        let (key, value) = self.get(name)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(why) => {
                self.verdicts
                    .insert(key, Verdict::Invalid(format!("value {value:?}: {why}")));
                None
            }
        }
    }
}
