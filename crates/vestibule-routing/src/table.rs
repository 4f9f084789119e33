//! The routing table: virtual hosts, their path rules and the default backend.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use crate::host::HostMatch;
use crate::host_map::HostMap;
use crate::path::{PathMatch, candidate_prefixes, normalize_prefix};

/// One path rule of a virtual host and what it leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule<T> {
    /// Which paths the rule answers.
    pub path: PathMatch,
    /// What a matching request is sent to.
    pub target: T,
}

/// The rules for one host pattern, kept in precedence order; a host with many rules is also
/// indexed for lookup.
///
/// Through the index, `Exact` and `Prefix` rules are found by path; the `Regex` rules, which
/// come last in precedence order, are tried one by one when no other rule matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualHost<T> {
    host: HostMatch,
    rules: Vec<PathRule<T>>,
    /// Shared by every table mapped from this one, whose rules sit at the same positions; `None`
    /// for a host with no more than [`SCANNED_UP_TO`] rules.
    index: Option<Arc<PathIndex>>,
}

/// Up to this many rules, a virtual host's rules are tried in order: that is as quick as an
/// index lookup, and most hosts have a handful of rules, each of which an index would copy.
const SCANNED_UP_TO: usize = 8;

/// Where a virtual host's `Exact` and `Prefix` rules sit, by path, and where its `Regex` rules
/// start.
#[derive(Debug, PartialEq, Eq)]
struct PathIndex {
    exact: HashMap<Box<str>, usize>,
    prefix: HashMap<Box<str>, usize>,
    first_regex: usize,
}

impl PathIndex {
    /// Where the rules of `rules`, in precedence order, sit.
    fn of<T>(rules: &[PathRule<T>]) -> Self {
        let mut index = Self {
            exact: HashMap::new(),
            prefix: HashMap::new(),
            first_regex: rules.len(),
        };
        for (position, rule) in rules.iter().enumerate() {
            match &rule.path {
                PathMatch::Exact(path) => {
                    index.exact.insert(path.clone(), position);
                }
                PathMatch::Prefix(path) => {
                    index.prefix.insert(path.clone(), position);
                }
                PathMatch::Regex(_) => index.first_regex = index.first_regex.min(position),
            }
        }
        index
    }
}

impl<T> VirtualHost<T> {
    fn new(host: HostMatch, mut rules: Vec<PathRule<T>>) -> Self {
        rules.sort_by(|a, b| a.path.cmp(&b.path));
        let index = (rules.len() > SCANNED_UP_TO).then(|| Arc::new(PathIndex::of(&rules)));
        Self { host, rules, index }
    }

    /// The host pattern this virtual host answers.
    pub fn host(&self) -> &HostMatch {
        &self.host
    }

    /// The path rules, in precedence order.
    pub fn rules(&self) -> &[PathRule<T>] {
        &self.rules
    }

    /// The rule a request path (without query) selects: the first in precedence order that
    /// matches, found through the index where the host has one (except for `Regex` rules).
    pub fn route(&self, path: &str) -> Option<&PathRule<T>> {
        let Some(index) = &self.index else {
            let normal = normalize_prefix(path);
            return self
                .rules
                .iter()
                .find(|rule| rule.path.matches_normalized(path, &normal));
        };
        if let Some(&position) = index.exact.get(path) {
            return Some(&self.rules[position]);
        }
        let normal = normalize_prefix(path);
        candidate_prefixes(&normal)
            .find_map(|candidate| index.prefix.get(candidate))
            .map(|&position| &self.rules[position])
            .or_else(|| {
                self.rules
                    .get(index.first_regex..)?
                    .iter()
                    .find(|rule| rule.path.matches(path))
            })
    }

    /// Whether `old` has the same host and rule paths, in the same order, with targets
    /// `unchanged` accepts.
    fn same_as<U>(&self, old: &VirtualHost<U>, unchanged: &mut impl FnMut(&T, &U) -> bool) -> bool {
        self.host == old.host
            && self.rules.len() == old.rules.len()
            && self
                .rules
                .iter()
                .zip(&old.rules)
                .all(|(new, old)| new.path == old.path && unchanged(&new.target, &old.target))
    }

