//! `rewrite-target` applied to one request: the path and query its backend receives.

use std::sync::Arc;

use http::Uri;
use http::uri::PathAndQuery;
use vestibule_routing::Selected;

use crate::error::ProxyError;
use crate::plane::RouteTarget;

/// The path the selected rule's rewrite sends upstream instead of the normalised request path
/// `path`, if the rule rewrites. The default backend matched no rule, so it never rewrites.
pub(crate) fn rewritten_path(
    selected: &Selected<'_, Arc<RouteTarget>>,
    path: &str,
) -> Option<String> {
    let Selected::Rule(rule) = selected else {
        return None;
    };
    let target = rule.target.route.policy.rewrite.as_ref()?;
    Some(target.rewrite(&rule.path, path))
}

/// The request's target with its path normalized to `path`: the request's own target, shared,
/// when normalizing changed nothing.
pub(crate) fn normalized_target(uri: &Uri, path: &str) -> Result<PathAndQuery, ProxyError> {
    if let Some(target) = uri.path_and_query()
        && target.path() == path
    {
        return Ok(target.clone());
    }
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    PathAndQuery::try_from(target).map_err(|error| ProxyError::InvalidTarget(error.into()))
}

/// The request target sent upstream: the rewritten path, when there is one, with the client's
/// query; otherwise the request's own target.
pub(crate) fn upstream_target(
    rewritten: Option<String>,
    requested: &PathAndQuery,
) -> Result<PathAndQuery, ProxyError> {
    let Some(path) = rewritten else {
        return Ok(requested.clone());
    };
    let target = match requested.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    PathAndQuery::try_from(target).map_err(|error| ProxyError::InvalidTarget(error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_kept() {
        let requested = PathAndQuery::from_static("/something/new?x=1&y");
        let target = upstream_target(Some("/new".to_owned()), &requested).expect("valid");
        assert_eq!(target.as_str(), "/new?x=1&y");
        let unchanged = upstream_target(None, &requested).expect("valid");
        assert_eq!(unchanged, requested);
    }

    #[test]
    fn normalized_targets_keep_the_query() {
        let uri = Uri::from_static("/a/./b?x=1");
        let target = normalized_target(&uri, "/a/b").expect("valid");
        assert_eq!(target.as_str(), "/a/b?x=1");
        let plain = Uri::from_static("/a/b?x=1");
        let target = normalized_target(&plain, "/a/b").expect("valid");
        assert_eq!(target.as_str(), "/a/b?x=1");
        let bare = Uri::from_static("/a/./b");
        let target = normalized_target(&bare, "/a/b").expect("valid");
        assert_eq!(target.as_str(), "/a/b");
    }
}
