//! Path matching as the Kubernetes Ingress spec defines it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use crate::regex_path::{InvalidRegex, PathRegex};

/// Which request paths a route answers.
///
/// The order is precedence: the longest path first and, at equal length, `Exact` before `Prefix`;
/// then every `Regex`, in ingress-nginx's order (see [`PathRegex`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// The path exactly, case-sensitive.
    Exact(Box<str>),
    /// Every path whose `/`-separated elements start with these elements. Stored normalised by
    /// [`normalize_prefix`]: `/` or elements joined by `/` with no trailing slash.
    Prefix(Box<str>),
    /// Every path a regular expression matches from its start, case-insensitively: the paths
    /// of a host on which an Ingress uses `use-regex` or `rewrite-target`. Boxed, as are the
    /// paths, to keep small the rule kept for every path of every Ingress.
    Regex(Box<PathRegex>),
}

impl PathMatch {
    /// An `Exact` rule for `path`, which must start with `/`.
    pub fn exact(path: &str) -> Self {
        Self::Exact(Box::from(path))
    }

    /// A `Prefix` rule for `path` (also used for `ImplementationSpecific`).
    pub fn prefix(path: &str) -> Self {
        Self::Prefix(Box::from(normalize_prefix(path)))
    }

    /// A `Regex` rule for `pattern`, if it compiles within the size limit.
    pub fn regex(pattern: &str) -> Result<Self, InvalidRegex> {
        PathRegex::new(pattern).map(|regex| Self::Regex(Box::new(regex)))
    }

    /// Whether a request path (without its query) matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => &**exact == path,
            Self::Prefix(prefix) => {
                let mut wanted = elements(prefix);
                let mut given = elements(path);
                wanted.all(|element| given.next() == Some(element))
            }
            Self::Regex(regex) => regex.is_match(path),
        }
    }

    /// [`PathMatch::matches`] for a request path given with its [`normalize_prefix`] form,
    /// computed once for all the rules a request is tried against.
    pub(crate) fn matches_normalized(&self, path: &str, normal: &str) -> bool {
        match self {
            Self::Exact(exact) => &**exact == path,
            // Both are normal: the prefix's elements start the path's when its text does and
            // ends where an element of the path ends.
            Self::Prefix(prefix) => {
                &**prefix == "/"
                    || normal
                        .strip_prefix(&**prefix)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            Self::Regex(regex) => regex.is_match(path),
        }
    }

    /// The path this rule was written with, normalised.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(path) | Self::Prefix(path) => path,
            Self::Regex(regex) => regex.as_str(),
        }
    }

    fn kind_rank(&self) -> u8 {
        match self {
            Self::Exact(_) => 0,
            Self::Prefix(_) => 1,
            Self::Regex(_) => 2,
        }
    }
}

impl Ord for PathMatch {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Regex(a), Self::Regex(b)) => return a.precedence(b),
            (Self::Regex(_), _) => return Ordering::Greater,
            (_, Self::Regex(_)) => return Ordering::Less,
            _ => {}
        }
        other
            .as_str()
            .len()
            .cmp(&self.as_str().len())
            .then_with(|| self.kind_rank().cmp(&other.kind_rank()))
            .then_with(|| self.as_str().cmp(other.as_str()))
    }
}

impl PartialOrd for PathMatch {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(path) => write!(f, "{path} (Exact)"),
            Self::Prefix(path) => write!(f, "{path} (Prefix)"),
            Self::Regex(regex) => write!(f, "{} (Regex)", regex.as_str()),
        }
    }
}

fn elements(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|element| !element.is_empty())
}

/// The normal form prefix rules are stored in and looked up by: `/`, or the non-empty path
/// elements joined by `/`, without a trailing slash.
pub fn normalize_prefix(path: &str) -> Cow<'_, str> {
    let already_normal =
        path.starts_with('/') && (path == "/" || !path.ends_with('/')) && !path.contains("//");
    if already_normal {
        return Cow::Borrowed(path);
    }
    let mut normal = String::with_capacity(path.len());
    for element in elements(path) {
        normal.push('/');
        normal.push_str(element);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    Cow::Owned(normal)
}

/// The prefixes a normalised request path could match, longest first, ending with `/`.
pub(crate) fn candidate_prefixes(normal: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(normal);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = match current.rfind('/') {
            Some(0) if current.len() > 1 => Some("/"),
            Some(0) | None => None,
            Some(cut) => Some(&current[..cut]),
        };
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix("/foo/"), "/foo");
        assert_eq!(normalize_prefix("//foo//bar/"), "/foo/bar");
        assert_eq!(normalize_prefix(""), "/");
        assert_eq!(normalize_prefix("/a/b"), "/a/b");
    }

    #[test]
    fn matching_a_normalized_path_agrees_with_matching_elements() {
        let rules = [
            PathMatch::prefix("/"),
            PathMatch::prefix("/a"),
            PathMatch::prefix("/a/b/"),
            PathMatch::prefix("/ab"),
            PathMatch::exact("/a/"),
            PathMatch::regex("/a.*").expect("valid"),
        ];
        let requests = [
            "", "/", "//", "/a", "/a/", "/a//", "//a", "/ab", "/abc", "/a/b", "/a//b/", "/a/bc",
            "/b", "a",
        ];
        for rule in &rules {
            for request in requests {
                assert_eq!(
                    rule.matches_normalized(request, &normalize_prefix(request)),
                    rule.matches(request),
                    "{rule:?} on {request:?}"
                );
            }
        }
    }

    #[test]
    fn candidates_run_from_longest_to_root() {
        let all: Vec<_> = candidate_prefixes("/a/b/c").collect();
        assert_eq!(all, ["/a/b/c", "/a/b", "/a", "/"]);
        let root: Vec<_> = candidate_prefixes("/").collect();
        assert_eq!(root, ["/"]);
    }

    #[test]
    fn longest_first_then_exact_before_prefix() {
        let mut paths = vec![
            PathMatch::prefix("/"),
            PathMatch::prefix("/foo"),
            PathMatch::exact("/foo"),
            PathMatch::prefix("/foo/bar"),
        ];
        paths.sort();
        assert_eq!(
            paths,
            vec![
                PathMatch::prefix("/foo/bar"),
                PathMatch::exact("/foo"),
                PathMatch::prefix("/foo"),
                PathMatch::prefix("/"),
            ]
        );
    }

    #[test]
    fn regex_paths_come_after_exact_and_prefix_paths() {
        let regex = |pattern| PathMatch::regex(pattern).expect("valid");
        let mut paths = vec![
            regex("/a"),
            PathMatch::prefix("/"),
            regex("/foo/bar/(.+)"),
            PathMatch::exact("/x"),
        ];
        paths.sort();
        assert_eq!(
            paths,
            vec![
                PathMatch::exact("/x"),
                PathMatch::prefix("/"),
                regex("/foo/bar/(.+)"),
                regex("/a"),
            ]
        );
        assert_eq!(regex("/a(b)?").to_string(), "/a(b)? (Regex)");
    }
}
