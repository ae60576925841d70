//! Building a [`RouteTable`]: rules in precedence order, conflicts
//! reported to the caller, backends made (or taken over from the live
//! table) when the table is finished.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::RandomState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::HeaderValue;

use super::route::Route;
use super::{CertIndex, RouteTable, Server, external_flags};
use crate::backend::ExternalName;
use crate::backend::balance::BackendPolicy;
use crate::backend::{Backend, BackendKey, EndpointUpdate};
use crate::canary::Canary;
use crate::host::{HostIndex, HostPattern};
use crate::ids::{BackendId, RouteId, ServerId};
use crate::matches::Conditions;
use crate::path::{PathKind, PathRegex, PathRule};
use crate::policy::Globals;
use crate::rewrite::{RegexPath, RegexUnion};
use crate::stream_services::StreamService;
use crate::tls::{Certificate, HostClientAuth};

/// Where [`RouteTable`] serials come from.
static SERIALS: AtomicU64 = AtomicU64::new(0);

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
        let external = external_flags(&self.external_names, self.backends.len());
        std::mem::take(&mut self.backends)
            .into_iter()
            .zip(external)
            .map(|(spec, external)| match live.remove(&spec.key) {
                Some(old) => {
                    old.take_over((!external).then_some(&spec.endpoints), spec.policy);
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
