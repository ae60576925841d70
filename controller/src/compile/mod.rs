//! `compile()`: a pure function from the watched objects to a routing table
//! and a list of diagnostics.
//!
//! Ingresses are taken oldest first (`creationTimestamp`, then
//! namespace/name), as ingress-nginx sorts them, and every rule is first come,
//! first served: on a duplicate host + path + pathType the older Ingress
//! keeps it and the newer gets a diagnostic. A bad host, path, or backend
//! skips only that rule (or path), never the Ingress's other rules and never
//! another Ingress.

mod admission;
mod cache;
mod canary;
mod client_auth;
mod passthrough;
pub mod regex_paths;
mod response;
mod select;
mod streams;
mod tls;
mod traffic;
mod upstream_tls;

use std::sync::Arc;

use foldhash::{HashMap, HashSet};
use gateway::host::HostPattern;
use gateway::path::{PathKind, PathRule};
use gateway::policy::Policy;
use gateway::policy::admission::Admission;
use gateway::rewrite::RegexPath;
use gateway::settings::ProxySettings;
use gateway::table::{RouteConflict, ServerId};
use gateway::tls::HostClientAuth;
use gateway::{BackendKey, Route, RouteAction, RouteSource, RouteTable, RouteTableBuilder};
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressRule};

pub use crate::certs::CertCache;
pub use crate::endpoints::{PortRef, Resolved, resolve, resolve_key};
pub use crate::options::CompileOptions;
use crate::paths;
pub use admission::AdmissionCache;
pub use cache::CompileCache;
pub use client_auth::ClientAuthCache;
pub use select::selects;

use crate::annotations::{self, IngressAnnotations};
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

/// The result of a compile.
#[derive(Debug)]
pub struct Compiled {
    /// The routing table to publish.
    pub table: RouteTable,
    /// What was skipped or degraded, sorted, without duplicates.
    pub diagnostics: Vec<Diagnostic>,
    /// The Ingresses this controller serves (for status and logs).
    pub served: Vec<NsName>,
    /// The status the Gateway API objects should have.
    pub gateway_api: crate::gateway_api::GatewayApiStatus,
}

/// Compiles the routing table for `snapshot`, parsing certificates afresh
/// and judging their validity at the current time.
pub fn compile(snapshot: &Snapshot, options: &CompileOptions) -> Compiled {
    let now = jiff::Timestamp::now().as_second();
    compile_with(snapshot, options, &mut CompileCache::default(), now)
}

