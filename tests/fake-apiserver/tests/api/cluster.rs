//! What a cluster adds around storage, over raw HTTP: 422s with their
//! causes, the default IngressClass, access reviews, CRDs serving their
//! kinds, the garbage collector, and the simulated controllers.

use std::net::{IpAddr, Ipv4Addr};

use fake_apiserver::{FakeApiServer, Options};
use serde_json::{Value, json};

use crate::http::{Watch, assert_status, delete, get, post};

const INGS: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

#[tokio::test]
async fn invalid_objects_get_422_with_causes() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"http": {"paths": [
            {"path": "/a", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "b", "pathType": "Exact", "backend": {}}]}}]}});
    let reply = post(&base, INGS, ing).await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        reply.body["message"],
        "Ingress.networking.k8s.io \"web\" is invalid: [spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified, spec.rules[0].http.paths[1].path: Invalid value: \"b\": must be an absolute path, spec.rules[0].http.paths[1].backend: Invalid value: \"\": resource or service backend is required]"
    );
    assert_eq!(
        reply.body["details"],
        json!({"name": "web", "group": "networking.k8s.io", "kind": "Ingress", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value: pathType must be specified",
             "field": "spec.rules[0].http.paths[0].pathType"},
            {"reason": "FieldValueInvalid", "message": "Invalid value: \"b\": must be an absolute path",
             "field": "spec.rules[0].http.paths[1].path"},
            {"reason": "FieldValueInvalid", "message": "Invalid value: \"\": resource or service backend is required",
             "field": "spec.rules[0].http.paths[1].backend"},
        ]})
    );
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 0}]}});
    let reply = post(&base, "/api/v1/namespaces/default/services", svc).await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        reply.body["message"],
        "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]"
    );
    assert_eq!(reply.body["details"]["kind"], "Service");
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1"}, "addressType": "IPv6",
        "endpoints": [{"addresses": ["10.0.0.7"]}]});
    let reply = post(
        &base,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        slice,
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        reply.body["message"],
        "EndpointSlice.discovery.k8s.io \"web-1\" is invalid: endpoints[0].addresses[0]: Invalid value: \"10.0.0.7\": must be a valid IPv6 address"
    );
    // A server that refuses loopback endpoints, as a real one does.
    let strict = FakeApiServer::start_with(Options {
        allow_loopback_endpoints: false,
        ..Options::default()
    })
    .await
    .expect("start");
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1"}, "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.11"]}]});
    let reply = post(
        &strict.url(),
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        slice.clone(),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert!(reply.body["message"].as_str().is_some_and(|m| m.ends_with("may not be in the loopback range (127.0.0.0/8, ::1/128)")));
    let ok = post(
        &base,
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        slice,
    )
    .await;
    assert_eq!(ok.code, 201, "{:#}", ok.body);
    assert_eq!(ok.body["ports"], Value::Null);
}

#[tokio::test]
async fn new_ingresses_get_the_default_class() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let class = |name: &str, default: bool| {
        let annotations = if default {
            json!({"ingressclass.kubernetes.io/is-default-class": "true"})
        } else {
            json!({})
        };
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": annotations}, "spec": {"controller": "k8s.io/ingress-nginx"}})
    };
    let classes = "/apis/networking.k8s.io/v1/ingressclasses";
    assert_eq!(post(&base, classes, class("other", false)).await.code, 201);
    assert_eq!(post(&base, classes, class("nginx", true)).await.code, 201);
    let ing = |name: &str, spec: Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": spec})
    };
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    let plain = post(
        &base,
        INGS,
        ing("plain", json!({"defaultBackend": backend})),
    )
    .await;
    assert_eq!(
        plain.body["spec"]["ingressClassName"], "nginx",
        "{:#}",
        plain.body
    );
    let named = post(
        &base,
        INGS,
        ing(
            "named",
            json!({"ingressClassName": "other", "defaultBackend": backend}),
        ),
    )
    .await;
    assert_eq!(named.body["spec"]["ingressClassName"], "other");
}

#[tokio::test]
async fn access_reviews_allow() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "ingresses", "group": "networking.k8s.io"}}});
    let reply = post(
        &base,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        review,
    )
    .await;
    assert_eq!(reply.code, 201);
    assert_eq!(reply.body["status"]["allowed"], true);
    assert_eq!(reply.body["spec"]["resourceAttributes"]["verb"], "create");
    let listed = get(
        &base,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
    )
    .await;
    assert_status(&listed, 405, "MethodNotAllowed");
}

