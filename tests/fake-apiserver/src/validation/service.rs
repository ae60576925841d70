//! core/v1 Service validation (the parts of `ValidateService` tests meet:
//! type, ports, protocols, target ports, node ports, selector, session
//! affinity, ExternalName), with kube-apiserver's messages.

use serde_json::{Value, json};

use super::field::{FieldError, Path};
use super::meta::validate_label_map;
use super::{items, names, text};

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];

/// The node port range of a default kube-apiserver.
pub(crate) const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// A Service (defaults applied).
pub(crate) fn validate_service(obj: &Value) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let kind = text(spec, "/type");
    if !TYPES.contains(&kind) {
        errs.push(FieldError::not_supported(
            &path.child("type"),
            json!(kind),
            TYPES,
        ));
    }
    let headless = text(spec, "/clusterIP") == "None";
    let ports = items(spec, "/ports");
    if kind == "ExternalName" {
        let name = text(spec, "/externalName");
        if name.is_empty() {
            errs.push(FieldError::required(&path.child("externalName"), ""));
        } else {
            for msg in names::dns1123_subdomain(name.trim_end_matches('.')) {
                errs.push(FieldError::invalid(
                    &path.child("externalName"),
                    json!(name),
                    msg,
                ));
            }
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    let mut seen_names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let ppath = path.child("ports").index(i);
        let name = text(port, "/name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(&ppath.child("name"), ""));
        } else if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(&ppath.child("name"), json!(name), msg));
            }
            if seen_names.contains(&name) {
                errs.push(FieldError::duplicate(&ppath.child("name"), json!(name)));
            } else {
                seen_names.push(name);
            }
        }
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        for msg in names::port_num(number) {
            errs.push(FieldError::invalid(
                &ppath.child("port"),
                json!(number),
                msg,
            ));
        }
        let protocol = text(port, "/protocol");
        if protocol.is_empty() {
            errs.push(FieldError::required(&ppath.child("protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(
                &ppath.child("protocol"),
                json!(protocol),
                PROTOCOLS,
            ));
        }
        match port.get("targetPort") {
            Some(Value::Number(n)) => {
                let n = n.as_i64().unwrap_or(0);
                for msg in names::port_num(n) {
                    errs.push(FieldError::invalid(
                        &ppath.child("targetPort"),
                        json!(n),
                        msg,
                    ));
                }
            }
            Some(Value::String(s)) => {
                for msg in names::port_name(s) {
                    errs.push(FieldError::invalid(
                        &ppath.child("targetPort"),
                        json!(s),
                        msg,
                    ));
                }
            }
            _ => {}
        }
        if let Some(node_port) = port
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if kind == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    &ppath.child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if !NODE_PORTS.contains(&node_port) {
                errs.push(FieldError::invalid(
                    &ppath.child("nodePort"),
                    json!(node_port),
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ),
                ));
            }
        }
    }
    if kind != "ExternalName" {
        errs.extend(validate_label_map(
            spec.get("selector"),
            &path.child("selector"),
        ));
    }
    let affinity = text(spec, "/sessionAffinity");
    if !affinity.is_empty() && !AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            &path.child("sessionAffinity"),
            json!(affinity),
            AFFINITIES,
        ));
    }
    let policy = text(spec, "/externalTrafficPolicy");
    if !policy.is_empty() {
        if matches!(kind, "ClusterIP" | "ExternalName") {
            errs.push(FieldError::invalid(
                &path.child("externalTrafficPolicy"),
                json!(policy),
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !TRAFFIC_POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("externalTrafficPolicy"),
                json!(policy),
                TRAFFIC_POLICIES,
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(obj: &Value) -> Vec<String> {
        validate_service(obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn services_as_the_real_server_refuses_them() {
        let no_ports = json!({"spec": {"type": "ClusterIP", "selector": {"app": "a"}}});
        assert_eq!(messages(&no_ports), ["spec.ports: Required value"]);
        let bad_port = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 0, "protocol": "TCP", "targetPort": 0}]}});
        assert_eq!(
            messages(&bad_port),
            [
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"
            ]
        );
        let big = json!({"spec": {"type": "NodePort", "ports": [{"port": 70000, "protocol": "TCP", "targetPort": 80, "nodePort": 80}]}});
        assert_eq!(
            messages(&big),
            [
                "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
            ]
        );
        let two = json!({"spec": {"type": "ClusterIP", "ports": [
            {"port": 80, "protocol": "TCP", "targetPort": "http"},
            {"port": 443, "protocol": "HTTP", "targetPort": 8443}]}});
        assert_eq!(
            messages(&two),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[1].name: Required value",
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
            ]
        );
        let headless = json!({"spec": {"type": "ClusterIP", "clusterIP": "None"}});
        assert!(messages(&headless).is_empty());
        let external = json!({"spec": {"type": "ExternalName"}});
        assert_eq!(messages(&external), ["spec.externalName: Required value"]);
    }
}
