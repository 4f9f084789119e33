//! `rewrite-target`: the path a request is sent upstream with, built from the capture groups of
//! the path pattern that matched it.

use std::fmt;

use crate::path::PathMatch;

/// A replacement path such as `/$2` or `/api/$1/items`.
///
/// As in nginx's `rewrite`, the whole request path is replaced (the query is kept), and `$1` to
/// `$9` stand for the capture groups of the rule's pattern; a group that did not take part in
/// the match, or that the pattern does not have, is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteTarget(pub Vec<RewritePart>);

/// One piece of a [`RewriteTarget`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewritePart {
    /// Text copied as is.
    Text(String),
    /// Capture group 1 to 9 of the matched path pattern.
    Group(u8),
}

impl RewriteTarget {
    /// The path sent upstream for the request path `path` (without query), which `rule`
    /// matched. Only `Regex` rules have capture groups. The result always starts with `/`.
    pub fn rewrite(&self, rule: &PathMatch, path: &str) -> String {
        let captures = match rule {
            PathMatch::Regex(regex) => regex.captures(path),
            PathMatch::Exact(_) | PathMatch::Prefix(_) => None,
        };
        let mut out = String::with_capacity(path.len());
        for part in &self.0 {
            match part {
                RewritePart::Text(text) => out.push_str(text),
                RewritePart::Group(group) => {
                    let captured = captures
                        .as_ref()
                        .and_then(|captures| captures.get(usize::from(*group)));
                    if let Some(captured) = captured {
                        out.push_str(captured.as_str());
                    }
                }
            }
        }
        if !out.starts_with('/') {
            out.insert(0, '/');
        }
        out
    }
}

impl fmt::Display for RewriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.0 {
            match part {
                RewritePart::Text(text) => f.write_str(text)?,
                RewritePart::Group(group) => write!(f, "${group}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(parts: &[RewritePart]) -> RewriteTarget {
        RewriteTarget(parts.to_vec())
    }

    fn text(text: &str) -> RewritePart {
        RewritePart::Text(text.to_owned())
    }

    /// The rewrite example of the ingress-nginx docs.
    #[test]
    fn groups_are_substituted() {
        let rule = PathMatch::regex("/something(/|$)(.*)").expect("valid");
        let target = target(&[text("/"), RewritePart::Group(2)]);
        assert_eq!(target.to_string(), "/$2");
        assert_eq!(target.rewrite(&rule, "/something"), "/");
        assert_eq!(target.rewrite(&rule, "/something/"), "/");
        assert_eq!(target.rewrite(&rule, "/something/new"), "/new");
        assert_eq!(target.rewrite(&rule, "/SOMETHING/a/b"), "/a/b");
    }

    #[test]
    fn a_target_without_groups_replaces_the_whole_path() {
        let rule = PathMatch::regex("/foo").expect("valid");
        let target = target(&[text("/")]);
        assert_eq!(target.rewrite(&rule, "/foo"), "/");
        assert_eq!(target.rewrite(&rule, "/foo/bar/baz"), "/");
        assert_eq!(target.rewrite(&PathMatch::exact("/foo"), "/foo"), "/");
    }

    #[test]
    fn missing_groups_are_empty_and_the_result_is_absolute() {
        let rule = PathMatch::regex("/api(/v[0-9])?/(.*)").expect("valid");
        let target = target(&[
            RewritePart::Group(2),
            text("/"),
            RewritePart::Group(1),
            RewritePart::Group(9),
        ]);
        assert_eq!(target.rewrite(&rule, "/api/items"), "/items/");
        assert_eq!(target.rewrite(&rule, "/api/v2/items"), "/items//v2");
        assert_eq!(target.to_string(), "$2/$1$9");
    }
}
