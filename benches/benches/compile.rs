//! `compile()` against object count: 1,000, 10,000 and 100,000 Ingresses
//! (ten per host, every path kind, a tenth of the hosts in regex mode),
//! each with its Service and EndpointSlice. Prints the compile
//! figures at the end.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use edge_gateway_benches::figures::{self, compile_table};
use edge_gateway_benches::fleet::{Fleet, Mix};

/// The allocator of the `edge-gateway` binary, so that the figures are the
/// gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for ingresses in [1_000, 10_000, 100_000] {
        let fleet = Fleet::new(ingresses, ingresses / 10, Mix::Mixed);
        let snapshot = fleet.snapshot();
        group.measurement_time(Duration::from_secs(if ingresses >= 100_000 {
            30
        } else {
            5
        }));
        group.bench_with_input(BenchmarkId::from_parameter(ingresses), &snapshot, |b, s| {
            b.iter_with_large_drop(|| compile_table(s));
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    compile(&mut c);
    c.final_summary();
    figures::print_compile(figures::quick_from_args());
}
