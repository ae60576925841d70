//! The Gateway API beside Ingress: GatewayClass, Gateway, HTTPRoute,
//! GRPCRoute and ReferenceGrant (`gateway.networking.k8s.io`, standard
//! channel), compiled into the same routing table as the Ingresses, so
//! that metrics, the access log, policies and model-aware balancing
//! apply alike. `docs/gateway-api.md` is the user's view.
//!
//! - [`types`]: the kinds, typed;
//! - [`compile`]: the entry point, called by [`crate::compile`] after the
//!   Ingresses; [`listeners`](self) decides Gateways and listeners,
//!   `attach` parentRefs and hostnames, `rules` / `grpc` the rules,
//!   `refs` ReferenceGrants and backendRefs;
//! - [`status`]: the status each object should have; [`writer`] writes
//!   it while this replica leads;
//! - [`convert`]: Ingresses (with their ingress-nginx annotations) to
//!   Gateway API objects, for `edge-gateway convert`.
//!
//! **Ingress and HTTPRoute on one host.** Both kinds' rules go into the
//! host's one server, Ingresses first: an Ingress keeps every path it
//! routes (a match of an HTTPRoute on the same path and path type is not
//! served there, with a `RouteShadowed` diagnostic), and otherwise the
//! longest match wins whichever kind it comes from. An HTTPRoute is
//! never served on a host in ingress-nginx regex mode. Ingresses are
//! served on both sockets, HTTPRoutes on their listeners' only.

mod attach;
mod build;
pub mod cluster;
pub mod compile;
pub mod convert;
mod grpc;
pub mod inference;
mod listeners;
mod mirror;
mod place;
mod refs;
mod rules;
pub mod status;
pub mod types;
pub mod writer;

#[cfg(test)]
mod tests;

pub use compile::{Defaults, Output};
pub use status::GatewayApiStatus;

/// The controller name written in GatewayClasses this gateway manages,
/// by default.
pub const DEFAULT_CONTROLLER_NAME: &str = "edge-gateway.io/gateway-controller";

/// What the Gateway API compile needs besides the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayApiOptions {
    /// `--gateway-controller-name`: GatewayClasses with this
    /// `spec.controllerName` are ours.
    pub controller_name: String,
    /// Ports an `HTTP` listener may name (80 and `--http-port`).
    pub http_ports: Vec<u16>,
    /// Ports an `HTTPS` listener may name (443 and `--https-port`).
    pub https_ports: Vec<u16>,
}

impl GatewayApiOptions {
    /// The options for a gateway listening on `http_port` and `https_port`.
    pub fn new(controller_name: &str, http_port: u16, https_port: u16) -> Self {
        let ports = |well_known: u16, port: u16| {
            let mut ports = vec![well_known, port];
            ports.dedup();
            ports
        };
        Self {
            controller_name: controller_name.to_owned(),
            http_ports: ports(80, http_port),
            https_ports: ports(443, https_port),
        }
    }
}

impl Default for GatewayApiOptions {
    fn default() -> Self {
        Self::new(DEFAULT_CONTROLLER_NAME, 30080, 30443)
    }
}
