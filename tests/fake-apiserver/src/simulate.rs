//! Simulated controllers, on when the server's `pod_ip` option is set
//! (`--pod-ip` of the binary). Nothing runs containers here; instead the
//! fake plays what a cluster's controllers and kubelets would write, so
//! that `helm install --wait` finishes and Services get endpoints:
//!
//! - Deployments, ReplicaSets, StatefulSets, DaemonSets (one node) and Jobs
//!   get their pods at once (owned by the workload directly: no
//!   intermediate ReplicaSet), Running and Ready at `pod_ip` (every
//!   simulated pod has that one address), and a status saying all replicas
//!   are ready and updated (Jobs: succeeded, `Complete`). A changed pod
//!   template replaces the pods at once.
//! - A Pod created through the API without an address is started the same
//!   way.
//! - Every Service with a selector gets one EndpointSlice (managed by
//!   `endpointslice-controller.k8s.io`, owned by the Service) listing the
//!   ready pods it selects, ports resolved from the pods' container ports.
//!
//! What answers at `pod_ip` is whatever the user runs there (the README
//! walkthrough starts the demo model).

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::objects::{meta_str, new_uid, now_rfc3339};
use crate::selectors::label_selector_matches;
use crate::state::Shared;
use crate::store::{Key, Store};

const PODS: &str = "/pods";
const SERVICES: &str = "/services";
const SLICES: &str = "discovery.k8s.io/endpointslices";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// The node simulated pods run on.
const NODE: &str = "fake-node";

/// The workload kinds, by store key: (kind, apiVersion).
fn workload(res: &str) -> Option<(&'static str, &'static str)> {
    match res {
        "apps/deployments" => Some(("Deployment", "apps/v1")),
        "apps/replicasets" => Some(("ReplicaSet", "apps/v1")),
        "apps/statefulsets" => Some(("StatefulSet", "apps/v1")),
        "apps/daemonsets" => Some(("DaemonSet", "apps/v1")),
        "batch/jobs" => Some(("Job", "batch/v1")),
        _ => None,
    }
}

fn key(res: &str, ns: &str, name: &str) -> Key {
    Key {
        res: Arc::from(res),
        ns: ns.to_owned(),
        name: name.to_owned(),
    }
}

/// A short stable hash (FNV-1a, in the alphabet Kubernetes uses for names).
fn short_hash(text: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize];
            h /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// After a write: workloads get pods and a status, pods start, services
/// get endpoints.
pub(crate) fn written(shared: &Shared, store: &mut Store, k: &Key, obj: &Value) {
    let Some(ip) = shared.options.pod_ip else {
        return;
    };
    if let Some((kind, api_version)) = workload(&k.res) {
        reconcile_workload(store, k, obj, kind, api_version, ip);
    } else if &*k.res == PODS && obj.pointer("/status/podIP").is_none() {
        let mut started = obj.clone();
        if let Value::Object(m) = &mut started {
            m.insert("status".to_owned(), pod_status(obj, ip, false));
        }
        store.put(k.clone(), started);
    } else if &*k.res != SERVICES {
        return;
    }
    sync_endpoints(store, &k.ns);
}

/// After a removal: services lose endpoints.
pub(crate) fn removed(shared: &Shared, store: &mut Store, k: &Key, _gone: &Value) {
    if shared.options.pod_ip.is_some() && (&*k.res == PODS || &*k.res == SERVICES) {
        sync_endpoints(store, &k.ns);
    }
}

/// The status of a started pod.
fn pod_status(pod: &Value, ip: IpAddr, completed: bool) -> Value {
    let now = now_rfc3339();
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let state = if completed {
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
            } else {
                json!({"running": {"startedAt": now}})
            };
            json!({"name": c.get("name"), "image": c.get("image"), "imageID": "",
                "ready": !completed, "started": !completed, "restartCount": 0, "state": state})
        })
        .collect();
    let ready = if completed { "False" } else { "True" };
    let condition = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    json!({
        "phase": if completed { "Succeeded" } else { "Running" },
        "conditions": [
            condition("PodScheduled", "True"), condition("Initialized", "True"),
            condition("ContainersReady", ready), condition("Ready", ready),
        ],
        "hostIP": "127.0.0.1",
        "podIP": ip.to_string(),
        "podIPs": [{"ip": ip.to_string()}],
        "startTime": now,
        "qosClass": "Burstable",
        "containerStatuses": containers,
    })
}

