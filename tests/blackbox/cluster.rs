//! The Kubernetes API source: the real binary watching the fake API server
//! (tests/fake-apiserver), with echo backends on 127.0.0.x.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{EchoBackend, Gateway, IngressBuilder, eventually, get, ingress_class, try_request};

use crate::{BIN, answered_by, service_for};

/// How long a change may take to be served (the bound).
const APPLIED: Duration = Duration::from_secs(2);

/// The fake API server, a kubeconfig for it, and the folder holding that.
pub(crate) struct Api {
    pub(crate) server: FakeApiServer,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    /// An API server holding the IngressClass `nginx` and `docs`.
    pub(crate) async fn start(docs: &[String]) -> Api {
        let server = FakeApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let api = Api {
            server,
            kubeconfig,
            _dir: dir,
        };
        api.apply(&ingress_class());
        // Namespaces exist in a real cluster; API creates (Leases, Events)
        // need them.
        for ns in ["ingress-nginx", "user-1", "user-2", "a", "b"] {
            api.apply(
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                    .to_string(),
            );
        }
        for doc in docs {
            api.apply(doc);
        }
        api
    }

    pub(crate) fn apply(&self, doc: &str) {
        let value: Value = serde_json::from_str(doc).unwrap();
        self.server.apply(value).unwrap();
    }

    /// A gateway replica named `pod` watching this API server.
    pub(crate) async fn gateway(&self, pod: &str, args: &[&str]) -> Gateway {
        let env = [("POD_NAME", pod), ("POD_NAMESPACE", "ingress-nginx")];
        Gateway::start_with_kubeconfig(BIN, &self.kubeconfig, args, &env).await
    }
}

pub(crate) fn model_ingress(ns: &str, id: u32, path: &str) -> String {
    IngressBuilder::new(ns, &format!("model-serving-{id}"))
        .class("nginx")
        .host("localhost")
        .path(path, "Prefix", &format!("model-serving-{id}"), 80)
        .build()
}

