//! An InferencePool as an HTTPRoute backend: the picker its backend gets
//! from its annotations. Its backend key, whether its spec can be served and
//! its ready endpoints are resolved with every other backend's, in
//! `endpoints::pool`.

use std::collections::BTreeMap;

use gateway::balance::{BackendPolicy, RouteSignals};
use gateway::settings::ProxySettings;

use crate::annotations::traffic::{self, EDGE_PREFIX};

use super::types::InferencePool;

/// Route settings that an InferencePool's annotations cannot carry: they
/// belong to the HTTPRoute rule (`timeouts`) or to Ingresses only.
const ROUTE_ONLY_KEYS: [&str; 4] = [
    "proxy-first-byte-timeout",
    "stream-idle-timeout",
    "request-deadline",
    "model-from-body",
];

/// The picker a pool's backend gets: the ConfigMap defaults with the
/// pool's `edge-gateway.io/` annotations applied (the same keys as on an
/// Ingress: `load-balance`, `endpoint-metrics*`, `prefix-affinity*`,
/// `saturation-*`, `max-inflight-per-endpoint`, queue and hold keys), and
/// what its routes must do for it (read the body for prefix or LoRA
/// affinity; `criticality`, `criticality-header`). Bad or misplaced
/// values are returned as messages (the default applies).
pub struct PoolPicker {
    /// The backend's policy.
    pub policy: BackendPolicy,
    /// The signals the routes to the pool need.
    pub signals: RouteSignals,
    /// What was refused, for a diagnostic.
    pub problems: Vec<String>,
}

