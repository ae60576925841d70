//! The Gateway API beside Ingress, black-box: the real binary with
//! `--enable-gateway-api` on a manifests folder (and the fake API server
//! for status), echo backends on 127.0.200-240.x. One module per area,
//! each case named after the behaviour of the Gateway API conformance
//! test it stands for (`conformance/tests/*.go` of
//! kubernetes-sigs/gateway-api), written anew.

mod convert;
mod filters;
mod grpc;
mod listeners;
mod matching;
mod mirror;
mod mixed;
mod references;
mod status;

use serde_json::{Value, json};
use testkit::{EchoBackend, TestResponse};

use crate::{Setup, answered_by, service_for};

/// The GatewayClass of these tests, ours by the default controller name.
pub(crate) fn class() -> String {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "edge"},
        "spec": {"controllerName": "edge-gateway.io/gateway-controller"},
    })
    .to_string()
}

/// A Gateway of class `edge` with `listeners`.
pub(crate) fn gateway(ns: &str, name: &str, listeners: Value) -> String {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"gatewayClassName": "edge", "listeners": listeners},
    })
    .to_string()
}

/// The usual Gateway: `infra/gw` with an HTTP listener `http` on port 80
/// taking routes from every namespace.
pub(crate) fn http_gateway() -> String {
    gateway(
        "infra",
        "gw",
        json!([{"name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    )
}

/// An HTTPRoute with `spec`.
pub(crate) fn route(ns: &str, name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

/// A parentRef to the usual Gateway.
pub(crate) fn parent() -> Value {
    json!([{"name": "gw", "namespace": "infra"}])
}

/// A backendRef to Service `name` port 80.
pub(crate) fn backend(name: &str) -> Value {
    json!([{"name": name, "port": 80}])
}

/// A gateway with the Gateway API on, serving the class and `docs`.
pub(crate) async fn start(docs: Vec<String>) -> Setup {
    let mut all = vec![class()];
    all.extend(docs);
    Setup::start_with(&all, &["--enable-gateway-api"]).await
}

/// Services (port 80) for `backends`, one each, in namespace `ns`.
pub(crate) fn services(ns: &str, backends: &[(&str, &EchoBackend)]) -> Vec<String> {
    backends
        .iter()
        .flat_map(|(name, b)| service_for(ns, name, &[*b]))
        .collect()
}

/// Who answered a request (`""`: the gateway itself).
pub(crate) fn who(response: &TestResponse) -> String {
    answered_by(response)
}
