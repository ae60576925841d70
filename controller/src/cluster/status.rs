//! The Ingress status writer: the leader sets `status.loadBalancer.ingress`
//! of every Ingress it serves to the gateway's public addresses, and clears
//! it from Ingresses it stopped serving. Rules as ingress-nginx
//! (`internal/ingress/status/status.go`).
//!
//! Where the addresses come from, first match wins:
//! 1. `--publish-status-address` (IPs or host names);
//! 2. `--publish-service ns/name`, by Service type: LoadBalancer → its
//!    load-balancer ingress plus externalIPs; NodePort → externalIPs if set,
//!    else the ClusterIP; ClusterIP → the ClusterIP; ExternalName → its name;
//! 3. otherwise the node this pod runs on: ExternalIP, else InternalIP.
//!
//! Every API call runs under a timeout; a failure is logged and retried at
//! the next sync (on every change, and every `--status-update-interval`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;

use super::{ClusterError, PodIdentity};
use crate::objects::NsName;
use crate::reconcile::Report;

/// Where the published addresses come from, and when status is written.
#[derive(Clone, Debug, Default)]
pub struct StatusOptions {
    /// `--publish-status-address`.
    pub publish_status_address: Vec<String>,
    /// `--publish-service`.
    pub publish_service: Option<NsName>,
    /// `--status-update-interval`.
    pub interval: Duration,
    /// `--update-status-on-shutdown`.
    pub update_on_shutdown: bool,
    /// How long one API call may take (`--api-call-timeout`).
    pub call_timeout: Duration,
    /// `--report-node-internal-ip-address`: a node's InternalIP rather than
    /// its ExternalIP.
    pub node_internal_ip: bool,
}

