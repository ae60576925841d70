//! The control plane's waits are bounded and its death is not hidden,
//! through the real binary and the fake API server made to hang calls:
//! a hung list is retried, a hung Lease call ends leadership, Ingress
//! status is cleared on shutdown by the leader only, and a dead reconcile
//! thread fails `/healthz` and exits non-zero.

use std::time::Duration;

use testkit::{
    EchoBackend, Gateway, IngressBuilder, ManifestDir, eventually, ingress_class, scrape,
};

use crate::cluster::{Api, lease_holder, model_ingress, status_ips};
use crate::{BIN, service_for};

/// Short enough for tests; the default is 30 s.
const CALL_TIMEOUT: [&str; 2] = ["--api-call-timeout", "1s"];

async fn healthz(gateway: &Gateway) -> u16 {
    let addr = gateway.metrics_addr();
    testkit::try_request(addr, "GET", &addr.to_string(), "/healthz", &[], Vec::new())
        .await
        .map_or(0, |r| r.status)
}

/// The case for watchers: an initial list that never answers. It is
/// given up after the call timeout and tried again, so the gateway becomes
/// ready once the API server answers (the held request itself never does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_list_is_given_up_and_listed_again() {
    let backend = EchoBackend::start([127, 0, 182, 1]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&backend]);
    docs.push(model_ingress("user-1", 1, "/api/v1/predict/1"));
    let api = Api::start(&docs).await;
    api.server
        .hang(|r| r.method == "GET" && r.path.ends_with("/ingresses") && !r.is_watch());
    let gw = api.gateway("gw-0", &CALL_TIMEOUT).await;
    eventually(Duration::from_secs(10), || async {
        let held = api
            .server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/ingresses"))
            .count();
        if held >= 2 {
            Ok(())
        } else {
            Err(format!("{held} Ingress lists so far"))
        }
    })
    .await;
    assert_eq!(
        healthz(&gw).await,
        503,
        "not ready while Ingresses cannot be listed"
    );
    api.server.stop_hanging();
    gw.wait_ready().await;
    let addr = gw.http_addr();
    assert_eq!(
        testkit::get(addr, "localhost", "/api/v1/predict/1")
            .await
            .status,
        200
    );
    assert!(
        gw.logs()
            .contains("listing took longer than the API call timeout")
    );
}

fn leading(samples: &[testkit::Sample]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name.ends_with("leader_election_status"))
        .map(|s| s.value)
}

async fn wait_leading(gw: &Gateway, want: f64, deadline: Duration) {
    let addr = gw.metrics_addr();
    eventually(deadline, || async move {
        match leading(&scrape(addr).await) {
            Some(v) if v == want => Ok(()),
            other => Err(format!("leader_election_status {other:?}, want {want}")),
        }
    })
    .await;
}

/// The case for leader election: a hung call left a replica
/// "leader" for ever. Every call is bounded now, so the leader stops
/// leading by the renew deadline (TTL / 2) plus one call timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_lease_call_ends_leadership() {
    let api = Api::start(&[]).await;
    let args = [&CALL_TIMEOUT[..], &["--election-ttl", "4s"]].concat();
    let gw = api.gateway("gw-0", &args).await;
    gw.wait_ready().await;
    wait_leading(&gw, 1.0, Duration::from_secs(10)).await;
    api.server.hang(|r| r.path.contains("/leases"));
    let hung = std::time::Instant::now();
    wait_leading(&gw, 0.0, Duration::from_secs(8)).await;
    println!(
        "leadership given up {:?} after the Lease calls hung (TTL 4 s)",
        hung.elapsed()
    );
    api.server.stop_hanging();
    wait_leading(&gw, 1.0, Duration::from_secs(15)).await;
}

/// `--update-status-on-shutdown` (true by default, as ingress-nginx): the
/// leader clears the status it wrote when it stops; a replica that does
/// not lead leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_clears_ingress_status_on_shutdown() {
    let backend = EchoBackend::start([127, 0, 182, 2]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&backend]);
    docs.push(model_ingress("user-1", 1, "/api/v1/predict/1"));
    let api = Api::start(&docs).await;
    let args = |ip: &'static str| {
        vec![
            "--election-ttl",
            "4s",
            "--publish-status-address",
            ip,
            "--api-call-timeout",
            "2s",
        ]
    };
    let a = api.gateway("gw-a", &args("10.3.0.1")).await;
    let b = api.gateway("gw-b", &args("10.3.0.1")).await;
    a.wait_ready().await;
    b.wait_ready().await;
    let leader = eventually(Duration::from_secs(10), || async {
        lease_holder(&api).ok_or_else(|| "no lease holder yet".to_owned())
    })
    .await;
    let (leader_gw, follower_gw) = if leader == "gw-a" { (&a, &b) } else { (&b, &a) };
    eventually(Duration::from_secs(10), || async {
        match status_ips(&api, "user-1", "model-serving-1") {
            ips if ips == ["10.3.0.1"] => Ok(()),
            ips => Err(format!("status {ips:?}")),
        }
    })
    .await;

    follower_gw.signal("TERM");
    let exited = follower_gw.wait_exit(Duration::from_secs(15)).await;
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert_eq!(
        status_ips(&api, "user-1", "model-serving-1"),
        ["10.3.0.1"],
        "a replica that does not lead leaves the status"
    );

    leader_gw.signal("TERM");
    let exited = leader_gw.wait_exit(Duration::from_secs(15)).await;
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert_eq!(
        status_ips(&api, "user-1", "model-serving-1"),
        Vec::<String>::new(),
        "the leader clears the status on shutdown\n{}",
        leader_gw.logs()
    );
}

/// The reconcile thread is supervised: when it dies, `/healthz` fails and
/// the process exits 1, rather than serving a table that no longer follows
/// the cluster while reporting ready. (The debug build panics on purpose
/// when the Ingress named by `EDGE_GATEWAY_TEST_PANIC_ON_INGRESS` exists.)
#[tokio::test]
async fn a_dead_reconcile_thread_fails_health_and_exits_non_zero() {
    let backend = EchoBackend::start([127, 0, 182, 3]).await;
    let dir = ManifestDir::new();
    dir.write("class.yaml", &ingress_class());
    let mut docs = service_for("user-1", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("user-1", "fine")
            .class("nginx")
            .path("/fine", "Prefix", "svc", 80)
            .build(),
    );
    dir.write("objects.yaml", &testkit::join_docs(&docs));
    let env = [("EDGE_GATEWAY_TEST_PANIC_ON_INGRESS", "user-1/boom")];
    let gw = Gateway::start_with_env(BIN, dir.path(), &[], &env).await;
    gw.wait_ready().await;
    assert_eq!(healthz(&gw).await, 200);
    dir.write(
        "boom.yaml",
        &IngressBuilder::new("user-1", "boom")
            .class("nginx")
            .path("/boom", "Prefix", "svc", 80)
            .build(),
    );
    let exited = gw.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(exited.and_then(|s| s.code()), Some(1), "{}", gw.logs());
    let logs = gw.logs();
    assert!(logs.contains("the control plane stopped"), "{logs}");
    assert!(logs.contains("injected fault"), "{logs}");
}
