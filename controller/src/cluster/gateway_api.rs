//! The Gateway API against a cluster: which CRDs are installed (checked at
//! start-up: serving routes nobody can see would be worse than refusing
//! to start), and the status writer's task.

use std::time::Duration;

use kube::Client;
use tokio::sync::watch;

use super::{ClusterError, ClusterOptions, published_addresses};
use crate::gateway_api::writer::{self, GatewayApiReport};
use crate::gateway_api_types::inference::{OBJECTIVE_GROUP, POOL_GROUP};
use crate::gateway_api_types::{GROUP, GatewayStatusAddress};

/// How long the discovery calls may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Gateway API kinds the cluster serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Whether GRPCRoutes exist (v1 since release 1.1); without them only
    /// HTTPRoutes are served.
    pub grpc_routes: bool,
    /// Whether InferencePools (`inference.networking.k8s.io/v1`) exist:
    /// then they and Pods are watched; without them an HTTPRoute
    /// backendRef to a pool is `BackendNotFound`.
    pub inference_pools: bool,
    /// Whether InferenceObjectives
    /// (`inference.networking.x-k8s.io/v1alpha2`) exist.
    pub inference_objectives: bool,
}

/// Why the Gateway API cannot be served on this cluster.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A kind this gateway needs is not installed.
    #[error(
        "the Gateway API CRDs are not installed ({0} missing): install the standard channel (kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml) or drop --enable-gateway-api"
    )]
    Missing(String),
    /// The API server could not be asked.
    #[error("cannot read the Gateway API discovery: {0}")]
    Cluster(#[source] ClusterError),
}

/// Checks that the Gateway API CRDs this gateway watches are installed.
pub async fn check(client: &Client) -> Result<Installed, CrdError> {
    let v1 = resources(client, &format!("{GROUP}/v1")).await?;
    for needed in ["gatewayclasses", "gateways", "httproutes"] {
        if !v1.iter().any(|r| r == needed) {
            return Err(CrdError::Missing(format!("{needed}.{GROUP}/v1")));
        }
    }
    let v1beta1 = resources(client, &format!("{GROUP}/v1beta1")).await?;
    if !v1beta1.iter().any(|r| r == "referencegrants") {
        return Err(CrdError::Missing(format!(
            "referencegrants.{GROUP}/v1beta1"
        )));
    }
    let grpc_routes = v1.iter().any(|r| r == "grpcroutes");
    if !grpc_routes {
        tracing::warn!("the GRPCRoute CRD (v1) is not installed: GRPCRoutes are not served");
    }
    // The Inference Extension is optional: a cluster without its CRDs
    // starts as before, without watching Pods.
    let pools = resources(client, &format!("{POOL_GROUP}/v1")).await?;
    let inference_pools = pools.iter().any(|r| r == "inferencepools");
    let objectives = resources(client, &format!("{OBJECTIVE_GROUP}/v1alpha2")).await?;
    let inference_objectives =
        inference_pools && objectives.iter().any(|r| r == "inferenceobjectives");
    if inference_pools {
        tracing::info!(
            inference_objectives,
            "the InferencePool CRD is installed: InferencePools and Pods are watched"
        );
    } else {
        tracing::info!(
            "the InferencePool CRD (inference.networking.k8s.io/v1) is not installed: no InferencePool backends"
        );
    }
    Ok(Installed {
        grpc_routes,
        inference_pools,
        inference_objectives,
    })
}

/// The resources of one group version; none when it is not served.
async fn resources(client: &Client, group_version: &str) -> Result<Vec<String>, CrdError> {
    let call = client.list_api_group_resources(group_version);
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(list)) => Ok(list.resources.into_iter().map(|r| r.name).collect()),
        Ok(Err(kube::Error::Api(status))) if status.is_not_found() => Ok(Vec::new()),
        Ok(Err(error)) => Err(CrdError::Cluster(ClusterError::Api(error))),
        Err(_) => Err(CrdError::Cluster(ClusterError::Timeout(
            "reading the Gateway API discovery",
        ))),
    }
}

/// The status writer's task (see [`writer`]), with the addresses Ingress
/// status publishes.
pub(crate) async fn write_status(
    client: Client,
    options: ClusterOptions,
    leading: watch::Receiver<bool>,
    reports: watch::Receiver<GatewayApiReport>,
    stop: watch::Receiver<bool>,
) {
    let status = options.status.clone();
    let pod = options.pod.clone();
    let lookup_client = client.clone();
    let addresses = move || {
        let (client, status, pod) = (lookup_client.clone(), status.clone(), pod.clone());
        async move {
            let published = published_addresses(&client, &status, pod.as_ref()).await?;
            Ok(published
                .into_iter()
                .filter_map(|a| match (a.ip, a.hostname) {
                    (Some(ip), _) => Some(GatewayStatusAddress {
                        type_: Some("IPAddress".to_owned()),
                        value: ip,
                    }),
                    (None, Some(name)) => Some(GatewayStatusAddress {
                        type_: Some("Hostname".to_owned()),
                        value: name,
                    }),
                    (None, None) => None,
                })
                .collect())
        }
    };
    writer::run(
        client,
        leading,
        reports,
        stop,
        options.status.interval,
        addresses,
    )
    .await;
}
