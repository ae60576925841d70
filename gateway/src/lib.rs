//! The edge-gateway data plane.
//!
//! It serves a [`RouteTable`] published by the control plane and knows no
//! Kubernetes type: the controller crate compiles Kubernetes objects into a
//! table, and this crate routes and proxies requests with it.
//!
//! - [`host`], [`path`]: the matching rules (Ingress semantics);
//! - [`table`]: the immutable routing table and its builder;
//! - [`backend`]: backends, endpoint sets and balancing;
//! - [`proxy`]: the request path, phase by phase;
//! - [`server`], [`admin`]: listeners.

pub mod admin;
pub mod backend;
pub mod host;
pub mod path;
pub mod proxy;
pub mod server;
pub mod settings;
pub mod table;
mod upstream;

pub use backend::{BackendKey, EndpointUpdate};
pub use proxy::{Proxy, TableHandle};
pub use table::{Route, RouteAction, RouteSource, RouteTable, RouteTableBuilder};
pub use upstream::{ConnectError, PoolSettings};
