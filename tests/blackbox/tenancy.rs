//! Tenants (namespaces) kept apart, through the real binary: a canary in
//! one namespace cannot take another's route, and one tenant's Ingress of
//! 800 regex paths neither holds up another tenant's change nor takes the
//! gateway's memory.

use std::time::{Duration, Instant};

use testkit::{EchoBackend, Gateway, IngressBuilder, eventually, get, request};

use crate::cluster::Api;
use crate::{Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";

/// The case: a canary Ingress in `user-2` with weight 100 took all
/// of `user-1`'s `/api/v1/predict/1`.
#[tokio::test]
async fn a_canary_from_another_namespace_takes_nothing() {
    let main = EchoBackend::start([127, 0, 181, 1]).await;
    let thief = EchoBackend::start([127, 0, 181, 2]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&main]);
    docs.extend(service_for("user-2", "model-serving-2", &[&thief]));
    docs.push(
        IngressBuilder::new("user-1", "model-serving-1")
            .class("nginx")
            .host("localhost")
            .path("/api/v1/predict/1", "Prefix", "model-serving-1", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("user-2", "steal")
            .class("nginx")
            .annotation(&format!("{P}canary"), "true")
            .annotation(&format!("{P}canary-weight"), "100")
            .host("localhost")
            .path("/api/v1/predict/1", "Prefix", "model-serving-2", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    for _ in 0..20 {
        let response = get(s.http(), "localhost", "/api/v1/predict/1/health").await;
        assert_eq!(response.status, 200);
        assert_eq!(answered_by(&response), main.addr().to_string());
    }
    assert_eq!(thief.hits(), 0);
    s.gateway
        .wait_for_log("CanaryCrossNamespace", Duration::from_secs(5))
        .await;
}

/// `VmRSS` or `VmHWM` of a process, in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// How long after `doc` is applied a GET of `path` on `host` answers 200.
async fn served_after(api: &Api, gw: &Gateway, doc: &str, host: &str, path: &str) -> Duration {
    let applied = Instant::now();
    api.apply(doc);
    let addr = gw.http_addr();
    eventually(Duration::from_secs(30), || async move {
        match get(addr, host, path).await.status {
            200 => Ok(()),
            other => Err(format!("{host}{path}: {other}")),
        }
    })
    .await;
    applied.elapsed()
}

fn tenant_ingress(name: &str, path: &str) -> String {
    IngressBuilder::new("user-1", name)
        .class("nginx")
        .host("tenant-1.test")
        .path(path, "Prefix", "svc", 80)
        .build()
}

/// The case: one Ingress of ~800 `use-regex` paths (~80 KB) raised
/// the RSS from 17 MB to 953 MB and made another tenant's new Ingress wait
/// 33.8 s. Now its paths compile apart (and are small): the other
/// tenant's change is served as fast as one made alone (the baseline, in
/// the same run) plus under a second, and the memory it takes stays under
/// the documented bound (`edge-gateway.io/max-regex-memory-per-ingress`,
/// 32 MiB compiled, with room for the objects themselves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_800_regex_ingress_neither_delays_another_tenant_nor_takes_the_memory() {
    let backend = EchoBackend::start([127, 0, 181, 3]).await;
    let mut docs = service_for("user-1", "svc", &[&backend]);
    docs.extend(service_for("user-2", "svc", &[&backend]));
    docs.push(tenant_ingress("first", "/first"));
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    let pid = gw.pid();
    let rss_before = memory(pid, "VmRSS:");
    let baseline = served_after(
        &api,
        &gw,
        &tenant_ingress("baseline", "/baseline"),
        "tenant-1.test",
        "/baseline",
    )
    .await;

    let mut regex = IngressBuilder::new("user-2", "many-regex")
        .class("nginx")
        .annotation(&format!("{P}use-regex"), "true")
        .host("tenant-2.test");
    for i in 0..800 {
        let path = format!("/api/v1/predict/{i}/(\\w+)/(\\w+)/(\\w+)/(.*)/items/[a-z0-9-]+/(\\d+)");
        regex = regex.path(&path, "ImplementationSpecific", "svc", 80);
    }
    let regex = regex.build();
    assert!(regex.len() > 80_000, "{} bytes", regex.len());
    api.apply(&regex);
    let delayed = served_after(
        &api,
        &gw,
        &tenant_ingress("new", "/new"),
        "tenant-1.test",
        "/new",
    )
    .await;
    println!(
        "another tenant's new Ingress served {delayed:?} after it was applied, beside the 800-regex Ingress; alone: {baseline:?}"
    );
    assert!(
        delayed < baseline + Duration::from_secs(1),
        "served after {delayed:?} (alone: {baseline:?})"
    );

    let addr = gw.http_addr();
    eventually(Duration::from_secs(120), || async move {
        let path = "/api/v1/predict/799/a/b/c/d/items/x-1/7";
        match get(addr, "tenant-2.test", path).await.status {
            200 => Ok(()),
            other => Err(format!("regex path: {other}")),
        }
    })
    .await;
    for i in (0..800).step_by(7) {
        let path = format!("/api/v1/predict/{i}/x/y/z/w/items/a-b/1");
        let response = request(addr, "GET", "tenant-2.test", &path, &[], Vec::new()).await;
        assert_eq!(response.status, 200, "{path}");
    }
    assert_eq!(get(addr, "tenant-1.test", "/first").await.status, 200);
    let rss_after = memory(pid, "VmRSS:");
    let peak = memory(pid, "VmHWM:");
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "RSS {} MiB before, {} MiB after the 800-regex Ingress (peak {} MiB)",
        rss_before >> 20,
        rss_after >> 20,
        peak >> 20
    );
    // 32 MiB of compiled expressions at most, plus room for the parsed
    // objects, their table and the allocator; was 936 MiB.
    let bound = (32 + 64) << 20;
    assert!(grown < bound, "RSS grew by {} MiB", grown >> 20);
    assert!(peak < rss_before + bound, "peak {} MiB", peak >> 20);
}