    /// The same rules with converted targets. A rule whose target equals the one before it
    /// gets a copy of that one's conversion: an Ingress's paths mostly lead to one backend.
    fn map<U: Clone>(&self, f: &mut impl FnMut(&T) -> U) -> VirtualHost<U>
    where
        T: PartialEq,
    {
        let mut rules: Vec<PathRule<U>> = Vec::with_capacity(self.rules.len());
        let mut previous: Option<&T> = None;
        for rule in &self.rules {
            let target = match rules.last() {
                Some(last) if previous == Some(&rule.target) => last.target.clone(),
                _ => f(&rule.target),
            };
            previous = Some(&rule.target);
            rules.push(PathRule {
                path: rule.path.clone(),
                target,
            });
        }
        VirtualHost {
            host: self.host.clone(),
            rules,
            index: self.index.clone(),
        }
    }
}

/// An immutable routing table: published whole, replaced whole.
///
/// A request picks one virtual host (exact name, else one-label wildcard, else the rules without
/// a host), then the best path rule within it. A request that selects no rule goes to the
/// default backend when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable<T> {
    /// Shared, so a table mapped again can take over the virtual hosts that did not change.
    hosts: HostMap<Arc<VirtualHost<T>>>,
    default_backend: Option<T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            hosts: HostMap::default(),
            default_backend: None,
        }
    }
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Selected<'a, T> {
    /// A path rule matched.
    Rule(&'a PathRule<T>),
    /// No rule matched; the table's default backend answers.
    DefaultBackend(&'a T),
}

impl<'a, T> Selected<'a, T> {
    /// The target the request goes to.
    pub fn target(&self) -> &'a T {
        match self {
            Self::Rule(rule) => &rule.target,
            Self::DefaultBackend(target) => target,
        }
    }
}

impl<T> RouteTable<T> {
    /// Routes a request by its `Host` (or `:authority`, port and case ignored) and its path
    /// (without query). `None` means nothing answers: a 404.
    pub fn route(&self, host: &str, path: &str) -> Option<Selected<'_, T>> {
        self.virtual_host(host)
            .and_then(|vhost| vhost.route(path))
            .map(Selected::Rule)
            .or_else(|| self.default_backend.as_ref().map(Selected::DefaultBackend))
    }

    /// The virtual host a request host selects.
    pub fn virtual_host(&self, host: &str) -> Option<&VirtualHost<T>> {
        self.hosts.get(host).map(AsRef::as_ref)
    }

    /// The virtual host of exactly the host pattern `host` (not the one a request would select).
    pub fn virtual_host_of(&self, host: &HostMatch) -> Option<&VirtualHost<T>> {
        self.hosts.get_pattern(host).map(AsRef::as_ref)
    }

    /// Every virtual host, in precedence order.
    pub fn virtual_hosts(&self) -> Vec<&VirtualHost<T>> {
        self.hosts
            .iter()
            .into_iter()
            .map(|(_, vhost)| vhost.as_ref())
            .collect()
    }

    /// The target of requests that match no rule.
    pub fn default_backend(&self) -> Option<&T> {
        self.default_backend.as_ref()
    }

    /// A table of virtual hosts built separately; of two for the same host, the last is kept.
    pub fn from_virtual_hosts(
        vhosts: impl IntoIterator<Item = Arc<VirtualHost<T>>>,
        default_backend: Option<T>,
    ) -> Self {
        let mut hosts = HostMap::default();
        for vhost in vhosts {
            hosts.insert(vhost.host.clone(), vhost);
        }
        Self {
            hosts,
            default_backend,
        }
    }

    /// This table with the virtual hosts of some patterns replaced (`None` removes a pattern's)
    /// and a new default backend: a change to a few hosts hashes no other host again.
    pub fn with_hosts_replaced(
        &self,
        replaced: impl IntoIterator<Item = (HostMatch, Option<Arc<VirtualHost<T>>>)>,
        default_backend: Option<T>,
    ) -> Self {
        let mut hosts = self.hosts.clone();
        for (host, vhost) in replaced {
            match vhost {
                Some(vhost) => hosts.insert(host, vhost),
                None => hosts.remove(&host),
            };
        }
        Self {
            hosts,
            default_backend,
        }
    }

    /// The same table with every target converted, e.g. from a backend name to a live upstream.
    /// Rules of a virtual host whose targets are equal and next to each other share one
    /// conversion.
    pub fn map<U: Clone>(&self, mut f: impl FnMut(&T) -> U) -> RouteTable<U>
    where
        T: PartialEq,
    {
        RouteTable {
            hosts: self.hosts.map(|vhost| Arc::new(vhost.map(&mut f))),
            default_backend: self.default_backend.as_ref().map(&mut f),
        }
    }

    /// [`RouteTable::map`], taking over from `previous` every virtual host that did not change,
    /// so a change to one host converts only that host.
    ///
    /// `previous` was mapped from `previous.source`. A virtual host did not change when it is the
    /// very one `previous.source` holds and `kept` accepts each of its targets, or when its
    /// rules have the same paths in the same order and `unchanged` accepts their targets.
    pub fn map_reusing<U: Clone>(
        &self,
        previous: Previous<'_, T, U>,
        mut kept: impl FnMut(&T) -> bool,
        mut unchanged: impl FnMut(&T, &U) -> bool,
        mut f: impl FnMut(&T) -> U,
    ) -> Remapped<U>
    where
        T: PartialEq,
    {
        let Previous { source, mapped } = previous;
        let (hosts, mut changed) = self.hosts.map_onto(
            &mapped.hosts,
            |vhost, old| {
                let same_source = source
                    .hosts
                    .get_pattern(vhost.host())
                    .is_some_and(|source| Arc::ptr_eq(source, vhost))
                    && vhost.rules.iter().all(|rule| kept(&rule.target));
                same_source || vhost.same_as(old, &mut unchanged)
            },
            |vhost| Arc::new(vhost.map(&mut f)),
        );
        let default_backend = match (&self.default_backend, &mapped.default_backend) {
            (Some(target), Some(old)) if unchanged(target, old) => Some(old.clone()),
            (None, None) => None,
            (target, _) => {
                changed = true;
                target.as_ref().map(&mut f)
            }
        };
        Remapped {
            table: RouteTable {
                hosts,
                default_backend,
            },
            changed,
        }
    }
}

