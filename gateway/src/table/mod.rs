//! The routing table: an immutable value built by the control plane and
//! swapped in whole; requests load it once and read it without locks.
//!
//! Lookup is host first (exact name, then the one-label wildcard, then the
//! Gateway API suffix wildcards, then the default server), then path within
//! that server (exact, then Gateway API expressions, then the longest
//! element-wise prefix, then the server's fallback route), then the
//! table's default route (`--default-backend-service`). Gateway API routes
//! add conditions to a path (see [`crate::path`] and [`crate::matches`]):
//! [`RouteTable::find_for`] checks them against the request.

mod builder;
mod certs;
mod metrics;
mod route;

use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::HeaderValue;

use crate::backend::ExternalName;
use crate::backend::{Backend, BackendKey, EndpointUpdate};
use crate::host::{HostIndex, HostMap};
pub use crate::ids::{BackendId, RouteId, ServerId};
use crate::matches::RequestFacts;
use crate::metrics::inference::InferenceStats;
use crate::path::PathIndex;
use crate::policy::Globals;
use crate::rewrite::RegexIndex;
use crate::stream_services::StreamService;
use crate::tls::{Certificate, ClientAuth, HostClientAuth};
pub use builder::{RouteConflict, RouteTableBuilder};
pub use route::{Route, RouteAction, RouteSource};

/// The shared, swappable routing table the control plane publishes into.
pub type TableHandle = Arc<ArcSwap<RouteTable>>;

/// A route found for a request, with what its server knows.
#[derive(Clone, Copy, Debug)]
pub struct RouteMatch<'t> {
    /// The route's index in its table.
    pub id: RouteId,
    /// The route.
    pub route: &'t Route,
    /// Whether the route's host has a TLS section (for `ssl-redirect` and HSTS).
    pub tls: bool,
}

/// One virtual server: the routes of one host.
#[derive(Debug, Default)]
struct Server {
    paths: PathIndex,
    /// The paths of a host in regex mode, used instead of `paths` (boxed:
    /// most servers have none, and a smaller server is fewer cache lines
    /// per lookup).
    regex: Option<Box<RegexIndex>>,
    /// The route taken when no path matches (an Ingress `defaultBackend`).
    fallback: Option<RouteId>,
    /// Whether an Ingress gives this host a TLS section.
    tls: bool,
    /// `app-root`: where a request for `/` is redirected.
    app_root: Option<HeaderValue>,
    /// `from-to-www-redirect`: the host every request is redirected to.
    redirect_to: Option<Arc<str>>,
    /// `auth-tls-*`: how the host checks client certificates.
    client_auth: Option<HostClientAuth>,
}

/// What a request's host says before any path is looked at (nginx's
/// server-level rewrite phase).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerView<'t> {
    /// The server's index, to compare with the one a TLS handshake named.
    pub id: ServerId,
    /// Whether the host has a TLS section.
    pub tls: bool,
    /// `app-root` of the host.
    pub app_root: Option<&'t HeaderValue>,
    /// `from-to-www-redirect`: redirect everything to this host.
    pub redirect_to: Option<&'t str>,
    /// `auth-tls-*`: how the host checks client certificates.
    pub client_auth: Option<&'t HostClientAuth>,
}

/// The result of looking a request up: its server, and its route if any.
#[derive(Clone, Copy, Debug)]
pub struct Found<'t> {
    /// The server (host) the request reached.
    pub server: ServerView<'t>,
    /// The route, if a path (or the fallback) matched.
    pub route: Option<RouteMatch<'t>>,
}

/// Server certificates by the host names they serve.
#[derive(Debug, Default)]
struct CertIndex {
    names: HostMap<Arc<Certificate>>,
    default: Option<Arc<Certificate>>,
}

/// The compiled routing table. Cheap to share, never mutated once built.
#[derive(Debug)]
pub struct RouteTable {
    hosts: HostIndex,
    /// `servers[0]` is the default server (`_` in nginx terms).
    servers: Box<[Server]>,
    routes: Box<[Route]>,
    backends: Box<[Arc<Backend>]>,
    /// `--default-backend-service`: the route of requests no server's
    /// path or fallback takes.
    default_route: Option<RouteId>,
    certificates: CertIndex,
    globals: Globals,
    /// Each route's inference series (by route index), set at publish
    /// time with metrics on.
    inference: Box<[Option<Arc<InferenceStats>>]>,
    /// TCP and UDP services, by protocol and port.
    streams: Box<[StreamService]>,
    /// `ssl-passthrough` hosts (exact, lower case) and their backends.
    passthrough: HashMap<Box<str>, BackendId, RandomState>,
    /// The backends of ExternalName Services, resolved by DNS.
    external_names: Box<[(BackendId, ExternalName)]>,
    /// This table among every table built by this process.
    serial: u64,
    /// The serial of the table whose live backends this one took over
    /// while it was built, if any.
    adopted: Option<u64>,
}

