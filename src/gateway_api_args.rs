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
