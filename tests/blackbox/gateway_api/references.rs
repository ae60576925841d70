//! Cross-namespace backendRefs (conformance: HTTPRouteReferenceGrant,
//! HTTPRouteInvalidCrossNamespaceBackendRef, HTTPRoutePartiallyInvalidViaInvalidReferenceGrant,
//! HTTPRouteInvalidNonExistentBackendRef, HTTPRouteInvalidBackendRefUnknownKind).

use serde_json::json;
use testkit::{EchoBackend, eventually, get};

use super::{http_gateway, parent, route, services, start, who};

fn grant(name: Option<&str>) -> String {
    let mut to = json!({"group": "", "kind": "Service"});
    if let Some(name) = name {
        to["name"] = json!(name);
    }
    json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
           "metadata": {"name": "routes", "namespace": "backends"},
           "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "app"}],
                    "to": [to]}})
    .to_string()
}

#[tokio::test]
async fn cross_namespace_backends_need_a_reference_grant() {
    let [granted, other] = [1, 2].map(|i| EchoBackend::start([127, 0, 205, i]));
    let (granted, other) = (granted.await, other.await);
    let mut docs = services("backends", &[("granted", &granted), ("other", &other)]);
    docs.push(http_gateway());
    let to = |path: &str, svc: &str| {
        json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}],
               "backendRefs": [{"name": svc, "namespace": "backends", "port": 80}]})
    };
    docs.push(route(
        "app",
        "cross",
        json!({"parentRefs": parent(), "hostnames": ["x.test"], "rules": [
            to("/granted", "granted"),
            to("/other", "other"),
            {"matches": [{"path": {"type": "PathPrefix", "value": "/kind"}}],
             "backendRefs": [{"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "granted", "port": 80}]},
        ]}),
    ));
    let s = start(docs.clone()).await;
    // No grant: every cross-namespace backend answers 500.
    assert_eq!(get(s.http(), "x.test", "/granted").await.status, 500);
    assert_eq!(get(s.http(), "x.test", "/kind").await.status, 500);
    // A grant for one Service opens that one only.
    s.dir.write("grant.yaml", &grant(Some("granted")));
    let addr = s.http();
    eventually(std::time::Duration::from_secs(5), move || async move {
        match get(addr, "x.test", "/granted").await.status {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })
    .await;
    assert_eq!(
        who(&get(s.http(), "x.test", "/granted").await),
        granted.addr().to_string()
    );
    assert_eq!(get(s.http(), "x.test", "/other").await.status, 500);
    // A grant for every Service of the namespace, then none: revoked.
    s.dir.write("grant.yaml", &grant(None));
    eventually(std::time::Duration::from_secs(5), move || async move {
        match get(addr, "x.test", "/other").await.status {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })
    .await;
    s.dir.remove("grant.yaml");
    eventually(std::time::Duration::from_secs(5), move || async move {
        match get(addr, "x.test", "/granted").await.status {
            500 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })
    .await;
    assert_eq!(other.hits(), 1);
}
