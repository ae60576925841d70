//! `global-rate-limit` on a real memcached (Debian package `memcached`)
//! shared by two gateway replicas: the limit holds across both; with
//! memcached stopped, each replica counts on its own and no request fails.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, eventually, free_port, request, scrape};

use crate::config_map::config_map;
use crate::{Setup, service_for};

const HOST: &str = "global.test";
const LIMIT: usize = 40;

/// memcached on a free port; killed when dropped.
struct Memcached {
    child: Child,
    addr: SocketAddr,
}

impl Memcached {
    async fn start() -> Memcached {
        let addr = SocketAddr::from(([127, 0, 96, 9], free_port([127, 0, 96, 9])));
        let child = Command::new("memcached")
            .args(["-l", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-U", "0", "-m", "16", "-c", "64", "-u", "root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached can run (Debian package memcached)");
        eventually(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .map_err(|e| format!("memcached not listening on {addr}: {e}"))
        })
        .await;
        Memcached { child, addr }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A gateway replica: `HOST` limited to `LIMIT` requests an hour per
/// `X-Tenant`, counted in `memcached`.
async fn replica(backend: &EchoBackend, memcached: SocketAddr) -> Setup {
    let mut docs = service_for("gl", "svc", &[backend]);
    docs.push(
        IngressBuilder::new("gl", "app")
            .class("nginx")
            .annotation(
                "nginx.ingress.kubernetes.io/global-rate-limit",
                &LIMIT.to_string(),
            )
            .annotation("nginx.ingress.kubernetes.io/global-rate-limit-window", "1h")
            .annotation(
                "nginx.ingress.kubernetes.io/global-rate-limit-key",
                "tenant-$http_x_tenant",
            )
            .host(HOST)
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let port = memcached.port().to_string();
    docs.push(config_map(&[
        (
            "global-rate-limit-memcached-host",
            &memcached.ip().to_string(),
        ),
        ("global-rate-limit-memcached-port", &port),
        // Generous: a loaded test machine must not turn a slow answer
        // into a store failure.
        ("global-rate-limit-memcached-connect-timeout", "2000"),
    ]));
    Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await
}

/// Sends `n` requests of `tenant`, alternating between the replicas;
/// returns how many each admitted, and every status seen.
async fn send(replicas: &[&Setup], tenant: &str, n: usize) -> (Vec<usize>, Vec<u16>) {
    let mut admitted = vec![0; replicas.len()];
    let mut statuses = Vec::new();
    for i in 0..n {
        let r = i % replicas.len();
        let status = request(
            replicas[r].http(),
            "GET",
            HOST,
            "/",
            &[("x-tenant", tenant)],
            Vec::new(),
        )
        .await
        .status;
        if status == 200 {
            admitted[r] += 1;
        }
        statuses.push(status);
    }
    (admitted, statuses)
}

async fn store_errors(setup: &Setup) -> f64 {
    let samples = scrape(setup.gateway.metrics_addr()).await;
    testkit::metrics::matching(
        &samples,
        "edge_gateway_global_rate_limit_store_errors_total",
        &[],
    )
    .first()
    .map_or(0.0, |s| s.value)
}

/// Whether `n` is within 10% of `expected` (at least one request either
/// way).
fn within(n: usize, expected: usize) -> bool {
    n.abs_diff(expected) <= (expected / 10).max(1)
}

#[tokio::test]
async fn two_replicas_share_the_limit_and_a_dead_store_fails_no_request() {
    let mut memcached = Memcached::start().await;
    let backend = EchoBackend::start([127, 0, 96, 1]).await;
    let a = replica(&backend, memcached.addr).await;
    let b = replica(&backend, memcached.addr).await;

    // What one replica admits of a burst: ingress-nginx's window
    // extrapolates the count over the rest of the hour, so between half
    // the limit and the limit, depending on the time.
    let (solo, statuses) = send(&[&a], "solo", LIMIT * 2).await;
    let solo = solo[0];
    assert!((LIMIT / 2..=LIMIT).contains(&solo), "{solo}: {statuses:?}");
    // The same burst across both replicas, for another key: the two
    // together admit what one does (each alone would admit as much).
    let (pair, statuses) = send(&[&a, &b], "pair", LIMIT * 2).await;
    let total: usize = pair.iter().sum();
    assert!(
        within(total, solo),
        "{total} admitted across both replicas ({pair:?}), one replica admits {solo}: {statuses:?}"
    );
    assert!(pair.iter().all(|n| *n > 0), "{pair:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(store_errors(&a).await, 0.0);

    // memcached stops mid-run: no request fails; each replica counts the
    // limit on its own; the failures are counted.
    memcached.stop();
    let (alone, statuses) = send(&[&a, &b], "down", LIMIT * 4).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        alone.iter().all(|n| within(*n, solo)),
        "each replica admits what one does, on its own: {alone:?} (one admits {solo})"
    );
    for replica in [&a, &b] {
        assert!(store_errors(replica).await >= 1.0);
    }
}

/// A global limit with no memcached to count in is never served beyond:
/// the Ingress's routes answer 503 with a diagnostic naming the key to
/// set, and another Ingress keeps serving.
#[tokio::test]
async fn a_global_limit_without_a_store_fails_closed() {
    let backend = EchoBackend::start([127, 0, 96, 3]).await;
    let mut docs = service_for("gl", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("gl", "limited")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/global-rate-limit", "5")
            .annotation("nginx.ingress.kubernetes.io/global-rate-limit-window", "1m")
            .host(HOST)
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("gl", "open")
            .class("nginx")
            .host("open.global.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    for _ in 0..3 {
        let limited = request(s.http(), "GET", HOST, "/", &[], Vec::new()).await;
        assert_eq!(limited.status, 503);
    }
    let open = request(s.http(), "GET", "open.global.test", "/", &[], Vec::new()).await;
    assert_eq!(open.status, 200);
    assert_eq!(
        backend.hits(),
        1,
        "only the open Ingress reached the backend"
    );
    s.gateway
        .wait_for_log("global-rate-limit-memcached-host", Duration::from_secs(5))
        .await;
}