/// Compiles the routing table for `snapshot`, reusing what earlier
/// compiles left in `cache`; `now` (Unix seconds) judges validity.
pub fn compile_with(
    snapshot: &Snapshot,
    options: &CompileOptions,
    cache: &mut CompileCache,
    now: i64,
) -> Compiled {
    let (options, admission_defaults, config_diagnostics) =
        crate::config_map::layered(options, snapshot);
    let options = options.as_ref();
    let selected = select::Selected::new(snapshot, options);
    let mut ingresses = selected.ingresses();
    ingresses.sort_by(|(a_id, a), (b_id, b)| {
        let created = |i: &Ingress| i.metadata.creation_timestamp.clone();
        created(a).cmp(&created(b)).then_with(|| a_id.cmp(b_id))
    });

    // Annotations are parsed once; a refused Ingress is not served at all.
    let parse = |ingress: &Ingress| {
        annotations::parse_in(
            ingress.metadata.namespace.as_deref().unwrap_or("default"),
            ingress.metadata.annotations.as_ref(),
            &options.proxy,
            &options.policy,
            options.default_backend_service.is_some(),
        )
        .with_admission_defaults(&admission_defaults)
    };
    let mut prepared: Vec<Prepared<'_>> = ingresses
        .into_iter()
        .map(|(id, ingress)| Prepared {
            id,
            ingress: ingress.clone(),
            annotations: parse(ingress),
        })
        .collect();
    let plan = regex_paths::plan(
        &mut prepared,
        &options.regex_limits,
        &mut cache.regexes,
        &cache.served_versions,
        &parse,
    );
    if !plan.waiting.is_empty() {
        tracing::debug!(ingresses = ?plan.waiting, "regex paths still compiling");
    }
    let mut compiler = Compiler::new(snapshot, options, cache, now, plan.regex_hosts);
    compiler.resolved.reserve(prepared.len());
    compiler
        .no_auth_locations
        .clone_from(&admission_defaults.no_auth_locations);
    for (id, reason, message) in plan.diagnostics {
        compiler.diagnostics.push(Diagnostic {
            object: ObjectKey {
                kind: Kind::Ingress,
                id,
            },
            reason,
            message,
        });
    }
    let mut served = Vec::new();
    for ingress in &prepared {
        if compiler.ingress(ingress) {
            served.push(ingress.id.clone());
        }
    }
    compiler.canaries(&prepared);
    // The Gateway API's routes, after every Ingress: an Ingress keeps its paths.
    let gateway_api = match &options.gateway_api {
        Some(gateway_api) => crate::gateway_api::compile::compile(
            &mut compiler.builder,
            snapshot,
            gateway_api,
            &crate::gateway_api::Defaults {
                proxy: &options.proxy,
                policy: &options.policy,
            },
            &mut compiler.cache.certs,
            now,
        ),
        None => crate::gateway_api::compile::disabled(snapshot),
    };
    compiler.diagnostics.extend(gateway_api.diagnostics);
    compiler.passthrough_hosts(options.ssl_passthrough);
    compiler.streams(
        options.tcp_services.as_ref(),
        options.udp_services.as_ref(),
        &options.reserved_ports,
    );
    compiler.server_names();
    compiler.shared_client_auth();
    compiler.default_certificate(options.default_ssl_certificate.as_ref());
    compiler.default_backend_service(options.default_backend_service.as_ref());
    compiler.builtin_routes();
    compiler.builder.set_globals(options.globals.clone());
    regex_paths::unions(&mut compiler.builder, &mut compiler.cache.regexes);
    compiler.cache.certs.sweep();
    compiler.cache.admissions.sweep();
    compiler.cache.regexes.sweep();
    compiler.cache.remember_served(&prepared, &served);
    compiler.cache.client_auths.sweep();
    let mut diagnostics = compiler.diagnostics;
    if let Some(prefix) = &options.annotations_prefix {
        for d in &mut diagnostics {
            d.message = annotations::prefix::spelled(&d.message, prefix);
        }
    }
    diagnostics.extend(config_diagnostics);
    diagnostics.sort();
    diagnostics.dedup();
    Compiled {
        table: compiler.builder.build(),
        diagnostics,
        served,
        gateway_api: gateway_api.status,
    }
}

/// A selected Ingress with its parsed annotations.
struct Prepared<'s> {
    id: &'s NsName,
    ingress: Arc<Ingress>,
    annotations: IngressAnnotations,
}

/// The state of one compile.
struct Compiler<'s> {
    snapshot: &'s Snapshot,
    builder: RouteTableBuilder,
    diagnostics: Vec<Diagnostic>,
    settings: Arc<ProxySettings>,
    policy: Arc<Policy>,
    cache: &'s mut CompileCache,
    now: i64,
    /// Hosts whose TLS section an (older) Ingress already decided.
    tls_decided: HashSet<ServerId>,
    /// Hosts some Ingress already defined; the first one decides the host's
    /// default backend, as ingress-nginx's `createServers` does.
    hosts_seen: HashSet<ServerId>,
    /// Backend resolutions, once per Service port (and address mode).
    resolved: HashMap<(NsName, PortRef, bool), Resolution>,
    /// Hosts in regex mode.
    regex_hosts: HashSet<Option<HostPattern>>,
    /// `from-to-www-redirect` requests: (the other host, the host), added
    /// after every Ingress so a real host is never shadowed.
    www: Vec<(String, String)>,
    /// `server-alias` names, added after every Ingress likewise.
    aliases: Vec<(HostPattern, ServerId)>,
    /// Which Ingress decided each backend's balancing.
    claims: traffic::Claims,
    /// `no-auth-locations`: Ingress paths that skip authentication.
    no_auth_locations: Vec<String>,
    /// Whether canaries may join routes of another namespace.
    allow_cross_namespace_canary: bool,
    /// Which Ingress decided each host's client certificates.
    client_auth_owners: HashMap<ServerId, NsName>,
    /// The namespaces whose Ingresses route each host, and the host's name.
    host_namespaces: HashMap<ServerId, (String, HashSet<String>)>,
    /// `ssl-passthrough` hosts, with the Ingress asking, oldest first.
    passthrough: Vec<(HostPattern, ObjectKey)>,
    /// `global-allowed-response-headers`.
    allowed_response_headers: Vec<String>,
}