/// How many pods a workload wants, and their names' stems.
fn desired(kind: &str, obj: &Value) -> usize {
    match kind {
        "DaemonSet" | "Job" => 1,
        _ => obj
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .map_or(1, |n| n.min(100) as usize),
    }
}

/// Creates, keeps or replaces a workload's pods; writes its status.
fn reconcile_workload(
    store: &mut Store,
    k: &Key,
    obj: &Value,
    kind: &str,
    api_version: &str,
    ip: IpAddr,
) {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let uid = meta_str(obj, "uid").to_owned();
    let template = obj
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hash = short_hash(&template.to_string(), 10);
    let want = desired(kind, obj);
    let pods: Arc<str> = Arc::from(PODS);
    let owned: Vec<(Key, Value)> = store
        .range(&pods, Some(&k.ns), None)
        .filter(|(_, p)| {
            p.pointer("/metadata/ownerReferences/0/uid")
                .and_then(Value::as_str)
                == Some(uid.as_str())
        })
        .map(|(pk, p)| (pk.clone(), (**p).clone()))
        .collect();
    let mut kept = 0;
    for (pk, pod) in owned {
        let current = pod
            .pointer("/metadata/annotations/fake-apiserver~1template-hash")
            .and_then(Value::as_str);
        if current == Some(hash.as_str()) && kept < want {
            kept += 1;
        } else {
            store.remove(&pk);
        }
    }
    let completed = kind == "Job";
    for i in kept..want {
        let name = match kind {
            "StatefulSet" => format!("{}-{i}", k.name),
            "Deployment" => format!("{}-{}-{}", k.name, &hash[..10], short_hash(&new_uid(), 5)),
            _ => format!("{}-{}", k.name, short_hash(&new_uid(), 5)),
        };
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        if kind == "Deployment"
            && let Value::Object(l) = &mut labels
        {
            l.insert("pod-template-hash".to_owned(), json!(hash));
        }
        let mut annotations: Map<String, Value> = template
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        annotations.insert("fake-apiserver/template-hash".to_owned(), json!(hash));
        let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
        if let Value::Object(s) = &mut spec {
            s.insert("nodeName".to_owned(), json!(NODE));
        }
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": k.ns, "uid": new_uid(),
                "creationTimestamp": now_rfc3339(), "generation": 1,
                "labels": labels, "annotations": annotations,
                "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": k.name,
                    "uid": uid, "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": spec,
        });
        let status = pod_status(&pod, ip, completed);
        if let Value::Object(m) = &mut pod {
            m.insert("status".to_owned(), status);
        }
        store.put(key(PODS, &k.ns, &name), pod);
    }
    let status = workload_status(kind, obj, want);
    if obj.get("status") != Some(&status) {
        let mut updated = obj.clone();
        if let Value::Object(m) = &mut updated {
            m.insert("status".to_owned(), status);
        }
        store.put(k.clone(), updated);
    }
}

/// The status of a workload whose pods are all ready.
fn workload_status(kind: &str, obj: &Value, n: usize) -> Value {
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let at = obj
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or_else(|| json!(now_rfc3339()));
    let condition = |t: &str, reason: &str, message: &str| {
        json!({"type": t, "status": "True", "lastUpdateTime": at, "lastTransitionTime": at,
            "reason": reason, "message": message})
    };
    match kind {
        "Deployment" => json!({
            "observedGeneration": generation, "replicas": n, "updatedReplicas": n,
            "readyReplicas": n, "availableReplicas": n,
            "conditions": [
                condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "NewReplicaSetAvailable", "ReplicaSet has successfully progressed."),
            ],
        }),
        "StatefulSet" => json!({
            "observedGeneration": generation, "replicas": n, "readyReplicas": n,
            "currentReplicas": n, "updatedReplicas": n, "availableReplicas": n,
            "currentRevision": format!("{}-sim", meta_str(obj, "name")),
            "updateRevision": format!("{}-sim", meta_str(obj, "name")), "collisionCount": 0,
        }),
        "DaemonSet" => json!({
            "observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
            "numberAvailable": 1, "numberReady": 1, "numberMisscheduled": 0, "updatedNumberScheduled": 1,
        }),
        "Job" => json!({
            "startTime": at, "completionTime": at, "succeeded": 1, "active": 0, "ready": 0,
            "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": at, "lastTransitionTime": at,
                 "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                {"type": "Complete", "status": "True", "lastProbeTime": at, "lastTransitionTime": at,
                 "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
            ],
        }),
        _ => json!({
            "observedGeneration": generation, "replicas": n, "readyReplicas": n,
            "availableReplicas": n, "fullyLabeledReplicas": n,
        }),
    }
}

