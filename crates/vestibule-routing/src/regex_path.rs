//! Paths matched as regular expressions, the way ingress-nginx matches every path of a host on
//! which an Ingress uses `use-regex` or `rewrite-target` (`location ~* "^PATH"`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use regex::{Captures, Regex, RegexBuilder};

/// The most memory one compiled path pattern (and each of its lazy DFAs) may take.
const SIZE_LIMIT: usize = 256 * 1024;

/// A path pattern: a regular expression matched case-insensitively from the start of the
/// request path. Equality, hashing and order look at the pattern text alone.
#[derive(Clone, Debug)]
pub struct PathRegex {
    pattern: String,
    anchored: Regex,
}

/// Why a path is not a usable regular expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRegex {
    /// The path as written in the Ingress.
    pub pattern: String,
    /// What the regular expression compiler said.
    pub reason: String,
}

impl fmt::Display for InvalidRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "path {:?} is not a valid regular expression: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for InvalidRegex {}

impl PathRegex {
    /// Compiles `pattern`, refusing patterns that are invalid or compile too large.
    pub fn new(pattern: &str) -> Result<Self, InvalidRegex> {
        let build = |source: &str| {
            RegexBuilder::new(source)
                .case_insensitive(true)
                .size_limit(SIZE_LIMIT)
                .dfa_size_limit(SIZE_LIMIT)
                .build()
                .map_err(|error| InvalidRegex {
                    pattern: pattern.to_owned(),
                    reason: one_line(&error.to_string()),
                })
        };
        // Compiled alone first, so that the pattern cannot close the anchoring group early.
        build(pattern)?;
        Ok(Self {
            pattern: pattern.to_owned(),
            anchored: build(&format!("^(?:{pattern})"))?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether a request path (without query) matches from its start.
    pub fn is_match(&self, path: &str) -> bool {
        self.anchored.is_match(path)
    }

    /// The capture groups of a match from the start of `path`.
    pub(crate) fn captures<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        self.anchored.captures(path)
    }

    /// Precedence among regex paths, as ingress-nginx orders its locations: the longer pattern
    /// first, then the greater pattern text.
    pub(crate) fn precedence(&self, other: &Self) -> Ordering {
        other
            .pattern
            .len()
            .cmp(&self.pattern.len())
            .then_with(|| other.pattern.cmp(&self.pattern))
    }
}

/// The gist of a compiler message, whose syntax errors draw the pattern over several lines.
fn one_line(message: &str) -> String {
    let last = message.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for PathRegex {}

impl Hash for PathRegex {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_case_insensitively_from_the_start() {
        let regex = PathRegex::new("/something(/|$)(.*)").expect("valid");
        assert!(regex.is_match("/something"));
        assert!(regex.is_match("/SomeThing/new"));
        assert!(!regex.is_match("/somethingelse"));
        assert!(!regex.is_match("/x/something"));
        let captures = regex.captures("/something/new").expect("match");
        assert_eq!(captures.get(2).map(|group| group.as_str()), Some("new"));
    }

    #[test]
    fn alternatives_are_all_anchored() {
        let regex = PathRegex::new("/foo|/bar").expect("valid");
        assert!(regex.is_match("/bar/x"));
        assert!(!regex.is_match("/x/bar"));
    }

    #[test]
    fn invalid_and_oversized_patterns_are_refused() {
        let error = PathRegex::new("/foo(").expect_err("unbalanced");
        assert_eq!(
            error.to_string(),
            "path \"/foo(\" is not a valid regular expression: unclosed group"
        );
        assert!(PathRegex::new("/a)|(b").is_err());
        assert!(PathRegex::new("/(\\w{1000}){1000}").is_err());
    }

    #[test]
    fn longer_patterns_first_then_greater_text() {
        let mut patterns: Vec<PathRegex> = ["/a", "/foo/bar/", "/foo/bar", "/foo/.+", "/b"]
            .into_iter()
            .map(|pattern| PathRegex::new(pattern).expect("valid"))
            .collect();
        patterns.sort_by(PathRegex::precedence);
        let order: Vec<&str> = patterns.iter().map(PathRegex::as_str).collect();
        assert_eq!(order, ["/foo/bar/", "/foo/bar", "/foo/.+", "/b", "/a"]);
    }
}
