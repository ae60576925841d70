//! Shared by edge-gateway's criterion benchmarks and its load-test helpers.
//!
//! - [`fleet`]: a synthetic cluster (Ingresses with their Services and
//!   EndpointSlices, over many hosts, with Exact, Prefix and regex paths)
//!   and the requests that hit it;
//! - [`figures`]: the figures issue 10 sets targets for (lookup median,
//!   compile time, endpoint update, header work), measured directly and
//!   printed as one `figure <name> <value> <unit>` line each;
//! - [`gateway_api`]: route lookup with HTTPRoutes beside Ingresses.

pub mod figures;
pub mod fleet;
pub mod gateway_api;
