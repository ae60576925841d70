//! `compile()`: a pure function from the watched objects to a routing table
//! and a list of diagnostics.
//!
//! Ingresses are taken oldest first (`creationTimestamp`, then
//! namespace/name), as ingress-nginx sorts them, and every rule is first come,
//! first served: on a duplicate host + path + pathType the older Ingress
//! keeps it and the newer gets a diagnostic. A bad host, path, or backend
//! skips only that rule (or path), never the Ingress's other rules and never
//! another Ingress.

mod endpoints;
pub(crate) mod paths;
mod tls;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gateway::host::HostPattern;
use gateway::path::{PathKind, PathRule};
use gateway::policy::{Globals, Policy};
use gateway::settings::ProxySettings;
use gateway::table::{RouteConflict, ServerId};
use gateway::{BackendKey, Route, RouteAction, RouteSource, RouteTable, RouteTableBuilder};
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressBackend, IngressRule};

pub use endpoints::{PortRef, Resolved, resolve};
pub use tls::CertCache;

use crate::annotations;
use crate::class::{ClassOptions, is_ours};
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

/// Everything `compile()` needs besides the objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Which Ingresses are ours.
    pub class: ClassOptions,
    /// `--watch-namespace`: only Ingresses of this namespace (all if `None`).
    pub watch_namespace: Option<String>,
    /// Proxy settings every route starts from.
    pub proxy: ProxySettings,
    /// Policy every route starts from.
    pub policy: Policy,
    /// Gateway-wide settings.
    pub globals: Globals,
    /// `--default-ssl-certificate`: the Secret served to names no Ingress covers.
    pub default_ssl_certificate: Option<NsName>,
}

/// The result of a compile.
#[derive(Debug)]
pub struct Compiled {
    /// The routing table to publish.
    pub table: RouteTable,
    /// What was skipped or degraded, sorted, without duplicates.
    pub diagnostics: Vec<Diagnostic>,
    /// The Ingresses this controller serves (for status and logs).
    pub served: Vec<NsName>,
}

/// Compiles the routing table for `snapshot`, parsing certificates afresh
/// and judging their validity at the current time.
pub fn compile(snapshot: &Snapshot, options: &CompileOptions) -> Compiled {
    let now = jiff::Timestamp::now().as_second();
    compile_with(snapshot, options, &mut CertCache::default(), now)
}

/// Compiles the routing table for `snapshot`, reusing certificates parsed
/// by earlier compiles from `certs`; `now` (Unix seconds) judges validity.
pub fn compile_with(
    snapshot: &Snapshot,
    options: &CompileOptions,
    certs: &mut CertCache,
    now: i64,
) -> Compiled {
    let mut ingresses: Vec<(&NsName, &Ingress)> = snapshot
        .ingresses()
        .filter(|(id, _)| {
            options
                .watch_namespace
                .as_deref()
                .is_none_or(|ns| id.namespace == ns)
        })
        .filter(|(_, ingress)| is_ours(ingress, snapshot, &options.class))
        .map(|(id, ingress)| (id, ingress.as_ref()))
        .collect();
    ingresses.sort_by(|(a_id, a), (b_id, b)| {
        let created = |i: &Ingress| i.metadata.creation_timestamp.clone();
        created(a).cmp(&created(b)).then_with(|| a_id.cmp(b_id))
    });

    let mut compiler = Compiler::new(snapshot, options, certs, now);
    for (id, ingress) in &ingresses {
        compiler.ingress(id, ingress);
    }
    compiler.default_certificate(options.default_ssl_certificate.as_ref());
    compiler.builtin_routes();
    compiler.builder.set_globals(options.globals.clone());
    compiler.certs.sweep();
    let mut diagnostics = compiler.diagnostics;
    diagnostics.sort();
    diagnostics.dedup();
    Compiled {
        table: compiler.builder.build(),
        diagnostics,
        served: ingresses.into_iter().map(|(id, _)| id.clone()).collect(),
    }
}

/// The state of one compile.
struct Compiler<'s> {
    snapshot: &'s Snapshot,
    builder: RouteTableBuilder,
    diagnostics: Vec<Diagnostic>,
    settings: Arc<ProxySettings>,
    policy: Arc<Policy>,
    certs: &'s mut CertCache,
    now: i64,
    /// Hosts whose TLS section an (older) Ingress already decided.
    tls_decided: HashSet<ServerId>,
    /// Hosts some Ingress already defined; the first one decides the host's
    /// default backend, as ingress-nginx's `createServers` does.
    hosts_seen: HashSet<ServerId>,
    /// Backend resolutions, once per Service port.
    resolved: HashMap<(NsName, PortRef), Resolution>,
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
}

impl<'s> Compiler<'s> {
    fn new(
        snapshot: &'s Snapshot,
        options: &CompileOptions,
        certs: &'s mut CertCache,
        now: i64,
    ) -> Self {
        Self {
            snapshot,
            builder: RouteTableBuilder::default(),
            diagnostics: Vec::new(),
            settings: Arc::new(options.proxy.clone()),
            policy: Arc::new(options.policy.clone()),
            certs,
            now,
            tls_decided: HashSet::new(),
            hosts_seen: HashSet::new(),
            resolved: HashMap::new(),
        }
    }

    fn diagnose(&mut self, current: &Current<'_>, reason: Reason, message: String) {
        self.diagnostics.push(Diagnostic {
            object: current.key.clone(),
            reason,
            message,
        });
    }

