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
//! Everything here reads network input: no `unwrap`/`expect` outside tests
//! (clippy enforces it; tests may, see `clippy.toml`).

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod body_filter;
pub mod canary;
mod client_io;
mod clock;
pub mod compress;
mod cookies;
pub mod external_name;
pub mod header_names;
pub mod host;
pub mod ids;
mod keepalive;
pub mod l4;
pub mod listener;
pub mod matches;
pub mod metrics;
pub mod mirror;
pub mod model_field;
pub mod path;
pub mod policy;
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
pub mod tls;
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
