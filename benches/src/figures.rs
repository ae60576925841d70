//! The figures issue 10 sets targets for, measured directly (median of
//! repeated batches) so that they print the same way from the criterion
//! benches and from `bench-figures`:
//!
//! - route lookup median at 10,000 and 100,000 Ingresses (target ≤ 200 ns,
//!   and within 2× of that at 100,000);
//! - `compile()` of 10,000 (< 250 ms) and 100,000 Ingresses (< 3 s), and
//!   a reconciler's recompile after one Ingress change (issue 20: a change
//!   served < 1 s at 100,000);
//! - an endpoint-only update on a large table (no target; it must not cost
//!   a recompile);
//! - the per-request header work.
//!
//! Each figure is one line, `figure <name> <value> <unit>`, easy to grep.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use controller::compile::compile;
use controller::reconcile::{Change, Reconciler, SourceUpdate};
use controller::snapshot::Snapshot;
use controller::{CompileOptions, Object};
use gateway::admin::Health;
use gateway::host::normalize_request_host;
use gateway::path::normalize_path;
use gateway::proxy::{ConnInfo, ListenerInfo, bench_header_work};
use gateway::settings::{ListenerSettings, Scheme};
use gateway::{Publisher, RouteTable, TableHandle};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::fleet::{Fleet, Mix};

/// Prints one figure line.
pub fn print(name: &str, value: f64, unit: &str) {
    println!("figure {name} {value:.3} {unit}");
}

/// The median of `runs` timings of `f`, after one untimed warm-up call.
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// What a request pays to find its route: the Host and path normalised as
/// the proxy does, then the table lookup. Returns whether a route matched.
pub fn route_request(table: &RouteTable, host: &str, path: &[u8]) -> bool {
    let host = normalize_request_host(host).ok();
    let Ok(path) = normalize_path(path) else {
        return false;
    };
    table.find(host.as_deref(), &path).route.is_some()
}

/// Median time of one [`route_request`], in nanoseconds, over `batches`
/// batches of `per_batch` lookups cycling through `requests`.
pub fn lookup_ns(
    table: &RouteTable,
    requests: &[(String, Vec<u8>)],
    batches: usize,
    per_batch: usize,
) -> f64 {
    let mut next = 0;
    let batch = median_time(batches, || {
        for _ in 0..per_batch {
            let (host, path) = &requests[next];
            next = (next + 1) % requests.len();
            black_box(route_request(table, black_box(host), black_box(path)));
        }
    });
    batch.as_secs_f64() * 1e9 / per_batch as f64
}

/// Compiles a fleet's snapshot into a table (the default options).
pub fn compile_table(snapshot: &Snapshot) -> RouteTable {
    compile(snapshot, &CompileOptions::default()).table
}

/// A reconciler that has published `fleet`'s table, for endpoint updates.
pub fn published_reconciler(fleet: &Fleet) -> (Reconciler, TableHandle) {
    let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let mut reconciler = Reconciler::new(
        CompileOptions::default(),
        Publisher::new(table.clone(), None),
        Arc::new(Health::default()),
        1,
        Duration::ZERO,
    );
    reconciler.absorb(SourceUpdate {
        changes: fleet.objects().into_iter().map(Change::Apply).collect(),
        synced: true,
    });
    reconciler.publish();
    (reconciler, table)
}

/// One endpoint-only change, as a watch event brings it: EndpointSlice
/// `i` at `generation`, absorbed and published (the live backend's
/// endpoint set is swapped; no recompile).
pub fn endpoint_update(reconciler: &mut Reconciler, i: usize, generation: u32) {
    reconciler.absorb(SourceUpdate {
        changes: vec![Change::Apply(Object::from(Fleet::endpoint_slice(
            i, generation,
        )))],
        synced: false,
    });
    reconciler.publish();
}

/// A client connection and the request and response heads of a typical
/// proxied request (oha-like client, small JSON response).
pub fn header_fixture() -> (ConnInfo, HeaderMap, HeaderMap) {
    let listener = Arc::new(ListenerInfo::new(&ListenerSettings::new(Scheme::Http)));
    let conn = ConnInfo::new(SocketAddr::from(([10, 1, 2, 3], 40000)), listener, false);
    let map = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        headers
    };
    let request = map(&[
        ("host", "api.bench.example"),
        ("user-agent", "oha/1.16.0"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, br"),
        ("content-type", "application/json"),
        ("content-length", "1024"),
        ("authorization", "Bearer abcdefghijklmnopqrstuvwxyz"),
    ]);
    let response = map(&[
        ("content-type", "application/json"),
        ("content-length", "13"),
        ("date", "Mon, 01 Jun 2026 12:00:00 GMT"),
        ("server", "bench-upstream"),
    ]);
    (conn, request, response)
}

/// Median time of the per-request header work, in nanoseconds (the header
/// maps are cloned outside the timed part).
pub fn header_work_ns(batches: usize, per_batch: usize) -> f64 {
    let (conn, request, response) = header_fixture();
    let mut work: Vec<(HeaderMap, HeaderMap)> = Vec::new();
    let mut total = Vec::with_capacity(batches);
    for _ in 0..batches.max(1) {
        work.clear();
        work.extend((0..per_batch).map(|_| (request.clone(), response.clone())));
        let start = Instant::now();
        for (req, resp) in &mut work {
            bench_header_work(&conn, black_box(req), black_box(resp));
        }
        total.push(start.elapsed());
    }
    total.sort();
    total[total.len() / 2].as_secs_f64() * 1e9 / per_batch as f64
}

