//! `RouteTable::route` on a table of 10,000 hosts with 3 paths each: hits on exact and wildcard
//! hosts, and misses. Run with `cargo bench -p vestibule-routing`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vestibule_routing::{HostMatch, PathMatch, RouteTable, RouteTableBuilder};

const HOSTS: usize = 10_000;

/// 10,000 hosts, every tenth a wildcard (`*.wN.bench.example`), the rest exact
/// (`app-N.bench.example`); each with `/api` and `/web` (Prefix) and `/status` (Exact).
fn table() -> RouteTable<usize> {
    let mut builder = RouteTableBuilder::default();
    for i in 0..HOSTS {
        let host = if i % 10 == 9 {
            format!("*.w{i}.bench.example")
        } else {
            format!("app-{i}.bench.example")
        };
        let host = HostMatch::parse(&host).expect("valid host");
        let paths = [
            PathMatch::prefix("/api"),
            PathMatch::prefix("/web"),
            PathMatch::exact("/status"),
        ];
        for (n, path) in paths.into_iter().enumerate() {
            builder
                .add_rule(host.clone(), path, i * 3 + n)
                .expect("no conflict");
        }
    }
    builder.build()
}

fn route(c: &mut Criterion) {
    let table = table();
    let cases = [
        (
            "hit_exact_host_prefix",
            "app-4242.bench.example",
            "/api/v1/users/42",
        ),
        (
            "hit_exact_host_exact_path",
            "app-4242.bench.example",
            "/status",
        ),
        (
            "hit_exact_host_with_port_and_case",
            "App-4242.Bench.Example:8080",
            "/web",
        ),
        (
            "hit_wildcard_host",
            "shop.w4249.bench.example",
            "/web/index.html",
        ),
        ("miss_unknown_host", "nothing.example", "/api"),
        (
            "miss_path_on_known_host",
            "app-4242.bench.example",
            "/other/path",
        ),
    ];
    let mut group = c.benchmark_group("route_10000_hosts");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (name, host, path) in cases {
        let expect_hit = name.starts_with("hit");
        assert_eq!(table.route(host, path).is_some(), expect_hit, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                table
                    .route(black_box(host), black_box(path))
                    .map(|selected| *selected.target())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
