//! A fake Kubernetes API server for edge-gateway's tests and manual runs.
//!
//! Plain HTTP on 127.0.0.1, an in-memory store of JSON objects, and the API
//! behaviour `kubectl` and kube-rs (list/watch/reflector, leader election)
//! depend on, for the resources the gateway uses: namespaces, services,
//! endpoints, secrets, configmaps, events, pods and nodes (v1), ingresses and
//! ingressclasses (networking.k8s.io/v1), endpointslices
//! (discovery.k8s.io/v1), leases (coordination.k8s.io/v1), events
//! (events.k8s.io/v1), and the Gateway API kinds (`gateway_api`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = fake_apiserver::FakeApiServer::start().await;
//! server.write_kubeconfig("/tmp/kubeconfig")?;
//! server.apply(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "default"},
//!     "data": {"a": "b"},
//! }))?;
//! server.pause().await; // an outage: connections refused, watches cut
//! server.compact(); // clients' resourceVersions are now too old (410)
//! server.resume().await?; // back on the same port
//! # Ok(())
//! # }
//! ```
//!
//! See the crate's README.md for kubectl notes and what is approximated.
//!
//! Modules: `server` ([`FakeApiServer`] and its lifecycle), `direct` (store
//! access for tests), `service` (one request), `router` (paths), `handlers`
//! (the verbs), `watch`, `store` (objects, resourceVersions, history),
//! `objects` (system fields, concurrency, `/status`), `defaults` (per-kind
//! defaults), `patch`, `selectors`, `discovery`, `openapi`, `views` and
//! `table` (Accept-driven renderings), `protobuf` (kubectl's generator
//! bodies), `status` (errors), `resources` (the table of served kinds).

mod body;
mod defaults;
mod direct;
mod discovery;
mod gateway_api;
mod handlers;
mod objects;
mod openapi;
mod patch;
mod protobuf;
mod query;
mod resources;
mod router;
mod selectors;
mod server;
mod service;
mod state;
mod status;
mod store;
mod table;
mod views;
mod watch;

pub use server::FakeApiServer;
pub use state::{Options, RecordedRequest};
pub use status::ApiError;
