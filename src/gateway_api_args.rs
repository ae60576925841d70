//! The Gateway API flags of the serving commands, kept apart from the
//! ingress-nginx flags of [`crate::cli`].

use clap::{ArgAction, Args};
use controller::gateway_api::{DEFAULT_CONTROLLER_NAME, GatewayApiOptions};

/// Serving Gateway API objects beside the Ingresses.
#[derive(Debug, Clone, Args)]
pub(crate) struct GatewayApiArgs {
    /// Also serve the Gateway API (gateway.networking.k8s.io standard
    /// channel: GatewayClass, Gateway, HTTPRoute, GRPCRoute,
    /// ReferenceGrant) on the same listeners. With the Kubernetes API the
    /// CRDs must be installed (start-up fails otherwise).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) enable_gateway_api: bool,

    /// GatewayClasses whose spec.controllerName is this are served.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME, value_name = "NAME")]
    pub(crate) gateway_controller_name: String,
}

impl GatewayApiArgs {
    /// The compile options, when the Gateway API is on.
    pub(crate) fn options(&self, http_port: u16, https_port: u16) -> Option<GatewayApiOptions> {
        self.enable_gateway_api
            .then(|| GatewayApiOptions::new(&self.gateway_controller_name, http_port, https_port))
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn off_by_default_with_the_default_controller_name() {
        let cli = Cli::try_parse_from(["edge-gateway"]).unwrap();
        let args = &cli.serve.gateway_api;
        assert!(!args.enable_gateway_api);
        assert_eq!(
            args.gateway_controller_name,
            "edge-gateway.io/gateway-controller"
        );
        assert!(args.options(30080, 30443).is_none());
        let cli = Cli::try_parse_from([
            "edge-gateway",
            "--enable-gateway-api",
            "--gateway-controller-name=example.com/gw",
            "--http-port=8080",
        ])
        .unwrap();
        let options = cli.serve.gateway_api.options(8080, 8443).unwrap();
        assert_eq!(options.controller_name, "example.com/gw");
        assert_eq!(options.http_ports, [80, 8080]);
        assert_eq!(options.https_ports, [443, 8443]);
    }
}

/// `edge-gateway convert`: prints the Gateway API objects this gateway
/// serves like the Ingresses of our class (a GatewayClass, a Gateway,
/// ReferenceGrants for TLS Secrets, HTTPRoutes), after comment lines that
/// list each Ingress converted (with what still differs) or kept (with
/// why: an annotation without a Gateway API equivalent, ...). The objects
/// are YAML, ready for `kubectl apply -f -`. Nothing is written to the
/// cluster.
///
/// Exit status: 0 when the objects were printed, 2 for usage errors or an
/// unreadable source.
#[derive(Debug, clap::Args)]
pub(crate) struct ConvertArgs {
    /// Folder of Kubernetes YAML/JSON manifests to convert instead of a
    /// cluster's objects.
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    pub(crate) manifests: Option<std::path::PathBuf>,

    /// Kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, or
    /// the in-cluster service account). Used when --manifests is not given.
    #[arg(long, value_name = "PATH")]
    pub(crate) kubeconfig: Option<std::path::PathBuf>,

    /// How long reading the cluster may take in all (Go duration: 30s, 1m).
    #[arg(long, default_value = "30s", value_name = "DURATION",
          value_parser = crate::cli::values::duration)]
    pub(crate) request_timeout: std::time::Duration,

    /// The Gateway to create, as namespace/name.
    #[arg(long, default_value = "ingress-nginx/edge-gateway", value_name = "NAMESPACE/NAME",
          value_parser = crate::cli::values::ns_name)]
    pub(crate) gateway: (String, String),

    /// The GatewayClass to create and use.
    #[arg(long, default_value = "edge-gateway", value_name = "NAME")]
    pub(crate) gateway_class: String,

    /// The controller name of that GatewayClass.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME, value_name = "NAME")]
    pub(crate) gateway_controller_name: String,

    /// Which Ingresses are ours, and the controller ConfigMap (as serving).
    #[command(flatten)]
    pub(crate) class: crate::cli::ClassArgs,
}
