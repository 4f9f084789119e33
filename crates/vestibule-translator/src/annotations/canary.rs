//! The `canary` family: whether an Ingress is a canary, and which requests its backends get.
//!
//! As in ingress-nginx, a canary Ingress takes every other setting from the main Ingress it
//! attaches to; only the settings ingress-nginx still reads on a canary (load balancing and
//! session affinity, which Vestibule does not provide) keep their usual verdict.

use vestibule_routing::{CanaryRule, HeaderMatch, HeaderPattern, HeaderRule, Weight};

use super::values::{self, Invalid};
use super::{Reader, Verdict};

/// The settings that only mean something on a canary Ingress.
const CANARY_OPTIONS: [&str; 6] = [
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
];

/// Why the other annotations of a canary Ingress have no effect.
const INHERITED: &str = "a canary Ingress takes its settings from the main Ingress";

/// The canary rule of a canary Ingress (`canary: "true"`), or `None` for a main Ingress, whose
/// `canary-*` annotations are reported as having no effect.
pub(super) fn read(reader: &mut Reader<'_>) -> Option<CanaryRule> {
    let enabled = reader.parse("canary", values::boolean).unwrap_or(false);
    if !enabled {
        for name in CANARY_OPTIONS {
            refuse(reader, name, "it has no effect unless canary is \"true\"");
        }
        return None;
    }
    let total = reader
        .parse("canary-weight-total", |text| {
            values::number(text, 100..=u64::from(u32::MAX))
                .map_err(|why| format!("{why} (ingress-nginx counts smaller totals as 100)"))
        })
        .map_or(100, |total| total as u32);
    let weight = reader
        .parse("canary-weight", |text| {
            values::number(text, 0..=u64::from(total))
        })
        .map_or(0, |weight| weight as u32);
    Some(CanaryRule {
        header: header_rule(reader),
        cookie: reader.parse("canary-by-cookie", name),
        weight: Weight { weight, total },
    })
}

/// The verdict on annotation `name` (without prefix) of a canary Ingress, when the canary
/// family did not read it: ingress-nginx ignores it unless it is about load balancing or
/// session affinity.
pub(super) fn verdict_on_canary(name: &str) -> Option<Verdict> {
    let still_read = matches!(name, "load-balance" | "upstream-hash-by")
        || name.starts_with("affinity")
        || name.starts_with("session-cookie-");
    (!still_read).then_some(Verdict::Ignored(INHERITED))
}

/// `canary-by-header` with `canary-by-header-value`, which takes precedence, or
/// `canary-by-header-pattern`.
fn header_rule(reader: &mut Reader<'_>) -> Option<HeaderRule> {
    let header = reader.parse("canary-by-header", name);
    let Some(header) = header else {
        refuse(
            reader,
            "canary-by-header-value",
            "it needs canary-by-header",
        );
        refuse(
            reader,
            "canary-by-header-pattern",
            "it needs canary-by-header",
        );
        return None;
    };
    let value = reader.parse("canary-by-header-value", header_value);
    let matches = match value {
        Some(value) => {
            refuse(
                reader,
                "canary-by-header-pattern",
                "canary-by-header-value takes precedence",
            );
            HeaderMatch::Value(value)
        }
        None => reader
            .parse("canary-by-header-pattern", pattern)
            .map_or(HeaderMatch::AlwaysNever, HeaderMatch::Pattern),
    };
    Some(HeaderRule {
        name: header.to_ascii_lowercase().replace('_', "-"),
        matches,
    })
}

/// Records that setting `name`, if present, is not used, and why.
fn refuse(reader: &mut Reader<'_>, name: &str, why: &str) {
    reader.parse(name, |_| Err::<(), Invalid>(why.to_owned()));
}

/// A header or cookie name: letters, digits and `-._~`. In a header name, `_` stands for `-`,
/// as in nginx's `$http_` variables.
fn name(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a name of letters, digits and -._~".to_owned())
    }
}

/// A header value of the characters ingress-nginx accepts: letters, digits and `-._~/:`.
fn header_value(text: &str) -> Result<String, Invalid> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/' | ':'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a value of letters, digits and -._~/:".to_owned())
    }
}

/// A regular expression of the characters ingress-nginx accepts in one, compiled with a size
/// limit.
fn pattern(text: &str) -> Result<HeaderPattern, Invalid> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/:^$[](){}*+?|&=\\".contains(c);
    if text.is_empty() {
        return Err("expected a regular expression".to_owned());
    }
    if let Some(c) = text.chars().find(|c| !allowed(*c)) {
        return Err(format!("{c:?} is not accepted in a pattern"));
    }
    HeaderPattern::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_patterns_are_checked() {
        assert_eq!(name("X-Canary"), Ok("X-Canary".to_owned()));
        assert!(name("X Canary").is_err());
        assert!(name("").is_err());
        assert_eq!(header_value("v2:beta/1"), Ok("v2:beta/1".to_owned()));
        assert!(header_value("a b").is_err());
        assert!(pattern("^(v2|v3)$").is_ok());
        assert!(pattern("a{1,3}").is_err());
        assert!(pattern("(").is_err());
        assert!(pattern("(?=a)").is_err());
    }

    #[test]
    fn only_balancing_and_affinity_are_read_on_a_canary() {
        assert_eq!(
            verdict_on_canary("proxy-body-size"),
            Some(Verdict::Ignored(INHERITED))
        );
        assert_eq!(
            verdict_on_canary("configuration-snippet"),
            Some(Verdict::Ignored(INHERITED))
        );
        assert_eq!(verdict_on_canary("load-balance"), None);
        assert_eq!(verdict_on_canary("session-cookie-name"), None);
        assert_eq!(verdict_on_canary("affinity-canary-behavior"), None);
    }
}