/// A rule's path, literal or in regex mode.
enum Rule {
    Literal(PathRule),
    Regex(RegexPath),
}

/// A backend's action and the configuration problem found resolving it.
type Resolution = (RouteAction, Option<(Reason, String)>);

/// The Ingress being compiled, for naming it in routes and diagnostics.
struct Current<'i> {
    key: ObjectKey,
    source: RouteSource,
    ingress: &'i Ingress,
    /// Its proxy settings: the defaults with its annotations applied.
    settings: Arc<ProxySettings>,
    /// Its policy: the defaults with its annotations applied.
    policy: Arc<Policy>,
    /// Its admission checks (CORS, limits, address lists, authentication).
    admission: Option<Arc<Admission>>,
    /// The checks of its routes under `no-auth-locations` (no
    /// authentication).
    exempt_admission: Option<Arc<Admission>>,
    /// Whether its routes answer 503 (an unusable access or auth annotation).
    denied: bool,
    /// Whether its routes under global auth answer 503 (the ConfigMap's
    /// `global-auth-*` cannot be used); those under `no-auth-locations`
    /// serve.
    auth_denied: bool,
    /// Its client-certificate rule (`auth-tls-*`), for the hosts it decides.
    client_auth: Option<HostClientAuth>,
    /// Its annotations.
    annotations: &'i IngressAnnotations,
}

impl<'s> Compiler<'s> {
    fn new(
        snapshot: &'s Snapshot,
        options: &CompileOptions,
        cache: &'s mut CompileCache,
        now: i64,
        regex_hosts: HashSet<Option<HostPattern>>,
    ) -> Self {
        let claims = traffic::Claims::new(&options.traffic);
        let mut builder = RouteTableBuilder::default().with_backend_policy(claims.defaults());
        if let Some(live) = cache.live.take() {
            builder = builder.adopting(&live);
        }
        Self {
            snapshot,
            builder,
            diagnostics: Vec::new(),
            settings: Arc::new(options.proxy.clone()),
            policy: Arc::new(options.policy.clone()),
            cache,
            now,
            tls_decided: HashSet::default(),
            hosts_seen: HashSet::default(),
            resolved: HashMap::default(),
            regex_hosts,
            www: Vec::new(),
            aliases: Vec::new(),
            claims,
            no_auth_locations: Vec::new(),
            allow_cross_namespace_canary: options.allow_cross_namespace_canary,
            client_auth_owners: HashMap::default(),
            host_namespaces: HashMap::default(),
            passthrough: Vec::new(),
            allowed_response_headers: options.allowed_response_headers.clone(),
        }
    }

    fn diagnose(&mut self, current: &Current<'_>, reason: Reason, message: String) {
        self.diagnostics.push(Diagnostic {
            object: current.key.clone(),
            reason,
            message,
        });
    }

    /// Compiles one Ingress; `false` when it is refused and not served.
    fn ingress(&mut self, prepared: &Prepared<'_>) -> bool {
        let (id, ingress, parsed) = (prepared.id, &*prepared.ingress, &prepared.annotations);
        let mut current = Current {
            key: ObjectKey {
                kind: Kind::Ingress,
                id: id.clone(),
            },
            source: RouteSource {
                namespace: id.namespace.as_str().into(),
                name: id.name.as_str().into(),
            },
            ingress,
            settings: if parsed.customized {
                Arc::new(parsed.proxy.clone())
            } else {
                self.settings.clone()
            },
            policy: if parsed.customized {
                Arc::new(parsed.policy.clone())
            } else {
                self.policy.clone()
            },
            admission: None,
            exempt_admission: None,
            denied: false,
            auth_denied: false,
            client_auth: None,
            annotations: parsed,
        };
        for error in &parsed.errors {
            self.diagnose(
                &current,
                Reason::InvalidAnnotation,
                format!(
                    "{}: {:?} {}; the default is used",
                    error.key, error.value, error.message
                ),
            );
        }
        for key in &parsed.unknown {
            self.diagnose(
                &current,
                Reason::UnknownAnnotation,
                format!("{key} is not an ingress-nginx annotation this gateway knows; ignored"),
            );
        }
        if !parsed.refused.is_empty() {
            self.diagnose(
                &current,
                Reason::RefusedAnnotation,
                format!(
                    "{} carries raw nginx configuration, which is never applied; the Ingress is not served",
                    parsed.refused.join(", ")
                ),
            );
            return false;
        }
        if parsed.canary.is_some() {
            // Joined to its main routes once they all exist (canary.rs).
            return true;
        }
        self.admission(&mut current, id);
        self.upstream_tls(&mut current, id);
        self.client_auth(&mut current, id);
        self.custom_headers(&mut current);
        let Some(spec) = &ingress.spec else {
            return true;
        };
        let rules = spec.rules.as_deref().unwrap_or(&[]);
        if rules.is_empty()
            && let Some(default) = &spec.default_backend
        {
            self.default_backend(&current, ServerId::DEFAULT, "", default, true);
        }
        for rule in rules {
            self.rule(&current, rule);
        }
        true
    }

