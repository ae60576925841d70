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

mod certs;
mod metrics;
mod route;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::RandomState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use http::header::HeaderValue;

use crate::backend::ExternalName;
use crate::backend::balance::BackendPolicy;
use crate::backend::{Backend, BackendKey, EndpointUpdate};
use crate::canary::Canary;
use crate::host::{HostIndex, HostMap, HostPattern};
pub use crate::ids::{BackendId, RouteId, ServerId};
use crate::matches::{Conditions, RequestFacts};
use crate::metrics::inference::InferenceStats;
use crate::path::{PathIndex, PathKind, PathRegex, PathRule};
use crate::policy::Globals;
use crate::rewrite::{RegexIndex, RegexPath, RegexUnion};
use crate::stream_services::StreamService;
use crate::tls::{Certificate, ClientAuth, HostClientAuth};
pub use route::{Route, RouteAction, RouteSource};

/// Where [`RouteTable`] serials come from.
static SERIALS: AtomicU64 = AtomicU64::new(0);

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
        let resolved: Vec<usize> = self.external_names.iter().map(|(id, _)| id.0).collect();
        for (index, backend) in self.backends.iter_mut().enumerate() {
            if let Some(old) = live.get(backend.key()) {
                // The DNS answers an ExternalName backend holds stay: the
                // new table knows none.
                if resolved.contains(&index) {
                    old.set_policy(backend.policy());
                    *backend = Arc::clone(old);
                    continue;
                }
                let set = backend.endpoints();
                old.update(&EndpointUpdate {
                    addrs: set.endpoints().iter().map(|e| e.addr()).collect(),
                    service_found: set.service_found(),
                });
                old.set_policy(backend.policy());
                *backend = Arc::clone(old);
            }
        }
    }
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteConflict {
    /// Another route already holds this host, path and path kind.
    #[error("the same host, path and pathType is already routed")]
    Taken(RouteId),
}

/// Builds a [`RouteTable`]. Rules are first come, first served: the caller
/// adds them in precedence order and gets the holder back on a conflict.
#[derive(Debug)]
pub struct RouteTableBuilder {
    hosts: HostIndex,
    servers: Vec<Server>,
    routes: Vec<Route>,
    backends: Vec<BackendSpec>,
    backend_ids: HashMap<BackendKey, BackendId, foldhash::fast::RandomState>,
    /// The live backends of the table being replaced, by key, when this
    /// table adopts them as it is built (see [`RouteTableBuilder::adopting`]).
    live: HashMap<BackendKey, Arc<Backend>, foldhash::fast::RandomState>,
    /// The serial of the table `live` comes from.
    live_serial: Option<u64>,
    default_route: Option<RouteId>,
    certificates: CertIndex,
    globals: Globals,
    /// The policy of backends no one sets one for.
    backend_policy: Arc<BackendPolicy>,
    /// Regex-mode paths already routed, per server, for conflicts.
    regex_paths: HashMap<(ServerId, String), RouteId>,
    streams: Vec<StreamService>,
    passthrough: HashMap<Box<str>, BackendId, RandomState>,
    external_names: Vec<(BackendId, ExternalName)>,
}

impl Default for RouteTableBuilder {
    fn default() -> Self {
        Self {
            hosts: HostIndex::default(),
            servers: vec![Server::default()],
            routes: Vec::new(),
            backends: Vec::new(),
            backend_ids: HashMap::default(),
            live: HashMap::default(),
            live_serial: None,
            default_route: None,
            certificates: CertIndex::default(),
            globals: Globals::default(),
            backend_policy: Arc::default(),
            regex_paths: HashMap::new(),
            streams: Vec::new(),
            passthrough: HashMap::default(),
            external_names: Vec::new(),
        }
    }
}

impl RouteTableBuilder {
    /// The server for a host pattern (`None`: the default server), created
    /// on first use.
    pub fn server(&mut self, host: Option<&HostPattern>) -> ServerId {
        let Some(host) = host else {
            return ServerId(0);
        };
        if let Some(id) = self.hosts.get(host) {
            return id;
        }
        let id = ServerId(self.servers.len());
        self.servers.push(Server::default());
        self.hosts.insert(host.clone(), id);
        id
    }

    /// Makes `policy` the balancing and admission rules of the backends
    /// created from now on (the ConfigMap's defaults).
    pub fn with_backend_policy(mut self, policy: Arc<BackendPolicy>) -> Self {
        self.backend_policy = policy;
        self
    }

