//! Objects for the compile tests: an IngressClass `nginx`, Service
//! `user-1/svc`, Ingresses with annotations, the controller ConfigMap.

use serde_json::{Value, json};

use super::*;
use crate::annotations::PREFIX;
use crate::objects::Object;

pub(super) const CONFIG: (&str, &str) = ("ingress-nginx", "controller");

pub(super) fn snapshot(objects: &[Value]) -> Snapshot {
    let mut s = Snapshot::default();
    for o in objects {
        s.apply(Object::from_value(o.clone()).unwrap().unwrap());
    }
    s
}

/// An Ingress `user-1/name` routing `path` on `a.example` to `svc`.
pub(super) fn ingress(name: &str, path: &str, annotations: &[(&str, &str)]) -> Value {
    ingress_at("user-1", name, 1, "a.example", &[path], annotations)
}

/// An Ingress `ns/name` created on day `day` of 2025, routing `paths`
/// (ImplementationSpecific) on `host` to Service `svc` of its namespace.
pub(super) fn ingress_at(
    ns: &str,
    name: &str,
    day: u32,
    host: &str,
    paths: &[&str],
    annotations: &[(&str, &str)],
) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), json!(v)))
        .collect();
    let paths: Vec<Value> = paths
        .iter()
        .map(|p| {
            json!({"path": p, "pathType": "ImplementationSpecific",
                   "backend": {"service": {"name": "svc", "port": {"number": 80}}}})
        })
        .collect();
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "namespace": ns,
                        "creationTimestamp": format!("2025-01-{day:02}T00:00:00Z"),
                        "annotations": annotations},
           "spec": {"ingressClassName": "nginx", "rules": [{"host": host,
               "http": {"paths": paths}}]}})
}

pub(super) fn base() -> Vec<Value> {
    vec![
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
        service("user-1"),
        service("user-2"),
    ]
}

/// Service `ns/svc`, port 80.
pub(super) fn service(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "svc", "namespace": ns},
           "spec": {"ports": [{"port": 80}]}})
}

/// The options the tests compile with: the controller ConfigMap named.
pub(super) fn options() -> CompileOptions {
    CompileOptions {
        configmap: Some(NsName::new(CONFIG.0, CONFIG.1)),
        ..CompileOptions::default()
    }
}

pub(super) fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"namespace": CONFIG.0, "name": CONFIG.1}, "data": data})
}

/// `objects` and [`base`] compiled with [`options`].
pub(super) fn compiled(objects: Vec<Value>) -> Compiled {
    let mut all = base();
    all.extend(objects);
    compile(&snapshot(&all), &options())
}

/// Where a request for `host` and `path` goes: the owning Ingress's name
/// (`503` for a denied route), or `404`.
pub(super) fn owner(c: &Compiled, host: &str, path: &str) -> String {
    let normal = gateway::path::normalize_path(path.as_bytes()).unwrap();
    match c.table.lookup(Some(host), &normal).map(|m| m.route) {
        None => "404".to_owned(),
        Some(route) if route.action == RouteAction::Respond(503) => "503".to_owned(),
        Some(route) => route
            .source
            .as_ref()
            .map_or_else(|| "built-in".to_owned(), |s| s.name.to_string()),
    }
}
