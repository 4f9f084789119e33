//! Request routing: host and path normalisation (`normalize_request_host`, `normalize_path`, as
//! the data plane applies them), `HostMatch`/`PathMatch` parsing and matching, and `RouteTable`
//! lookups checked against a linear scan in precedence order.
//!
//! Input (lossy UTF-8), one field per line:
//! - line 1: the request host (`Host` / `:authority`);
//! - line 2: the request path, also parsed as an HTTP request-target;
//! - further lines: rules `HOST PATH` (Prefix), `HOST =PATH` (Exact) or `HOST ~PATTERN`
//!   (Regex, skipped when it does not compile); HOST may be empty.

#![no_main]

use std::cmp::Ordering;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vestibule_fuzz::check_route;
use vestibule_routing::{
    HostMatch, PathMatch, RouteTable, RouteTableBuilder, normalize_path, normalize_prefix,
    normalize_request_host,
};

/// Rules read from one input, at most.
const MAX_RULES: usize = 32;
/// Rule paths that are also routed as requests, at most.
const MAX_RULE_PROBES: usize = 8;

/// Rules every table has, so that lookups meet exact, wildcard and host-less virtual hosts.
const FIXED_RULES: &[(&str, &str)] = &[
    ("", "/"),
    ("", "=/healthz"),
    ("example.com", "/api"),
    ("example.com", "=/api"),
    ("example.com", "/api/v1/users"),
    ("*.example.com", "/static"),
    ("*.example.com", "=/"),
    ("foo.bar.example.com", "/"),
    ("xn--bcher-kva.example", "/a/b/c"),
    ("regex.example.com", "~/api/v[0-9]+/(.*)"),
    ("regex.example.com", "~/api"),
    ("regex.example.com", "=/api/v1/exact"),
    ("regex.example.com", "/static"),
];

/// The default backend's target.
const DEFAULT_BACKEND: usize = usize::MAX;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let host = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let rules: Vec<(&str, &str)> = lines
        .take(MAX_RULES)
        .map(|line| line.split_once(' ').unwrap_or(("", line)))
        .collect();

    check_host(host);
    check_path(path);
    if let Ok(normal) = normalize_path(path) {
        check_normal_path(path, &normal);
    }
    for (rule_host, rule_path) in &rules {
        check_host(rule_host);
        check_path(rule_path);
        // Cross-matching between the input's own paths.
        let _ = PathMatch::prefix(rule_path).matches(path);
        let _ = PathMatch::exact(rule_path).matches(path);
        let _ = PathMatch::prefix(path).matches(rule_path);
    }

    let mut builder = RouteTableBuilder::default();
    let mut next = 0;
    for (rule_host, rule_path) in FIXED.iter() {
        insert(
            &mut builder,
            &mut next,
            rule_host.clone(),
            rule_path.clone(),
        );
    }
    for (rule_host, rule_path) in &rules {
        add_rule(&mut builder, &mut next, rule_host, rule_path);
    }
    // The request's own host, so that lookups reach input-made virtual hosts too.
    add_rule(&mut builder, &mut next, host, path);
    add_rule(&mut builder, &mut next, host, &format!("={path}"));
    let _ = builder.set_default_backend(DEFAULT_BACKEND);
    let table = builder.build();

    route(&table, host, path);
    route(&table, host, &format!("{path}/"));
    for (_, rule_path) in rules.iter().take(MAX_RULE_PROBES) {
        let rule_path = rule_path.trim_start_matches(['=', '~']);
        route(&table, host, rule_path);
    }

    // The path line as an HTTP request-target (origin, absolute, authority or asterisk form).
    if let Ok(uri) = http::Uri::try_from(path) {
        route_uri(&table, host, &uri);
    }
    // The whole input as one request-target.
    if let Ok(uri) = http::Uri::try_from(data) {
        route_uri(&table, host, &uri);
    }
    // The host line as an authority, as a `Host` header is.
    if let Ok(authority) = http::uri::Authority::try_from(host) {
        route(&table, authority.as_str(), path);
        route(&table, authority.host(), path);
    }
});

/// [`FIXED_RULES`], parsed once: compiling their patterns for every input would dominate a run.
static FIXED: LazyLock<Vec<(HostMatch, PathMatch)>> = LazyLock::new(|| {
    FIXED_RULES
        .iter()
        .filter_map(|(host, path)| parse_rule(host, path))
        .collect()
});

/// One rule written `PATH` (Prefix), `=PATH` (Exact) or `~PATTERN` (Regex); invalid hosts and
/// patterns give `None`, as the translator skips them.
fn parse_rule(host: &str, path: &str) -> Option<(HostMatch, PathMatch)> {
    let host = HostMatch::parse(host).ok()?;
    let path = match (path.strip_prefix('='), path.strip_prefix('~')) {
        // `PathMatch::exact` requires a leading `/` (the translator rejects other paths).
        (Some(exact), _) if exact.starts_with('/') => PathMatch::exact(exact),
        (Some(exact), _) => PathMatch::exact(&format!("/{exact}")),
        (None, Some(pattern)) => PathMatch::regex(pattern).ok()?,
        (None, None) => PathMatch::prefix(path),
    };
    Some((host, path))
}