async fn wait_status(gateway: &Gateway, path: &'static str, want: u16) {
    let addr = gateway.http_addr();
    eventually(APPLIED, move || async move {
        let status = get(addr, "localhost", path).await.status;
        if status == want {
            Ok(())
        } else {
            Err(format!("{path}: {status}, want {want}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_created_changed_and_deleted_through_the_api_apply_live() {
    let backend = EchoBackend::start([127, 0, 70, 1]).await;
    let api = Api::start(&service_for("user-1", "model-serving-1", &[&backend])).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    wait_status(&gw, "/api/v1/predict/1/health", 404).await;

    api.apply(&model_ingress("user-1", 1, "/api/v1/predict/1"));
    wait_status(&gw, "/api/v1/predict/1/health", 200).await;

    api.apply(&model_ingress("user-1", 1, "/api/v2/predict/1"));
    wait_status(&gw, "/api/v2/predict/1/health", 200).await;
    wait_status(&gw, "/api/v1/predict/1/health", 404).await;

    api.server
        .delete("ingresses", "user-1", "model-serving-1")
        .unwrap();
    wait_status(&gw, "/api/v2/predict/1/health", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_rules_and_the_namespace_filter_apply_to_api_objects() {
    let backend = EchoBackend::start([127, 0, 70, 2]).await;
    let mut docs = service_for("a", "svc", &[&backend]);
    docs.extend(service_for("b", "svc", &[&backend]));
    docs.push(
        IngressBuilder::new("a", "ours")
            .class("nginx")
            .path("/ours", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("a", "theirs")
            .class("traefik")
            .path("/theirs", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("b", "other-ns")
            .class("nginx")
            .path("/other-ns", "Prefix", "svc", 80)
            .build(),
    );
    let api = Api::start(&docs).await;

    let all = api.gateway("gw-0", &[]).await;
    all.wait_ready().await;
    assert_eq!(get(all.http_addr(), "x", "/ours").await.status, 200);
    assert_eq!(get(all.http_addr(), "x", "/theirs").await.status, 404);
    assert_eq!(get(all.http_addr(), "x", "/other-ns").await.status, 200);

    let scoped = api.gateway("gw-1", &["--watch-namespace", "a"]).await;
    scoped.wait_ready().await;
    assert_eq!(get(scoped.http_addr(), "x", "/ours").await.status, 200);
    assert_eq!(get(scoped.http_addr(), "x", "/other-ns").await.status, 404);
    let watched_elsewhere = api
        .server
        .requests()
        .iter()
        .any(|r| r.is_watch() && r.path.contains("/namespaces/b/"));
    assert!(
        !watched_elsewhere,
        "the namespaced gateway watched namespace b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_full_list() {
    let api = Api::start(&[]).await;
    api.server.pause().await;
    let gw = api.gateway("gw-0", &[]).await;
    let health = |gw: &Gateway| {
        let addr = gw.metrics_addr();
        async move { get(addr, "localhost", "/healthz").await.status }
    };
    for _ in 0..5 {
        assert_eq!(health(&gw).await, 503, "ready without the API server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.server.resume().await.unwrap();
    gw.wait_ready().await;
}

/// Scales a backend 1 → 10 → 2 endpoints under steady requests: new pods
/// get traffic, removed pods get none, no request fails. Prints the time
/// from the API change to the first request on a new pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_endpoints_under_load_loses_no_request() {
    let ips: Vec<[u8; 4]> = (1..=10).map(|i| [127, 0, 71, i]).collect();
    let pods = EchoBackend::start_group(&ips).await;
    let port = pods[0].addr().port();
    let slice = |n: usize| {
        let endpoints: Vec<_> = pods[..n]
            .iter()
            .map(|p| (p.addr().ip(), Some(true)))
            .collect();
        testkit::endpoint_slice("user-1", "model-serving-1", port, &endpoints)
    };
    let docs = vec![
        testkit::service("user-1", "model-serving-1", 80, port),
        slice(1),
        model_ingress("user-1", 1, "/api/v1/predict/1"),
    ];
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    wait_status(&gw, "/api/v1/predict/1/health", 200).await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, failures, addr) = (stop.clone(), failures.clone(), gw.http_addr());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = try_request(
                    addr,
                    "GET",
                    "localhost",
                    "/api/v1/predict/1/health",
                    &[],
                    Vec::new(),
                )
                .await
                .is_ok_and(|r| r.status == 200);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let changed = Instant::now();
    api.apply(&slice(10));
    let new_pods = &pods[1..];
    // Polled every millisecond (not at `eventually`'s 20 ms) to time it.
    let first_hit = loop {
        if new_pods.iter().any(|p| p.hits() > 0) {
            break changed.elapsed();
        }
        assert!(
            changed.elapsed() < APPLIED,
            "no new pod got traffic within {APPLIED:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    println!("endpoint propagation: API change to first request on a new pod: {first_hit:?}");
    eventually(APPLIED, || async {
        let idle: Vec<_> = pods
            .iter()
            .filter(|p| p.hits() == 0)
            .map(EchoBackend::addr)
            .collect();
        if idle.is_empty() {
            Ok(())
        } else {
            Err(format!("no traffic yet on {idle:?}"))
        }
    })
    .await;

    api.apply(&slice(2));
    // Requests already on their way to a removed pod may still arrive;
    // after the change has propagated none may.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for pod in &pods {
        pod.reset();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let removed: usize = pods[2..].iter().map(EchoBackend::hits).sum();
    assert_eq!(removed, 0, "removed pods still got traffic");
    assert!(pods[0].hits() > 0 && pods[1].hits() > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed while scaling"
    );
}

/// The API server goes away for 30 s under load: nothing fails and the
/// gateway stays ready. It comes back with its history compacted and
/// changed meanwhile: the gateway relists and serves the new state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_keeps_serving_and_a_compacted_restart_relists() {
    let one = EchoBackend::start([127, 0, 72, 1]).await;
    let two = EchoBackend::start([127, 0, 72, 2]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&one]);
    docs.extend(service_for("user-1", "model-serving-2", &[&two]));
    docs.push(model_ingress("user-1", 1, "/api/v1/predict/1"));
    docs.push(model_ingress("user-1", 2, "/api/v1/predict/2"));
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    wait_status(&gw, "/api/v1/predict/2/health", 200).await;

    api.server.pause().await;
    let outage = Instant::now();
    let mut requests = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        assert_eq!(
            get(gw.http_addr(), "localhost", "/api/v1/predict/1/health")
                .await
                .status,
            200
        );
        assert_eq!(
            get(gw.metrics_addr(), "localhost", "/healthz").await.status,
            200,
            "not ready during the outage"
        );
        requests += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests > 100);

    // While it was away: model 2 deleted, model 3 added, history compacted.
    api.server
        .delete("ingresses", "user-1", "model-serving-2")
        .unwrap();
    for doc in service_for("user-1", "model-serving-3", &[&two]) {
        api.apply(&doc);
    }
    api.apply(&model_ingress("user-1", 3, "/api/v1/predict/3"));
    api.server.compact();
    api.server.resume().await.unwrap();

    // The watchers retry at most 5 s apart.
    let addr = gw.http_addr();
    eventually(Duration::from_secs(15), move || async move {
        let two = get(addr, "localhost", "/api/v1/predict/2/health")
            .await
            .status;
        let three = get(addr, "localhost", "/api/v1/predict/3/health")
            .await
            .status;
        if (two, three) == (404, 200) {
            Ok(())
        } else {
            Err(format!("model 2: {two}, model 3: {three}"))
        }
    })
    .await;
    assert_eq!(
        get(gw.http_addr(), "localhost", "/api/v1/predict/1/health")
            .await
            .status,
        200
    );
}

pub(crate) fn lease_holder(api: &Api) -> Option<String> {
    let lease = api
        .server
        .get("leases", "ingress-nginx", "ingress-controller-leader")?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

pub(crate) fn status_ips(api: &Api, ns: &str, name: &str) -> Vec<String> {
    let ingress = api.server.get("ingresses", ns, name).unwrap_or_default();
    ingress["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ip"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Two replicas: one holds the Lease and writes status (each publishes a
/// different address, so the status shows who wrote it); the leader dies,
/// the other takes over within the TTL and writes status again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_writes_status_and_a_replica_takes_over() {
    let backend = EchoBackend::start([127, 0, 73, 1]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&backend]);
    docs.push(model_ingress("user-1", 1, "/api/v1/predict/1"));
    let api = Api::start(&docs).await;
    let ttl = ["--election-ttl", "4s"];
    let a = api
        .gateway(
            "gw-a",
            &[&ttl[..], &["--publish-status-address", "10.0.0.1"]].concat(),
        )
        .await;
    let b = api
        .gateway(
            "gw-b",
            &[&ttl[..], &["--publish-status-address", "10.0.0.2"]].concat(),
        )
        .await;
    a.wait_ready().await;
    b.wait_ready().await;
    let leader = eventually(Duration::from_secs(10), || async {
        lease_holder(&api).ok_or_else(|| "no lease holder yet".to_owned())
    })
    .await;
    let (leader_gw, follower_gw, leader_ip, follower_ip) = match leader.as_str() {
        "gw-a" => (&a, &b, "10.0.0.1", "10.0.0.2"),
        "gw-b" => (&b, &a, "10.0.0.2", "10.0.0.1"),
        other => panic!("unexpected holder {other}"),
    };
    eventually(Duration::from_secs(10), || async {
        let ips = status_ips(&api, "user-1", "model-serving-1");
        if ips == [leader_ip] {
            Ok(())
        } else {
            Err(format!("status {ips:?}, want [{leader_ip}]"))
        }
    })
    .await;
    // Every replica serves traffic.
    for gw in [&a, &b] {
        assert_eq!(
            get(gw.http_addr(), "localhost", "/api/v1/predict/1")
                .await
                .status,
            200
        );
    }

    leader_gw.stop();
    let killed = Instant::now();
    eventually(Duration::from_secs(15), || async {
        let holder = lease_holder(&api);
        let ips = status_ips(&api, "user-1", "model-serving-1");
        if holder.as_deref() == Some(&*follower_name(&leader)) && ips == [follower_ip] {
            Ok(())
        } else {
            Err(format!("holder {holder:?}, status {ips:?}"))
        }
    })
    .await;
    let takeover = killed.elapsed();
    println!(
        "leader killed; the other replica took over and wrote status after {takeover:?} (TTL 4 s)"
    );
    assert!(
        takeover < Duration::from_secs(4 + 2),
        "took over after {takeover:?}"
    );
    assert_eq!(
        get(follower_gw.http_addr(), "localhost", "/api/v1/predict/1")
            .await
            .status,
        200
    );
}

/// `--disable-leader-election` (the chart's controller.disableLeaderElection):
/// no Lease is taken, and the replica writes status on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_leader_election_every_replica_writes_status() {
    let backend = EchoBackend::start([127, 0, 76, 1]).await;
    let mut docs = service_for("user-1", "model-serving-1", &[&backend]);
    docs.push(model_ingress("user-1", 1, "/api/v1/predict/1"));
    let api = Api::start(&docs).await;
    let gw = api
        .gateway(
            "gw-solo",
            &[
                "--disable-leader-election",
                "--publish-status-address",
                "10.0.0.7",
            ],
        )
        .await;
    gw.wait_ready().await;
    eventually(Duration::from_secs(10), || async {
        let ips = status_ips(&api, "user-1", "model-serving-1");
        if ips == ["10.0.0.7"] {
            Ok(())
        } else {
            Err(format!("status {ips:?}, want [10.0.0.7]"))
        }
    })
    .await;
    assert_eq!(lease_holder(&api), None, "no Lease without leader election");
}

fn follower_name(leader: &str) -> String {
    if leader == "gw-a" {
        "gw-b".to_owned()
    } else {
        "gw-a".to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_cleared_when_an_ingress_stops_being_ours() {
    let backend = EchoBackend::start([127, 0, 74, 1]).await;
    let mut docs = service_for("user-1", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("user-1", "moving")
            .class("nginx")
            .path("/m", "Prefix", "svc", 80)
            .build(),
    );
    let api = Api::start(&docs).await;
    let gw = api
        .gateway(
            "gw-0",
            &[
                "--publish-status-address",
                "10.1.1.1",
                "--election-ttl",
                "4s",
            ],
        )
        .await;
    gw.wait_ready().await;
    eventually(Duration::from_secs(10), || async {
        let ips = status_ips(&api, "user-1", "moving");
        if ips == ["10.1.1.1"] {
            Ok(())
        } else {
            Err(format!("status {ips:?}"))
        }
    })
    .await;
    api.apply(
        &IngressBuilder::new("user-1", "moving")
            .class("other")
            .path("/m", "Prefix", "svc", 80)
            .build(),
    );
    eventually(Duration::from_secs(10), || async {
        let ips = status_ips(&api, "user-1", "moving");
        if ips.is_empty() {
            Ok(())
        } else {
            Err(format!("status still {ips:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ingress_gets_a_warning_event_and_good_routes_serve() {
    let backend = EchoBackend::start([127, 0, 75, 1]).await;
    let mut docs = service_for("user-1", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("user-1", "broken")
            .class("nginx")
            .path("/good", "Prefix", "svc", 80)
            .path("/bad//path", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("user-1", "fine")
            .class("nginx")
            .path("/fine", "Prefix", "svc", 80)
            .build(),
    );
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    assert_eq!(
        answered_by(&get(gw.http_addr(), "x", "/fine").await),
        backend.addr().to_string()
    );
    assert_eq!(get(gw.http_addr(), "x", "/good").await.status, 200);
    let event = eventually(Duration::from_secs(10), || async {
        let events = api.server.list("events.events.k8s.io", "user-1");
        events
            .into_iter()
            .find(|e| {
                e["regarding"]["name"] == json!("broken") && e["reason"] == json!("InvalidPath")
            })
            .ok_or_else(|| "no InvalidPath event for Ingress broken".to_owned())
    })
    .await;
    assert_eq!(event["type"], json!("Warning"));
    assert!(
        event["note"].as_str().unwrap_or("").contains("/bad//path"),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_reads_its_opaque_users_secret_from_the_api() {
    const P: &str = "nginx.ingress.kubernetes.io/";
    // `alice:s3cret` (Apache MD5, as `htpasswd -m` writes it).
    let users = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"namespace": "user-1", "name": "users"},
        "data": {"auth": "YWxpY2U6JGFwcjEkamNZNmdmUEskSjV1UlkzNGdZakZaVFdvWnNmeTRZMA=="},
    });
    let backend = EchoBackend::start([127, 0, 76, 1]).await;
    let mut docs = service_for("user-1", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("user-1", "guarded")
            .class("nginx")
            .annotation(&format!("{P}auth-type"), "basic")
            .annotation(&format!("{P}auth-secret"), "users")
            .host("localhost")
            .path("/guarded", "Prefix", "svc", 80)
            .build(),
    );
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0", &[]).await;
    gw.wait_ready().await;
    // Without its users Secret the route is denied, never open.
    wait_status(&gw, "/guarded", 503).await;
    api.apply(&users.to_string());
    wait_status(&gw, "/guarded", 401).await;
    let alice = [("authorization", "Basic YWxpY2U6czNjcmV0")];
    let admitted = try_request(
        gw.http_addr(),
        "GET",
        "localhost",
        "/guarded",
        &alice,
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(admitted.status, 200);
    assert_eq!(backend.hits(), 1);
}
