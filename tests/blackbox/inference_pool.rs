//! InferencePool (Gateway API Inference Extension) as an HTTPRoute backend,
//! black-box: the real binary against the fake API server with the Gateway
//! API and Inference Extension CRDs installed, echo backends on
//! 127.0.244.x standing in for labelled Pods. Traffic reaches only the
//! ready Pods the pool selects, follows readiness, refuses a
//! cross-namespace pool without a ReferenceGrant (500, `RefNotPermitted`),
//! and the pool's `status.parents` is written; a cluster without the
//! Inference Extension CRDs starts and serves as before.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{EchoBackend, Gateway, eventually, get, service};

use crate::gateway_api::{class, gateway, route};
use crate::{BIN, answered_by};

/// How long a change may take to be served or written.
const DEADLINE: Duration = Duration::from_secs(15);

/// The pool's group, as a backendRef names it.
const POOL_GROUP: &str = "inference.networking.k8s.io";

struct Api {
    server: FakeApiServer,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Api {
    /// The fake API server with the Gateway API CRDs, and the Inference
    /// Extension's when `inference` is set.
    async fn start(inference: bool) -> Api {
        let server = FakeApiServer::start().await;
        server
            .apply_yaml(include_str!(
                "../fake-apiserver/fixtures/gateway-api-crds.yaml"
            ))
            .unwrap();
        if inference {
            server
                .apply_yaml(include_str!(
                    "../fake-apiserver/fixtures/inference-crds.yaml"
                ))
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        for ns in ["ingress-nginx", "infra", "app", "other"] {
            server
                .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .unwrap();
        }
        Api {
            server,
            kubeconfig,
            dir,
        }
    }

    fn apply(&self, doc: &str) {
        self.server
            .apply(serde_json::from_str(doc).unwrap())
            .unwrap();
    }

    /// `kubectl apply --validate=strict` of one object, as an operator would.
    async fn kubectl_apply(&self, object: &Value) {
        let file = self.dir.path().join("object.json");
        std::fs::write(&file, object.to_string()).unwrap();
        let mut kubectl = Command::new("kubectl");
        kubectl
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "--validate=strict", "-f"])
            .arg(&file);
        let output: Output = tokio::task::spawn_blocking(move || kubectl.output())
            .await
            .unwrap()
            .expect("kubectl runs");
        assert!(
            output.status.success(),
            "kubectl apply failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn gateway(&self) -> Gateway {
        let env = [("POD_NAME", "gw-0"), ("POD_NAMESPACE", "ingress-nginx")];
        let args = [
            "--enable-gateway-api",
            "--publish-status-address",
            "10.1.2.3",
        ];
        let gw = Gateway::start_with_kubeconfig(BIN, &self.kubeconfig, &args, &env).await;
        gw.wait_ready().await;
        gw
    }

    /// Waits until `check` holds for the object's status; returns it.
    async fn status(
        &self,
        resource: &'static str,
        ns: &'static str,
        name: &'static str,
        check: impl Fn(&Value) -> Result<(), String> + Clone + 'static,
    ) -> Value {
        let server = &self.server;
        eventually(DEADLINE, move || {
            let check = check.clone();
            async move {
                let object = server.get(resource, ns, name).ok_or("no such object")?;
                check(&object["status"])
                    .map_err(|e| format!("{resource} {ns}/{name}: {e}: {}", object["status"]))
            }
        })
        .await;
        self.server.get(resource, ns, name).unwrap()["status"].clone()
    }
}

/// A Pod `ns/name` labelled `labels` at `ip`, ready or not.
fn pod(ns: &str, name: &str, labels: Value, ip: &str, ready: bool) -> String {
    let ready = if ready { "True" } else { "False" };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "model", "image": "vllm/vllm-openai"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": ready}]},
    })
    .to_string()
}