    /// Builds the table onto `live`, the table serving now: a backend it
    /// also has is not made anew but taken over when the table is built
    /// (its endpoint set and policy replaced then, as a publish would),
    /// which spares a recompile one backend and endpoint set per Service.
    pub fn adopting(mut self, live: &RouteTable) -> Self {
        self.live = live
            .backends
            .iter()
            .map(|b| (b.key().clone(), Arc::clone(b)))
            .collect();
        self.live_serial = Some(live.serial);
        self.backend_ids.reserve(self.live.len());
        self
    }

    /// The backend for a Service port, created with `endpoints` on first use.
    pub fn backend(&mut self, key: BackendKey, endpoints: &EndpointUpdate) -> BackendId {
        let next = BackendId(self.backends.len());
        match self.backend_ids.entry(key) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                self.backends.push(BackendSpec {
                    key: new.key().clone(),
                    endpoints: endpoints.clone(),
                    policy: self.backend_policy.clone(),
                });
                new.insert(next);
                next
            }
        }
    }

    /// The balancing and admission rules backends start from.
    pub fn default_backend_policy(&self) -> Arc<BackendPolicy> {
        self.backend_policy.clone()
    }

    /// A backend's current balancing and admission rules.
    pub fn backend_policy(&self, id: BackendId) -> Option<Arc<BackendPolicy>> {
        self.backends.get(id.0).map(|b| b.policy.clone())
    }

    /// A backend's ingress-nginx upstream name, for messages.
    pub fn backend_name(&self, id: BackendId) -> Option<String> {
        self.backends.get(id.0).map(|b| b.key.to_string())
    }

    /// Sets a backend's balancing and admission rules (an Ingress's
    /// `load-balance` and friends).
    pub fn set_backend_policy(&mut self, id: BackendId, policy: Arc<BackendPolicy>) {
        if let Some(backend) = self.backends.get_mut(id.0) {
            backend.policy = policy;
        }
    }

    /// Adds a route for `rule` on `server`, unless the rule is taken.
    pub fn add_route(
        &mut self,
        server: ServerId,
        rule: PathRule,
        route: Route,
    ) -> Result<RouteId, RouteConflict> {
        let id = RouteId(self.routes.len());
        self.servers[server.0]
            .paths
            .insert(rule, id)
            .map_err(RouteConflict::Taken)?;
        self.routes.push(route);
        Ok(id)
    }

    /// Adds a Gateway API route for `rule` with conditions on `server`,
    /// after the routes with conditions the path already has (the caller
    /// adds them in precedence order); refused when an Ingress rule holds
    /// the path (every request reaching it takes the Ingress's route).
    pub fn add_guarded_route(
        &mut self,
        server: ServerId,
        rule: PathRule,
        when: Conditions,
        route: Route,
    ) -> Result<RouteId, RouteConflict> {
        let id = RouteId(self.routes.len());
        self.servers[server.0]
            .paths
            .insert_guarded(rule, when, id)
            .map_err(RouteConflict::Taken)?;
        self.routes.push(route);
        Ok(id)
    }

    /// Adds a Gateway API route for a path expression on `server`, after
    /// the expressions and routes already there (precedence order).
    pub fn add_regex_match(
        &mut self,
        server: ServerId,
        regex: PathRegex,
        when: Conditions,
        route: Route,
    ) -> RouteId {
        let id = RouteId(self.routes.len());
        self.servers[server.0].paths.insert_regex(regex, when, id);
        self.routes.push(route);
        id
    }

    /// Whether a server is in ingress-nginx's regex mode (an Ingress of
    /// the host sets `use-regex` or `rewrite-target`): its paths are
    /// expressions tried in nginx's order, and no Gateway API route can be
    /// added beside them.
    pub fn is_regex_mode(&self, server: ServerId) -> bool {
        self.servers[server.0].regex.is_some()
    }

    /// The server a host pattern already has, if any.
    pub fn existing_server(&self, host: &HostPattern) -> Option<ServerId> {
        self.hosts.get(host)
    }

    /// Adds a regex-mode route for `path` on `server`, unless another route
    /// has the same path there.
    pub fn add_regex_route(
        &mut self,
        server: ServerId,
        path: &str,
        rule: RegexPath,
        route: Route,
    ) -> Result<RouteId, RouteConflict> {
        let key = (server, path.to_owned());
        if let Some(existing) = self.regex_paths.get(&key) {
            return Err(RouteConflict::Taken(*existing));
        }
        let id = RouteId(self.routes.len());
        self.servers[server.0]
            .regex
            .get_or_insert_default()
            .push(rule, id);
        self.routes.push(route);
        self.regex_paths.insert(key, id);
        Ok(id)
    }

    /// The servers in regex mode with their paths in matching order, for
    /// compiling each one's paths into a [`RegexUnion`].
    pub fn regex_servers(&self) -> impl Iterator<Item = (ServerId, Vec<&str>)> {
        self.servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((ServerId(i), s.regex.as_ref()?.sources().collect())))
    }

    /// Matches a regex-mode server's paths with `union` (one pass instead
    /// of one per path), if it was compiled from exactly its paths in
    /// matching order; returns whether it was taken.
    pub fn set_regex_union(&mut self, server: ServerId, union: Arc<RegexUnion>) -> bool {
        self.servers
            .get_mut(server.0)
            .and_then(|s| s.regex.as_mut())
            .is_some_and(|regex| regex.set_union(union))
    }

    /// Serves `alias` with the routes of `server` (`server-alias`), unless
    /// the alias is a host of its own. Returns whether it was added.
    pub fn alias(&mut self, alias: &HostPattern, server: ServerId) -> bool {
        if self.hosts.get(alias).is_some() {
            return false;
        }
        self.hosts.insert(alias.clone(), server);
        true
    }

    /// Sets a server's `app-root`, unless one is set.
    pub fn set_app_root(&mut self, server: ServerId, root: HeaderValue) {
        self.servers[server.0].app_root.get_or_insert(root);
    }

    /// Makes `server` redirect every request to `host`
    /// (`from-to-www-redirect`), unless it redirects already.
    pub fn set_redirect_to(&mut self, server: ServerId, host: &str) {
        self.servers[server.0]
            .redirect_to
            .get_or_insert_with(|| host.into());
    }

    /// Whether a server has routes of its own (paths or a fallback).
    pub fn has_routes(&self, server: ServerId) -> bool {
        let s = &self.servers[server.0];
        s.fallback.is_some() || s.regex.is_some() || s.paths.has_rules()
    }

    /// Sets the route taken when no path of `server` matches, unless one is set.
    pub fn set_fallback(
        &mut self,
        server: ServerId,
        route: Route,
    ) -> Result<RouteId, RouteConflict> {
        if let Some(existing) = self.servers[server.0].fallback {
            return Err(RouteConflict::Taken(existing));
        }
        let id = RouteId(self.routes.len());
        self.routes.push(route);
        self.servers[server.0].fallback = Some(id);
        Ok(id)
    }

    /// Sets the route of requests that no server's path or fallback takes
    /// (`--default-backend-service`), replacing any.
    pub fn set_default_route(&mut self, route: Route) -> RouteId {
        let id = RouteId(self.routes.len());
        self.routes.push(route);
        self.default_route = Some(id);
        id
    }

    /// Sets how a server's host checks client certificates, unless an
    /// older Ingress decided it. Returns whether it was taken.
    pub fn set_client_auth(&mut self, server: ServerId, auth: HostClientAuth) -> bool {
        let slot = &mut self.servers[server.0].client_auth;
        if slot.is_some() {
            return false;
        }
        *slot = Some(auth);
        true
    }

    /// Marks a server's host as having a TLS section.
    pub fn set_tls(&mut self, server: ServerId) {
        self.servers[server.0].tls = true;
    }

    /// Serves `certificate` for `host`, unless the host has one already
    /// (first come, first served). Returns whether it was taken.
    pub fn set_certificate(&mut self, host: &HostPattern, certificate: Arc<Certificate>) -> bool {
        match self.certificates.names.entry(host.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(certificate);
                true
            }
        }
    }

    /// The certificate for server names no other certificate covers.
    pub fn set_default_certificate(&mut self, certificate: Arc<Certificate>) {
        self.certificates.default = Some(certificate);
    }

    /// Whether a default certificate is set.
    pub fn has_default_certificate(&self) -> bool {
        self.certificates.default.is_some()
    }

    /// Sets the gateway-wide settings.
    pub fn set_globals(&mut self, globals: Globals) {
        self.globals = globals;
    }

    /// Whether the server already has a fallback route.
    pub fn has_fallback(&self, server: ServerId) -> bool {
        self.servers[server.0].fallback.is_some()
    }

    /// The route a rule with exactly this host, path and kind would hold,
    /// if it is taken: the host's literal or regex-mode route for the
    /// path, else (for a `/` Prefix rule) its fallback. `None` also when no
    /// rule created the host. For joining a canary to its main route.
    pub fn find_route(
        &self,
        host: Option<&HostPattern>,
        path: &str,
        kind: PathKind,
    ) -> Option<RouteId> {
        let server = match host {
            None => ServerId::DEFAULT,
            Some(host) => self.hosts.get(host)?,
        };
        let literal = PathRule::new(kind, path)
            .ok()
            .and_then(|rule| self.servers[server.0].paths.get(&rule));
        let regex = || self.regex_paths.get(&(server, path.to_owned())).copied();
        let root = || {
            (path == "/" && kind == PathKind::Prefix)
                .then_some(self.servers[server.0].fallback)
                .flatten()
        };
        literal.or_else(regex).or_else(root)
    }

    /// Gives a route a canary (replacing any).
    pub fn set_canary(&mut self, id: RouteId, canary: Canary) {
        if let Some(route) = self.routes.get_mut(id.0) {
            route.canary = Some(Box::new(canary));
        }
    }

    /// Adds a TCP or UDP service, unless its protocol and port are taken
    /// (then returns the holder).
    pub fn add_stream(&mut self, service: StreamService) -> Result<(), StreamService> {
        if let Some(holder) = self
            .streams
            .iter()
            .find(|s| s.protocol == service.protocol && s.port == service.port)
        {
            return Err(holder.clone());
        }
        self.streams.push(service);
        Ok(())
    }

    /// Serves TLS connections for `host` (an exact name, any case) by
    /// splicing them to `backend`, unless the host has one already.
    pub fn set_passthrough(&mut self, host: &str, backend: BackendId) -> bool {
        let key: Box<str> = host.to_ascii_lowercase().into();
        if self.passthrough.contains_key(&key) {
            return false;
        }
        self.passthrough.insert(key, backend);
        true
    }

    /// Marks a backend as an ExternalName Service's: its endpoints come
    /// from resolving `name` (see the `external_name` module).
    pub fn set_external_name(&mut self, backend: BackendId, name: ExternalName) {
        if !self.external_names.iter().any(|(id, _)| *id == backend) {
            self.external_names.push((backend, name));
        }
    }

    /// A route added earlier, for naming the winner of a conflict.
    pub fn route(&self, id: RouteId) -> Option<&Route> {
        self.routes.get(id.0)
    }

    /// Finishes the table.
    pub fn build(mut self) -> RouteTable {
        let backends = self.make_backends();
        RouteTable {
            hosts: self.hosts,
            servers: self.servers.into_boxed_slice(),
            routes: self.routes.into_boxed_slice(),
            backends,
            default_route: self.default_route,
            certificates: self.certificates,
            globals: self.globals,
            inference: Box::default(),
            streams: self.streams.into_boxed_slice(),
            passthrough: self.passthrough,
            external_names: self.external_names.into_boxed_slice(),
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            adopted: self.live_serial,
        }
    }

    /// The table's backends: the live ones taken over where
    /// [`RouteTableBuilder::adopting`] gave them, new ones otherwise. An
    /// ExternalName backend keeps the DNS answers it holds.
    fn make_backends(&mut self) -> Box<[Arc<Backend>]> {
        let mut live = std::mem::take(&mut self.live);
        let mut external = vec![false; self.backends.len()];
        for (id, _) in &self.external_names {
            if let Some(e) = external.get_mut(id.0) {
                *e = true;
            }
        }
        std::mem::take(&mut self.backends)
            .into_iter()
            .zip(external)
            .map(|(spec, external)| match live.remove(&spec.key) {
                Some(old) => {
                    if !external {
                        old.update(&spec.endpoints);
                    }
                    old.set_policy(spec.policy);
                    old
                }
                None => {
                    let backend = Backend::new(spec.key, &spec.endpoints);
                    backend.set_policy(spec.policy);
                    Arc::new(backend)
                }
            })
            .collect()
    }
}

/// A backend as the builder knows it, made into a [`Backend`] (or merged
/// into the live one) when the table is built.
#[derive(Debug)]
struct BackendSpec {
    key: BackendKey,
    endpoints: EndpointUpdate,
    policy: Arc<BackendPolicy>,
}

#[cfg(test)]
mod tests;
