//! `meta.k8s.io/v1` Table answers, which `kubectl get` asks for to print
//! its columns: per kind, the columns kube-apiserver's printers give
//! (Name ... Age for most; Last Seen, Type, Reason, Object, Message for
//! Events); Name and Age for kinds without their own.

use serde_json::{Value, json};

use crate::resources::ResourceType;

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn number(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
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

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s }
}

fn join<I: IntoIterator<Item = String>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
    or_none(v.join(","))
}

fn array<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn entries(v: &Value, pointer: &str) -> usize {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

/// `ready/total`.
fn ratio(ready: u64, total: u64) -> String {
    format!("{ready}/{total}")
}

/// The columns of a kind: (name, priority); kubectl shows priority 0 only
/// without `-o wide`.
#[rustfmt::skip]
fn columns(rt: &ResourceType) -> &'static [(&'static str, u8)] {
    match rt.kind.as_str() {
        "Event" => &[("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Message", 0)],
        "Ingress" => &[("Name", 0), ("Class", 0), ("Hosts", 0), ("Address", 0), ("Ports", 0), ("Age", 0)],
        "Service" => &[("Name", 0), ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)],
        "EndpointSlice" => &[("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0), ("Age", 0)],
        "IngressClass" => &[("Name", 0), ("Controller", 0), ("Age", 0)],
        "Secret" => &[("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)],
        "ConfigMap" => &[("Name", 0), ("Data", 0), ("Age", 0)],
        "Namespace" => &[("Name", 0), ("Status", 0), ("Age", 0)],
        "Pod" => &[("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1)],
        "Lease" => &[("Name", 0), ("Holder", 0), ("Age", 0)],
        "Deployment" => &[("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0)],
        "ReplicaSet" => &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0)],
        "StatefulSet" => &[("Name", 0), ("Ready", 0), ("Age", 0)],
        "DaemonSet" => &[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0)],
        "Job" => &[("Name", 0), ("Status", 0), ("Completions", 0), ("Age", 0)],
        "HorizontalPodAutoscaler" => &[("Name", 0), ("Reference", 0), ("MinPods", 0), ("MaxPods", 0), ("Replicas", 0), ("Age", 0)],
        "PodDisruptionBudget" => &[("Name", 0), ("Min Available", 0), ("Max Unavailable", 0), ("Allowed Disruptions", 0), ("Age", 0)],
        "ServiceAccount" => &[("Name", 0), ("Secrets", 0), ("Age", 0)],
        "RoleBinding" | "ClusterRoleBinding" => &[("Name", 0), ("Role", 0), ("Age", 0)],
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => &[("Name", 0), ("Webhooks", 0), ("Age", 0)],
        "CustomResourceDefinition" | "Role" | "ClusterRole" => &[("Name", 0), ("Created At", 0)],
        _ => &[("Name", 0), ("Age", 0)],
    }
}

/// One cell of a column for an object.
fn cell(rt: &ResourceType, column: &str, o: &Value) -> String {
    match (rt.kind.as_str(), column) {
        (_, "Name") => text(o, "/metadata/name"),
        (_, "Age") => age(&text(o, "/metadata/creationTimestamp")),
        (_, "Created At") => text(o, "/metadata/creationTimestamp"),
        ("Event", "Last Seen") => {
            let last = [
                text(o, "/lastTimestamp"),
                text(o, "/eventTime"),
                text(o, "/metadata/creationTimestamp"),
            ];
            age(last
                .iter()
                .find(|t| !t.is_empty())
                .map_or("", String::as_str))
        }
        ("Event", "Object") => format!(
            "{}/{}",
            text(o, "/involvedObject/kind").to_ascii_lowercase(),
            text(o, "/involvedObject/name")
        ),
        ("Event", "Message") => text(o, "/message"),
        ("Service", "Type") => text(o, "/spec/type"),
        ("Event" | "Secret", "Type") => text(o, "/type"),
        ("Event", "Reason") => text(o, "/reason"),
        ("Ingress", "Class") => or_none(text(o, "/spec/ingressClassName")),
        ("Ingress", "Hosts") => {
            let hosts = join(array(o, "/spec/rules").map(|r| text(r, "/host")));
            if hosts == "<none>" {
                "*".to_owned()
            } else {
                hosts
            }
        }
        ("Ingress", "Address") => join(
            array(o, "/status/loadBalancer/ingress")
                .map(|i| [text(i, "/ip"), text(i, "/hostname")].concat()),
        )
        .replace("<none>", ""),
        ("Ingress", "Ports") => if array(o, "/spec/tls").next().is_some() {
            "80, 443"
        } else {
            "80"
        }
        .to_owned(),
        ("Service", "Cluster-IP") => text(o, "/spec/clusterIP"),
        ("Service", "External-IP") => or_none(join(
            array(o, "/status/loadBalancer/ingress").map(|i| text(i, "/ip")),
        )),
        ("Service", "Port(s)") => join(array(o, "/spec/ports").map(|p| {
            let node = text(p, "/nodePort");
            let node = if node.is_empty() {
                String::new()
            } else {
                format!(":{node}")
            };
            format!("{}{node}/{}", text(p, "/port"), text(p, "/protocol"))
        })),
        ("Service", "Selector") => or_none(
            o.pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
        ("EndpointSlice", "AddressType") => text(o, "/addressType"),
        ("EndpointSlice", "Ports") => join(array(o, "/ports").map(|p| text(p, "/port"))),
        ("EndpointSlice", "Endpoints") => {
            join(array(o, "/endpoints").flat_map(|e| array(e, "/addresses").map(|a| text(a, ""))))
        }
        ("IngressClass", "Controller") => text(o, "/spec/controller"),
        ("Secret" | "ConfigMap", "Data") => {
            (entries(o, "/data") + entries(o, "/binaryData")).to_string()
        }
        ("Namespace", "Status") => text(o, "/status/phase"),
        ("Pod", "Ready") => {
            let statuses: Vec<&Value> = array(o, "/status/containerStatuses").collect();
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready") == Some(&json!(true)))
                .count();
            ratio(ready as u64, array(o, "/spec/containers").count() as u64)
        }
        ("Pod", "Status") => {
            if o.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating".to_owned()
            } else {
                text(o, "/status/phase")
            }
        }
        ("Pod", "Restarts") => array(o, "/status/containerStatuses")
            .map(|s| number(s, "/restartCount"))
            .sum::<u64>()
            .to_string(),
        ("Pod", "IP") => or_none(text(o, "/status/podIP")),
        ("Pod", "Node") => or_none(text(o, "/spec/nodeName")),
        ("Lease", "Holder") => text(o, "/spec/holderIdentity"),
        ("Deployment" | "StatefulSet", "Ready") => ratio(
            number(o, "/status/readyReplicas"),
            number(o, "/spec/replicas"),
        ),
        ("Deployment", "Up-to-date") => number(o, "/status/updatedReplicas").to_string(),
        ("Deployment", "Available") => number(o, "/status/availableReplicas").to_string(),
        ("ReplicaSet", "Desired") => number(o, "/spec/replicas").to_string(),
        ("ReplicaSet", "Current") => number(o, "/status/replicas").to_string(),
        ("ReplicaSet", "Ready") => number(o, "/status/readyReplicas").to_string(),
        ("DaemonSet", "Desired") => number(o, "/status/desiredNumberScheduled").to_string(),
        ("DaemonSet", "Current") => number(o, "/status/currentNumberScheduled").to_string(),
        ("DaemonSet", "Ready") => number(o, "/status/numberReady").to_string(),
        ("DaemonSet", "Up-to-date") => number(o, "/status/updatedNumberScheduled").to_string(),
        ("DaemonSet", "Available") => number(o, "/status/numberAvailable").to_string(),
        ("Job", "Status") => {
            let complete = array(o, "/status/conditions")
                .any(|c| text(c, "/type") == "Complete" && text(c, "/status") == "True");
            if complete { "Complete" } else { "Running" }.to_owned()
        }
        ("Job", "Completions") => ratio(
            number(o, "/status/succeeded"),
            o.pointer("/spec/completions")
                .and_then(Value::as_u64)
                .unwrap_or(1),
        ),
        ("HorizontalPodAutoscaler", "Reference") => {
            format!(
                "{}/{}",
                text(o, "/spec/scaleTargetRef/kind"),
                text(o, "/spec/scaleTargetRef/name")
            )
        }
        ("HorizontalPodAutoscaler", "MinPods") => or_none(text(o, "/spec/minReplicas")),
        ("HorizontalPodAutoscaler", "MaxPods") => text(o, "/spec/maxReplicas"),
        ("HorizontalPodAutoscaler", "Replicas") => number(o, "/status/currentReplicas").to_string(),
        ("PodDisruptionBudget", "Min Available") => {
            or_none(text(o, "/spec/minAvailable")).replace("<none>", "N/A")
        }
        ("PodDisruptionBudget", "Max Unavailable") => {
            or_none(text(o, "/spec/maxUnavailable")).replace("<none>", "N/A")
        }
        ("PodDisruptionBudget", "Allowed Disruptions") => {
            number(o, "/status/disruptionsAllowed").to_string()
        }
        ("ServiceAccount", "Secrets") => array(o, "/secrets").count().to_string(),
        (_, "Role") => format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name")),
        (_, "Webhooks") => array(o, "/webhooks").count().to_string(),
        _ => String::new(),
    }
}

fn row(rt: &ResourceType, o: &Value) -> Value {
    let cells: Vec<Value> = columns(rt)
        .iter()
        .map(|(c, _)| json!(cell(rt, c, o)))
        .collect();
    json!({
        "cells": cells,
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
    let defs: Vec<Value> = columns(rt)
        .iter()
        .map(|(c, priority)| {
            let format = if *c == "Name" { "name" } else { "" };
            json!({"name": c, "type": "string", "format": format, "description": c, "priority": priority})
        })
        .collect();
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
    use crate::resources::builtin;

    fn rt(spec: &str) -> crate::resources::Res {
        match builtin(spec) {
            Some(r) => r,
            None => panic!("{spec} is served"),
        }
    }

    #[test]
    fn ingress_rows() {
        let list = json!({"metadata": {"resourceVersion": "7"}, "items": [{
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}]}
        }]});
        let t = to_table(&rt("ing"), &list);
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

    #[test]
    fn workloads_and_events() {
        let deploy = json!({"metadata": {"name": "m"}, "spec": {"replicas": 2},
            "status": {"readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        let t = to_table(&rt("deploy"), &deploy);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["m", "2/2", "2", "2", "<unknown>"])
        );
        let event = json!({"metadata": {"name": "e"}, "type": "Warning", "reason": "InvalidPath",
            "involvedObject": {"kind": "Ingress", "name": "web"}, "message": "bad path",
            "lastTimestamp": "2020-01-01T00:00:00Z"});
        let t = to_table(&rt("ev"), &event);
        assert_eq!(t["columnDefinitions"][0]["name"], "Last Seen");
        assert_eq!(t["rows"][0]["cells"][3], "ingress/web");
        assert_eq!(t["rows"][0]["cells"][4], "bad path");
    }
}