/// An InferencePool `ns/name` selecting `app: <app>` on `port`.
fn pool(ns: &str, name: &str, app: &str, port: u16) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": app}},
                 "targetPorts": [{"number": port}],
                 "endpointPickerRef": {"name": "epp", "port": {"number": 9002},
                                       "failureMode": "FailOpen"}},
    })
}

/// An HTTPRoute on the usual Gateway for `host`, to pool `ns/name`.
fn pool_route(name: &str, host: &str, pool_ns: Option<&str>, pool: &str) -> String {
    let mut reference = json!({"group": POOL_GROUP, "kind": "InferencePool", "name": pool});
    if let Some(ns) = pool_ns {
        reference["namespace"] = json!(ns);
    }
    route(
        "app",
        name,
        json!({"parentRefs": [{"name": "gw", "namespace": "infra"}],
               "hostnames": [host], "rules": [{"backendRefs": [reference]}]}),
    )
}

/// Who answered `n` requests for `host`; panics on a non-200.
async fn answered(gw: &Gateway, host: &str, n: usize) -> Result<BTreeSet<String>, String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let response = get(gw.http_addr(), host, "/v1/completions").await;
        if response.status != 200 {
            return Err(format!("{host}: status {}", response.status));
        }
        seen.insert(answered_by(&response));
    }
    Ok(seen)
}

fn names(backends: &[&EchoBackend]) -> BTreeSet<String> {
    backends.iter().map(|b| b.addr().to_string()).collect()
}

