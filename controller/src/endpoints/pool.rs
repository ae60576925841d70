//! An InferencePool's backend: its key and its endpoints.
//!
//! A pool's backend key is the pool's namespace and name with the port key
//! [`POOL_PORT_KEY`]; [`super::resolve_key`] hands such keys to
//! [`resolve`], which reads the pool and its Pods from the snapshot, so a
//! Pod change updates the endpoints without a recompile (the snapshot
//! reports the pools selecting it as changed "services").

use std::net::{IpAddr, SocketAddr};

use gateway::{BackendKey, EndpointUpdate};

use super::Resolved;
use crate::diagnostics::Reason;
use crate::gateway_api_types::inference::{InferencePool, MAX_SELECTOR_LABELS, Pod};
use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// The port key of an InferencePool backend (a Service port key is a
/// number or a name, never this).
pub const POOL_PORT_KEY: &str = "inferencepool";
/// The most target ports (v1 allows one; later versions may allow more).
const MAX_TARGET_PORTS: usize = 8;

/// The backend key of a pool.
pub fn key(pool: &NsName) -> BackendKey {
    BackendKey {
        namespace: pool.namespace.as_str().into(),
        service: pool.name.as_str().into(),
        port: POOL_PORT_KEY.into(),
        cluster_ip: false,
    }
}

/// The pool's target ports, or why it cannot be served.
pub fn target_ports(pool: &InferencePool) -> Result<Vec<u16>, String> {
    let labels = &pool.spec.selector.match_labels;
    if labels.is_empty() {
        return Err(
            "spec.selector.matchLabels is empty (it would select every Pod of the namespace)"
                .to_owned(),
        );
    }
    if labels.len() > MAX_SELECTOR_LABELS {
        return Err(format!(
            "spec.selector.matchLabels has {} pairs (at most {MAX_SELECTOR_LABELS})",
            labels.len()
        ));
    }
    let ports = &pool.spec.target_ports;
    if ports.is_empty() {
        return Err("spec.targetPorts names no port".to_owned());
    }
    if ports.len() > MAX_TARGET_PORTS {
        return Err(format!(
            "spec.targetPorts has {} ports (at most {MAX_TARGET_PORTS})",
            ports.len()
        ));
    }
    let mut numbers = Vec::with_capacity(ports.len());
    for port in ports {
        let number = u16::try_from(port.number)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("spec.targetPorts: {} is not a port", port.number))?;
        if !numbers.contains(&number) {
            numbers.push(number);
        }
    }
    Ok(numbers)
}

/// Whether a Pod takes requests: not being deleted, `Ready` true, with an
/// address; its first address (as for an EndpointSlice endpoint).
fn ready_ip(pod: &Pod) -> Option<IpAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let first = status
        .pod_ips
        .first()
        .map(|p| p.ip.as_str())
        .or(status.pod_ip.as_deref())?;
    first.parse().ok()
}

/// The ready endpoints of a pool: each ready Pod it selects, on each
/// target port.
pub fn resolve(snapshot: &Snapshot, id: &NsName) -> Resolved {
    let problem = |message: String| Resolved {
        update: EndpointUpdate::default(),
        problem: Some((Reason::ServiceNotFound, message)),
        external: None,
    };
    let Some(pool) = snapshot.inference_pool(id) else {
        return problem(format!("InferencePool {id} not found"));
    };
    let ports = match target_ports(pool) {
        Ok(ports) => ports,
        Err(message) => return problem(format!("InferencePool {id}: {message}")),
    };
    let mut addrs: Vec<SocketAddr> = snapshot
        .pods_in(&id.namespace)
        .filter(|pod| pool.selects(pod))
        .filter_map(ready_ip)
        .flat_map(|ip| ports.iter().map(move |port| SocketAddr::new(ip, *port)))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    Resolved {
        update: EndpointUpdate {
            addrs,
            service_found: true,
        },
        problem: None,
        external: None,
    }
}
