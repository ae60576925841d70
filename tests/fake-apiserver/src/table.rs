//! `meta.k8s.io/v1` Table answers, which `kubectl get` asks for to print
//! its columns (name, a few per-kind columns, age).

use serde_json::{Value, json};

use crate::resources::ResourceType;

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `kubectl`-style age of an RFC 3339 timestamp (`42s`, `5m`, `3h`, `2d`).
fn age(created: &str) -> String {
    let Ok(ts) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".to_owned();
    };
    let secs = jiff::Timestamp::now().as_second() - ts.as_second();
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn join<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
    if v.is_empty() {
        "<none>".to_owned()
    } else {
        v.join(",")
    }
}

fn array<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Per-kind columns between NAME and AGE.
fn columns(rt: &ResourceType) -> &'static [&'static str] {
    match rt.kind.as_str() {
        "Ingress" => &["Class", "Hosts", "Address", "Ports"],
        "Service" => &["Type", "Cluster-IP", "Ports"],
        "EndpointSlice" => &["AddressType", "Ports", "Endpoints"],
        "IngressClass" => &["Controller"],
        "Secret" => &["Type"],
        "Namespace" => &["Status"],
        "Pod" => &["Status"],
        "Lease" => &["Holder"],
        _ => &[],
    }
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<String> {
    match rt.kind.as_str() {
        "Ingress" => {
            let class = text(o, "/spec/ingressClassName");
            let hosts = join(array(o, "/spec/rules").map(|r| text(r, "/host")));
            let address = join(
                array(o, "/status/loadBalancer/ingress")
                    .map(|i| [text(i, "/ip"), text(i, "/hostname")].concat()),
            );
            let ports = if array(o, "/spec/tls").next().is_some() {
                "80, 443"
            } else {
                "80"
            };
            vec![
                if class.is_empty() {
                    "<none>".to_owned()
                } else {
                    class
                },
                if hosts == "<none>" {
                    "*".to_owned()
                } else {
                    hosts
                },
                address.replace("<none>", ""),
                ports.to_owned(),
            ]
        }
        "Service" => vec![
            text(o, "/spec/type"),
            text(o, "/spec/clusterIP"),
            join(
                array(o, "/spec/ports")
                    .map(|p| format!("{}/{}", text(p, "/port"), text(p, "/protocol"))),
            ),
        ],
        "EndpointSlice" => vec![
            text(o, "/addressType"),
            join(array(o, "/ports").map(|p| text(p, "/port"))),
            join(array(o, "/endpoints").flat_map(|e| array(e, "/addresses").map(|a| text(a, "")))),
        ],
        "IngressClass" => vec![text(o, "/spec/controller")],
        "Secret" => vec![text(o, "/type")],
        "Namespace" | "Pod" => vec![text(o, "/status/phase")],
        "Lease" => vec![text(o, "/spec/holderIdentity")],
        _ => Vec::new(),
    }
}

fn row(rt: &ResourceType, o: &Value) -> Value {
    let mut c = vec![json!(text(o, "/metadata/name"))];
    c.extend(cells(rt, o).into_iter().map(Value::String));
    c.push(json!(age(&text(o, "/metadata/creationTimestamp"))));
    json!({
        "cells": c,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
        },
    })
}

/// The Table for a GET answer (one object or a list).
pub(crate) fn to_table(rt: &ResourceType, value: &Value) -> Value {
    let rows: Vec<Value> = match value.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().map(|o| row(rt, o)).collect(),
        None => vec![row(rt, value)],
    };
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    for c in columns(rt) {
        defs.push(
            json!({"name": c, "type": "string", "format": "", "description": c, "priority": 0}),
        );
    }
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    let mut metadata = json!({});
    if let (Some(meta), Value::Object(m)) = (value.get("metadata"), &mut metadata) {
        for field in ["resourceVersion", "continue", "remainingItemCount"] {
            if let Some(v) = meta.get(field).filter(|_| value.get("items").is_some()) {
                m.insert(field.to_owned(), v.clone());
            }
        }
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_rows() {
        let Some(rt) = crate::resources::builtin("ing") else {
            panic!("ingresses are served");
        };
        let list = json!({"metadata": {"resourceVersion": "7"}, "items": [{
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}]}
        }]});
        let t = to_table(&rt, &list);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        assert_eq!(t["rows"][0]["cells"][0], "web");
        assert_eq!(t["rows"][0]["cells"][1], "nginx");
        assert_eq!(t["rows"][0]["cells"][2], "a.example");
        assert!(
            t["rows"][0]["cells"][5]
                .as_str()
                .is_some_and(|a| a.ends_with('d'))
        );
    }
}
