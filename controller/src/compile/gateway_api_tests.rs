//! The Gateway API compile on snapshots, without a server: what the
//! black-box tests do not reach.

use serde_json::{Value, json};

use crate::compile::{CompileOptions, Compiled, compile};
use crate::diagnostics::Reason;
use crate::gateway_api::GatewayApiOptions;
use crate::gateway_api::status::{GatewayApiStatus, RouteKind};
use crate::objects::{NsName, Object};
use crate::snapshot::Snapshot;

fn compiled(objects: Vec<Value>, enabled: bool) -> Compiled {
    let mut snapshot = Snapshot::default();
    let mut all = vec![
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "edge"},
               "spec": {"controllerName": "edge-gateway.io/gateway-controller"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "app"},
               "spec": {"ports": [{"port": 80}]}}),
    ];
    all.extend(objects);
    for object in all {
        snapshot.apply(Object::from_value(object).unwrap().unwrap());
    }
    let options = CompileOptions {
        gateway_api: enabled.then(GatewayApiOptions::default),
        ..CompileOptions::default()
    };
    compile(&snapshot, &options)
}

fn gateway(listeners: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "gw", "namespace": "app"},
           "spec": {"gatewayClassName": "edge", "listeners": listeners}})
}

fn route(kind: &str, name: &str, created: &str, hostnames: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
           "metadata": {"name": name, "namespace": "app", "creationTimestamp": created},
           "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hostnames,
                    "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}})
}

fn accepted(status: &GatewayApiStatus, kind: RouteKind, name: &str) -> (bool, &'static str) {
    let state = &status.routes[&(kind, NsName::new("app", name))];
    let cond = state.parents[0]
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    (cond.status, cond.reason)
}

#[test]
fn an_older_httproute_keeps_a_hostname_from_a_grpcroute() {
    let c = compiled(
        vec![
            gateway(json!([{"name": "https", "port": 443, "protocol": "HTTPS",
                            "tls": {"certificateRefs": [{"name": "missing"}]}}])),
            route(
                "GRPCRoute",
                "grpc",
                "2024-01-02T00:00:00Z",
                json!(["a.test", "b.test"]),
            ),
            route(
                "HTTPRoute",
                "http",
                "2024-01-01T00:00:00Z",
                json!(["a.test"]),
            ),
            route(
                "GRPCRoute",
                "late",
                "2024-01-03T00:00:00Z",
                json!(["a.test"]),
            ),
        ],
        true,
    );
    let s = &c.gateway_api;
    assert_eq!(accepted(s, RouteKind::Http, "http"), (true, "Accepted"));
    assert_eq!(
        accepted(s, RouteKind::Grpc, "grpc"),
        (true, "Accepted"),
        "b.test is left"
    );
    assert_eq!(
        accepted(s, RouteKind::Grpc, "late"),
        (false, "NotAllowedByListeners")
    );
}

#[test]
fn listeners_of_one_port_and_two_protocols_conflict() {
    let c = compiled(
        vec![gateway(json!([
            {"name": "a", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "x"}]}},
            {"name": "b", "port": 443, "protocol": "HTTP"},
        ]))],
        true,
    );
    let gateway = &c.gateway_api.gateways[&NsName::new("app", "gw")];
    let conflicted = |name: &str| {
        let listener = gateway.listeners.iter().find(|l| l.name == name).unwrap();
        listener
            .conditions
            .iter()
            .find(|c| c.type_ == "Conflicted")
            .map(|c| (c.status, c.reason))
    };
    assert_eq!(conflicted("a"), Some((true, "ProtocolConflict")));
    assert_eq!(conflicted("b"), Some((true, "ProtocolConflict")));
}

#[test]
fn regex_mode_hosts_serve_no_httproute_and_say_so() {
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "regex", "namespace": "app",
                     "annotations": {"kubernetes.io/ingress.class": "nginx",
                                     "nginx.ingress.kubernetes.io/use-regex": "true"}},
        "spec": {"rules": [{"host": "r.test", "http": {"paths": [{"path": "/v[0-9]", "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]}});
    let c = compiled(
        vec![
            ingress,
            gateway(json!([{"name": "http", "port": 80, "protocol": "HTTP"}])),
            route("HTTPRoute", "r", "2024-01-01T00:00:00Z", json!(["r.test"])),
        ],
        true,
    );
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.reason == Reason::RouteShadowed && d.message.contains("regex mode")),
        "{:?}",
        c.diagnostics
    );
    assert!(c.table.lookup(Some("r.test"), b"/anything").is_none());
}

#[test]
fn with_the_gateway_api_off_gateways_are_named_not_served() {
    let c = compiled(
        vec![
            gateway(json!([{"name": "http", "port": 80, "protocol": "HTTP"}])),
            route(
                "HTTPRoute",
                "r",
                "2024-01-01T00:00:00Z",
                json!(["off.test"]),
            ),
        ],
        false,
    );
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.reason == Reason::GatewayApi && d.message.contains("--enable-gateway-api"))
    );
    assert!(c.table.lookup(Some("off.test"), b"/").is_none());
    assert!(c.gateway_api.routes.is_empty());
}