impl Default for RouteTable {
    /// An empty table: every request gets 404.
    fn default() -> Self {
        RouteTableBuilder::default().build()
    }
}

impl RouteTable {
    /// Finds the server and route for a normalised host (`None`: no usable
    /// Host) and a normalised path, by host and path alone: routes with
    /// conditions are not taken (see [`RouteTable::find_for`]).
    pub fn find(&self, host: Option<&str>, path: &[u8]) -> Found<'_> {
        self.find_with(host, path, None)
    }

    /// Finds the server and route for a request: as [`RouteTable::find`],
    /// with the conditions of Gateway API routes checked against `facts`.
    pub fn find_for(&self, host: Option<&str>, path: &[u8], facts: &RequestFacts<'_>) -> Found<'_> {
        self.find_with(host, path, Some(facts))
    }

    fn find_with(
        &self,
        host: Option<&str>,
        path: &[u8],
        facts: Option<&RequestFacts<'_>>,
    ) -> Found<'_> {
        let server_id = self.server_id(host);
        let server = &self.servers[server_id.0];
        let id = match &server.regex {
            None => server.paths.lookup(path, facts),
            Some(regex) => regex.lookup(path),
        };
        let route = id
            .or(server.fallback)
            .or(self.default_route)
            .and_then(|id| {
                let route = self.routes.get(id.0)?;
                Some(RouteMatch {
                    id,
                    route,
                    tls: server.tls,
                })
            });
        Found {
            server: ServerView {
                id: server_id,
                tls: server.tls,
                app_root: server.app_root.as_ref(),
                redirect_to: server.redirect_to.as_deref(),
                client_auth: server.client_auth.as_ref(),
            },
            route,
        }
    }

    /// The server of a normalised host (`None`, or a host no server has:
    /// the default server), as nginx picks one for a Host header or a TLS
    /// server name.
    pub fn server_id(&self, host: Option<&str>) -> ServerId {
        host.and_then(|h| self.hosts.lookup(h))
            .filter(|id| id.0 < self.servers.len())
            .unwrap_or(ServerId::DEFAULT)
    }

    /// The client-certificate rule of the host a TLS server name picks,
    /// when it checks certificates.
    pub fn client_auth_for_sni(&self, server_name: Option<&str>) -> Option<&Arc<ClientAuth>> {
        match &self.servers[self.server_id(server_name).0].client_auth {
            Some(HostClientAuth::Verify(auth)) => Some(auth),
            Some(HostClientAuth::Denied) | None => None,
        }
    }

    /// Whether a host (lower case) is one of the table's servers (exact,
    /// wildcard or alias), not the default server.
    pub fn has_host(&self, host: &str) -> bool {
        self.hosts.lookup(host).is_some()
    }

    /// Finds the route for a normalised host and path (see [`RouteTable::find`]).
    pub fn lookup(&self, host: Option<&str>, path: &[u8]) -> Option<RouteMatch<'_>> {
        self.find(host, path).route
    }

    /// The certificate for a TLS server name (lower case): the exact name,
    /// then the `*.parent` wildcard, then the most specific Gateway API
    /// suffix, then the configured default (`--default-ssl-certificate`);
    /// `None` means the built-in fallback.
    pub fn certificate(&self, server_name: Option<&str>) -> Option<&Arc<Certificate>> {
        let certs = &self.certificates;
        let found = server_name.and_then(|name| certs.names.lookup(name));
        found.or(certs.default.as_ref())
    }

    /// Every certificate in use, with the names it serves (the default
    /// certificate under `None`), for metrics.
    pub fn certificates(&self) -> impl Iterator<Item = (Option<String>, &Arc<Certificate>)> {
        let certs = &self.certificates;
        certs
            .names
            .iter()
            .map(|(pattern, c)| (Some(pattern.as_string()), c))
            .chain(certs.default.iter().map(|c| (None, c)))
    }

    /// Every route with the name of the Service it proxies to, for giving
    /// routes their metric series before the table is published.
    pub(crate) fn routes_with_services(&mut self) -> impl Iterator<Item = (&mut Route, Arc<str>)> {
        let backends = &self.backends;
        self.routes
            .iter_mut()
            .filter_map(move |route| match route.action {
                RouteAction::Proxy(id) => {
                    let service = backends.get(id.0)?.key().service.clone();
                    Some((route, service))
                }
                RouteAction::Respond(_) => None,
            })
    }

    /// Settings that apply to the whole gateway.
    pub fn globals(&self) -> &Globals {
        &self.globals
    }

    /// Whether `id` is the default route (`--default-backend-service`).
    pub fn is_default_route(&self, id: RouteId) -> bool {
        self.default_route == Some(id)
    }

    /// The default route's backend (`--default-backend-service`), if any.
    pub fn default_backend(&self) -> Option<BackendId> {
        let route = self.routes.get(self.default_route?.0)?;
        match route.action {
            RouteAction::Proxy(id) => Some(id),
            RouteAction::Respond(_) => None,
        }
    }

    /// The backend a route's action names.
    pub fn backend(&self, id: BackendId) -> Option<&Arc<Backend>> {
        self.backends.get(id.0)
    }

    /// Every backend, for the control plane's endpoint updates.
    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// Every route, in the order they were added.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The inference series a route's requests record into, if any.
    pub(crate) fn inference(&self, id: RouteId) -> Option<&Arc<InferenceStats>> {
        self.inference.get(id.0)?.as_ref()
    }

    /// The TCP and UDP services.
    pub fn streams(&self) -> &[StreamService] {
        &self.streams
    }

    /// The service listening on `port` for `protocol`, with its backend.
    pub fn stream(
        &self,
        protocol: crate::stream_services::StreamProtocol,
        port: u16,
    ) -> Option<(&StreamService, &Arc<Backend>)> {
        let service = self
            .streams
            .iter()
            .find(|s| s.protocol == protocol && s.port == port)?;
        Some((service, self.backends.get(service.backend.0)?))
    }

    /// The ExternalName backends and their names.
    pub fn external_names(&self) -> impl Iterator<Item = (&Arc<Backend>, &ExternalName)> {
        self.external_names
            .iter()
            .filter_map(|(id, name)| Some((self.backends.get(id.0)?, name)))
    }

    /// Whether any host is served by SSL passthrough.
    pub fn has_passthrough(&self) -> bool {
        !self.passthrough.is_empty()
    }

    /// The passthrough backend for a TLS server name (lower case).
    pub fn passthrough(&self, server_name: &str) -> Option<&Arc<Backend>> {
        let id = self.passthrough.get(server_name)?;
        self.backends.get(id.0)
    }

    /// Sets every route's inference series, by route index.
    pub(crate) fn set_inference(&mut self, stats: Vec<Option<Arc<InferenceStats>>>) {
        self.inference = stats.into_boxed_slice();
    }

    /// Takes over `previous`'s live backends, unless this table was built
    /// adopting them (see [`RouteTableBuilder::adopting`]).
    pub(crate) fn succeed(&mut self, previous: &RouteTable) {
        if self.adopted != Some(previous.serial) {
            self.adopt_backends(previous);
        }
    }

    /// Takes over the live backends of `previous` that this table also has,
    /// moving this table's endpoint sets and balancing policies into them,
    /// so that endpoints keep their state (in-flight counts, scores, idle
    /// connections, waiting requests) across a recompile. Call before
    /// publishing the table.
    pub fn adopt_backends(&mut self, previous: &RouteTable) {
        if previous.backends.is_empty() {
            return;
        }
        let live: HashMap<&BackendKey, &Arc<Backend>> =
            previous.backends.iter().map(|b| (b.key(), b)).collect();
        let external = external_flags(&self.external_names, self.backends.len());
        for (backend, external) in self.backends.iter_mut().zip(external) {
            if let Some(old) = live.get(backend.key()) {
                let endpoints = (!external).then(|| {
                    let set = backend.endpoints();
                    EndpointUpdate {
                        addrs: set.endpoints().iter().map(|e| e.addr()).collect(),
                        service_found: set.service_found(),
                    }
                });
                old.take_over(endpoints.as_ref(), backend.policy());
                *backend = Arc::clone(old);
            }
        }
    }
}

/// Which of a table's `count` backends serve ExternalName Services (their
/// endpoints come from DNS), by backend index.
fn external_flags(external_names: &[(BackendId, ExternalName)], count: usize) -> Vec<bool> {
    let mut external = vec![false; count];
    for (id, _) in external_names {
        if let Some(e) = external.get_mut(id.0) {
            *e = true;
        }
    }
    external
}

#[cfg(test)]
mod tests;
