//! Canary Ingresses (`canary: "true"`), joined to their main routes once
//! every non-canary Ingress is compiled, as ingress-nginx's
//! `mergeAlternativeBackends` (`internal/ingress/controller/controller.go`)
//! runs after all locations exist:
//!
//! - a canary path joins the route of the same host, path (as written) and
//!   pathType (ImplementationSpecific counting as Prefix); the canary's
//!   Service becomes the route's alternative backend ([`Canary`]);
//! - a path with no such route, or whose route already proxies to the
//!   canary's own Service, serves nothing (diagnostic);
//! - one canary per route: Ingresses are taken oldest first, so the oldest
//!   canary keeps it (ingress-nginx only ever uses the first alternative
//!   backend) and the others get a diagnostic;
//! - the canary's requests keep the main route's settings, policy and
//!   admission, so its other annotations are ignored (diagnostic), except
//!   those of its own backend: `load-balance` (and the gateway's traffic
//!   annotations), `service-upstream`, `upstream-hash-by*` and the
//!   session affinity ones (ingress-nginx's documented exceptions);
//! - its hosts get no server of their own, and its TLS section and
//!   server-level annotations are ignored (ingress-nginx skips canaries in
//!   `createServers`);
//! - unlike ingress-nginx, it joins only routes of its own namespace: a
//!   tenant's canary must not take another tenant's traffic (diagnostic
//!   otherwise), unless the ConfigMap says
//!   `edge-gateway.io/allow-cross-namespace-canary: "true"`.
//!
//! Deliberately unlike ingress-nginx, a canary belongs to the route, not to
//! the main Service's upstream: ingress-nginx attaches it to the upstream,
//! so every other path routed to the same Service is split too
//! (ingress-nginx#4667, #8689).

use foldhash::HashMap;

use gateway::canary::Canary;
use gateway::host::HostPattern;
use gateway::table::{BackendId, RouteId};
use gateway::{RouteAction, RouteSource};
use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress};

use super::{Compiler, Current, PortRef, Prepared, paths};
use crate::annotations::canary::CanarySpec;
use crate::annotations::{self, Support, known};
use crate::diagnostics::Reason;
use crate::objects::{Kind, NsName, ObjectKey};

/// The annotations a canary Ingress keeps for its own backend (without
/// prefix; a trailing `*` is a prefix match).
const KEPT: [&str; 6] = [
    "canary*",
    "load-balance",
    "service-upstream",
    "upstream-hash-by*",
    "affinity*",
    "session-cookie-*",
];