    /// Adds the `from-to-www-redirect` hosts and `server-alias` names, once
    /// every Ingress defined its hosts: neither may shadow a real host.
    fn server_names(&mut self) {
        for (other, host) in std::mem::take(&mut self.www) {
            let Ok(pattern) = HostPattern::parse(&other) else {
                continue;
            };
            let server = self.builder.server(Some(&pattern));
            if !self.builder.has_routes(server) {
                self.builder.set_redirect_to(server, &host);
            }
        }
        for (alias, server) in std::mem::take(&mut self.aliases) {
            self.builder.alias(&alias, server);
        }
    }

    /// Sets a server's fallback route to an Ingress `defaultBackend`.
    /// `catch_all`: the rule-less case, where a second claimant is worth a
    /// diagnostic (for hosts, the first Ingress silently decides).
    fn default_backend(
        &mut self,
        current: &Current<'_>,
        server: ServerId,
        host: &str,
        backend: &IngressBackend,
        catch_all: bool,
    ) {
        let Some(action) = self.backend(current, backend) else {
            return;
        };
        let route = self.route(current, host, "/", PathKind::Prefix, action);
        if let Err(RouteConflict::Taken(holder)) = self.builder.set_fallback(server, route)
            && catch_all
        {
            let holder = self.describe(holder);
            self.diagnose(
                current,
                Reason::DefaultBackendConflict,
                format!("the default backend is already set by {holder}"),
            );
        }
    }

    fn rule(&mut self, current: &Current<'_>, rule: &IngressRule) {
        let host = rule.host.as_deref().filter(|h| !h.is_empty());
        let pattern = match host.map(HostPattern::parse) {
            None => None,
            Some(Ok(pattern)) => Some(pattern),
            Some(Err(error)) => {
                let host = host.unwrap_or_default();
                self.diagnose(
                    current,
                    Reason::InvalidHost,
                    format!("host {host:?}: {error}; rule skipped"),
                );
                return;
            }
        };
        let (server, host_label) = match &pattern {
            None => (ServerId::DEFAULT, String::new()),
            Some(pattern) => {
                let server = self.builder.server(Some(pattern));
                self.tls(current, server, pattern);
                (server, pattern.as_string())
            }
        };
        self.host_client_auth(current, server, &host_label);
        self.host_namespaces
            .entry(server)
            .or_insert_with(|| (host_label.clone(), HashSet::default()))
            .1
            .insert(current.key.id.namespace.clone());
        let routing = &current.annotations.routing;
        if routing.ssl_passthrough
            && let Some(pattern) = &pattern
        {
            self.passthrough
                .push((pattern.clone(), current.key.clone()));
        }
        if let Some(root) = &routing.app_root {
            self.builder.set_app_root(server, root.clone());
        }
        if let Some(HostPattern::Exact(name)) = &pattern {
            if routing.from_to_www {
                let other = match name.strip_prefix("www.") {
                    Some(bare) => bare.to_owned(),
                    None => format!("www.{name}"),
                };
                self.www.push((other, name.to_string()));
            }
            self.aliases
                .extend(routing.server_alias.iter().map(|a| (a.clone(), server)));
        }
        if server != ServerId::DEFAULT && self.hosts_seen.insert(server) {
            let default = current
                .ingress
                .spec
                .as_ref()
                .and_then(|s| s.default_backend.as_ref());
            if let Some(default) = default {
                self.default_backend(current, server, &host_label, default, false);
            }
        }
        let paths = rule.http.as_ref().map_or(&[][..], |h| &h.paths);
        for path in paths {
            self.path(current, server, &host_label, path);
        }
    }