/// Writes status while this replica leads, until `stop`.
pub(crate) async fn run(
    client: Client,
    options: StatusOptions,
    pod: Option<PodIdentity>,
    mut leading: watch::Receiver<bool>,
    mut reports: watch::Receiver<Arc<Report>>,
    mut stop: watch::Receiver<bool>,
) {
    let writer = Writer {
        client,
        options,
        pod,
    };
    let mut failing = false;
    loop {
        tokio::select! {
            _ = reports.changed() => {}
            _ = leading.changed() => {}
            () = tokio::time::sleep(writer.options.interval) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if !*leading.borrow() {
            continue;
        }
        let report = reports.borrow().clone();
        match writer.sync(&report).await {
            Ok(()) if failing => {
                tracing::info!("ingress status writes work again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "ingress status not written; retrying at the next sync");
                }
                failing = true;
            }
        }
    }
    if writer.options.update_on_shutdown && *leading.borrow() {
        let report = reports.borrow().clone();
        if let Err(error) = writer.clear_on_shutdown(&report).await {
            tracing::warn!(%error, "ingress status not cleared on shutdown");
        }
    }
}

struct Writer {
    client: Client,
    options: StatusOptions,
    pod: Option<PodIdentity>,
}

/// The addresses Ingress status publishes, for the Gateway status writer.
pub(crate) async fn published_addresses(
    client: &Client,
    options: &StatusOptions,
    pod: Option<&PodIdentity>,
) -> Result<Vec<IngressLoadBalancerIngress>, ClusterError> {
    let writer = Writer {
        client: client.clone(),
        options: options.clone(),
        pod: pod.cloned(),
    };
    writer.addresses().await
}

impl Writer {
    /// Brings every Ingress's status in line with what it should be.
    async fn sync(&self, report: &Report) -> Result<(), ClusterError> {
        let addresses = self.addresses().await?;
        for (id, state) in &report.ingresses {
            let desired: &[IngressLoadBalancerIngress] = if state.served {
                &addresses
            } else if !addresses.is_empty() && sorted(state.status.clone()) == addresses {
                // Ours from before (class changed, Ingress no longer served).
                &[]
            } else {
                continue;
            };
            if sorted(state.status.clone()) != desired {
                self.patch(id, desired).await?;
            }
        }
        Ok(())
    }

    /// Clears the status of served Ingresses when the last replica stops,
    /// as ingress-nginx's `--update-status-on-shutdown` does.
    async fn clear_on_shutdown(&self, report: &Report) -> Result<(), ClusterError> {
        if self.other_replicas_running().await? {
            tracing::info!("other replicas keep running; ingress status left in place");
            return Ok(());
        }
        for (id, state) in &report.ingresses {
            if state.served && !state.status.is_empty() {
                self.patch(id, &[]).await?;
            }
        }
        Ok(())
    }

    async fn patch(
        &self,
        id: &NsName,
        addresses: &[IngressLoadBalancerIngress],
    ) -> Result<(), ClusterError> {
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), &id.namespace);
        let body = json!({"status": {"loadBalancer": {"ingress": addresses}}});
        let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
        let call = api.patch_status(&id.name, &params, &patch);
        match tokio::time::timeout(self.options.call_timeout, call).await {
            Ok(Ok(_)) => {
                tracing::debug!(ingress = %id, ?addresses, "ingress status written");
                Ok(())
            }
            // Deleted meanwhile: nothing to write.
            Ok(Err(kube::Error::Api(status))) if status.is_not_found() => Ok(()),
            Ok(Err(error)) => Err(ClusterError::Api(error)),
            Err(_) => Err(ClusterError::Timeout("patching ingress status")),
        }
    }

    /// The addresses to publish, sorted.
    async fn addresses(&self) -> Result<Vec<IngressLoadBalancerIngress>, ClusterError> {
        if !self.options.publish_status_address.is_empty() {
            return Ok(sorted(
                self.options
                    .publish_status_address
                    .iter()
                    .map(|a| address(a))
                    .collect(),
            ));
        }
        if let Some(id) = &self.options.publish_service {
            let api: Api<Service> = Api::namespaced(self.client.clone(), &id.namespace);
            let service = call(
                api.get_opt(&id.name),
                self.options.call_timeout,
                "reading the publish service",
            )
            .await?;
            let Some(service) = service else {
                return Err(ClusterError::NotFound(format!("publish service {id}")));
            };
            return Ok(sorted(service_addresses(&service)));
        }
        let Some(pod) = &self.pod else {
            return Err(ClusterError::NoAddress);
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let node_name = call(
            pods.get_opt(&pod.name),
            self.options.call_timeout,
            "reading this pod",
        )
        .await?
        .and_then(|p| p.spec)
        .and_then(|s| s.node_name)
        .ok_or(ClusterError::NoAddress)?;
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = call(
            nodes.get_opt(&node_name),
            self.options.call_timeout,
            "reading this node",
        )
        .await?;
        Ok(node
            .as_ref()
            .map(|n| node_addresses(n, self.options.node_internal_ip))
            .unwrap_or_default())
    }

    async fn other_replicas_running(&self) -> Result<bool, ClusterError> {
        let Some(pod) = &self.pod else {
            return Ok(false);
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let Some(me) = call(
            pods.get_opt(&pod.name),
            self.options.call_timeout,
            "reading this pod",
        )
        .await?
        else {
            return Ok(false);
        };
        let labels = me.metadata.labels.unwrap_or_default();
        let selector: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() != "pod-template-hash")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if selector.is_empty() {
            return Ok(false);
        }
        let list = call(
            pods.list(&ListParams::default().labels(&selector.join(","))),
            self.options.call_timeout,
            "listing replicas",
        )
        .await?;
        Ok(list.items.iter().any(|p| {
            p.metadata.name.as_deref() != Some(pod.name.as_str())
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        }))
    }
}

/// Runs an API call under `timeout`.
async fn call<T>(
    future: impl Future<Output = Result<T, kube::Error>>,
    timeout: Duration,
    what: &'static str,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(ClusterError::Api),
        Err(_) => Err(ClusterError::Timeout(what)),
    }
}

/// An IP becomes `ip`, anything else `hostname`.
fn address(value: &str) -> IngressLoadBalancerIngress {
    let value = value.trim();
    if value.parse::<IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(value.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(value.to_owned()),
            ..IngressLoadBalancerIngress::default()
        }
    }
}