#[tokio::test]
async fn crds_serve_their_kinds_until_deleted() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gateways.gateway.networking.k8s.io"},
        "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
            "names": {"plural": "gateways", "kind": "Gateway", "shortNames": ["gtw"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                {"name": "v1beta1", "served": true, "storage": false}]}});
    let created = post(
        &base,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
    )
    .await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    assert_eq!(
        created.body["status"]["conditions"][1]["type"],
        "Established"
    );
    let group = get(&base, "/apis/gateway.networking.k8s.io").await;
    assert_eq!(group.body["preferredVersion"]["version"], "v1");
    let resources = get(&base, "/apis/gateway.networking.k8s.io/v1").await;
    assert_eq!(resources.body["resources"][0]["shortNames"], json!(["gtw"]));
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways";
    let mut watch = Watch::open(&base, &format!("{path}?watch=1")).await;
    let gw = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge"}, "spec": {"gatewayClassName": "edge-gateway", "anything": {"kept": true}}});
    let made = post(&base, path, gw).await;
    assert_eq!(made.code, 201, "{:#}", made.body);
    assert_eq!(made.body["spec"]["anything"], json!({"kept": true}));
    let ev = watch.next().await.expect("an event");
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("edge"))
    );
    // The same object through the other served version.
    let old = get(
        &base,
        "/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/gateways/edge",
    )
    .await;
    assert_eq!(old.body["apiVersion"], "gateway.networking.k8s.io/v1beta1");
    let list = get(&base, "/apis/gateway.networking.k8s.io/v1/gateways").await;
    assert_eq!(list.body["kind"], "GatewayList");
    assert_eq!(list.body["items"][0]["kind"], "Gateway");
    let gone = delete(&base, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.gateway.networking.k8s.io").await;
    assert_eq!(
        (gone.code, gone.body["kind"].as_str()),
        (200, Some("CustomResourceDefinition"))
    );
    assert_status(&get(&base, path).await, 404, "NotFound");
    assert!(server.list("Gateway", "").is_empty());
}

#[tokio::test]
async fn simulated_controllers_run_pods_and_fill_endpoints() {
    let server = FakeApiServer::start_with(Options {
        pod_ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 50))),
        ..Options::default()
    })
    .await
    .expect("start");
    let base = server.url();
    let labels = json!({"app": "model"});
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "model"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                {"name": "m", "image": "edge-gateway", "ports": [{"name": "http", "containerPort": 8080}]}]}}}});
    assert_eq!(
        post(
            &base,
            "/apis/apps/v1/namespaces/default/deployments",
            deploy
        )
        .await
        .code,
        201
    );
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "model"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    assert_eq!(
        post(&base, "/api/v1/namespaces/default/services", svc)
            .await
            .code,
        201
    );
    let status = get(&base, "/apis/apps/v1/namespaces/default/deployments/model")
        .await
        .body["status"]
        .clone();
    assert_eq!(
        (
            status["readyReplicas"].as_u64(),
            status["updatedReplicas"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let pods = server.list("pods", "default");
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p["status"]["podIP"] == "127.0.0.50" && p["status"]["phase"] == "Running")
    );
    let slices = server.list("endpointslices", "default");
    assert_eq!(slices.len(), 1);
    assert_eq!(
        slices[0]["metadata"]["labels"]["kubernetes.io/service-name"],
        "model"
    );
    assert_eq!(
        slices[0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    assert_eq!(slices[0]["endpoints"].as_array().map(Vec::len), Some(2));
    // The garbage collector: the Deployment's pods go with it, the slice
    // empties; the Service's slice goes with the Service.
    let gone = delete(&base, "/apis/apps/v1/namespaces/default/deployments/model").await;
    assert_eq!(
        (gone.body["kind"].as_str(), gone.body["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    assert!(server.list("pods", "default").is_empty());
    assert_eq!(
        server.list("endpointslices", "default")[0]["endpoints"],
        json!([])
    );
    let svc_gone = delete(&base, "/api/v1/namespaces/default/services/model").await;
    assert_eq!(svc_gone.body["kind"], "Service");
    assert!(server.list("endpointslices", "default").is_empty());
}
