//! An endpoint-set update on a large table: one EndpointSlice change (a pod
//! replaced) absorbed by the reconciler and published to the live backend,
//! on tables of 10,000 and 100,000 Ingresses; and the backend's endpoint
//! swap on its own. Prints the endpoint figure at the end.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use edge_gateway_benches::figures::{self, endpoint_update, published_reconciler};
use edge_gateway_benches::fleet::{Fleet, Mix};
use gateway::EndpointUpdate;

/// The allocator of the `edge-gateway` binary, so that the figures are the
/// gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn endpoints(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint_update");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for ingresses in [10_000, 100_000] {
        let fleet = Fleet::new(ingresses, ingresses / 10, Mix::Mixed);
        let (mut reconciler, table) = published_reconciler(&fleet);
        let mut generation: u32 = 0;
        group.bench_function(BenchmarkId::new("reconciler", ingresses), |b| {
            b.iter(|| {
                generation = generation.wrapping_add(1);
                let i = (generation as usize).wrapping_mul(7919) % ingresses;
                endpoint_update(&mut reconciler, i, generation);
            });
        });
        let table = table.load_full();
        let backend = table.backends()[ingresses / 2].clone();
        let updates: Vec<EndpointUpdate> = (0..2u8)
            .map(|g| EndpointUpdate {
                addrs: (1..=3u8).map(|k| ([10, 9, g, k], 8080).into()).collect(),
                service_found: true,
            })
            .collect();
        let mut flip = 0;
        group.bench_function(BenchmarkId::new("backend_swap", ingresses), |b| {
            b.iter(|| {
                flip ^= 1;
                backend.update(&updates[flip])
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    endpoints(&mut c);
    c.final_summary();
    figures::print_endpoints(figures::quick_from_args());
}
