//! Status conditions with the spec's reasons, written by the leader only,
//! through the fake API server (conformance: GatewayWithAttachedRoutes,
//! GatewayInvalidRouteKind, GatewayInvalidTLSConfiguration,
//! GatewayInvalidListenersUnsupportedProtocol, GatewaySecretMissingReferenceGrant,
//! HTTPRouteInvalidParentRefNotMatchingSectionName,
//! HTTPRouteInvalidParentRefNotMatchingListenerPort,
//! HTTPRouteInvalidCrossNamespaceParentRef, HTTPRouteHostnameIntersection,
//! HTTPRouteInvalidNonExistentBackendRef, HTTPRouteInvalidBackendRefUnknownKind,
//! HTTPRouteInvalidCrossNamespaceBackendRef, HTTPRoutePartiallyInvalid…,
//! GatewayClassObservedGenerationBump, HTTPRouteObservedGenerationBump).

use std::path::PathBuf;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{EchoBackend, Gateway, eventually, get};

use super::{backend, class, gateway, route, services};
use crate::BIN;

/// How long the status may take to be written.
const WRITTEN: Duration = Duration::from_secs(10);

struct Api {
    server: FakeApiServer,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(docs: &[String]) -> Api {
        let server = FakeApiServer::start().await;
        // The Gateway API CRDs, installed as on a cluster.
        server
            .apply_yaml(include_str!(
                "../../fake-apiserver/fixtures/gateway-api-crds.yaml"
            ))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        for ns in ["ingress-nginx", "infra", "app", "other"] {
            server
                .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .unwrap();
        }
        let api = Api {
            server,
            kubeconfig,
            _dir: dir,
        };
        for doc in docs {
            api.apply(doc);
        }
        api
    }

    fn apply(&self, doc: &str) {
        self.server
            .apply(serde_json::from_str(doc).unwrap())
            .unwrap();
    }

    async fn gateway(&self, pod: &str) -> Gateway {
        let env = [("POD_NAME", pod), ("POD_NAMESPACE", "ingress-nginx")];
        let args = [
            "--enable-gateway-api",
            "--publish-status-address",
            "10.1.2.3",
            "--election-ttl",
            "4s",
        ];
        Gateway::start_with_kubeconfig(BIN, &self.kubeconfig, &args, &env).await
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
        eventually(WRITTEN, move || {
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

/// The condition of `type_` in `conditions`.
fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == type_)
}

/// A check that the condition has this status and reason.
fn has(conditions: &Value, type_: &str, status: &str, reason: &str) -> Result<(), String> {
    match condition(conditions, type_) {
        Some(c) if c["status"] == status && c["reason"] == reason => Ok(()),
        Some(c) => Err(format!("{type_} is {} {}", c["status"], c["reason"])),
        None => Err(format!("no {type_} condition")),
    }
}

/// Our entry for the parent named `gateway` (section `section`).
fn parent_conditions(status: &Value, section: Option<&str>) -> Value {
    status["parents"]
        .as_array()
        .and_then(|parents| {
            parents.iter().find(|p| {
                p["controllerName"] == "edge-gateway.io/gateway-controller"
                    && p["parentRef"]["sectionName"].as_str() == section
            })
        })
        .map_or(Value::Null, |p| p["conditions"].clone())
}

/// Conditions a route parent must have: type, status, reason.
type Expected = &'static [(&'static str, &'static str, &'static str)];