    fn ingress(&mut self, id: &NsName, ingress: &Ingress) {
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
            settings: self.settings.clone(),
            policy: self.policy.clone(),
        };
        let annotations = ingress.metadata.annotations.as_ref();
        let (settings, mut errors) = annotations::proxy_settings(&self.settings, annotations);
        let (policy, policy_errors) = annotations::policy(&self.policy, annotations);
        errors.extend(policy_errors);
        for error in errors {
            self.diagnose(
                &current,
                Reason::InvalidAnnotation,
                format!(
                    "{}: {:?} {}; the default is used",
                    error.key, error.value, error.message
                ),
            );
        }
        if settings != *self.settings {
            current.settings = Arc::new(settings);
        }
        if policy != *self.policy {
            current.policy = Arc::new(policy);
        }
        let Some(spec) = &ingress.spec else { return };
        let rules = spec.rules.as_deref().unwrap_or(&[]);
        if rules.is_empty()
            && let Some(default) = &spec.default_backend
        {
            self.default_backend(&current, ServerId::DEFAULT, "", default, true);
        }
        for rule in rules {
            self.rule(&current, rule);
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
        let (server, host_label) = match host.map(HostPattern::parse) {
            None => (ServerId::DEFAULT, String::new()),
            Some(Ok(pattern)) => {
                let server = self.builder.server(Some(&pattern));
                self.tls(current, server, &pattern);
                (server, pattern.as_string())
            }
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
        let rule = paths::validate(&path.path_type, raw)
            .and_then(|()| PathRule::new(kind, raw).map_err(|e| e.to_string()));
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
        let Some(action) = self.backend(current, &path.backend) else {
            return;
        };
        let route = self.route(current, host, raw, kind, action);
        if let Err(RouteConflict::Taken(holder)) = self.builder.add_route(server, rule, route) {
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

    /// Decides a host's TLS from this Ingress's TLS section, unless an
    /// older Ingress decided it.
    fn tls(&mut self, current: &Current<'_>, server: ServerId, host: &HostPattern) {
        let entries = current
            .ingress
            .spec
            .as_ref()
            .and_then(|s| s.tls.as_deref())
            .unwrap_or(&[]);
        if entries.is_empty() || self.tls_decided.contains(&server) {
            return;
        }
        let namespace = &current.key.id.namespace;
        match tls::host_tls(
            self.certs,
            self.snapshot,
            namespace,
            entries,
            host,
            self.now,
        ) {
            tls::HostTls::None => return,
            tls::HostTls::DefaultCertificate(problem) => {
                if let Some(problem) = problem {
                    let host = host.as_string();
                    self.diagnose(
                        current,
                        Reason::InvalidCertificate,
                        format!("{problem}; {host} is served with the default certificate"),
                    );
                }
            }
            tls::HostTls::Certificate(cert) => {
                self.builder.set_certificate(host, cert);
            }
        }
        self.builder.set_tls(server);
        self.tls_decided.insert(server);
    }

    /// Serves `--default-ssl-certificate` to names no Ingress covers.
    fn default_certificate(&mut self, secret: Option<&NsName>) {
        let Some(id) = secret else { return };
        let problem = match self.certs.get(self.snapshot, id) {
            Ok(cert) if !cert.is_expired_at(self.now) => {
                self.builder.set_default_certificate(cert);
                return;
            }
            Ok(_) => "the certificate is not valid now".to_owned(),
            Err(message) => message,
        };
        self.diagnostics.push(Diagnostic {
            object: ObjectKey {
                kind: Kind::Secret,
                id: id.clone(),
            },
            reason: Reason::InvalidCertificate,
            message: format!(
                "--default-ssl-certificate: {problem}; the built-in certificate is served"
            ),
        });
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
        let cache_key = (service_id, port);
        let (action, problem) = match self.resolved.get(&cache_key) {
            Some(done) => done.clone(),
            None => {
                let (service_id, port) = &cache_key;
                let resolved = resolve(self.snapshot, service_id, port);
                let key = BackendKey {
                    namespace: service_id.namespace.as_str().into(),
                    service: service_id.name.as_str().into(),
                    port: port.as_key().into(),
                };
                let action = RouteAction::Proxy(self.builder.backend(key, &resolved.update));
                let done = (action, resolved.problem);
                self.resolved.insert(cache_key, done.clone());
                done
            }
        };
        if let Some((reason, message)) = problem {
            self.diagnose(current, reason, format!("{message}; requests get 503"));
        }
        Some(action)
    }

    fn route(
        &self,
        current: &Current<'_>,
        host: &str,
        path: &str,
        kind: PathKind,
        action: RouteAction,
    ) -> Route {
        Route {
            source: Some(current.source.clone()),
            host: host.into(),
            path: path.into(),
            path_kind: kind,
            action,
            settings: current.settings.clone(),
            policy: current.policy.clone(),
            stats: None,
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
        let route = Route {
            source: None,
            host: "".into(),
            path: "/healthz".into(),
            path_kind: PathKind::Prefix,
            action: RouteAction::Respond(200),
            settings: self.settings.clone(),
            policy: self.policy.clone(),
            stats: None,
        };
        // Taken means an Ingress routes /healthz itself, which is its right.
        let _ = self.builder.add_route(ServerId::DEFAULT, rule, route);
    }
}

#[cfg(test)]
mod tests;