/// The port a Service port reaches on a pod: a number, or the container
/// port of that name.
fn target_port(port: &Value, pod: &Value) -> Option<u64> {
    match port.get("targetPort").or_else(|| port.get("port")) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(name)) => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort").and_then(Value::as_u64)),
        _ => None,
    }
}

/// The EndpointSlice controller for one namespace.
fn sync_endpoints(store: &mut Store, ns: &str) {
    let services: Vec<Value> = store
        .range(&Arc::from(SERVICES), Some(ns), None)
        .map(|(_, s)| (**s).clone())
        .collect();
    let pods: Vec<Value> = store
        .range(&Arc::from(PODS), Some(ns), None)
        .filter(|(_, p)| {
            p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
                && p.pointer("/metadata/deletionTimestamp").is_none()
        })
        .map(|(_, p)| (**p).clone())
        .collect();
    for svc in services {
        let selector = svc
            .pointer("/spec/selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
        let Some(selector) = selector else {
            continue;
        };
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                let labels = p
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                label_selector_matches(&json!({"matchLabels": selector}), &labels)
            })
            .collect();
        let name = meta_str(&svc, "name");
        let svc_ports: Vec<Value> = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ports: Vec<Value> = svc_ports
            .iter()
            .filter_map(|p| {
                let number = selected.iter().find_map(|pod| target_port(p, pod))?;
                Some(json!({"name": p.get("name").and_then(Value::as_str).unwrap_or(""),
                    "port": number, "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")}))
            })
            .collect();
        let endpoints: Vec<Value> = selected
            .iter()
            .map(|p| {
                json!({"addresses": [p.pointer("/status/podIP")],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "nodeName": NODE,
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": meta_str(p, "name"), "uid": meta_str(p, "uid")}})
            })
            .collect();
        let family = selected
            .first()
            .and_then(|p| p.pointer("/status/podIP"))
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .map_or("IPv4", |ip| if ip.is_ipv4() { "IPv4" } else { "IPv6" });
        let slice_name = format!("{name}-{}", short_hash(name, 5));
        let sk = key(SLICES, ns, &slice_name);
        let existing = store.get(&sk).cloned();
        let mut slice = existing.as_deref().cloned().unwrap_or_else(|| {
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": slice_name, "namespace": ns, "uid": new_uid(),
                    "creationTimestamp": now_rfc3339(), "generation": 1,
                    "labels": {"kubernetes.io/service-name": name, MANAGED_BY: CONTROLLER},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                        "uid": meta_str(&svc, "uid"), "controller": true, "blockOwnerDeletion": true}]}})
        });
        let before = slice.clone();
        if let Value::Object(m) = &mut slice {
            m.insert("addressType".to_owned(), json!(family));
            m.insert("ports".to_owned(), json!(ports));
            m.insert("endpoints".to_owned(), json!(endpoints));
        }
        if existing.is_none() || before != slice {
            store.put(sk, slice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_name_safe() {
        let a = short_hash("template", 10);
        assert_eq!(a, short_hash("template", 10));
        assert_ne!(a, short_hash("other", 10));
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(short_hash("x", 5).len(), 5);
    }

    #[test]
    fn named_target_ports_resolve_to_container_ports() {
        let pod = json!({"spec": {"containers": [{"name": "m", "ports": [{"name": "http", "containerPort": 8080}]}]}});
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": "http"}), &pod),
            Some(8080)
        );
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": 9000}), &pod),
            Some(9000)
        );
        assert_eq!(
            target_port(&json!({"port": 80, "targetPort": "grpc"}), &pod),
            None
        );
    }
}