/// Reads a pool's picker annotations over `defaults`.
pub fn picker(pool: &InferencePool, defaults: &BackendPolicy) -> PoolPicker {
    let empty = BTreeMap::new();
    let annotations = pool.metadata.annotations.as_ref().unwrap_or(&empty);
    let mut problems = Vec::new();
    let mut read: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in annotations {
        let Some(name) = key.strip_prefix(EDGE_PREFIX) else {
            continue;
        };
        if ROUTE_ONLY_KEYS.contains(&name) {
            problems.push(format!(
                "{key} is not read on an InferencePool (set the HTTPRoute rule's timeouts)"
            ));
            continue;
        }
        read.insert(key.clone(), value.clone());
    }
    let mut proxy = ProxySettings::default();
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    let parsed = traffic::parse(&read, &mut proxy, &mut errors, &mut unknown);
    problems.extend(errors.into_iter().map(|e| {
        format!(
            "{} {:?}: {} (the default applies)",
            e.key, e.value, e.message
        )
    }));
    problems.extend(
        unknown
            .into_iter()
            .map(|k| format!("{k} is not a known key")),
    );
    PoolPicker {
        policy: parsed.apply(defaults),
        signals: proxy.signals,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::pool::{resolve, target_ports};
    use crate::objects::{NsName, Object};
    use crate::snapshot::Snapshot;
    use serde_json::{Value, json};

    fn object(value: Value) -> Object {
        Object::from_value(value).unwrap().unwrap()
    }

    fn pool(labels: Value, ports: Value) -> Value {
        json!({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
               "metadata": {"name": "p", "namespace": "ns"},
               "spec": {"selector": {"matchLabels": labels}, "targetPorts": ports,
                        "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}})
    }

    fn pod(name: &str, labels: Value, ip: &str, ready: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "ns", "labels": labels,
                            "annotations": {"big": "x".repeat(1000)}},
               "spec": {"containers": [{"name": "c", "image": "i"}]},
               "status": {"podIP": ip, "podIPs": [{"ip": ip}],
                          "conditions": [{"type": "Ready", "status": ready}],
                          "containerStatuses": [{"name": "c"}]}})
    }

    fn typed_pool(value: Value) -> InferencePool {
        match object(value) {
            Object::InferencePool(p) => (*p).clone(),
            _ => unreachable!(),
        }
    }

    fn addrs(s: &Snapshot) -> Vec<String> {
        resolve(s, &NsName::new("ns", "p"))
            .update
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pods_are_kept_slim() {
        let Object::Pod(p) = object(pod("a", json!({"app": "m"}), "10.0.0.1", "True")) else {
            unreachable!()
        };
        assert!(p.metadata.annotations.is_none());
        assert_eq!(p.metadata.labels.as_ref().unwrap()["app"], "m");
        assert_eq!(p.status.as_ref().unwrap().conditions.len(), 1);
    }

    #[test]
    fn ready_selected_pods_on_each_target_port() {
        let mut s = Snapshot::default();
        s.apply(object(pool(json!({"app": "m"}), json!([{"number": 8000}]))));
        s.apply(object(pod(
            "a",
            json!({"app": "m", "x": "y"}),
            "10.0.0.2",
            "True",
        )));
        s.apply(object(pod("b", json!({"app": "m"}), "10.0.0.1", "True")));
        s.apply(object(pod("c", json!({"app": "m"}), "10.0.0.3", "False")));
        s.apply(object(pod(
            "d",
            json!({"app": "other"}),
            "10.0.0.4",
            "True",
        )));
        let mut deleting = pod("e", json!({"app": "m"}), "10.0.0.5", "True");
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        s.apply(object(deleting));
        let mut no_ip = pod("f", json!({"app": "m"}), "", "True");
        no_ip["status"]["podIPs"] = json!([]);
        s.apply(object(no_ip));
        let mut elsewhere = pod("g", json!({"app": "m"}), "10.0.0.7", "True");
        elsewhere["metadata"]["namespace"] = json!("other");
        s.apply(object(elsewhere));
        assert_eq!(addrs(&s), ["10.0.0.1:8000", "10.0.0.2:8000"]);

        // A pod turning unready is an endpoint change of the pool only.
        let changed = s.apply(object(pod("a", json!({"app": "m"}), "10.0.0.2", "False")));
        assert_eq!(
            changed,
            crate::snapshot::Changed::Endpoints(vec![NsName::new("ns", "p")])
        );
        assert_eq!(addrs(&s), ["10.0.0.1:8000"]);
        let gone = s.delete(&object(pod("b", json!({}), "", "")).key());
        assert_eq!(
            gone,
            crate::snapshot::Changed::Endpoints(vec![NsName::new("ns", "p")])
        );
        assert!(addrs(&s).is_empty());
        // A pod no pool selects changes nothing routed.
        assert_eq!(
            s.apply(object(pod(
                "d",
                json!({"app": "other"}),
                "10.0.0.9",
                "True"
            ))),
            crate::snapshot::Changed::Endpoints(vec![])
        );
    }

    #[test]
    fn hostile_pools_are_refused_with_a_reason() {
        let reason = |v: Value| target_ports(&typed_pool(v)).unwrap_err();
        assert!(reason(pool(json!({}), json!([{"number": 80}]))).contains("empty"));
        let many: serde_json::Map<String, Value> =
            (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(reason(pool(Value::Object(many), json!([{"number": 80}]))).contains("65 pairs"));
        assert!(reason(pool(json!({"a": "b"}), json!([]))).contains("no port"));
        assert!(reason(pool(json!({"a": "b"}), json!([{"number": 0}]))).contains("not a port"));
        assert!(reason(pool(json!({"a": "b"}), json!([{"number": 70000}]))).contains("not a port"));
        assert!(reason(pool(json!({"a": "b"}), json!([{}]))).contains("not a port"));
        let ports: Vec<Value> = (1..=9).map(|n| json!({"number": n})).collect();
        assert!(reason(pool(json!({"a": "b"}), json!(ports))).contains("at most 8"));
        // Missing spec fields parse (and are refused), wrong types do not.
        let bare = json!({"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                          "metadata": {"name": "p", "namespace": "ns"}});
        assert!(target_ports(&typed_pool(bare)).is_err());
        let wrong = pool(json!({"a": 5}), json!([{"number": 80}]));
        assert!(Object::from_value(wrong).is_err());
        // Two ports: each pod on both; a duplicate port counted once.
        let two = typed_pool(pool(
            json!({"a": "b"}),
            json!([{"number": 8000}, {"number": 8001}, {"number": 8000}]),
        ));
        assert_eq!(target_ports(&two).unwrap(), [8000, 8001]);
    }

    #[test]
    fn an_empty_selector_selects_no_pod() {
        let empty = typed_pool(pool(json!({}), json!([{"number": 80}])));
        let Object::Pod(p) = object(pod("a", json!({"app": "m"}), "10.0.0.1", "True")) else {
            unreachable!()
        };
        assert!(!empty.selects(&p));
    }

    #[test]
    fn pods_beyond_the_namespace_cap_are_not_kept() {
        let mut s = Snapshot::default();
        s.apply(object(pool(json!({"app": "m"}), json!([{"number": 8000}]))));
        for i in 0..crate::snapshot::MAX_PODS_PER_NAMESPACE {
            let ip = format!("10.{}.{}.1", i / 256, i % 256);
            s.apply(object(pod(
                &format!("p{i}"),
                json!({"app": "m"}),
                &ip,
                "True",
            )));
        }
        let over = s.apply(object(pod(
            "last",
            json!({"app": "m"}),
            "10.99.0.1",
            "True",
        )));
        assert_eq!(
            over,
            crate::snapshot::Changed::Routes,
            "a diagnostic is due"
        );
        assert_eq!(s.pods_over_cap().count(), 1);
        assert_eq!(addrs(&s).len(), crate::snapshot::MAX_PODS_PER_NAMESPACE);
        // Another namespace keeps its room.
        let mut other = pod("o", json!({"app": "m"}), "10.0.0.1", "True");
        other["metadata"]["namespace"] = json!("b");
        assert_ne!(s.apply(object(other)), crate::snapshot::Changed::Routes);
        // The refused one going away clears the condition.
        let gone = s.delete(&object(pod("last", json!({}), "", "")).key());
        assert_eq!(gone, crate::snapshot::Changed::Routes);
        assert_eq!(s.pods_over_cap().count(), 0);
    }

    #[test]
    fn picker_annotations_apply_over_the_defaults() {
        let mut value = pool(json!({"app": "m"}), json!([{"number": 8000}]));
        value["metadata"]["annotations"] = json!({
            "edge-gateway.io/load-balance": "least_request",
            "edge-gateway.io/prefix-affinity": "on",
            "edge-gateway.io/endpoint-metrics": "nonsense",
            "edge-gateway.io/request-deadline": "5s",
            "edge-gateway.io/bogus": "1",
            "other.io/x": "y",
        });
        let picked = picker(&typed_pool(value), &BackendPolicy::default());
        assert_eq!(
            picked.policy.algorithm,
            gateway::balance::Algorithm::LeastRequest
        );
        assert!(picked.policy.endpoint_metrics.is_none());
        assert!(
            picked.signals.body_peek.is_some(),
            "prefix affinity reads the body"
        );
        assert_eq!(picked.problems.len(), 3, "{:?}", picked.problems);
        let plain = picker(
            &typed_pool(pool(json!({"app": "m"}), json!([{"number": 8000}]))),
            &BackendPolicy::default(),
        );
        assert_eq!(plain.policy, BackendPolicy::default());
        assert!(plain.problems.is_empty());
    }
}
