//! The edge-gateway data plane.
//!
//! It serves a [`RouteTable`] published by the control plane and knows no
//! Kubernetes type: the controller crate compiles Kubernetes objects into a
//! table, and this crate routes and proxies requests with it.
//!
//! - [`host`], [`path`]: the matching rules (Ingress semantics, and the
//!   Gateway API's suffix wildcards and expressions);
//! - [`matches`]: Gateway API method, header, query and listener conditions;
//! - [`route_filter`]: Gateway API filters and weighted backends;
//! - [`table`]: the immutable routing table and its builder;
//! - [`rewrite`]: ingress-nginx's regex mode and `rewrite-target`;
//! - [`backend`]: backends and their endpoint sets, and ([`backend::balance`])
//!   picking an endpoint (round robin, ewma, least_request,
//!   p2c, peak_ewma), the per-endpoint cap with its queue, and holding
//!   requests while a backend scales from zero;
//! - [`canary`]: ingress-nginx canaries, decided once per request;
//! - [`policy`]: per-route and gateway-wide policy (redirects, HSTS);
//! - [`proxy`]: the request path, phase by phase;
//! - [`tls`]: certificates, SNI selection, the rustls configuration;
//! - [`upstream_tls`]: TLS to upstream endpoints (`proxy-ssl-*`);
//! - [`compress`], [`body_filter`]: response compression and pacing;
//! - [`metrics`]: Prometheus metrics under ingress-nginx's names;
//! - [`access_log`]: one line per request, written off the request path;
//! - [`server`], [`admin`]: listeners; [`listener`]: what happens between
//!   the accept and HTTP (the PROXY protocol, then SSL passthrough);
//! - [`l4`]: TCP and UDP services.
//!
//! # State
//!
//! What a request reads, and who changes it:
//!
//! - **Swapped whole:** the [`RouteTable`] behind the [`TableHandle`] (an
//!   `ArcSwap`): routes, servers, certificates, client-certificate rules,
//!   the gateway-wide settings (`Globals`) and the TCP/UDP services travel
//!   in that one value, so they always agree. Only
//!   [`Publisher::publish`] stores it; a request loads it once and keeps
//!   that table to its end.
//! - **Swapped per backend:** a [`backend::Backend`]'s endpoint set and its
//!   balancing policy (each an `ArcSwap` inside the backend, which tables
//!   share by key). The controller's reconcile thread swaps endpoint sets
//!   on EndpointSlice changes without a new table; the ExternalName
//!   resolver does for DNS answers; the new table's endpoint set and
//!   policy go to the live backend when a table built onto the live one
//!   ([`table::RouteTableBuilder::adopting`], the reconciler's way) is
//!   built, otherwise when it is published.
//! - **Atomic:** per-endpoint in-flight counts, balancer scores and
//!   outstanding-work signals (written by requests), model-server load
//!   (written by the [`scrape`] task), every metric counter.
//! - **Locked (a `Mutex`, never across an `.await`):** the idle upstream
//!   connections of each endpoint, the `limit-*` shards, the basic-auth
//!   digest cache, the external-auth decision cache and connection pool,
//!   and the metric series maps (touched on publish and scrape only).
//!
//! A publish happens in this order: the new table takes over the live
//! backends of the current one unless it was built onto that table and
//! took them over then (endpoints keep their state and pooled
//! connections), routes get their metric series, the table is stored (the
//! one swap requests see), the configuration counters move, and the
//! stream listeners are told to bind or close ports.
//!
//! Everything here reads network input: no `unwrap`/`expect` outside tests
//! (clippy enforces it; tests may, see `clippy.toml`).

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod blocklist;
pub mod body_filter;
pub mod canary;
mod client_io;
mod clock;
pub mod compress;
mod cookies;
pub mod external_name;
pub mod header_names;
pub mod host;
mod http1_conn;
pub mod ids;
mod keepalive;
pub mod l4;
pub mod listener;
mod literal_prefix;
pub mod log_format;
pub mod matches;
pub mod metrics;
pub mod mirror;
pub mod model_field;
pub mod path;
pub mod policy;
pub mod pool_reaper;
pub mod proxy;
pub mod proxy_protocol;
pub mod publish;
pub mod refusal;
pub mod request_body;
pub mod rewind;
pub mod rewrite;
pub mod route_filter;
pub mod scheme;
pub mod scrape;
pub mod server;
pub mod settings;
pub mod shutdown;
mod splice;
pub mod stream_services;
pub mod table;
pub mod telemetry;
pub mod tls;
pub mod tracing_config;
mod upgrade_slot;
mod upstream;
pub mod upstream_tls;

/// The balancers live under [`backend`]; the root path is kept for the
/// controller and the binary.
pub use backend::balance;
pub use backend::balance::{Algorithm, BackendPolicy};
pub use backend::{BackendKey, EndpointUpdate};
pub use proxy::{Observer, Proxy};
pub use publish::Publisher;
pub use table::{Route, RouteAction, RouteSource, RouteTable, RouteTableBuilder, TableHandle};
pub use upstream::{ConnectError, PoolSettings};