/// An earlier table and the one it was converted into, for [`RouteTable::map_reusing`].
#[derive(Debug)]
pub struct Previous<'a, T, U> {
    /// The table that was converted.
    pub source: &'a RouteTable<T>,
    /// What it was converted into.
    pub mapped: &'a RouteTable<U>,
}

// Not derived: a derive would ask for `T: Copy` and `U: Copy`, and only references are copied.
impl<T, U> Clone for Previous<'_, T, U> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, U> Copy for Previous<'_, T, U> {}

/// A table converted by [`RouteTable::map_reusing`].
#[derive(Debug)]
pub struct Remapped<U> {
    /// The converted table.
    pub table: RouteTable<U>,
    /// Whether anything differs from the previous table.
    pub changed: bool,
}

/// Collects rules one at a time, first come first kept, and builds a [`RouteTable`].
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    hosts: HashMap<HostMatch, HashMap<PathMatch, T>>,
    default_backend: Option<T>,
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        Self {
            hosts: HashMap::new(),
            default_backend: None,
        }
    }
}

impl<T> RouteTableBuilder<T> {
    /// Adds a rule. When the same host, path and path type already has a rule, the existing
    /// one is kept and its target returned as the conflict.
    pub fn add_rule(&mut self, host: HostMatch, path: PathMatch, target: T) -> Result<(), &T> {
        use std::collections::hash_map::Entry;
        match self.hosts.entry(host).or_default().entry(path) {
            Entry::Occupied(existing) => Err(existing.into_mut()),
            Entry::Vacant(slot) => {
                slot.insert(target);
                Ok(())
            }
        }
    }

    /// Sets the default backend unless one is set already, in which case that one is kept and
    /// returned as the conflict.
    pub fn set_default_backend(&mut self, target: T) -> Result<(), &T> {
        match &mut self.default_backend {
            Some(existing) => Err(existing),
            empty => {
                *empty = Some(target);
                Ok(())
            }
        }
    }

    /// The target already added for exactly this host, path and path type, to amend.
    pub fn rule_mut(&mut self, host: &HostMatch, path: &PathMatch) -> Option<&mut T> {
        self.hosts.get_mut(host)?.get_mut(path)
    }

    /// The default backend set so far, to amend.
    pub fn default_backend_mut(&mut self) -> Option<&mut T> {
        self.default_backend.as_mut()
    }

