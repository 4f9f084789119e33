//! Invariant checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every check panics (and so makes libFuzzer report a crash) only when the product breaks a
//! property it documents; inputs the product rejects are never a failure.

use std::fmt::Debug;

use vestibule_routing::{RouteTable, Selected, VirtualHost, normalize_request_host};

/// `VirtualHost::route` (indexed lookup) must pick exactly the first rule, in the precedence
/// order `rules()` keeps them in, whose path matches: a linear scan.
pub fn check_virtual_host<T: PartialEq + Debug>(vhost: &VirtualHost<T>, path: &str) {
    let scanned = vhost.rules().iter().find(|rule| rule.path.matches(path));
    let indexed = vhost.route(path);
    assert_eq!(
        indexed,
        scanned,
        "indexed lookup disagrees with the precedence scan: host {}, request path {path:?}, rules {:?}",
        vhost.host(),
        vhost
            .rules()
            .iter()
            .map(|rule| rule.path.to_string())
            .collect::<Vec<_>>()
    );
}

/// Routes `host`/`path` through `table` and checks the result against a linear model:
/// the virtual host is the first one, in precedence order, whose pattern matches the normalised
/// request host; within it the first matching rule; otherwise the default backend.
pub fn check_route<T: PartialEq + Debug>(table: &RouteTable<T>, host: &str, path: &str) {
    let normal = normalize_request_host(host);
    let all = table.virtual_hosts();
    let scanned_vhost = all
        .iter()
        .copied()
        .find(|vhost| vhost.host().matches(&normal));
    let vhost = table.virtual_host(host);
    assert_eq!(
        vhost.map(VirtualHost::host),
        scanned_vhost.map(VirtualHost::host),
        "host lookup disagrees with the precedence scan for request host {host:?} (normalised {normal:?})"
    );
    let expected = vhost
        .and_then(|vhost| vhost.route(path))
        .map(Selected::Rule)
        .or_else(|| table.default_backend().map(Selected::DefaultBackend));
    assert_eq!(
        table.route(host, path),
        expected,
        "host {host:?}, path {path:?}"
    );
    for vhost in all {
        check_virtual_host(vhost, path);
    }
}