impl Compiler<'_> {
    /// Joins every canary Ingress to its main routes. Call once every
    /// non-canary Ingress is compiled, before server aliases are added (an
    /// alias is not a host a canary can join).
    pub(super) fn canaries(&mut self, prepared: &[Prepared<'_>]) {
        let mut joined: HashMap<RouteId, RouteSource> = HashMap::default();
        for ingress in prepared {
            if let Some(spec) = &ingress.annotations.canary
                && ingress.annotations.refused.is_empty()
            {
                self.canary(ingress, spec, &mut joined);
            }
        }
    }

    fn canary(
        &mut self,
        prepared: &Prepared<'_>,
        spec: &CanarySpec,
        joined: &mut HashMap<RouteId, RouteSource>,
    ) {
        let id = prepared.id;
        let current = Current {
            key: ObjectKey {
                kind: Kind::Ingress,
                id: id.clone(),
            },
            source: RouteSource {
                namespace: id.namespace.as_str().into(),
                name: id.name.as_str().into(),
            },
            ingress: &prepared.ingress,
            settings: self.settings.clone(),
            policy: self.policy.clone(),
            admission: None,
            exempt_admission: None,
            denied: false,
            auth_denied: false,
            client_auth: None,
            annotations: &prepared.annotations,
        };
        for note in &spec.notes {
            self.diagnose(&current, Reason::InvalidAnnotation, note.clone());
        }
        let ignored = ignored_annotations(&prepared.ingress);
        if !ignored.is_empty() {
            let message = format!(
                "{} {} ignored on a canary Ingress: its requests use the main Ingress's settings",
                ignored.join(", "),
                if ignored.len() == 1 { "is" } else { "are" }
            );
            self.diagnose(&current, Reason::CanaryIgnoredAnnotation, message);
        }
        let Some(ingress_spec) = &prepared.ingress.spec else {
            return;
        };
        if ingress_spec.default_backend.is_some() {
            let message = "the defaultBackend of a canary Ingress is not joined to any route; \
                           only its rules' paths are"
                .to_owned();
            self.diagnose(&current, Reason::CanaryNotMerged, message);
        }
        for rule in ingress_spec.rules.iter().flatten() {
            let host = rule.host.as_deref().filter(|h| !h.is_empty());
            let pattern = match host.map(HostPattern::parse).transpose() {
                Ok(pattern) => pattern,
                Err(error) => {
                    let host = host.unwrap_or_default();
                    let message = format!("host {host:?}: {error}; rule skipped");
                    self.diagnose(&current, Reason::InvalidHost, message);
                    continue;
                }
            };
            for path in rule.http.iter().flat_map(|h| &h.paths) {
                self.canary_path(&current, spec, pattern.as_ref(), path, joined);
            }
        }
    }

    /// Joins one canary path to its main route.
    fn canary_path(
        &mut self,
        current: &Current<'_>,
        spec: &CanarySpec,
        host: Option<&HostPattern>,
        path: &HTTPIngressPath,
        joined: &mut HashMap<RouteId, RouteSource>,
    ) {
        let raw = path
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let shown = format!(
            "{}{raw} ({})",
            host.map_or_else(|| "*".to_owned(), HostPattern::as_string),
            path.path_type
        );
        let kind = match paths::path_kind(&path.path_type) {
            Ok(kind) => kind,
            Err(message) => {
                let message = format!("{shown}: {message}");
                self.diagnose(current, Reason::InvalidPathType, message);
                return;
            }
        };
        // ingress-nginx compares the location's path as written and its
        // pathType; the route's own source tells built-in routes apart.
        let main = self.builder.find_route(host, raw, kind).and_then(|id| {
            let route = self.builder.route(id)?;
            let same = route.source.is_some() && &*route.path == raw && route.path_kind == kind;
            same.then_some((id, &route.action, route.source.as_ref()))
        });
        let owner = main.and_then(|(_, _, source)| source);
        if let Some(owner) = owner
            && owner.namespace != current.source.namespace
            && !self.allow_cross_namespace_canary
        {
            let message = format!(
                "the route of {shown} belongs to Ingress {}/{}, of another namespace; a canary \
                 only splits routes of its own namespace (the ConfigMap's \
                 edge-gateway.io/allow-cross-namespace-canary allows it), so it serves nothing there",
                owner.namespace, owner.name
            );
            self.diagnose(current, Reason::CanaryCrossNamespace, message);
            return;
        }
        let main = main.map(|(id, action, _)| (id, action));
        let (route, main_backend) = match main {
            Some((id, RouteAction::Proxy(backend))) => (id, *backend),
            Some((_, RouteAction::Respond(code))) => {
                let message = format!(
                    "the route of {shown} answers {code} itself (see its Ingress's diagnostics); \
                     the canary serves nothing there"
                );
                self.diagnose(current, Reason::CanaryNotMerged, message);
                return;
            }
            None => {
                let message = format!(
                    "no non-canary Ingress routes {shown}; the canary serves nothing there"
                );
                self.diagnose(current, Reason::CanaryNotMerged, message);
                return;
            }
        };
        let Some(backend) = self.canary_backend(current, path, &shown) else {
            return;
        };
        if backend == main_backend {
            let message = format!(
                "{shown}: the canary's Service is the route's own backend; there is nothing to split"
            );
            self.diagnose(current, Reason::CanaryNotMerged, message);
            return;
        }
        if let Some(holder) = joined.get(&route) {
            if *holder != current.source {
                let message = format!(
                    "{shown} already has the canary of Ingress {}/{}, which is older; \
                     only one canary per route is used",
                    holder.namespace, holder.name
                );
                self.diagnose(current, Reason::CanaryConflict, message);
            }
            return;
        }
        let upstream = self
            .builder
            .backend_name(backend)
            .unwrap_or_default()
            .into();
        let canary = Canary {
            backend,
            upstream,
            rule: spec.rule.clone(),
            stats: None,
        };
        self.builder.set_canary(route, canary);
        joined.insert(route, current.source.clone());
    }

    /// The canary Service's backend, with its own balancing settings. A
    /// Service that is missing or has no ready endpoint is still joined:
    /// the canary takes requests once it has endpoints.
    fn canary_backend(
        &mut self,
        current: &Current<'_>,
        path: &HTTPIngressPath,
        shown: &str,
    ) -> Option<BackendId> {
        let Some(service) = &path.backend.service else {
            let message = format!("{shown}: a canary needs a Service backend; skipped");
            self.diagnose(current, Reason::UnsupportedBackend, message);
            return None;
        };
        let Some(port) = PortRef::from_backend(service.port.as_ref()) else {
            let message = format!("backend service {} names no port; skipped", service.name);
            self.diagnose(current, Reason::ServicePortNotFound, message);
            return None;
        };
        let service_id = NsName::new(current.key.id.namespace.clone(), service.name.clone());
        let cluster_ip = current.annotations.routing.service_upstream;
        let (action, problem) = self.service_backend(service_id, port, cluster_ip);
        if let Some((reason, message)) = problem {
            let message = format!("{message}; the main backend serves the canary's share");
            self.diagnose(current, reason, message);
        }
        self.claim_backend(current, &action);
        match action {
            RouteAction::Proxy(id) => Some(id),
            RouteAction::Respond(_) => None,
        }
    }
}