/// ingress-nginx's addresses for a published Service, by type.
fn service_addresses(service: &Service) -> Vec<IngressLoadBalancerIngress> {
    let spec = service.spec.clone().unwrap_or_default();
    let external: Vec<IngressLoadBalancerIngress> = spec
        .external_ips
        .iter()
        .flatten()
        .map(|ip| address(ip))
        .collect();
    let cluster_ip = || {
        spec.cluster_ip
            .iter()
            .filter(|ip| !ip.is_empty() && ip.as_str() != "None")
            .map(|ip| address(ip))
            .collect::<Vec<_>>()
    };
    match spec.type_.as_deref().unwrap_or("ClusterIP") {
        "LoadBalancer" => {
            let mut addresses: Vec<IngressLoadBalancerIngress> = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .map(|i| IngressLoadBalancerIngress {
                    ip: i.ip.clone(),
                    hostname: i.hostname.clone(),
                    ..IngressLoadBalancerIngress::default()
                })
                .collect();
            addresses.extend(external);
            addresses
        }
        "NodePort" if !external.is_empty() => external,
        "ExternalName" => spec.external_name.iter().map(|n| address(n)).collect(),
        _ => cluster_ip(),
    }
}

/// A node's ExternalIP, else its InternalIP; only its InternalIP with
/// `internal` (ingress-nginx's `GetNodeIPOrName`).
fn node_addresses(node: &Node, internal: bool) -> Vec<IngressLoadBalancerIngress> {
    let addresses = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.clone())
        .unwrap_or_default();
    let pick = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.type_ == kind)
            .map(|a| address(&a.address))
    };
    let external = if internal { None } else { pick("ExternalIP") };
    external
        .or_else(|| pick("InternalIP"))
        .into_iter()
        .collect()
}

fn sorted(mut addresses: Vec<IngressLoadBalancerIngress>) -> Vec<IngressLoadBalancerIngress> {
    addresses.sort_by(|a, b| (&a.ip, &a.hostname).cmp(&(&b.ip, &b.hostname)));
    addresses.dedup();
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn shown(addresses: &[IngressLoadBalancerIngress]) -> Vec<String> {
        addresses
            .iter()
            .map(|a| {
                a.ip.clone()
                    .or_else(|| a.hostname.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn addresses_by_service_type_follow_ingress_nginx() {
        let lb = service(
            json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1",
            "externalIPs": ["1.2.3.4"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}}),
        );
        assert_eq!(
            shown(&service_addresses(&lb)),
            ["5.6.7.8", "lb.example", "1.2.3.4"]
        );
        let node_port = service(json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.1"}}));
        assert_eq!(shown(&service_addresses(&node_port)), ["10.0.0.1"]);
        let node_port_external =
            service(json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.1",
            "externalIPs": ["1.2.3.4"]}}));
        assert_eq!(shown(&service_addresses(&node_port_external)), ["1.2.3.4"]);
        let cluster = service(json!({"spec": {"clusterIP": "10.0.0.2"}}));
        assert_eq!(shown(&service_addresses(&cluster)), ["10.0.0.2"]);
        let external_name =
            service(json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}));
        assert_eq!(shown(&service_addresses(&external_name)), ["x.example"]);
    }

    #[test]
    fn publish_status_address_splits_ips_and_names() {
        let a = address("10.1.1.1");
        assert_eq!(a.ip.as_deref(), Some("10.1.1.1"));
        let b = address(" ingress.example.com ");
        assert_eq!(b.hostname.as_deref(), Some("ingress.example.com"));
    }

    #[test]
    fn node_prefers_external_ip() {
        let node: Node = serde_json::from_value(json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.9"},
            {"type": "ExternalIP", "address": "34.1.2.3"}]}}))
        .unwrap();
        assert_eq!(shown(&node_addresses(&node, false)), ["34.1.2.3"]);
        assert_eq!(shown(&node_addresses(&node, true)), ["10.0.0.9"]);
        let internal: Node = serde_json::from_value(json!({"status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.9"}]}}))
        .unwrap();
        assert_eq!(shown(&node_addresses(&internal, false)), ["10.0.0.9"]);
    }
}