    fn path(
        &mut self,
        current: &Current<'_>,
        server: ServerId,
        host: &str,
        path: &HTTPIngressPath,
    ) {
        let raw = path
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let shown = if host.is_empty() { "*" } else { host };
        let kind = match paths::path_kind(&path.path_type) {
            Ok(kind) => kind,
            Err(message) => {
                self.diagnose(
                    current,
                    Reason::InvalidPathType,
                    format!("{shown}{raw}: {message}"),
                );
                return;
            }
        };
        let host_key = (!host.is_empty())
            .then(|| HostPattern::parse(host).ok())
            .flatten();
        let regex_mode = self.regex_hosts.contains(&host_key);
        let rule = paths::validate(&path.path_type, raw).and_then(|()| {
            if regex_mode {
                self.cache.regexes.path(raw).map(Rule::Regex)
            } else {
                PathRule::new(kind, raw)
                    .map(Rule::Literal)
                    .map_err(|e| e.to_string())
            }
        });
        let rule = match rule {
            Ok(rule) => rule,
            Err(message) => {
                self.diagnose(
                    current,
                    Reason::InvalidPath,
                    format!("path {raw:?} on {shown}: {message}; path skipped"),
                );
                return;
            }
        };
        let rewrite = match &current.annotations.routing.rewrite_target {
            None => None,
            Some(target) => {
                match self.cache.regexes.rewrite(raw, target) {
                    Ok(rewrite) => Some(rewrite),
                    Err(error) => {
                        self.diagnose(
                        current,
                        Reason::InvalidAnnotation,
                        format!("{}rewrite-target: {target:?} for path {raw:?}: {error}; path skipped", annotations::PREFIX),
                    );
                        return;
                    }
                }
            }
        };
        let Some(action) = self.backend(current, &path.backend) else {
            return;
        };
        let mut route = self.route(current, host, raw, kind, action);
        route.rewrite = rewrite;
        let added = match rule {
            Rule::Literal(rule) => self.builder.add_route(server, rule, route),
            Rule::Regex(rule) => self.builder.add_regex_route(server, raw, rule, route),
        };
        if let Err(RouteConflict::Taken(holder)) = added {
            let holder = self.describe(holder);
            self.diagnose(
                current,
                Reason::PathConflict,
                format!(
                    "{shown}{raw} ({}) is already routed by {holder}, which is older; path skipped",
                    path.path_type
                ),
            );
        }
    }

    /// Routes the requests no rule takes to `--default-backend-service`
    /// (the Service's first port, as ingress-nginx's `getDefaultUpstream`).
    /// The route has no Ingress: it is counted and logged as ingress-nginx's
    /// default backend. A missing Service leaves the built-in 404.
    fn default_backend_service(&mut self, service: Option<&NsName>) {
        let Some(id) = service else { return };
        let first_port = self
            .snapshot
            .service(id)
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .map(|p| p.port);
        let Some(port) = first_port else {
            self.diagnostics.push(Diagnostic {
                object: ObjectKey {
                    kind: Kind::Service,
                    id: id.clone(),
                },
                reason: Reason::ServiceNotFound,
                message: "--default-backend-service: service not found (or has no port); requests that match no rule get the built-in 404".to_owned(),
            });
            return;
        };
        let (action, _) = self.service_backend(id.clone(), PortRef::Number(port), false);
        let route = self.built_in_route("/", action);
        self.builder.set_default_route(route);
    }

    /// A route no Ingress defines: host-less, a Prefix path, the global
    /// settings and policy.
    fn built_in_route(&self, path: &str, action: RouteAction) -> Route {
        Route {
            source: None,
            host: "".into(),
            path: path.into(),
            path_kind: PathKind::Prefix,
            action,
            settings: self.settings.clone(),
            policy: self.policy.clone(),
            admission: None,
            stats: None,
            rewrite: None,
            fallback: None,
            canary: None,
            filters: None,
        }
    }