/// Resident set size of this process, in KiB (0 where /proc is missing).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The lookup figures: median lookup at 10,000 and 100,000 Ingresses (ten
/// paths per host, every path kind), and the ratio of the two.
pub fn print_lookup(quick: bool) {
    let batches = if quick { 11 } else { 51 };
    let mut at = Vec::new();
    for (ingresses, hosts) in [(10_000, 1_000), (100_000, 10_000)] {
        for mix in [Mix::Mixed, Mix::Prefix] {
            let fleet = Fleet::new(ingresses, hosts, mix);
            let table = compile_table(&fleet.snapshot());
            let requests = fleet.requests(4096);
            assert!(
                requests.iter().all(|(h, p)| route_request(&table, h, p)),
                "every request must hit a route ({})",
                fleet.id()
            );
            let ns = lookup_ns(&table, &requests, batches, 10_000);
            print(
                &format!(
                    "lookup_median_{}_{}ing_{}hosts",
                    mix.name(),
                    ingresses,
                    hosts
                ),
                ns,
                "ns",
            );
            if mix == Mix::Mixed {
                at.push(ns);
            }
        }
    }
    if let [small, large] = at[..] {
        print("lookup_ratio_100k_over_10k_mixed", large / small, "x");
    }
}

/// The compile figures: median `compile()` time at 10,000 and 100,000
/// Ingresses (with their Services and EndpointSlices; a tenth of the hosts
/// in regex mode), and at 10,000 without regex hosts.
pub fn print_compile(quick: bool) {
    for (ingresses, mix, runs) in [
        (10_000, Mix::Mixed, if quick { 3 } else { 9 }),
        (10_000, Mix::Prefix, if quick { 3 } else { 9 }),
        (100_000, Mix::Mixed, 3),
    ] {
        let fleet = Fleet::new(ingresses, ingresses / 10, mix);
        let snapshot = fleet.snapshot();
        let time = median_time(runs, || {
            black_box(compile_table(&snapshot));
        });
        let suffix = if mix == Mix::Mixed {
            ""
        } else {
            "_prefix_only"
        };
        print(
            &format!("compile_median_{ingresses}ing{suffix}"),
            time.as_secs_f64() * 1e3,
            "ms",
        );
    }
}

/// The recompile figures: one changed Ingress absorbed and published by a
/// reconciler serving 10,000 and 100,000 Ingresses (the whole path of a
/// change: the compile onto the live table, the publish, the reports), as
/// [`print_compile`] lays them out.
pub fn print_recompile(quick: bool) {
    for (ingresses, runs) in [(10_000, if quick { 5 } else { 15 }), (100_000, 3)] {
        let fleet = Fleet::new(ingresses, ingresses / 10, Mix::Mixed);
        let (mut reconciler, table) = published_reconciler(&fleet);
        let mut generation = 0;
        let time = median_time(runs, || {
            generation += 1;
            let before = Arc::as_ptr(&table.load_full());
            reconciler.absorb(SourceUpdate {
                changes: vec![Change::Apply(Object::from(
                    fleet.ingress_at((generation as usize * 7919) % ingresses, generation),
                ))],
                synced: false,
            });
            reconciler.publish();
            assert_ne!(
                before,
                Arc::as_ptr(&table.load_full()),
                "an Ingress change publishes a new table"
            );
        });
        print(
            &format!("recompile_one_change_median_{ingresses}ing"),
            time.as_secs_f64() * 1e3,
            "ms",
        );
    }
}

/// The memory a 10,000-Ingress snapshot and its table take: resident set
/// growth of this process. Meaningful only as the first thing a fresh
/// process does (freed memory is kept by the allocator).
pub fn print_memory() {
    let fleet = Fleet::new(10_000, 1_000, Mix::Mixed);
    let before = rss_kib();
    let snapshot = fleet.snapshot();
    let with_snapshot = rss_kib();
    let table = compile_table(&snapshot);
    let with_table = rss_kib();
    print(
        "rss_growth_snapshot_10k",
        with_snapshot.saturating_sub(before) as f64 / 1024.0,
        "MiB",
    );
    print(
        "rss_growth_table_10k",
        with_table.saturating_sub(with_snapshot) as f64 / 1024.0,
        "MiB",
    );
    drop(table);
}

/// The endpoint-update figure: one EndpointSlice change published on a
/// 10,000-Ingress table.
pub fn print_endpoints(quick: bool) {
    let fleet = Fleet::new(10_000, 1_000, Mix::Mixed);
    let (mut reconciler, table) = published_reconciler(&fleet);
    let before = Arc::as_ptr(&table.load_full());
    let mut generation = 0;
    let runs = if quick { 101 } else { 1001 };
    let time = median_time(runs, || {
        generation += 1;
        endpoint_update(
            &mut reconciler,
            (generation as usize * 7919) % 10_000,
            generation,
        );
    });
    assert_eq!(
        before,
        Arc::as_ptr(&table.load_full()),
        "an endpoint change must not publish a new table"
    );
    print("endpoint_update_median_10k", time.as_secs_f64() * 1e6, "us");
}

/// The header-work figure.
pub fn print_headers(quick: bool) {
    let ns = header_work_ns(if quick { 11 } else { 51 }, 10_000);
    print("header_work_median", ns, "ns");
}

/// Whether the command line asks criterion for a quick pass (`--test`,
/// `--list`, `--quick`) or the `BENCH_QUICK` variable is set.
pub fn quick_from_args() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
        || std::env::args().any(|a| a == "--test" || a == "--list" || a == "--quick")
}
