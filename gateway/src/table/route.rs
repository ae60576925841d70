//! One routing rule's outcome as the table holds it: where it came from,
//! what it does, and the settings and policies a request on it gets.

use std::sync::Arc;

use crate::canary::Canary;
use crate::ids::BackendId;
use crate::metrics::RouteStats;
use crate::path::PathKind;
use crate::policy::Policy;
use crate::policy::admission::Admission;
use crate::rewrite::Rewrite;
use crate::route_filter::RouteFilters;
use crate::settings::ProxySettings;

/// The Ingress (or Gateway API route) a route came from, for logs, metrics
/// and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteSource {
    /// Namespace of the Ingress.
    pub namespace: Arc<str>,
    /// Name of the Ingress.
    pub name: Arc<str>,
}

/// What a matched route does with the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// Proxy to a backend.
    Proxy(BackendId),
    /// Answer with a fixed status and no upstream (the built-in `/healthz`).
    Respond(u16),
}

/// One routing rule's outcome: where it came from and what it does.
#[derive(Clone, Debug)]
pub struct Route {
    /// The Ingress that defined it; `None` for built-in routes.
    pub source: Option<RouteSource>,
    /// The rule's host as written (`*.example.com`), or `""` for the default server.
    pub host: Arc<str>,
    /// The rule's path as written in the Ingress (the metrics `path` label).
    pub path: Arc<str>,
    /// The rule's match kind.
    pub path_kind: PathKind,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Timeouts, limits and retries for requests on this route.
    pub settings: Arc<ProxySettings>,
    /// What happens before proxying (redirects).
    pub policy: Arc<Policy>,
    /// CORS, limits, address lists and authentication; `None` when the
    /// Ingress sets none.
    pub admission: Option<Arc<Admission>>,
    /// Where this route's requests are counted (set when published with
    /// request metrics on).
    pub stats: Option<Arc<RouteStats>>,
    /// `rewrite-target`: the path sent upstream.
    pub rewrite: Option<Arc<Rewrite>>,
    /// The `default-backend` annotation's backend: takes the requests the
    /// route's own backend cannot (no ready endpoint).
    pub fallback: Option<BackendId>,
    /// A canary Ingress's backend and when it takes a request instead of
    /// the route's own (see [`crate::canary`]).
    pub canary: Option<Box<Canary>>,
    /// A Gateway API rule's filters and weighted backends (see
    /// [`crate::route_filter`]); `None` for Ingress routes.
    pub filters: Option<Box<RouteFilters>>,
}
