//! A fake Kubernetes API server for edge-gateway's tests and manual runs.
//!
//! Plain HTTP on 127.0.0.1, an in-memory store of JSON objects, and the API
//! behaviour kubectl, Helm, kube-rs and the Python client depend on: the
//! kinds of a cluster that the gateway and its charts use (and those of the
//! CRDs it is given), discovery and OpenAPI, the real server's validation
//! and errors, admission (the default IngressClass, admission webhooks),
//! garbage collection, and optionally simulated controllers. The crate's
//! README lists what it serves, reproduces and leaves out.
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
//! (dispatch and reads), `writes`, `deletes`, `reviews`, `watch`, `store`
//! (objects, resourceVersions, history), `objects` (system fields,
//! concurrency, `/status`), `defaults` (per-kind defaults), `convert`
//! (versions), `admission` with `ingress_class`, `webhooks` and
//! `webhook_call`, `validation`, `fieldcheck`, `after_write` with `crd` and
//! `simulate`, `ssa` (field ownership), `patch` with `patch_meta`, `selectors`, `discovery`,
//! `schemas`, `openapi` and `openapi_proto`, `views` and `table`
//! (Accept-driven renderings), `protobuf` (kubectl's protobuf bodies),
//! `status` (errors), `builtin` and `resources` (the kind table).

mod admission;
mod after_write;
mod body;
mod builtin;
mod convert;
mod crd;
mod defaults;
mod deletes;
mod direct;
mod discovery;
mod fieldcheck;
mod handlers;
mod hang;
mod ingress_class;
mod objects;
mod openapi;
mod openapi_proto;
mod patch;
mod patch_meta;
mod protobuf;
mod query;
mod resources;
mod reviews;
mod router;
mod schemas;
mod selectors;
mod server;
mod service;
mod simulate;
mod ssa;
mod state;
mod status;
mod store;
mod table;
mod validation;
mod views;
mod watch;
mod webhook_call;
mod webhooks;
mod writes;

pub use server::FakeApiServer;
pub use state::{Options, RecordedRequest};
pub use status::ApiError;