/// Adds one rule as [`parse_rule`] reads it.
fn add_rule(builder: &mut RouteTableBuilder<usize>, next: &mut usize, host: &str, path: &str) {
    if let Some((host, path)) = parse_rule(host, path) {
        insert(builder, next, host, path);
    }
}

/// Adds a rule leading to the next number; a rule whose key is taken is skipped.
fn insert(
    builder: &mut RouteTableBuilder<usize>,
    next: &mut usize,
    host: HostMatch,
    path: PathMatch,
) {
    if builder.add_rule(host, path, *next).is_ok() {
        *next += 1;
    }
}

fn route(table: &RouteTable<usize>, host: &str, path: &str) {
    check_route(table, host, path);
    // The query string never takes part; the data plane routes the path alone.
    if let Some((without_query, _)) = path.split_once('?') {
        check_route(table, host, without_query);
    }
}

fn route_uri(table: &RouteTable<usize>, host: &str, uri: &http::Uri) {
    let host = uri.authority().map_or(host, |authority| authority.as_str());
    route(table, host, uri.path());
    if let Some(name) = uri.host() {
        route(table, name, uri.path());
    }
    // What the data plane does: normalise the path, route it, and forward it with the query.
    let Ok(normal) = normalize_path(uri.path()) else {
        return;
    };
    check_normal_path(uri.path(), &normal);
    route(table, host, &normal);
    let forwarded = match uri.query() {
        Some(query) => format!("{normal}?{query}"),
        None => normal.into_owned(),
    };
    assert!(
        http::uri::PathAndQuery::try_from(forwarded.as_str()).is_ok(),
        "the normalised target {forwarded:?} of the valid request-target {uri} is not a valid path and query"
    );
}

/// What `normalize_path` promises: an absolute path with no `.`, `..` or empty segment (except
/// one trailing slash), that normalises to itself.
fn check_normal_path(raw: &str, normal: &str) {
    assert!(normal.starts_with('/'), "{raw:?} -> {normal:?}");
    assert!(!normal.contains("//"), "{raw:?} -> {normal:?}");
    assert!(
        !normal
            .split('/')
            .any(|segment| segment == "." || segment == ".."),
        "{raw:?} -> {normal:?} keeps a dot-segment"
    );
    assert_eq!(
        normalize_path(normal).as_deref(),
        Ok(normal),
        "normalize_path is not idempotent on {raw:?}"
    );
}

/// `HostMatch::parse` and `normalize_request_host` on one string, with the properties a valid
/// host has.
fn check_host(host: &str) {
    let normal = normalize_request_host(host);
    let _ = HostMatch::parse(&normal);
    let Ok(parsed) = HostMatch::parse(host) else {
        return;
    };
    match &parsed {
        HostMatch::Exact(name) => {
            assert!(
                parsed.matches(&normal),
                "{host:?} parses as {name:?} but does not match itself ({normal:?})"
            );
            assert_eq!(HostMatch::parse(&parsed.to_string()).as_ref(), Ok(&parsed));
        }
        HostMatch::Wildcard(suffix) => {
            assert!(parsed.matches(&format!("x.{suffix}")), "{host:?}");
            assert!(!parsed.matches(suffix), "{host:?} matches its own suffix");
            assert_eq!(HostMatch::parse(&parsed.to_string()).as_ref(), Ok(&parsed));
        }
        HostMatch::Any => assert!(host.is_empty(), "{host:?} parses as any host"),
    }
}

/// `PathMatch` construction, matching and ordering on one string.
fn check_path(path: &str) {
    let normal = normalize_prefix(path);
    assert_eq!(
        normalize_prefix(&normal),
        normal,
        "normalize_prefix({path:?})"
    );
    let prefix = PathMatch::prefix(path);
    let exact = PathMatch::exact(path);
    assert!(prefix.matches(path), "{prefix} does not match {path:?}");
    assert!(exact.matches(path), "{exact} does not match {path:?}");
    assert!(
        prefix.matches(&format!("{path}/more")),
        "{prefix} vs {path:?}/more"
    );
    let regex = PathMatch::regex(path).ok();
    let all: Vec<&PathMatch> = [&prefix, &exact].into_iter().chain(&regex).collect();
    for a in &all {
        for b in &all {
            assert_eq!(a.cmp(b), b.cmp(a).reverse());
            assert_eq!(a.cmp(b) == Ordering::Equal, a == b);
        }
    }
}