fn route_check(
    section: Option<&'static str>,
    expected: Expected,
) -> impl Fn(&Value) -> Result<(), String> + Clone + 'static {
    move |status: &Value| {
        let conditions = parent_conditions(status, section);
        for (type_, value, reason) in expected {
            has(&conditions, type_, value, reason)?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_listeners_and_routes_get_the_spec_conditions() {
    let a = EchoBackend::start([127, 0, 207, 1]).await;
    let mut docs = vec![class()];
    docs.extend(services("app", &[("a", &a)]));
    docs.extend(services("other", &[("a", &a)]));
    docs.push(gateway(
        "infra",
        "gw",
        json!([
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com",
             "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "same-ns", "port": 80, "protocol": "HTTP", "hostname": "same.test"},
            {"name": "bad-port", "port": 8080, "protocol": "HTTP"},
            {"name": "tcp", "port": 80, "protocol": "TCP"},
            {"name": "bad-kind", "port": 80, "protocol": "HTTP", "hostname": "kind.test",
             "allowedRoutes": {"kinds": [{"kind": "TCPRoute"}]}},
            {"name": "no-cert", "port": 443, "protocol": "HTTPS", "hostname": "tls.test",
             "tls": {"certificateRefs": [{"name": "missing"}]}},
            {"name": "foreign-cert", "port": 443, "protocol": "HTTPS", "hostname": "foreign.test",
             "tls": {"certificateRefs": [{"name": "cert", "namespace": "other"}]}},
            {"name": "dup-a", "port": 80, "protocol": "HTTP", "hostname": "dup.test"},
            {"name": "dup-b", "port": 80, "protocol": "HTTP", "hostname": "dup.test"},
        ]),
    ));
    let on = |section: &str| json!([{"name": "gw", "namespace": "infra", "sectionName": section}]);
    docs.push(route(
        "app",
        "ok",
        json!({"parentRefs": on("http"), "hostnames": ["a.example.com"],
        "rules": [{"backendRefs": backend("a")}]}),
    ));
    docs.push(route(
        "app",
        "no-section",
        json!({"parentRefs": on("nope"), "rules": [{"backendRefs": backend("a")}]}),
    ));
    docs.push(route(
        "app",
        "not-allowed",
        json!({"parentRefs": on("same-ns"), "rules": [{"backendRefs": backend("a")}]}),
    ));
    docs.push(route(
        "app",
        "no-hostname",
        json!({"parentRefs": on("http"), "hostnames": ["a.example.net"],
        "rules": [{"backendRefs": backend("a")}]}),
    ));
    docs.push(route(
        "app",
        "refs",
        json!({"parentRefs": on("http"), "hostnames": ["refs.example.com"], "rules": [
        {"matches": [{"path": {"value": "/missing"}}], "backendRefs": backend("missing")},
        {"matches": [{"path": {"value": "/foreign"}}],
         "backendRefs": [{"name": "a", "namespace": "other", "port": 80}]}]}),
    ));
    docs.push(route(
        "app",
        "kind",
        json!({"parentRefs": on("http"), "hostnames": ["kind.example.com"], "rules": [
        {"backendRefs": [{"group": "example.com", "kind": "Bucket", "name": "a"}]}]}),
    ));
    // A mirror to another namespace's Service without a ReferenceGrant:
    // the rule is served without it.
    docs.push(route("app", "mirror", json!({"parentRefs": on("http"), "hostnames": ["mirror.example.com"], "rules": [
        {"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "a", "namespace": "other", "port": 80}}}],
         "backendRefs": backend("a")}]})));
    docs.push(route("app", "partly", json!({"parentRefs": on("http"), "hostnames": ["partly.example.com"], "rules": [
        {"matches": [{"path": {"value": "/good"}}], "backendRefs": backend("a")},
        {"matches": [{"path": {"value": "/mirror"}}],
         "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "a", "port": 80}, "percent": 101}}],
         "backendRefs": backend("a")}]})));
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0").await;
    gw.wait_ready().await;

    api.status("gatewayclasses", "", "edge", |s| {
        has(&s["conditions"], "Accepted", "True", "Accepted")
    })
    .await;
    let status = api
        .status("gateways", "infra", "gw", |s| {
            has(&s["conditions"], "Accepted", "True", "ListenersNotValid")?;
            has(&s["conditions"], "Programmed", "True", "Programmed")?;
            (s["addresses"] == json!([{"type": "IPAddress", "value": "10.1.2.3"}]))
                .then_some(())
                .ok_or_else(|| "addresses".to_owned())
        })
        .await;
    let listener = |name: &str| {
        status["listeners"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let expect = |name: &str, type_: &str, value: &str, reason: &str| {
        has(&listener(name)["conditions"], type_, value, reason)
            .unwrap_or_else(|e| panic!("listener {name}: {e}: {}", listener(name)));
    };
    expect("http", "Accepted", "True", "Accepted");
    expect("http", "Programmed", "True", "Programmed");
    expect("bad-port", "Accepted", "False", "PortUnavailable");
    expect("tcp", "Accepted", "False", "UnsupportedProtocol");
    expect("bad-kind", "ResolvedRefs", "False", "InvalidRouteKinds");
    expect("no-cert", "ResolvedRefs", "False", "InvalidCertificateRef");
    expect("no-cert", "Programmed", "False", "Invalid");
    expect("foreign-cert", "ResolvedRefs", "False", "RefNotPermitted");
    expect("dup-a", "Conflicted", "True", "HostnameConflict");
    expect("dup-b", "Accepted", "False", "HostnameConflict");
    assert_eq!(listener("bad-kind")["supportedKinds"], json!([]));
    assert_eq!(
        listener("http")["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
    );

    let cases: [(&str, &str, Expected); 8] = [
        (
            "ok",
            "http",
            &[
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "True", "ResolvedRefs"),
            ],
        ),
        (
            "no-section",
            "nope",
            &[("Accepted", "False", "NoMatchingParent")],
        ),
        (
            "not-allowed",
            "same-ns",
            &[("Accepted", "False", "NotAllowedByListeners")],
        ),
        (
            "no-hostname",
            "http",
            &[("Accepted", "False", "NoMatchingListenerHostname")],
        ),
        (
            "refs",
            "http",
            &[
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "False", "BackendNotFound"),
            ],
        ),
        ("kind", "http", &[("ResolvedRefs", "False", "InvalidKind")]),
        (
            "mirror",
            "http",
            &[
                ("Accepted", "True", "Accepted"),
                ("ResolvedRefs", "False", "RefNotPermitted"),
            ],
        ),
        (
            "partly",
            "http",
            &[
                ("Accepted", "True", "Accepted"),
                ("PartiallyInvalid", "True", "UnsupportedValue"),
            ],
        ),
    ];
    for (name, section, expected) in cases {
        let (name, section): (&'static str, &'static str) = (name, section);
        api.status(
            "httproutes",
            "app",
            name,
            route_check(Some(section), expected),
        )
        .await;
    }
    let refs = api.server.get("httproutes", "app", "refs").unwrap();
    let message = condition(
        &parent_conditions(&refs["status"], Some("http")),
        "ResolvedRefs",
    )
    .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("RefNotPermitted") || message.contains("not permitted"),
        "{message}"
    );
    // Attached routes: ok, refs, kind, mirror, partly (accepted on `http`).
    assert_eq!(listener("http")["attachedRoutes"], 5);

    // Traffic follows the statuses.
    assert_eq!(get(gw.http_addr(), "a.example.com", "/").await.status, 200);
    assert_eq!(
        get(gw.http_addr(), "refs.example.com", "/missing")
            .await
            .status,
        500
    );
    assert_eq!(
        get(gw.http_addr(), "partly.example.com", "/good")
            .await
            .status,
        200
    );
    assert_eq!(
        get(gw.http_addr(), "partly.example.com", "/mirror")
            .await
            .status,
        500
    );
    assert_eq!(
        get(gw.http_addr(), "mirror.example.com", "/").await.status,
        200
    );

    // A spec change bumps the generation; the conditions follow it.
    let mut changed: Value = serde_json::from_str(&route(
        "app",
        "ok",
        json!({"parentRefs": on("http"),
        "hostnames": ["b.example.com"], "rules": [{"backendRefs": backend("a")}]}),
    ))
    .unwrap();
    changed["metadata"]["resourceVersion"] = Value::Null;
    api.server.apply(changed).unwrap();
    let generation = api.server.get("httproutes", "app", "ok").unwrap()["metadata"]["generation"]
        .as_i64()
        .unwrap();
    assert!(generation > 1);
    api.status("httproutes", "app", "ok", move |s| {
        let conditions = parent_conditions(s, Some("http"));
        let accepted = condition(&conditions, "Accepted").ok_or("no Accepted")?;
        (accepted["observedGeneration"] == generation)
            .then_some(())
            .ok_or_else(|| format!("observedGeneration {}", accepted["observedGeneration"]))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_status() {
    let mut docs = vec![class()];
    docs.push(super::http_gateway());
    // Another replica holds the Lease, renewed far in the future.
    docs.push(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "ingress-controller-leader", "namespace": "ingress-nginx"},
               "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3600,
                        "renewTime": "2099-01-01T00:00:00.000000Z"}})
        .to_string(),
    );
    let api = Api::start(&docs).await;
    let gw = api.gateway("gw-0").await;
    gw.wait_ready().await;
    // Serving, not leading: after several election rounds (one a second
    // with a 4 s TTL), no status was written.
    let lease_reads = || {
        api.server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/leases/ingress-controller-leader"))
            .count()
    };
    let server = &api.server;
    eventually(WRITTEN, move || async move {
        let reads = server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/leases/ingress-controller-leader"))
            .count();
        (reads >= 3)
            .then_some(())
            .ok_or(format!("{reads} lease reads"))
    })
    .await;
    assert!(lease_reads() >= 3);
    let status_writes = api
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/status"))
        .count();
    assert_eq!(status_writes, 0, "a follower wrote status");
    // The other replica goes away: this one leads and writes.
    api.server
        .delete("leases", "ingress-nginx", "ingress-controller-leader")
        .unwrap();
    api.status("gateways", "infra", "gw", |s| {
        has(&s["conditions"], "Accepted", "True", "Accepted")
    })
    .await;
}
