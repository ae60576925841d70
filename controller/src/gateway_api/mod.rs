//! The Gateway API beside Ingress: GatewayClass, Gateway, HTTPRoute,
//! GRPCRoute and ReferenceGrant (`gateway.networking.k8s.io`, standard
//! channel), compiled into the same routing table as the Ingresses, so
//! that metrics, the access log, policies and model-aware balancing
//! apply alike. `docs/gateway-api.md` is the user's view.
//!
//! - [`types`]: the kinds, typed;
//! - [`compile`]: the entry point, called by the crate's `compile()` after the
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
pub mod writer;

pub use crate::gateway_api_types as types;
pub use crate::options::{DEFAULT_CONTROLLER_NAME, GatewayApiOptions};
pub use compile::{Defaults, Output};
pub use status::GatewayApiStatus;