    /// Removes the rules added for `host` and builds its virtual host, if it has any.
    pub fn take_virtual_host(&mut self, host: &HostMatch) -> Option<VirtualHost<T>> {
        let rules = rules_of(self.hosts.remove(host)?.into_iter());
        Some(VirtualHost::new(host.clone(), rules))
    }

    /// The finished table.
    pub fn build(self) -> RouteTable<T> {
        let mut hosts = HostMap::default();
        for (host, paths) in self.hosts {
            let rules = rules_of(paths.into_iter());
            hosts.insert(host.clone(), Arc::new(VirtualHost::new(host, rules)));
        }
        RouteTable {
            hosts,
            default_backend: self.default_backend,
        }
    }
}

/// A host's rules, in no particular order. Sized exactly: collecting would leave room for four
/// rules where most hosts have one to three, and a rule is kept for every path.
fn rules_of<T>(paths: impl ExactSizeIterator<Item = (PathMatch, T)>) -> Vec<PathRule<T>> {
    let mut rules = Vec::with_capacity(paths.len());
    rules.extend(paths.map(|(path, target)| PathRule { path, target }));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rules: &[(&str, PathMatch, &'static str)]) -> RouteTable<&'static str> {
        let mut builder = RouteTableBuilder::default();
        for (host, path, target) in rules {
            let host = HostMatch::parse(host).expect("valid host");
            builder
                .add_rule(host, path.clone(), *target)
                .expect("no conflict");
        }
        builder.build()
    }

    /// A table of rules without a host, each leading to its own path.
    fn hostless(paths: &[PathMatch]) -> RouteTable<PathMatch> {
        let mut builder = RouteTableBuilder::default();
        for path in paths {
            builder
                .add_rule(HostMatch::Any, path.clone(), path.clone())
                .expect("no conflict");
        }
        builder.build()
    }

    fn route(table: &RouteTable<&'static str>, host: &str, path: &str) -> Option<&'static str> {
        table.route(host, path).map(|selected| *selected.target())
    }

    #[test]
    fn replacing_hosts_keeps_the_others_and_sets_the_default_backend() {
        let before = table(&[
            ("a.example", PathMatch::prefix("/"), "a"),
            ("b.example", PathMatch::prefix("/"), "b"),
            ("*.example", PathMatch::prefix("/"), "wild"),
        ]);
        let replacement = table(&[("a.example", PathMatch::exact("/new"), "a2")]);
        let host = |name: &str| HostMatch::parse(name).expect("valid host");
        let new_a = replacement.hosts.get_pattern(&host("a.example")).cloned();
        let after = before.with_hosts_replaced(
            [(host("a.example"), new_a), (host("*.example"), None)],
            Some("default"),
        );
        assert_eq!(route(&after, "a.example", "/new"), Some("a2"));
        assert_eq!(route(&after, "a.example", "/"), Some("default"));
        assert_eq!(route(&after, "b.example", "/"), Some("b"));
        assert_eq!(route(&after, "c.example", "/"), Some("default"));
        assert_eq!(route(&before, "c.example", "/"), Some("wild"));
    }

    #[test]
    fn a_virtual_host_is_found_by_its_own_pattern() {
        let root = || PathMatch::prefix("/");
        let table = table(&[
            ("*.example.com", root(), "wildcard"),
            ("a.example.com", root(), "exact"),
        ]);
        let pattern = |host: &str| HostMatch::parse(host).expect("valid host");
        let host_of = |host: &str| table.virtual_host_of(&pattern(host)).map(VirtualHost::host);
        assert_eq!(host_of("*.example.com"), Some(&pattern("*.example.com")));
        assert_eq!(host_of("a.example.com"), Some(&pattern("a.example.com")));
        assert_eq!(
            host_of("b.example.com"),
            None,
            "a pattern, not a request host"
        );
        assert_eq!(host_of(""), None);
    }

    #[test]
    fn remapping_converts_only_the_hosts_that_changed() {
        let p = PathMatch::prefix;
        let first = table(&[("a.com", p("/"), "a"), ("b.com", p("/"), "b")]);
        let live = first.map(|target| target.to_uppercase());
        let same = |new: &&str, old: &String| new.to_uppercase() == *old;

        let mut converted = Vec::new();
        let second = table(&[("a.com", p("/"), "a"), ("b.com", p("/"), "b2")]);
        let previous = Previous {
            source: &first,
            mapped: &live,
        };
        let remapped = second.map_reusing(
            previous,
            |_| true,
            same,
            |target| {
                converted.push(*target);
                target.to_uppercase()
            },
        );
        assert!(remapped.changed);
        assert_eq!(converted, ["b2"]);
        let kept = |table: &RouteTable<String>| table.hosts.get("a.com").cloned();
        assert!(Arc::ptr_eq(
            &kept(&remapped.table).expect("a.com"),
            &kept(&live).expect("a.com")
        ));
        let answer = remapped
            .table
            .route("b.com", "/")
            .map(|s| s.target().clone());
        assert_eq!(answer.as_deref(), Some("B2"));

        let previous = Previous {
            source: &second,
            mapped: &remapped.table,
        };
        let again = second.map_reusing(previous, |_| true, same, |_| unreachable!());
        assert!(!again.changed, "nothing to convert");
        let previous = Previous {
            source: &first,
            mapped: &live,
        };
        let fewer = table(&[("a.com", p("/"), "a")]);
        let remapped = fewer.map_reusing(previous, |_| true, same, |_| unreachable!());
        assert!(remapped.changed);
        let moved = table(&[("a.com", p("/x"), "a"), ("b.com", p("/"), "b")]);
        let remapped = moved.map_reusing(previous, |_| true, same, |t| t.to_uppercase());
        assert!(remapped.changed);
    }

    #[test]
    fn remapping_takes_over_the_very_same_host_unless_a_target_is_refused() {
        let first = table(&[("a.com", PathMatch::prefix("/"), "a")]);
        let live = first.map(|target| target.to_uppercase());
        let previous = Previous {
            source: &first,
            mapped: &live,
        };
        let mut compared = 0;
        let mut same = |new: &&str, old: &String| {
            compared += 1;
            new.to_uppercase() == *old
        };
        let again = first.map_reusing(previous, |_| true, &mut same, |_| unreachable!());
        assert!(!again.changed);
        let refused = first.map_reusing(previous, |_| false, &mut same, |_| unreachable!());
        assert!(!refused.changed, "compared instead, and found the same");
        assert_eq!(compared, 1, "only the refused host was compared");
    }

    /// Every row of the path-matching table in the Kubernetes Ingress documentation.
    #[test]
    fn kubernetes_path_matching_examples() {
        let p = PathMatch::prefix;
        let e = PathMatch::exact;
        let rows: Vec<(Vec<PathMatch>, &str, Option<PathMatch>)> = vec![
            (vec![p("/")], "/anything/at/all", Some(p("/"))),
            (vec![e("/foo")], "/foo", Some(e("/foo"))),
            (vec![e("/foo")], "/bar", None),
            (vec![e("/foo")], "/foo/", None),
            (vec![e("/foo/")], "/foo", None),
            (vec![p("/foo")], "/foo", Some(p("/foo"))),
            (vec![p("/foo")], "/foo/", Some(p("/foo"))),
            (vec![p("/foo/")], "/foo", Some(p("/foo"))),
            (vec![p("/foo/")], "/foo/", Some(p("/foo"))),
            (vec![p("/aaa/bb")], "/aaa/bbb", None),
            (vec![p("/aaa/bbb")], "/aaa/bbb", Some(p("/aaa/bbb"))),
            (vec![p("/aaa/bbb/")], "/aaa/bbb", Some(p("/aaa/bbb"))),
            (vec![p("/aaa/bbb")], "/aaa/bbb/", Some(p("/aaa/bbb"))),
            (vec![p("/aaa/bbb")], "/aaa/bbb/ccc", Some(p("/aaa/bbb"))),
            (vec![p("/aaa/bbb")], "/aaa/bbbxyz", None),
            (vec![p("/"), p("/aaa")], "/aaa/ccc", Some(p("/aaa"))),
            (
                vec![p("/"), p("/aaa"), p("/aaa/bbb")],
                "/aaa/bbb",
                Some(p("/aaa/bbb")),
            ),
            (vec![p("/"), p("/aaa"), p("/aaa/bbb")], "/ccc", Some(p("/"))),
            (vec![p("/aaa")], "/ccc", None),
            (vec![p("/foo"), e("/foo")], "/foo", Some(e("/foo"))),
        ];
        for (paths, request, expected) in rows {
            let table = hostless(&paths);
            let selected = table.route("example.com", request);
            assert_eq!(
                selected.map(|selected| selected.target().clone()),
                expected,
                "rules {paths:?}, request {request}"
            );
        }
    }

    #[test]
    fn query_string_is_not_part_of_the_path() {
        let table = table(&[("", PathMatch::exact("/foo"), "foo")]);
        assert_eq!(route(&table, "x", "/foo"), Some("foo"));
    }

    #[test]
    fn exact_host_beats_wildcard_beats_hostless() {
        let table = table(&[
            ("foo.bar.com", PathMatch::prefix("/"), "exact"),
            ("*.bar.com", PathMatch::prefix("/"), "wildcard"),
            ("", PathMatch::prefix("/"), "any"),
        ]);
        assert_eq!(route(&table, "FOO.bar.com:8080", "/"), Some("exact"));
        assert_eq!(route(&table, "baz.bar.com", "/"), Some("wildcard"));
        assert_eq!(route(&table, "a.baz.bar.com", "/"), Some("any"));
        assert_eq!(route(&table, "bar.com", "/"), Some("any"));
    }

    #[test]
    fn a_matched_host_does_not_fall_back_to_other_hosts() {
        let mut builder = RouteTableBuilder::default();
        let host = HostMatch::parse("foo.com").expect("valid host");
        builder
            .add_rule(host, PathMatch::prefix("/api"), "api")
            .expect("no conflict");
        builder
            .add_rule(HostMatch::Any, PathMatch::prefix("/"), "any")
            .expect("no conflict");
        builder.set_default_backend("default").expect("first");
        let table = builder.build();
        assert_eq!(route(&table, "foo.com", "/other"), Some("default"));
        assert_eq!(route(&table, "bar.com", "/other"), Some("any"));
    }

    #[test]
    fn no_match_without_default_backend_is_none() {
        let table = table(&[("foo.com", PathMatch::prefix("/a"), "a")]);
        assert_eq!(route(&table, "foo.com", "/b"), None);
        assert_eq!(route(&table, "other.com", "/a"), None);
    }

    #[test]
    fn first_rule_for_a_key_wins() {
        let mut builder = RouteTableBuilder::default();
        builder
            .add_rule(HostMatch::Any, PathMatch::prefix("/a/"), "first")
            .expect("no conflict");
        assert_eq!(
            builder.add_rule(HostMatch::Any, PathMatch::prefix("/a"), "second"),
            Err(&"first")
        );
        builder
            .add_rule(HostMatch::Any, PathMatch::exact("/a"), "exact")
            .expect("a different path type is a different rule");
        assert_eq!(builder.set_default_backend("d1"), Ok(()));
        assert_eq!(builder.set_default_backend("d2"), Err(&"d1"));
        *builder
            .rule_mut(&HostMatch::Any, &PathMatch::prefix("/a"))
            .expect("added") = "amended";
        assert!(
            builder
                .rule_mut(&HostMatch::Any, &PathMatch::prefix("/b"))
                .is_none()
        );
        *builder.default_backend_mut().expect("set") = "d3";
        let table = builder.build();
        assert_eq!(route(&table, "h", "/a/x"), Some("amended"));
        assert_eq!(route(&table, "h", "/b"), Some("d3"));
    }

    /// The indexed lookup must pick exactly what a scan in `Ord` order picks.
    #[test]
    fn indexed_lookup_agrees_with_precedence_order() {
        let paths = [
            PathMatch::prefix("/"),
            PathMatch::prefix("/a"),
            PathMatch::exact("/a"),
            PathMatch::prefix("/a/b"),
            PathMatch::exact("/a/b/"),
            PathMatch::prefix("/a/bc"),
            PathMatch::exact("/a/b/c"),
            PathMatch::prefix("/x/y/z"),
            PathMatch::prefix("/x"),
            PathMatch::exact("/x/y"),
        ];
        assert!(paths.len() > SCANNED_UP_TO, "the host must be indexed");
        let table = hostless(&paths);
        let vhost = table.virtual_host("h").expect("hostless vhost");
        assert!(vhost.index.is_some());
        let requests = [
            "/", "/a", "/a/", "/a/b", "/a/b/", "/a/bc", "/a/bcd", "/a/b/c", "/a/b/c/", "/a//b",
            "/x/y", "/x/y/z/w", "/b",
        ];
        for request in requests {
            let scanned = vhost.rules().iter().find(|rule| rule.path.matches(request));
            assert_eq!(vhost.route(request), scanned, "request {request}");
        }
    }

    /// The ingress-nginx "Path Priority" example: on a host in regex mode, locations are tried
    /// longest first; `Exact` paths are still looked up first.
    #[test]
    fn regex_rules_are_tried_longest_first_after_exact_rules() {
        let regex = |pattern| PathMatch::regex(pattern).expect("valid");
        let table = table(&[
            ("test.com", regex("/foo/bar"), "service1"),
            ("test.com", regex("/foo/bar/"), "service2"),
            ("test.com", regex("/foo/bar/(.+)"), "service3"),
            ("test.com", PathMatch::exact("/foo/bar/exact"), "exact"),
            ("test.com", regex("/"), "root"),
        ]);
        assert_eq!(route(&table, "test.com", "/foo/bar/1"), Some("service3"));
        assert_eq!(route(&table, "test.com", "/foo/bar/"), Some("service2"));
        assert_eq!(route(&table, "test.com", "/foo/bar"), Some("service1"));
        assert_eq!(route(&table, "test.com", "/FOO/Bar"), Some("service1"));
        assert_eq!(route(&table, "test.com", "/foo/barn"), Some("service1"));
        assert_eq!(route(&table, "test.com", "/foo/bar/exact"), Some("exact"));
        assert_eq!(
            route(&table, "test.com", "/foo/bar/EXACT"),
            Some("service3")
        );
        assert_eq!(route(&table, "test.com", "/other"), Some("root"));
    }

    /// The "Warning" example of the ingress-nginx docs: the longer regex wins over the path a
    /// request names exactly.
    #[test]
    fn first_matching_regex_wins_over_a_literal_match() {
        let regex = |pattern| PathMatch::regex(pattern).expect("valid");
        let table = table(&[
            ("test.com", regex("/foo/bar/bar"), "literal"),
            ("test.com", regex("/foo/bar/[A-Z0-9]{3}"), "pattern"),
        ]);
        assert_eq!(route(&table, "test.com", "/foo/bar/bar"), Some("pattern"));
        assert_eq!(route(&table, "test.com", "/foo/bar/b-r"), None);
    }

    #[test]
    fn regex_rules_agree_with_precedence_order() {
        let paths = [
            PathMatch::exact("/a"),
            PathMatch::prefix("/b"),
            PathMatch::regex("/a.*").expect("valid"),
            PathMatch::regex("/b/(x|y)").expect("valid"),
            PathMatch::regex("/").expect("valid"),
        ];
        let table = hostless(&paths);
        let vhost = table.virtual_host("h").expect("hostless vhost");
        for request in ["/", "/a", "/A", "/ab", "/b", "/b/x", "/B/x", "/c", "/a/b"] {
            let scanned = vhost.rules().iter().find(|rule| rule.path.matches(request));
            assert_eq!(vhost.route(request), scanned, "request {request}");
        }
    }

    #[test]
    fn map_keeps_structure_and_converts_targets() {
        let table = table(&[("foo.com", PathMatch::prefix("/a"), "a")]);
        let mapped = table.map(|target| target.len());
        assert_eq!(
            mapped
                .route("foo.com", "/a/b")
                .map(|selected| *selected.target()),
            Some(1)
        );
    }

    #[test]
    fn equal_targets_next_to_each_other_are_converted_once() {
        let table = table(&[
            ("foo.com", PathMatch::prefix("/a"), "x"),
            ("foo.com", PathMatch::exact("/b"), "x"),
            ("foo.com", PathMatch::prefix("/c"), "y"),
        ]);
        let mut conversions = 0;
        let mapped = table.map(|target| {
            conversions += 1;
            Arc::new(target.to_uppercase())
        });
        assert_eq!(conversions, 2);
        let target = |path| Arc::clone(mapped.route("foo.com", path).expect("routed").target());
        assert!(Arc::ptr_eq(&target("/a"), &target("/b")));
        assert_eq!(*target("/c"), "Y");
    }
}
