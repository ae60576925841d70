//! Route lookup against route count: 10 to 100,000 Ingress paths over 1 to
//! 10,000 hosts, with Exact, Prefix and mixed (Exact, Prefix and regex-mode
//! hosts) paths. One iteration is what a request pays to find its route:
//! Host and path normalised, then `RouteTable::find`. Prints the issue's
//! lookup figures at the end.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use edge_gateway_benches::figures::{self, compile_table, route_request};
use edge_gateway_benches::fleet::{Fleet, Mix};

/// The allocator of the `edge-gateway` binary, so that the figures are the
/// gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let mut shapes = Vec::new();
    for mix in [Mix::Prefix, Mix::Exact, Mix::Mixed] {
        for (ingresses, hosts) in [
            (10, 1),
            (100, 10),
            (1_000, 100),
            (10_000, 1_000),
            (100_000, 10_000),
        ] {
            shapes.push(Fleet::new(ingresses, hosts, mix));
        }
    }
    // Many paths on one host (exact and prefix maps only: a regex-mode
    // host holds at most 2,000 paths, `max-regex-paths-per-host`).
    shapes.push(Fleet::new(100_000, 1, Mix::Prefix));
    shapes.push(Fleet::new(100_000, 1, Mix::Exact));
    for fleet in shapes {
        let table = compile_table(&fleet.snapshot());
        let requests = fleet.requests(4096);
        assert!(requests.iter().all(|(h, p)| route_request(&table, h, p)));
        group.bench_with_input(BenchmarkId::from_parameter(fleet.id()), &table, |b, t| {
            let mut next = 0;
            b.iter(|| {
                let (host, path) = &requests[next];
                next = (next + 1) % requests.len();
                route_request(t, black_box(host), black_box(path))
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    lookup(&mut c);
    c.final_summary();
    figures::print_lookup(figures::quick_from_args());
}
