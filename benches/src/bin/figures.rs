//! `bench-figures`: prints the figures issue 10 sets targets for (route
//! lookup median at 10,000 and 100,000 Ingresses, `compile()` time at
//! 10,000 and 100,000, a recompile after one Ingress change, an endpoint
//! update on a large table, the header work), one `figure <name> <value>
//! <unit>` line each. Faster than the criterion benches; `--quick` (or
//! `BENCH_QUICK=1`) takes fewer samples. Build with `--release`.
//!
//! `bench-figures [--quick] [memory] [lookup] [gateway-api] [compile] [recompile] [endpoints] [headers]`
//! (all of them when none is named).

use edge_gateway_benches::figures;

/// The allocator of the `edge-gateway` binary, so that the figures are the
/// gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let quick = figures::quick_from_args();
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| named.is_empty() || named.iter().any(|n| n == name);
    // Memory first, while the process is fresh.
    if wanted("memory") {
        figures::print_memory();
    }
    if wanted("lookup") {
        figures::print_lookup(quick);
    }
    if wanted("gateway-api") {
        edge_gateway_benches::gateway_api::print_lookup(quick);
    }
    if wanted("compile") {
        figures::print_compile(quick);
    }
    if wanted("recompile") {
        figures::print_recompile(quick);
    }
    if wanted("endpoints") {
        figures::print_endpoints(quick);
    }
    if wanted("headers") {
        figures::print_headers(quick);
    }
}