/// The known ingress-nginx annotations of a canary Ingress that have no
/// effect there, with their prefix.
fn ignored_annotations(ingress: &Ingress) -> Vec<String> {
    let kept = |name: &str| {
        KEPT.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *k,
        })
    };
    ingress
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter_map(|(key, _)| key.strip_prefix(annotations::PREFIX))
        .filter(|name| !kept(name))
        .filter(|name| known(name).is_some_and(|k| !matches!(k.support, Support::Refused(_))))
        .map(|name| format!("{}{name}", annotations::PREFIX))
        .collect()
}

#[cfg(test)]
mod tests {
    use gateway::canary::Canary;
    use http::{HeaderMap, HeaderValue};
    use serde_json::{Value, json};

    use super::super::{CompileOptions, Compiled, compile};
    use crate::diagnostics::Reason;
    use crate::objects::Object;
    use crate::snapshot::Snapshot;

    const P: &str = "nginx.ingress.kubernetes.io/";
    const T1: &str = "2025-01-01T00:00:00Z";
    const T2: &str = "2025-01-02T00:00:00Z";
    const T3: &str = "2025-01-03T00:00:00Z";

    fn compiled(objects: &[Value]) -> Compiled {
        let mut s = Snapshot::default();
        let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        for o in std::iter::once(&class).chain(objects) {
            s.apply(Object::from_value(o.clone()).unwrap().unwrap());
        }
        compile(&s, &CompileOptions::default())
    }

    fn service(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "m"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    }