/// The condition of `type_` in our (only) parent entry.
fn parent_condition(status: &Value, type_: &str) -> Option<Value> {
    status["parents"]
        .as_array()?
        .iter()
        .find(|p| p["parentRef"]["name"] == "gw")?["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn has(status: &Value, type_: &str, value: &str, reason: &str) -> Result<(), String> {
    match parent_condition(status, type_) {
        Some(c) if c["status"] == value && c["reason"] == reason => Ok(()),
        Some(c) => Err(format!("{type_} is {} {}", c["status"], c["reason"])),
        None => Err(format!("no {type_} condition")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_httproute_to_an_inference_pool_reaches_only_its_ready_pods() {
    let ips = [
        [127, 0, 244, 1],
        [127, 0, 244, 2],
        [127, 0, 244, 3],
        [127, 0, 244, 4],
        [127, 0, 244, 5],
    ];
    let backends = EchoBackend::start_group(&ips).await;
    let port = backends[0].addr().port();
    let ip = |i: usize| backends[i].addr().ip().to_string();
    let api = Api::start(true).await;
    api.apply(&class());
    api.apply(&gateway(
        "infra",
        "gw",
        json!([{"name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    ));
    for doc in std::iter::once(service("app", "epp", 9002, 9002)).chain([
        pod("app", "m-1", json!({"app": "m"}), &ip(0), true),
        pod(
            "app",
            "m-2",
            json!({"app": "m", "extra": "x"}),
            &ip(1),
            true,
        ),
        pod("app", "m-3", json!({"app": "m"}), &ip(2), false),
        pod("app", "other-1", json!({"app": "other"}), &ip(3), true),
        pod("other", "m-4", json!({"app": "m"}), &ip(4), true),
        pool_route("to-pool", "pool.test", None, "pool"),
        pool_route("cross", "cross.test", Some("other"), "pool"),
    ]) {
        api.apply(&doc);
    }
    // The pools as an operator applies them, checked by kubectl against the
    // CRD's schema.
    api.kubectl_apply(&pool("app", "pool", "m", port)).await;
    api.kubectl_apply(&pool("other", "pool", "m", port)).await;
    let gw = api.gateway().await;

    // The two ready Pods the selector matches, never the unready one, the
    // one with other labels, or the namesake in another namespace.
    let both = names(&[&backends[0], &backends[1]]);
    eventually(DEADLINE, || async {
        let seen = answered(&gw, "pool.test", 12).await?;
        (seen == both).then_some(()).ok_or(format!("{seen:?}"))
    })
    .await;

    // A cross-namespace pool without a ReferenceGrant: 500, as for any
    // backendRef that does not resolve.
    assert_eq!(get(gw.http_addr(), "cross.test", "/").await.status, 500);
    api.status("httproutes", "app", "cross", |s| {
        let parent = &s["parents"][0]["conditions"];
        let resolved = parent
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "ResolvedRefs"))
            .ok_or("no ResolvedRefs")?;
        (resolved["status"] == "False" && resolved["reason"] == "RefNotPermitted")
            .then_some(())
            .ok_or_else(|| format!("{resolved}"))
    })
    .await;

    // The pool's status: accepted by our Gateway, the picker reference
    // resolved and said not to be called.
    let status = api
        .status("inferencepools", "app", "pool", |s| {
            has(s, "Accepted", "True", "Accepted")?;
            has(s, "ResolvedRefs", "True", "ResolvedRefs")
        })
        .await;
    let message = parent_condition(&status, "ResolvedRefs").unwrap()["message"].to_string();
    assert!(
        message.contains("does not call the endpoint picker") && message.contains("FailOpen"),
        "{message}"
    );
    assert_eq!(
        status["parents"][0]["parentRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "infra"})
    );

    // A Pod turning unready leaves the rotation; one turning ready joins.
    api.apply(&pod("app", "m-2", json!({"app": "m"}), &ip(1), false));
    api.apply(&pod("app", "m-3", json!({"app": "m"}), &ip(2), true));
    let now = names(&[&backends[0], &backends[2]]);
    eventually(DEADLINE, || async {
        let seen = answered(&gw, "pool.test", 12).await?;
        (seen == now).then_some(()).ok_or(format!("{seen:?}"))
    })
    .await;
    // Deleted: gone too.
    api.server.delete("pods", "app", "m-1").unwrap();
    let last = names(&[&backends[2]]);
    eventually(DEADLINE, || async {
        let seen = answered(&gw, "pool.test", 6).await?;
        (seen == last).then_some(()).ok_or(format!("{seen:?}"))
    })
    .await;

    // A ReferenceGrant for InferencePools opens the other namespace's pool.
    api.apply(
        &json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": "pools", "namespace": "other"},
                "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "app"}],
                         "to": [{"group": POOL_GROUP, "kind": "InferencePool"}]}})
        .to_string(),
    );
    let fourth = names(&[&backends[4]]);
    eventually(DEADLINE, || async {
        let seen = answered(&gw, "cross.test", 4).await?;
        (seen == fourth).then_some(()).ok_or(format!("{seen:?}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_inference_crds_starts_and_serves() {
    let backend = EchoBackend::start([127, 0, 244, 20]).await;
    let api = Api::start(false).await;
    api.apply(&class());
    api.apply(&gateway(
        "infra",
        "gw",
        json!([{"name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    ));
    for doc in crate::service_for("app", "web", &[&backend]) {
        api.apply(&doc);
    }
    api.apply(&route(
        "app",
        "web",
        json!({"parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["web.test"],
               "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}),
    ));
    api.apply(&pool_route("to-pool", "pool.test", None, "pool"));
    let gw = api.gateway().await;
    let response = get(gw.http_addr(), "web.test", "/").await;
    assert_eq!(response.status, 200);
    assert_eq!(answered_by(&response), backend.addr().to_string());
    // The pool cannot exist: its route answers 500 (BackendNotFound).
    assert_eq!(get(gw.http_addr(), "pool.test", "/").await.status, 500);
    api.status("httproutes", "app", "to-pool", |s| {
        let text = s.to_string();
        text.contains("BackendNotFound")
            .then_some(())
            .ok_or_else(|| "no BackendNotFound".to_owned())
    })
    .await;
    // No Pod is listed or watched without the CRD.
    let pods = api
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/pods"))
        .count();
    assert_eq!(pods, 0, "Pods are not read without the InferencePool CRD");
}

/// A fake model replica (demo-model's) on `ip`; stops when dropped.
struct Replica {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(ip: [u8; 4], profile: &str) -> Replica {
        let profile = serde_json::from_str(profile).expect("a profile");
        let model = demo_model::ModelInfo { id: "m".to_owned() };
        let addr = std::net::SocketAddr::from((ip, 0));
        let server = demo_model::ModelServer::bind_fake(addr, model, profile, 1)
            .await
            .expect("bind a fake replica");
        let addr = server.local_addr();
        Replica {
            addr,
            task: tokio::spawn(server.run()),
        }
    }

    /// Whether it is generating a request now.
    async fn busy(&self) -> bool {
        let page = testkit::request(self.addr, "GET", "replica", "/metrics", &[], Vec::new()).await;
        String::from_utf8_lossy(&page.body)
            .lines()
            .any(|l| l.starts_with("vllm:num_requests_running{") && !l.ends_with(" 0"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// From a manifests folder (no cluster): the pool's annotations choose its
/// picker and saturation bound, and its InferenceObjectives class the
/// requests naming them: under saturation a negative priority is shed
/// (429), a positive one waits for the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_of_a_pool_shed_negative_priorities_under_saturation() {
    let replica = Replica::start(
        [127, 0, 244, 30],
        r#"{"ttft_ms": 2000, "output_tokens": 1, "slots": 1}"#,
    )
    .await;
    let mut pool = pool("llm", "pool", "m", replica.addr.port());
    pool["metadata"]["annotations"] = json!({
        "edge-gateway.io/load-balance": "least_request",
        "edge-gateway.io/saturation-queue": "1",
        "edge-gateway.io/max-inflight-per-endpoint": "10",
    });
    let objective = |name: &str, priority: i64| {
        json!({"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
               "metadata": {"name": name, "namespace": "llm"},
               "spec": {"priority": priority, "poolRef": {"name": "pool"}}})
        .to_string()
    };
    let docs = vec![
        crate::gateway_api::http_gateway(),
        pool.to_string(),
        pod(
            "llm",
            "m-0",
            json!({"app": "m"}),
            &replica.addr.ip().to_string(),
            true,
        ),
        objective("batch", -1),
        objective("chat", 5),
        route(
            "llm",
            "chat",
            json!({"parentRefs": [{"name": "gw", "namespace": "infra"}], "hostnames": ["llm.test"],
                   "rules": [{"backendRefs": [{"group": POOL_GROUP, "kind": "InferencePool", "name": "pool"}]}]}),
        ),
    ];
    let mut all = docs;
    all.push(class());
    let s = crate::Setup::start_with(&all, &["--enable-gateway-api", "--enable-metrics"]).await;
    let send = |objective: &'static str| {
        let addr = s.http();
        tokio::spawn(async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-gateway-inference-objective", objective),
            ];
            let body = br#"{"model":"m","prompt":"p"}"#.to_vec();
            testkit::request(addr, "POST", "llm.test", "/v1/completions", &headers, body).await
        })
    };
    let first = send("chat");
    eventually(DEADLINE, || async {
        if replica.busy().await {
            Ok(())
        } else {
            Err("the first request has not reached the replica".to_owned())
        }
    })
    .await;
    let shed = send("batch").await.unwrap();
    assert_eq!(shed.status, 429, "a negative priority is shed");
    assert_eq!(shed.headers["retry-after"], "1");
    let critical = send("chat").await.unwrap();
    assert_eq!(critical.status, 200, "a positive priority waits its turn");
    assert_eq!(first.await.unwrap().status, 200);
    let shed_count = testkit::metrics::sum(
        &testkit::scrape(s.gateway.metrics_addr()).await,
        "edge_gateway_rejected_requests_total",
        &[("service", "pool"), ("reason", "shed")],
    );
    assert_eq!(shed_count, 1.0);
}
