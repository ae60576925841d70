//! Per-kind defaults the real API server fills in and clients rely on:
//! Service cluster IPs, ports and policies; Secret `stringData` and type;
//! Namespace labels and finalizers; EndpointSlice port names and
//! protocols; workload replicas and rollout strategy; the status objects
//! start with.

use serde_json::{Value, json};

use crate::objects::{meta_mut, meta_str};
use crate::resources::ResourceType;

/// The status an object of this kind starts with when created through the
/// API (Kubernetes ignores a client-supplied status on create).
pub(crate) fn initial_status(rt: &ResourceType, obj: &Value) -> Option<Value> {
    match rt.kind.as_str() {
        "Ingress" | "Service" => Some(json!({"loadBalancer": {}})),
        "Namespace" => Some(json!({"phase": "Active"})),
        "Pod" => Some(json!({"phase": "Pending"})),
        "CustomResourceDefinition" => Some(crate::crd::established_status(obj)),
        _ => None,
    }
}

/// Per-kind defaults. `old` is the stored object on updates.
pub(crate) fn apply(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
    if rt.custom {
        return;
    }
    match rt.kind.as_str() {
        "Secret" => secret_defaults(obj),
        "Service" => service_defaults(obj, old),
        "EndpointSlice" => endpoint_slice_defaults(obj),
        "Deployment" | "ReplicaSet" | "StatefulSet" => workload_defaults(rt, obj),
        "Namespace" => {
            let name = meta_str(obj, "name").to_owned();
            let meta = meta_mut(obj);
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Value::Object(l) = labels {
                l.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
            }
            if let Value::Object(map) = obj {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Value::Object(s) = spec {
                    s.entry("finalizers")
                        .or_insert_with(|| json!(["kubernetes"]));
                }
            }
        }
        _ => {}
    }
}

fn secret_defaults(obj: &mut Value) {
    let Value::Object(map) = obj else { return };
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        if let Value::Object(data) = data {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or_default();
                data.insert(k, json!(base64(text.as_bytes())));
            }
        }
    }
    map.entry("type").or_insert_with(|| json!("Opaque"));
}

fn service_defaults(obj: &mut Value, old: Option<&Value>) {
    let Value::Object(map) = obj else { return };
    let spec = map.entry("spec").or_insert_with(|| json!({}));
    let Value::Object(spec) = spec else { return };
    let kind = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    if kind != "ExternalName" {
        let has_ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has_ip {
            let kept = old
                .and_then(|o| o.pointer("/spec/clusterIP"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let ip = kept
                .unwrap_or_else(|| format!("10.96.{}.{}", fastrand::u8(..), fastrand::u8(1..255)));
            spec.insert("clusterIP".to_owned(), json!(ip));
        }
        let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
        spec.insert("clusterIPs".to_owned(), json!([ip]));
        spec.entry("sessionAffinity")
            .or_insert_with(|| json!("None"));
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
        spec.entry("internalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    let node_ports = matches!(kind.as_str(), "NodePort" | "LoadBalancer");
    if node_ports {
        spec.entry("externalTrafficPolicy")
            .or_insert_with(|| json!("Cluster"));
    }
    let old_ports = old
        .and_then(|o| o.pointer("/spec/ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                port.entry("targetPort").or_insert(p);
            }
            if node_ports
                && port
                    .get("nodePort")
                    .is_none_or(|n| n.as_u64().unwrap_or(0) == 0)
            {
                // Kept across updates, else allocated from the default range.
                let kept = old_ports
                    .iter()
                    .find(|o| o.get("port") == port.get("port"))
                    .and_then(|o| o.get("nodePort"))
                    .filter(|n| n.as_u64().unwrap_or(0) != 0)
                    .cloned();
                let allocated = json!(fastrand::u16(30000..=32767));
                port.insert("nodePort".to_owned(), kept.unwrap_or(allocated));
            }
        }
    }
}

/// EndpointSlice ports: name `""` and protocol TCP unless given.
fn endpoint_slice_defaults(obj: &mut Value) {
    if let Some(Value::Array(ports)) = obj.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("name").or_insert_with(|| json!(""));
            port.entry("protocol").or_insert_with(|| json!("TCP"));
        }
    }
}

/// One replica unless given; a Deployment rolls out 25% at a time.
fn workload_defaults(rt: &ResourceType, obj: &mut Value) {
    let Some(Value::Object(spec)) = obj.get_mut("spec") else {
        return;
    };
    spec.entry("replicas").or_insert_with(|| json!(1));
    spec.entry("revisionHistoryLimit")
        .or_insert_with(|| json!(10));
    if rt.kind == "Deployment" {
        spec.entry("progressDeadlineSeconds")
            .or_insert_with(|| json!(600));
        spec.entry("strategy").or_insert_with(|| {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        });
    }
}

/// Standard base64 with padding, for Secret `stringData`.
pub(crate) fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::prepare_create;
    use crate::resources::{Res, builtin};

    fn rt(name: &str) -> Res {
        match builtin(name) {
            Some(r) => r,
            None => panic!("{name} is served"),
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn kind_defaults() {
        let svc = prepare_create(
            &rt("svc"),
            "default",
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
            true,
        )
        .unwrap_or_default();
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert!(svc["spec"]["ports"][0].get("nodePort").is_none());
        let node_port = prepare_create(
            &rt("svc"),
            "default",
            json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}}),
            true,
        )
        .unwrap_or_default();
        let allocated = node_port["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .unwrap_or(0);
        assert!((30000..=32767).contains(&allocated), "{allocated}");
        assert_eq!(node_port["spec"]["ports"][1]["nodePort"], 30443);
        assert_eq!(node_port["spec"]["externalTrafficPolicy"], "Cluster");
        assert!(
            svc["spec"]["clusterIP"]
                .as_str()
                .is_some_and(|s| s.starts_with("10.96."))
        );
        let sec = prepare_create(
            &rt("secret"),
            "default",
            json!({"metadata": {"name": "s"}, "stringData": {"k": "foo"}}),
            true,
        )
        .unwrap_or_default();
        assert_eq!(sec["data"]["k"], "Zm9v");
        assert_eq!(sec["type"], "Opaque");
        assert!(sec.get("stringData").is_none());
        let ns = prepare_create(&rt("ns"), "", json!({"metadata": {"name": "prod"}}), true)
            .unwrap_or_default();
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "prod"
        );
        assert_eq!(ns["status"]["phase"], "Active");
        let slice = prepare_create(
            &rt("endpointslice"),
            "default",
            json!({"metadata": {"name": "s"}, "addressType": "IPv4", "ports": [{"port": 80}]}),
            true,
        )
        .unwrap_or_default();
        assert_eq!(
            slice["ports"],
            json!([{"name": "", "port": 80, "protocol": "TCP"}])
        );
        let deploy = prepare_create(
            &rt("deploy"),
            "default",
            json!({"metadata": {"name": "d"}, "spec": {}}),
            true,
        )
        .unwrap_or_default();
        assert_eq!(deploy["spec"]["replicas"], 1);
        assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
        assert!(ns["metadata"].get("namespace").is_none());
    }
}