    /// The action for an Ingress backend: its Service port's backend.
    fn backend(&mut self, current: &Current<'_>, backend: &IngressBackend) -> Option<RouteAction> {
        let Some(service) = &backend.service else {
            self.diagnose(
                current,
                Reason::UnsupportedBackend,
                "only Service backends are supported; resource backend skipped".to_owned(),
            );
            return None;
        };
        let Some(port) = PortRef::from_backend(service.port.as_ref()) else {
            self.diagnose(
                current,
                Reason::ServicePortNotFound,
                format!("backend service {} names no port; skipped", service.name),
            );
            return None;
        };
        let service_id = NsName::new(current.key.id.namespace.clone(), service.name.clone());
        let (action, problem) = self.service_backend(
            service_id,
            port,
            current.annotations.routing.service_upstream,
        );
        if let Some((reason, message)) = problem {
            self.diagnose(current, reason, format!("{message}; requests get 503"));
        }
        self.claim_backend(current, &action);
        Some(action)
    }

    /// The backend of a Service port, resolved once per compile.
    fn service_backend(
        &mut self,
        service_id: NsName,
        port: PortRef,
        cluster_ip: bool,
    ) -> Resolution {
        let cache_key = (service_id, port, cluster_ip);
        if let Some(done) = self.resolved.get(&cache_key) {
            return done.clone();
        }
        let (service_id, port, _) = &cache_key;
        let key = BackendKey {
            namespace: service_id.namespace.as_str().into(),
            service: service_id.name.as_str().into(),
            port: port.as_key().into(),
            cluster_ip,
        };
        let resolved = resolve_key(self.snapshot, &key);
        let id = self.builder.backend(key, &resolved.update);
        if let Some(name) = resolved.external {
            self.builder.set_external_name(id, name);
        }
        let action = RouteAction::Proxy(id);
        let done = (action, resolved.problem);
        self.resolved.insert(cache_key, done.clone());
        done
    }

    /// The `default-backend` annotation's Service (its first port), as the
    /// route's fallback backend.
    fn annotation_fallback(&mut self, current: &Current<'_>) -> Option<gateway::table::BackendId> {
        let name = current.annotations.routing.default_backend.as_ref()?;
        let service_id = NsName::new(current.key.id.namespace.clone(), name.clone());
        let first_port = self
            .snapshot
            .service(&service_id)
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .map(|p| p.port);
        let Some(port) = first_port else {
            self.diagnose(
                current,
                Reason::ServiceNotFound,
                format!(
                    "{}default-backend: service {service_id} not found (or has no port)",
                    annotations::PREFIX
                ),
            );
            return None;
        };
        match self.service_backend(service_id, PortRef::Number(port), false) {
            (RouteAction::Proxy(id), _) => Some(id),
            _ => None,
        }
    }

    fn route(
        &mut self,
        current: &Current<'_>,
        host: &str,
        path: &str,
        kind: PathKind,
        action: RouteAction,
    ) -> Route {
        let exempt = self.no_auth(path);
        let action = if current.denied || (current.auth_denied && !exempt) {
            RouteAction::Respond(503)
        } else {
            action
        };
        let admission = if exempt {
            &current.exempt_admission
        } else {
            &current.admission
        };
        Route {
            source: Some(current.source.clone()),
            host: host.into(),
            path: path.into(),
            path_kind: kind,
            action,
            settings: current.settings.clone(),
            policy: current.policy.clone(),
            admission: admission.clone(),
            stats: None,
            rewrite: None,
            fallback: self.annotation_fallback(current),
            canary: None,
            filters: None,
        }
    }

    /// Names the Ingress holding a route, for conflict messages.
    fn describe(&self, holder: gateway::table::RouteId) -> String {
        match self.builder.route(holder).and_then(|r| r.source.as_ref()) {
            Some(source) => format!("Ingress {}/{}", source.namespace, source.name),
            None => "a built-in route".to_owned(),
        }
    }

    /// ingress-nginx's default server answers `/healthz` with 200 unless an
    /// Ingress routes that path itself.
    fn builtin_routes(&mut self) {
        let Ok(rule) = PathRule::new(PathKind::Prefix, "/healthz") else {
            return;
        };
        let route = self.built_in_route("/healthz", RouteAction::Respond(200));
        // Taken means an Ingress routes /healthz itself, which is its right.
        let _ = self.builder.add_route(ServerId::DEFAULT, rule, route);
    }
}

#[cfg(test)]
mod fail_closed_tests;
#[cfg(test)]
mod gateway_api_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
