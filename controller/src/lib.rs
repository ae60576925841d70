//! The edge-gateway control plane: watched Kubernetes objects in, routing
//! tables out.
//!
//! - [`objects`]: the watched kinds as typed values;
//! - [`snapshot`]: the store `compile()` reads;
//! - [`annotations`]: `nginx.ingress.kubernetes.io/*` annotations as typed settings;
//! - [`class`]: which Ingresses are ours;
//! - [`compile`]: the pure compiler from a snapshot to a table and diagnostics;
//! - [`config_map`]: the controller ConfigMap's global settings;
//! - [`gateway_api`]: Gateway API objects beside the Ingresses (compile,
//!   status, conversion from Ingresses);
//! - [`manifests`]: the manifests-folder source;
//! - [`cluster`]: the Kubernetes API source, leader election, status and Events;
//! - [`client`]: the platform's Ingress client API (create, delete, list; URLs);
//! - [`reconcile`]: the loop that applies source updates and publishes tables;
//! - [`selector`]: label selectors (`--watch-namespace-selector`);
//! - [`webhook`]: the validating admission webhook's decisions.

pub mod annotations;
pub mod certs;
pub mod class;
pub mod client;
pub mod cluster;
pub mod cluster_error;
pub mod compile;
pub mod config_map;
pub mod diagnostics;
pub mod endpoint_slice;
pub mod endpoints;
pub mod gateway_api;
pub mod gateway_api_types;
#[cfg(test)]
mod generated_docs;
pub mod manifests;
pub mod objects;
pub mod options;
mod paths;
pub mod reconcile;
pub mod selector;
pub mod snapshot;
pub mod webhook;

pub use compile::{CompileOptions, Compiled, compile};
pub use diagnostics::{Diagnostic, Reason};
pub use objects::{Kind, NsName, Object, ObjectKey};
pub use snapshot::Snapshot;
