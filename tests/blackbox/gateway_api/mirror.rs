//! `RequestMirror` (conformance: HTTPRouteRequestMirror,
//! HTTPRouteRequestMultipleMirrors, HTTPRouteRequestPercentageMirror):
//! each mirror backend receives a copy of the request as the main backend
//! gets it (header modifiers applied, body included), the client's answer
//! is the main backend's; a 0 % mirror sends nothing; a mirror to another
//! namespace needs a ReferenceGrant and, without one, the rule is served
//! without it.

use std::time::Duration;

use serde_json::json;
use testkit::{EchoBackend, eventually, request};

use super::{backend, http_gateway, parent, route, services, start, who};

fn mirror(name: &str, namespace: Option<&str>, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"backendRef": {"name": name, "port": 80}});
    if let Some(ns) = namespace {
        spec["backendRef"]["namespace"] = json!(ns);
    }
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            spec[k] = v.clone();
        }
    }
    json!({"type": "RequestMirror", "requestMirror": spec})
}

#[tokio::test]
async fn mirrors_get_copies_and_the_answer_stays_the_mains() {
    let main = EchoBackend::start([127, 0, 215, 1]).await;
    let shadow = EchoBackend::start([127, 0, 215, 2]).await;
    let shadow2 = EchoBackend::start([127, 0, 215, 3]).await;
    let foreign = EchoBackend::start([127, 0, 215, 4]).await;
    let granted = EchoBackend::start([127, 0, 215, 5]).await;
    let mut docs = services(
        "app",
        &[("main", &main), ("shadow", &shadow), ("shadow2", &shadow2)],
    );
    docs.extend(services(
        "other",
        &[("foreign", &foreign), ("granted", &granted)],
    ));
    docs.push(
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
               "metadata": {"name": "mirrors", "namespace": "other"},
               "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                  "namespace": "app"}],
                        "to": [{"group": "", "kind": "Service", "name": "granted"}]}})
        .to_string(),
    );
    docs.push(http_gateway());
    let at = |path: &str| json!([{"path": {"type": "PathPrefix", "value": path}}]);
    docs.push(route(
        "app",
        "mirrored",
        json!({"parentRefs": parent(), "hostnames": ["mirror.test"], "rules": [
            {"matches": at("/mirror"), "backendRefs": backend("main"), "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}]}},
                mirror("shadow", None, json!({})),
                mirror("shadow2", None, json!({"fraction": {"numerator": 1, "denominator": 1}})),
            ]},
            {"matches": at("/none"), "backendRefs": backend("main"),
             "filters": [mirror("shadow", None, json!({"percent": 0}))]},
            {"matches": at("/foreign"), "backendRefs": backend("main"),
             "filters": [mirror("foreign", Some("other"), json!({}))]},
            {"matches": at("/granted"), "backendRefs": backend("main"),
             "filters": [mirror("granted", Some("other"), json!({"percent": 100}))]},
        ]}),
    ));
    let s = start(docs).await;

    let answer = request(
        s.http(),
        "POST",
        "mirror.test",
        "/mirror?x=1",
        &[("x-header-set", "client"), ("content-type", "text/plain")],
        b"hello mirror".to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(who(&answer), main.addr().to_string(), "the main answers");
    assert_eq!(main.hits(), 1);
    for mirror in [&shadow, &shadow2] {
        let copy = eventually(Duration::from_secs(10), || async {
            mirror
                .last_request()
                .ok_or_else(|| "no copy yet".to_owned())
        })
        .await;
        assert_eq!(copy.method, "POST");
        assert_eq!(copy.path, "/mirror?x=1");
        assert_eq!(&copy.body[..], b"hello mirror");
        assert_eq!(copy.header("host").as_deref(), Some("mirror.test"));
        assert_eq!(
            copy.header("x-header-set").as_deref(),
            Some("set-overwrites-values"),
            "the copy is the request as forwarded"
        );
    }

    for _ in 0..10 {
        let r = request(s.http(), "GET", "mirror.test", "/none", &[], Vec::new()).await;
        assert_eq!(who(&r), main.addr().to_string());
    }
    let r = request(s.http(), "GET", "mirror.test", "/foreign", &[], Vec::new()).await;
    assert_eq!((r.status, who(&r)), (200, main.addr().to_string()));
    let r = request(s.http(), "GET", "mirror.test", "/granted", &[], Vec::new()).await;
    assert_eq!((r.status, who(&r)), (200, main.addr().to_string()));
    eventually(Duration::from_secs(10), || async {
        (granted.hits() == 1)
            .then_some(())
            .ok_or_else(|| format!("{} copies at the granted mirror", granted.hits()))
    })
    .await;
    assert_eq!(shadow.hits(), 1, "a 0% mirror sends nothing");
    assert_eq!(foreign.hits(), 0, "no ReferenceGrant, no copies");
    assert_eq!(main.hits(), 13);
}
