//! The per-request header work: the client's request head rewritten for
//! the upstream (hop-by-hop headers, ingress-nginx's `X-Forwarded-*`, a
//! generated `X-Request-ID`) and the upstream's response head cleaned for
//! the client. Prints the header figure at the end.

use std::time::Duration;

use criterion::{BatchSize, Criterion};
use edge_gateway_benches::figures::{self, header_fixture};
use gateway::proxy::bench_header_work;
use http::header::{HeaderName, HeaderValue};

/// The allocator of the `edge-gateway` binary, so that the figures are the
/// gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (conn, request, response) = header_fixture();
    group.bench_function("typical", |b| {
        b.iter_batched_ref(
            || (request.clone(), response.clone()),
            |(req, resp)| bench_header_work(&conn, req, resp),
            BatchSize::SmallInput,
        );
    });
    // A client that sends its own forwarding headers, a request id and
    // hop-by-hop headers: every replace-and-keep-original path runs.
    let mut busy = request.clone();
    for (name, value) in [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-host", "evil.example"),
        ("x-request-id", "0123456789abcdef0123456789abcdef"),
        ("connection", "keep-alive, x-secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
    ] {
        busy.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    group.bench_function("client_forwarding_headers", |b| {
        b.iter_batched_ref(
            || (busy.clone(), response.clone()),
            |(req, resp)| bench_header_work(&conn, req, resp),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    headers(&mut c);
    c.final_summary();
    figures::print_headers(figures::quick_from_args());
}