    /// An Ingress in namespace `m` with one rule and one path.
    fn ingress(
        name: &str,
        created: &str,
        (host, path, path_type): (&str, &str, &str),
        service: &str,
        annotations: &[(&str, &str)],
    ) -> Value {
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (format!("{P}{k}"), json!(v)))
            .collect();
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": name, "namespace": "m", "creationTimestamp": created,
                            "annotations": annotations},
               "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                   {"path": path, "pathType": path_type,
                    "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}})
    }

    const CANARY: &[(&str, &str)] = &[("canary", "true"), ("canary-by-header", "x-canary")];

    /// The canary of the route a request for `host` + `path` reaches.
    fn canary_of<'c>(c: &'c Compiled, host: &str, path: &str) -> Option<&'c Canary> {
        c.table
            .lookup(Some(host), path.as_bytes())
            .and_then(|m| m.route.canary.as_deref())
    }

    fn service_of(c: &Compiled, canary: &Canary) -> String {
        c.table
            .backend(canary.backend)
            .unwrap()
            .key()
            .service
            .to_string()
    }

    fn reasons(c: &Compiled) -> Vec<(String, Reason)> {
        c.diagnostics
            .iter()
            .map(|d| (d.object.id.name.clone(), d.reason))
            .collect()
    }

    fn header(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-canary", HeaderValue::from_static(value));
        h
    }

    #[test]
    fn a_canary_joins_the_route_of_its_host_and_path() {
        let rule = ("model.test", "/api/v1/predict/7", "Prefix");
        let c = compiled(&[
            service("v1"),
            service("v2"),
            // The canary is older than its main: joining waits for every route.
            ingress("v2", T1, rule, "v2", CANARY),
            ingress("v1", T2, rule, "v1", &[]),
        ]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let m = c
            .table
            .lookup(Some("model.test"), b"/api/v1/predict/7/x")
            .unwrap();
        assert_eq!(m.route.source.as_ref().unwrap().name.as_ref(), "v1");
        let canary = m.route.canary.as_deref().unwrap();
        assert_eq!(service_of(&c, canary), "v2");
        assert_eq!(&*canary.upstream, "m-v2-80");
        assert!(canary.rule.decide_with(&header("always"), |_| 1));
        assert!(!canary.rule.decide_with(&header("never"), |_| 1));
        assert!(
            !canary.rule.decide_with(&HeaderMap::new(), |_| 1),
            "weight 0"
        );
        // Both are served (status is written for canaries too).
        assert_eq!(c.served.len(), 2);
        // The canary adds no route of its own.
        assert_eq!(
            c.table
                .routes()
                .iter()
                .filter(|r| r.source.is_some())
                .count(),
            1
        );
    }

    #[test]
    fn an_orphan_canary_serves_nothing() {
        let catch_all = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "catch-all", "namespace": "m", "creationTimestamp": T1},
            "spec": {"ingressClassName": "nginx",
                     "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}}});
        let c = compiled(&[
            service("v2"),
            service("fallback"),
            catch_all,
            ingress(
                "lonely",
                T1,
                ("only-canary.test", "/", "Prefix"),
                "v2",
                CANARY,
            ),
        ]);
        assert_eq!(
            reasons(&c),
            [("lonely".to_owned(), Reason::CanaryNotMerged)]
        );
        // No server is made for its host: the catch-all still answers.
        let m = c.table.lookup(Some("only-canary.test"), b"/").unwrap();
        assert_eq!(m.route.source.as_ref().unwrap().name.as_ref(), "catch-all");
        assert!(m.route.canary.is_none());
    }

    #[test]
    fn the_oldest_of_two_canaries_wins() {
        let rule = ("model.test", "/predict", "Prefix");
        let c = compiled(&[
            service("v1"),
            service("v2"),
            service("v3"),
            ingress("main", T1, rule, "v1", &[]),
            ingress("newer", T3, rule, "v3", CANARY),
            ingress("older", T2, rule, "v2", CANARY),
        ]);
        assert_eq!(reasons(&c), [("newer".to_owned(), Reason::CanaryConflict)]);
        let canary = canary_of(&c, "model.test", "/predict").unwrap();
        assert_eq!(service_of(&c, canary), "v2");
        assert!(c.diagnostics[0].message.contains("Ingress m/older"));
    }

    #[test]
    fn path_type_and_path_must_match_as_ingress_nginx_compares_them() {
        let c = compiled(&[
            service("v1"),
            service("v2"),
            ingress("main", T1, ("a.test", "/p", "Prefix"), "v1", &[]),
            ingress("exact", T2, ("a.test", "/p", "Exact"), "v2", CANARY),
            ingress("slash", T2, ("a.test", "/p/", "Prefix"), "v2", CANARY),
        ]);
        assert_eq!(
            reasons(&c),
            [
                ("exact".to_owned(), Reason::CanaryNotMerged),
                ("slash".to_owned(), Reason::CanaryNotMerged)
            ]
        );
        assert!(canary_of(&c, "a.test", "/p").is_none());
        // ImplementationSpecific is Prefix, as ingress-nginx's defaulting.
        let c = compiled(&[
            service("v1"),
            service("v2"),
            ingress("main", T1, ("a.test", "/p", "Prefix"), "v1", &[]),
            ingress(
                "canary",
                T2,
                ("a.test", "/p", "ImplementationSpecific"),
                "v2",
                CANARY,
            ),
        ]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert!(canary_of(&c, "a.test", "/p/x").is_some());
        // An Exact main takes an Exact canary.
        let c = compiled(&[
            service("v1"),
            service("v2"),
            ingress("main", T1, ("a.test", "/p", "Exact"), "v1", &[]),
            ingress("canary", T2, ("a.test", "/p", "Exact"), "v2", CANARY),
        ]);
        assert!(canary_of(&c, "a.test", "/p").is_some());
    }

    #[test]
    fn the_canary_keeps_only_its_backend_annotations() {
        let rule = ("a.test", "/", "Prefix");
        let mut canary_annotations = CANARY.to_vec();
        canary_annotations.extend([
            ("use-regex", "true"),
            ("ssl-redirect", "false"),
            ("load-balance", "ewma"),
        ]);
        let c = compiled(&[
            service("v1"),
            service("v2"),
            ingress("main", T1, rule, "v1", &[("proxy-read-timeout", "5")]),
            ingress("canary", T2, rule, "v2", &canary_annotations),
        ]);
        let ignored: Vec<&str> = c
            .diagnostics
            .iter()
            .filter(|d| d.reason == Reason::CanaryIgnoredAnnotation)
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(ignored.len(), 1, "{:?}", c.diagnostics);
        assert!(ignored[0].contains(&format!("{P}use-regex")));
        assert!(ignored[0].contains(&format!("{P}ssl-redirect")));
        assert!(!ignored[0].contains("load-balance"));
        let m = c.table.lookup(Some("a.test"), b"/x").unwrap();
        // The canary's use-regex does not put the host in regex mode.
        assert_eq!(m.route.path_kind, gateway::path::PathKind::Prefix);
        assert!(c.table.lookup(Some("a.test"), b"/X").is_some());
        assert_eq!(
            m.route.settings.read_timeout.as_secs(),
            5,
            "the main's settings"
        );
        let canary = m.route.canary.as_deref().unwrap();
        let policy = c.table.backend(canary.backend).unwrap().policy();
        assert_eq!(policy.algorithm, gateway::Algorithm::Ewma);
    }

    #[test]
    fn a_canary_of_the_main_service_splits_nothing() {
        let rule = ("a.test", "/", "Prefix");
        let c = compiled(&[
            service("v1"),
            ingress("main", T1, rule, "v1", &[]),
            ingress("same", T2, rule, "v1", CANARY),
        ]);
        assert_eq!(reasons(&c), [("same".to_owned(), Reason::CanaryNotMerged)]);
        assert!(canary_of(&c, "a.test", "/").is_none());
    }

    #[test]
    fn a_missing_canary_service_is_joined_and_reported() {
        let rule = ("a.test", "/", "Prefix");
        let c = compiled(&[
            service("v1"),
            ingress("main", T1, rule, "v1", &[]),
            ingress("canary", T2, rule, "not-yet", CANARY),
        ]);
        assert_eq!(
            reasons(&c),
            [("canary".to_owned(), Reason::ServiceNotFound)]
        );
        assert!(c.diagnostics[0].message.contains("the main backend serves"));
        assert!(canary_of(&c, "a.test", "/").is_some());
    }

    #[test]
    fn a_denied_main_route_takes_no_canary() {
        let rule = ("a.test", "/", "Prefix");
        let c = compiled(&[
            service("v1"),
            service("v2"),
            ingress(
                "main",
                T1,
                rule,
                "v1",
                &[("whitelist-source-range", "not-a-cidr")],
            ),
            ingress("canary", T2, rule, "v2", CANARY),
        ]);
        let canary: Vec<_> = c
            .diagnostics
            .iter()
            .filter(|d| d.object.id.name == "canary")
            .collect();
        assert_eq!(canary.len(), 1, "{:?}", c.diagnostics);
        assert_eq!(canary[0].reason, Reason::CanaryNotMerged);
        assert!(
            canary[0].message.contains("answers 503"),
            "{}",
            canary[0].message
        );
    }
}
