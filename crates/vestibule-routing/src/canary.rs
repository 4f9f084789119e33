//! Canary releases: a second backend that a route sends some of its requests to, chosen per
//! request by a header, a cookie or a weighted random draw, as ingress-nginx's
//! `canary-*` annotations describe.

use std::fmt;

use regex::bytes::{Regex, RegexBuilder};

use crate::backend::{BackendId, IngressRef};

/// The most memory, in bytes, a compiled header pattern may take.
const PATTERN_SIZE_LIMIT: usize = 64 * 1024;

/// The canary attached to a route: the backend its rule sends requests to instead of the
/// route's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canary {
    /// The canary Service port.
    pub backend: BackendId,
    /// The canary Ingress.
    pub ingress: IngressRef,
    /// Which requests go to the canary.
    pub rule: CanaryRule,
}

/// Which requests go to a canary. Tried in ingress-nginx's order: the header, then the cookie,
/// then the weight; the first that decides wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CanaryRule {
    /// `canary-by-header`, with `canary-by-header-value` or `-pattern`.
    pub header: Option<HeaderRule>,
    /// `canary-by-cookie`: the cookie name; `always` sends to the canary, `never` to the main
    /// backend.
    pub cookie: Option<String>,
    /// `canary-weight` out of `canary-weight-total`.
    pub weight: Weight,
}

/// The request header that selects the canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRule {
    /// The header name, lowercase.
    pub name: String,
    /// Which values of it select the canary.
    pub matches: HeaderMatch,
}

/// Which values of the canary header decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderMatch {
    /// `always` sends to the canary, `never` to the main backend, anything else does not
    /// decide.
    AlwaysNever,
    /// This exact value sends to the canary; anything else does not decide
    /// (`canary-by-header-value`).
    Value(String),
    /// A value this pattern finds a match in sends to the canary; anything else does not
    /// decide (`canary-by-header-pattern`).
    Pattern(HeaderPattern),
}

/// The share of requests a canary gets when neither header nor cookie decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weight {
    /// `canary-weight`: how many of `total` requests go to the canary; at most `total`.
    pub weight: u32,
    /// `canary-weight-total`: at least 1.
    pub total: u32,
}

impl Default for Weight {
    fn default() -> Self {
        Self {
            weight: 0,
            total: 100,
        }
    }
}

impl Weight {
    /// Whether a draw, uniformly random in `1..=total`, selects the canary.
    pub fn selects(self, draw: u32) -> bool {
        draw <= self.weight
    }
}

/// A compiled, size-limited regular expression over a header value. Unanchored: it matches when
/// it finds a match anywhere in the value, as nginx's `ngx.re.match` does.
#[derive(Clone)]
pub struct HeaderPattern(Regex);

impl HeaderPattern {
    /// Compiles `pattern`, refusing patterns that are invalid or compile to more than 64 KiB.
    pub fn new(pattern: &str) -> Result<Self, String> {
        RegexBuilder::new(pattern)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Self)
            .map_err(|error| match error {
                regex::Error::CompiledTooBig(_) => "the pattern is too large".to_owned(),
                other => {
                    let text = other.to_string();
                    let why = text.lines().last().unwrap_or_default();
                    let why = why.strip_prefix("error: ").unwrap_or(why);
                    format!("not a valid regular expression: {why}")
                }
            })
    }

    /// Whether the pattern finds a match in `value`.
    pub fn is_match(&self, value: &[u8]) -> bool {
        self.0.is_match(value)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for HeaderPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HeaderPattern {}

impl fmt::Debug for HeaderPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderPattern({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compare_by_their_text_and_match_anywhere() {
        let pattern = HeaderPattern::new("^v[0-9]+$").expect("valid");
        assert_eq!(pattern, HeaderPattern::new("^v[0-9]+$").expect("valid"));
        assert!(pattern.is_match(b"v12"));
        assert!(!pattern.is_match(b"xv12"));
        assert!(
            HeaderPattern::new("beta")
                .expect("valid")
                .is_match(b"a-beta-b")
        );
        assert!(HeaderPattern::new("(").is_err());
        assert!(HeaderPattern::new("a{1000}{1000}").is_err());
    }

    #[test]
    fn weights_select_draws_up_to_the_weight() {
        let weight = Weight {
            weight: 30,
            total: 100,
        };
        assert!(weight.selects(1));
        assert!(weight.selects(30));
        assert!(!weight.selects(31));
        assert!(!Weight::default().selects(1));
    }
}
