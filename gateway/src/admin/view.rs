//! The live configuration view (`--enable-configuration-view`): the table
//! being served, as JSON, read-only, the way operators used `nginx -T` and
//! `kubectl ingress-nginx backends`.
//!
//! - `GET /configuration`: routes (host, path, Ingress, what they do),
//!   backends with their ready endpoints and in-flight counts, and
//!   certificates (names, validity, Secret; never keys);
//! - `GET /configuration/backends`: the backends alone in the shape of
//!   ingress-nginx's `/configuration/backends` (`name`, `endpoints` of
//!   `address` and `port`), for scripts written against it.
//!
//! Policies are not shown: their settings may hold credentials (an
//! `auth-url` with a password, basic-auth users). At most [`MAX_ITEMS`]
//! routes, backends and endpoints per backend are listed; `truncated` says
//! when more exist.

use serde_json::{Value, json};

use crate::backend::Backend;
use crate::table::{Route, RouteAction, RouteTable};

/// The most routes, backends, and endpoints per backend listed.
pub const MAX_ITEMS: usize = 10_000;

/// The whole view.
pub fn configuration(table: &RouteTable) -> Value {
    let routes = table.routes();
    let backends = table.backends();
    let certificates: Vec<Value> = table
        .certificates()
        .take(MAX_ITEMS)
        .map(|(host, cert)| {
            json!({
                "host": host,
                "names": cert.names(),
                "subject": cert.subject(),
                "notAfter": cert.not_after(),
                "secret": cert.source().map(|(ns, name)| format!("{ns}/{name}")),
            })
        })
        .collect();
    json!({
        "routes": routes.iter().take(MAX_ITEMS).map(|r| route(table, r)).collect::<Vec<_>>(),
        "backends": backends.iter().take(MAX_ITEMS).map(|b| backend(b)).collect::<Vec<_>>(),
        "certificates": certificates,
        "truncated": routes.len() > MAX_ITEMS
            || backends.len() > MAX_ITEMS
            || backends.iter().any(|b| b.endpoints().endpoints().len() > MAX_ITEMS),
    })
}

/// The backends in the shape of ingress-nginx's `/configuration/backends`.
pub fn backends(table: &RouteTable) -> Value {
    let list: Vec<Value> = table
        .backends()
        .iter()
        .take(MAX_ITEMS)
        .map(|b| {
            let key = b.key();
            json!({
                "name": b.name(),
                "service": {"namespace": &*key.namespace, "name": &*key.service},
                "port": &*key.port,
                "endpoints": b.endpoints().endpoints().iter().take(MAX_ITEMS).map(|e| json!({
                    "address": e.addr().ip().to_string(),
                    "port": e.addr().port().to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(list)
}

fn route(table: &RouteTable, route: &Route) -> Value {
    let backend_name = |id| table.backend(id).map(|b| b.name().to_owned());
    let action = match route.action {
        RouteAction::Proxy(id) => json!({"backend": backend_name(id)}),
        RouteAction::Respond(status) => json!({"status": status}),
    };
    json!({
        "ingress": route.source.as_ref().map(|s| format!("{}/{}", s.namespace, s.name)),
        "host": &*route.host,
        "path": &*route.path,
        "pathType": route.path_kind.as_str(),
        "action": action,
        "rewrite": route.rewrite.is_some(),
        "canary": route.canary.as_ref().map(|c| &*c.upstream),
        "fallback": route.fallback.and_then(backend_name),
    })
}

fn backend(backend: &Backend) -> Value {
    let set = backend.endpoints();
    let key = backend.key();
    json!({
        "name": backend.name(),
        "namespace": &*key.namespace,
        "service": &*key.service,
        "port": &*key.port,
        "serviceUpstream": key.cluster_ip,
        "serviceFound": set.service_found(),
        "loadBalance": backend.policy().algorithm.as_str(),
        "endpoints": set.endpoints().iter().take(MAX_ITEMS).map(|e| json!({
            "address": e.addr().to_string(),
            "inFlight": e.in_flight(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{BackendKey, EndpointUpdate};
    use crate::host::HostPattern;
    use crate::path::{PathKind, PathRule};
    use crate::settings::ProxySettings;
    use crate::table::{RouteSource, RouteTableBuilder};

    fn table() -> RouteTable {
        let mut builder = RouteTableBuilder::default();
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let update = EndpointUpdate {
            addrs: vec!["10.0.0.1:8080".parse().unwrap()],
            service_found: true,
        };
        let backend = builder.backend(key, &update);
        let server = builder.server(Some(&HostPattern::parse("a.example.com").unwrap()));
        let route = Route {
            source: Some(RouteSource {
                namespace: "ns".into(),
                name: "web".into(),
            }),
            host: "a.example.com".into(),
            path: "/v1".into(),
            path_kind: PathKind::Prefix,
            action: RouteAction::Proxy(backend),
            settings: Arc::new(ProxySettings::default()),
            policy: Arc::default(),
            admission: None,
            stats: None,
            rewrite: None,
            fallback: None,
            canary: None,
            filters: None,
        };
        let rule = PathRule::new(PathKind::Prefix, "/v1").unwrap();
        builder.add_route(server, rule, route).unwrap();
        builder.build()
    }

    #[test]
    fn routes_backends_and_endpoints_are_listed() {
        let view = configuration(&table());
        assert_eq!(view["routes"][0]["ingress"], "ns/web");
        assert_eq!(view["routes"][0]["host"], "a.example.com");
        assert_eq!(view["routes"][0]["action"]["backend"], "ns-svc-80");
        assert_eq!(
            view["backends"][0]["endpoints"][0]["address"],
            "10.0.0.1:8080"
        );
        assert_eq!(view["backends"][0]["loadBalance"], "round_robin");
        assert_eq!(view["truncated"], false);
        let compat = backends(&table());
        assert_eq!(compat[0]["name"], "ns-svc-80");
        assert_eq!(compat[0]["endpoints"][0]["address"], "10.0.0.1");
        assert_eq!(compat[0]["endpoints"][0]["port"], "8080");
    }
}
