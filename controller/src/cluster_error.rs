//! The error of a call to the API server, shared by the cluster module
//! and the Gateway API status writer (which sits below it). A leaf.

/// Why the cluster could not be reached or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("no Kubernetes configuration: {0}")]
    Config(String),
    /// The API server answered with an error or could not be reached.
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
    /// An API call took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// An object the configuration names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// No address to publish in Ingress status could be found.
    #[error(
        "no address to publish: set --publish-service or --publish-status-address, or POD_NAME/POD_NAMESPACE"
    )]
    NoAddress,
}
