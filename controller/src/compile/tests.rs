//! Unit tests of `compile()`: objects in, routes and diagnostics out.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::*;
use crate::class::ClassOptions;
use crate::objects::Object;

fn snapshot(objects: &[Value]) -> Snapshot {
    let mut s = Snapshot::default();
    for o in objects {
        s.apply(Object::from_value(o.clone()).unwrap().unwrap());
    }
    s
}

fn class() -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
           "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}})
}

fn service(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn slice(ns: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips.iter().map(|ip| json!({"addresses": [ip]})).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("{service}-x"), "namespace": ns,
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
           "endpoints": endpoints})
}

fn path(path: &str, path_type: &str, service: &str) -> Value {
    json!({"path": path, "pathType": path_type,
           "backend": {"service": {"name": service, "port": {"number": 80}}}})
}

/// An Ingress of class nginx with one rule.
fn ingress(ns: &str, name: &str, created: &str, host: Option<&str>, paths: Vec<Value>) -> Value {
    let mut rule = json!({"http": {"paths": paths}});
    if let Some(h) = host {
        rule["host"] = json!(h);
    }
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
           "spec": {"ingressClassName": "nginx", "rules": [rule]}})
}

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-02T00:00:00Z";

fn compiled(objects: &[Value]) -> Compiled {
    compile(&snapshot(objects), &CompileOptions::default())
}

/// The backend a request would reach, as `service@addrs`, or the fixed
/// status, or `404`.
fn target(c: &Compiled, host: &str, path: &str) -> String {
    let host = gateway::host::normalize_request_host(host).unwrap();
    let normal = gateway::path::normalize_path(path.as_bytes()).unwrap();
    match c
        .table
        .lookup(Some(&host), &normal)
        .map(|m| &m.route.action)
    {
        None => "404".to_owned(),
        Some(RouteAction::Respond(code)) => code.to_string(),
        Some(RouteAction::Proxy(id)) => {
            let backend = c.table.backend(*id).unwrap();
            let addrs: Vec<String> = backend
                .endpoints()
                .endpoints()
                .iter()
                .map(|e| e.addr().to_string())
                .collect();
            format!("{}@{}", backend.key().service, addrs.join(","))
        }
    }
}

/// The route a request would take.
fn found<'c>(c: &'c Compiled, host: &str, path: &str) -> Option<&'c gateway::Route> {
    let normal = gateway::path::normalize_path(path.as_bytes()).unwrap();
    c.table.lookup(Some(host), &normal).map(|m| m.route)
}

fn reasons(c: &Compiled) -> Vec<(String, Reason)> {
    c.diagnostics
        .iter()
        .map(|d| (d.object.id.to_string(), d.reason))
        .collect()
}

#[test]
fn model_route_reaches_pod_addresses() {
    let c = compiled(&[
        class(),
        service("user-1", "model-serving-1"),
        slice("user-1", "model-serving-1", &["10.0.0.2", "10.0.0.1"]),
        ingress(
            "user-1",
            "m1",
            T1,
            Some("localhost"),
            vec![path("/api/v1/predict/1", "Prefix", "model-serving-1")],
        ),
    ]);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    assert_eq!(
        target(&c, "localhost:30080", "/api/v1/predict/1/health"),
        "model-serving-1@10.0.0.1:8080,10.0.0.2:8080"
    );
    assert_eq!(target(&c, "localhost", "/api/v1/predict/12"), "404");
    assert_eq!(target(&c, "other", "/api/v1/predict/1"), "404");
    assert_eq!(c.served, vec![NsName::new("user-1", "m1")]);
    let key = c.table.backends()[0].key().to_string();
    assert_eq!(key, "user-1-model-serving-1-80");
}

#[test]
fn class_selection_and_namespace_filter() {
    let mut other_class = ingress("a", "other", T1, None, vec![path("/o", "Prefix", "s")]);
    other_class["spec"]["ingressClassName"] = json!("traefik");
    let mut annotated = ingress("a", "annotated", T1, None, vec![path("/n", "Prefix", "s")]);
    annotated["spec"]
        .as_object_mut()
        .unwrap()
        .remove("ingressClassName");
    annotated["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
    let mut classless = ingress("b", "classless", T1, None, vec![path("/c", "Prefix", "s")]);
    classless["spec"]
        .as_object_mut()
        .unwrap()
        .remove("ingressClassName");
    let objects = [
        class(),
        service("a", "s"),
        service("b", "s"),
        other_class,
        annotated,
        classless,
    ];

    let c = compiled(&objects);
    assert_eq!(target(&c, "x", "/o"), "404");
    assert_eq!(target(&c, "x", "/n"), "s@");
    assert_eq!(target(&c, "x", "/c"), "404");

    let options = CompileOptions {
        class: ClassOptions {
            watch_without_class: true,
            ..ClassOptions::default()
        },
        watch_namespace: Some("b".to_owned()),
        ..CompileOptions::default()
    };
    let c = compile(&snapshot(&objects), &options);
    assert_eq!(target(&c, "x", "/n"), "404");
    assert_eq!(target(&c, "x", "/c"), "s@");
}

#[test]
fn hosts_merge_across_namespaces_and_oldest_wins_conflicts() {
    let c = compiled(&[
        class(),
        service("a", "old"),
        service("b", "new"),
        // Created later but listed first: order must come from timestamps.
        ingress(
            "b",
            "newer",
            T2,
            Some("API.example.com"),
            vec![
                path("/shared", "Prefix", "new"),
                path("/b", "Prefix", "new"),
                path("/shared", "Exact", "new"),
            ],
        ),
        ingress(
            "a",
            "older",
            T1,
            Some("api.example.com"),
            vec![
                path("/shared/", "Prefix", "old"),
                path("/a", "Prefix", "old"),
            ],
        ),
    ]);
    assert_eq!(target(&c, "api.example.com", "/shared/x"), "old@");
    assert_eq!(
        target(&c, "api.example.com", "/shared"),
        "new@",
        "Exact is another rule"
    );
    assert_eq!(target(&c, "api.example.com", "/a"), "old@");
    assert_eq!(target(&c, "api.example.com", "/b"), "new@");
    assert_eq!(
        reasons(&c),
        vec![("b/newer".to_owned(), Reason::PathConflict)]
    );
    assert!(
        c.diagnostics[0].message.contains("Ingress a/older"),
        "{}",
        c.diagnostics[0]
    );
}

#[test]
fn equal_timestamps_break_ties_by_namespace_and_name() {
    let c = compiled(&[
        class(),
        service("a", "s1"),
        service("a", "s2"),
        ingress("a", "z", T1, None, vec![path("/p", "Prefix", "s2")]),
        ingress("a", "b", T1, None, vec![path("/p", "Prefix", "s1")]),
    ]);
    assert_eq!(target(&c, "x", "/p"), "s1@");
}

#[test]
fn wildcard_and_exact_hosts() {
    let c = compiled(&[
        class(),
        service("a", "wild"),
        service("a", "exact"),
        ingress(
            "a",
            "w",
            T1,
            Some("*.foo.com"),
            vec![path("/", "Prefix", "wild")],
        ),
        ingress(
            "a",
            "e",
            T1,
            Some("bar.foo.com"),
            vec![path("/", "Prefix", "exact")],
        ),
    ]);
    assert_eq!(target(&c, "bar.foo.com", "/"), "exact@");
    assert_eq!(target(&c, "baz.foo.com", "/"), "wild@");
    assert_eq!(target(&c, "a.baz.foo.com", "/"), "404");
    assert_eq!(target(&c, "foo.com", "/"), "404");
}

#[test]
fn default_backends() {
    let catch_all = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "catch-all", "namespace": "a", "creationTimestamp": T1},
        "spec": {"ingressClassName": "nginx",
                 "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}}});
    let mut second = catch_all.clone();
    second["metadata"]["name"] = json!("second");
    second["metadata"]["creationTimestamp"] = json!(T2);
    let mut with_rules = ingress(
        "a",
        "site",
        T1,
        Some("site.com"),
        vec![path("/app", "Prefix", "app")],
    );
    with_rules["spec"]["defaultBackend"] =
        json!({"service": {"name": "site-default", "port": {"number": 80}}});
    let c = compiled(&[
        class(),
        service("a", "fallback"),
        service("a", "app"),
        service("a", "site-default"),
        catch_all,
        second,
        with_rules,
    ]);
    assert_eq!(target(&c, "unknown.host", "/anything"), "fallback@");
    assert_eq!(target(&c, "site.com", "/app/x"), "app@");
    assert_eq!(target(&c, "site.com", "/other"), "site-default@");
    assert_eq!(target(&c, "unknown.host", "/healthz"), "200");
    assert_eq!(
        reasons(&c),
        vec![("a/second".to_owned(), Reason::DefaultBackendConflict)]
    );
}

#[test]
fn default_backend_service_takes_what_no_rule_does() {
    // Two ports: the first one is used, as ingress-nginx does.
    let mut pages = service("ingress-nginx", "pages");
    pages["spec"]["ports"] = json!([{"name": "http", "port": 80, "targetPort": 8080},
                                    {"name": "other", "port": 9000, "targetPort": 9090}]);
    let mut with_rules = ingress(
        "a",
        "site",
        T1,
        Some("site.com"),
        vec![path("/app", "Prefix", "app")],
    );
    with_rules["spec"]["defaultBackend"] =
        json!({"service": {"name": "site-default", "port": {"number": 80}}});
    let objects = [
        class(),
        pages,
        slice("ingress-nginx", "pages", &["10.0.0.9"]),
        service("a", "app"),
        service("a", "site-default"),
        ingress(
            "a",
            "api",
            T1,
            Some("api.com"),
            vec![path("/v1", "Prefix", "app")],
        ),
        with_rules,
    ];
    let options = CompileOptions {
        default_backend_service: Some(NsName::new("ingress-nginx", "pages")),
        ..CompileOptions::default()
    };
    let c = compile(&snapshot(&objects), &options);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    assert_eq!(target(&c, "unknown.host", "/x"), "pages@10.0.0.9:8080");
    assert_eq!(target(&c, "api.com", "/v2"), "pages@10.0.0.9:8080");
    assert_eq!(target(&c, "api.com", "/v1/x"), "app@");
    // An Ingress defaultBackend still wins on its hosts, and /healthz stays.
    assert_eq!(target(&c, "site.com", "/other"), "site-default@");
    assert_eq!(target(&c, "unknown.host", "/healthz"), "200");
    let default = c.table.default_backend().unwrap();
    assert_eq!(
        c.table.backend(default).unwrap().name(),
        "ingress-nginx-pages-80"
    );
    let route = found(&c, "unknown.host", "/x").unwrap();
    assert!(route.source.is_none(), "not an Ingress's route");

    // A rule-less Ingress's defaultBackend wins on the default server.
    let catch_all = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "catch-all", "namespace": "a", "creationTimestamp": T1},
        "spec": {"ingressClassName": "nginx",
                 "defaultBackend": {"service": {"name": "app", "port": {"number": 80}}}}});
    let mut more = objects.to_vec();
    more.push(catch_all);
    let c = compile(&snapshot(&more), &options);
    assert_eq!(target(&c, "unknown.host", "/x"), "app@");
    // ... but not on a host's unmatched paths, as ingress-nginx's
    // `createServers` gives hosts the flag's upstream.
    assert_eq!(target(&c, "api.com", "/v2"), "pages@10.0.0.9:8080");

    // A missing Service: the built-in 404, with a diagnostic.
    let missing = CompileOptions {
        default_backend_service: Some(NsName::new("ingress-nginx", "nope")),
        ..CompileOptions::default()
    };
    let c = compile(&snapshot(&objects), &missing);
    assert_eq!(target(&c, "unknown.host", "/x"), "404");
    assert_eq!(c.table.default_backend(), None);
    assert_eq!(
        reasons(&c),
        vec![("ingress-nginx/nope".to_owned(), Reason::ServiceNotFound)]
    );
}

#[test]
fn custom_errors_use_the_default_backend_service() {
    let mut erroring = ingress("a", "e", T1, None, vec![path("/e", "Prefix", "s")]);
    erroring["metadata"]["annotations"] =
        json!({"nginx.ingress.kubernetes.io/custom-http-errors": "503"});
    let objects = [class(), service("a", "s"), service("a", "pages"), erroring];
    // Without the flag the list is reported unused.
    let c = compiled(&objects);
    assert_eq!(
        reasons(&c),
        vec![("a/e".to_owned(), Reason::InvalidAnnotation)]
    );
    let options = CompileOptions {
        default_backend_service: Some(NsName::new("a", "pages")),
        ..CompileOptions::default()
    };
    let c = compile(&snapshot(&objects), &options);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    let route = found(&c, "x", "/e").unwrap();
    assert!(route.policy.custom_errors.is_some());
    assert_eq!(
        route.fallback, None,
        "no-endpoint fallback stays the annotation's"
    );
    let pages = c.table.backend(c.table.default_backend().unwrap()).unwrap();
    assert_eq!(&*pages.key().service, "pages");
}

#[test]
fn healthz_yields_to_an_ingress_path() {
    let c = compiled(&[
        class(),
        service("a", "s"),
        ingress("a", "i", T1, None, vec![path("/healthz", "Prefix", "s")]),
    ]);
    assert_eq!(target(&c, "x", "/healthz"), "s@");
}

#[test]
fn bad_parts_are_skipped_with_diagnostics_and_the_rest_serves() {
    let c = compiled(&[
        class(),
        service("a", "s"),
        ingress(
            "a",
            "bad-host",
            T1,
            Some("bad host!"),
            vec![path("/h", "Prefix", "s")],
        ),
        ingress(
            "a",
            "mixed",
            T1,
            None,
            vec![
                path("/ok", "Prefix", "s"),
                path("/a//b", "Prefix", "s"),
                path("relative", "ImplementationSpecific", "s"),
                path("/t", "Regex", "s"),
                path("/missing", "Prefix", "nope"),
            ],
        ),
    ]);
    assert_eq!(target(&c, "x", "/ok"), "s@");
    assert_eq!(
        target(&c, "x", "/missing"),
        "nope@",
        "routed, answered with 503"
    );
    assert_eq!(target(&c, "x", "/t"), "404");
    assert_eq!(
        reasons(&c),
        vec![
            ("a/bad-host".to_owned(), Reason::InvalidHost),
            ("a/mixed".to_owned(), Reason::InvalidPath),
            ("a/mixed".to_owned(), Reason::InvalidPath),
            ("a/mixed".to_owned(), Reason::InvalidPathType),
            ("a/mixed".to_owned(), Reason::ServiceNotFound),
        ]
    );
    let missing = c
        .table
        .backends()
        .iter()
        .find(|b| &*b.key().service == "nope")
        .unwrap();
    assert!(!missing.endpoints().service_found());
}

#[test]
fn backends_are_shared_per_service_port() {
    let mut by_name = path("/named", "Prefix", "s");
    by_name["backend"]["service"]["port"] = json!({"name": "http"});
    let c = compiled(&[
        class(),
        service("a", "s"),
        slice("a", "s", &["10.0.0.1"]),
        ingress(
            "a",
            "one",
            T1,
            None,
            vec![path("/x", "Prefix", "s"), by_name],
        ),
        ingress(
            "a",
            "two",
            T1,
            Some("h.com"),
            vec![path("/y", "Prefix", "s")],
        ),
    ]);
    let keys: Vec<String> = c
        .table
        .backends()
        .iter()
        .map(|b| b.key().to_string())
        .collect();
    assert_eq!(keys, ["a-s-80", "a-s-http"]);
    assert_eq!(target(&c, "x", "/named"), "s@10.0.0.1:8080");
    let addr: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    assert!(
        c.table
            .backends()
            .iter()
            .all(|b| b.endpoints().endpoints()[0].addr() == addr)
    );
}

#[test]
fn missing_creation_timestamp_sorts_first() {
    let mut no_time = ingress("z", "no-time", T1, None, vec![path("/p", "Prefix", "s")]);
    no_time["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("creationTimestamp");
    let c = compiled(&[
        class(),
        service("a", "s"),
        service("z", "s"),
        ingress("a", "timed", T1, None, vec![path("/p", "Prefix", "s")]),
        no_time,
    ]);
    assert_eq!(
        reasons(&c),
        vec![("a/timed".to_owned(), Reason::PathConflict)]
    );
}

#[test]
fn annotations_set_route_settings_and_bad_values_are_reported() {
    let mut annotated = ingress("a", "slow", T1, None, vec![path("/slow", "Prefix", "s")]);
    annotated["metadata"]["annotations"] = json!({
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "300",
        "nginx.ingress.kubernetes.io/proxy-body-size": "huge",
    });
    let c = compiled(&[
        class(),
        service("a", "s"),
        annotated,
        ingress("a", "plain", T1, None, vec![path("/plain", "Prefix", "s")]),
    ]);
    let settings = |p: &str| {
        let normal = gateway::path::normalize_path(p.as_bytes()).unwrap();
        c.table
            .lookup(None, &normal)
            .unwrap()
            .route
            .settings
            .clone()
    };
    assert_eq!(
        settings("/slow").read_timeout,
        std::time::Duration::from_secs(300)
    );
    assert_eq!(
        settings("/slow").max_body_size,
        ProxySettings::default().max_body_size
    );
    assert_eq!(*settings("/plain"), ProxySettings::default());
    assert_eq!(
        reasons(&c),
        vec![("a/slow".to_owned(), Reason::InvalidAnnotation)]
    );
    assert!(c.diagnostics[0].message.contains("proxy-body-size"));
}

#[test]
fn proxy_ssl_secret_is_read_and_an_unusable_one_denies() {
    let ca = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "upstream-ca", "namespace": "a"},
        "stringData": {"ca.crt": ca}});
    let with_secret = |name: &str, p: &str, value: &str| {
        let mut ing = ingress("a", name, T1, None, vec![path(p, "Prefix", "s")]);
        ing["metadata"]["annotations"] = json!({
            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
            "nginx.ingress.kubernetes.io/proxy-ssl-secret": value,
            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
            "nginx.ingress.kubernetes.io/proxy-ssl-name": "api.internal",
        });
        ing
    };
    let c = compiled(&[
        class(),
        service("a", "s"),
        slice("a", "s", &["10.0.0.1"]),
        secret,
        with_secret("good", "/good", "a/upstream-ca"),
        with_secret("missing", "/missing", "a/nope"),
        with_secret("foreign", "/foreign", "b/upstream-ca"),
    ]);
    let normal = gateway::path::normalize_path(b"/good").unwrap();
    let good = &c.table.lookup(None, &normal).unwrap().route.settings;
    assert_eq!(good.protocol, gateway::settings::BackendProtocol::Https);
    assert!(good.upstream_tls.is_some());
    assert_eq!(target(&c, "x", "/good"), "s@10.0.0.1:8080");
    assert_eq!(target(&c, "x", "/missing"), "503");
    assert_eq!(target(&c, "x", "/foreign"), "503");
    let denied: Vec<_> = reasons(&c)
        .into_iter()
        .filter(|(_, r)| *r == Reason::LocationDenied)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(denied, ["a/foreign", "a/missing"]);
}

// === TLS ===

mod tls {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rcgen::{CertificateParams, KeyPair};
    use serde_json::json;

    use super::*;

    /// A TLS Secret `ns/name` holding a fresh self-signed certificate for `names`.
    fn tls_secret(ns: &str, name: &str, names: &[&str], valid_days: i64) -> Object {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(valid_days);
        let cert = params.self_signed(&key).unwrap();
        let data = BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.pem().into_bytes())),
            (
                "tls.key".to_owned(),
                ByteString(key.serialize_pem().into_bytes()),
            ),
        ]);
        Object::Secret(Arc::new(Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(ns.to_owned()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(data),
            ..Secret::default()
        }))
    }

    fn with_tls(mut ingress: Value, tls: Value) -> Value {
        ingress["spec"]["tls"] = tls;
        ingress
    }

    fn compiled_with(
        objects: &[Value],
        secrets: Vec<Object>,
        options: &CompileOptions,
        now: i64,
    ) -> Compiled {
        let mut s = snapshot(objects);
        for secret in secrets {
            s.apply(secret);
        }
        compile_with(&s, options, &mut CompileCache::default(), now)
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    /// The names of the certificate served for a TLS server name.
    fn served(c: &Compiled, sni: &str) -> Option<Vec<String>> {
        c.table
            .certificate(Some(sni))
            .map(|cert| cert.names().to_vec())
    }

    fn has_tls(c: &Compiled, host: &str) -> bool {
        c.table.lookup(Some(host), b"/").is_some_and(|m| m.tls)
    }

    #[test]
    fn listed_hosts_get_their_secret_and_others_the_default() {
        let tls_ingress = with_tls(
            ingress("a", "i", T1, Some("a.com"), vec![path("/", "Prefix", "s")]),
            json!([{"hosts": ["a.com"], "secretName": "a-tls"}]),
        );
        let plain = ingress(
            "a",
            "p",
            T1,
            Some("plain.com"),
            vec![path("/", "Prefix", "s")],
        );
        let c = compiled_with(
            &[class(), service("a", "s"), tls_ingress, plain],
            vec![tls_secret("a", "a-tls", &["a.com"], 30)],
            &CompileOptions::default(),
            now(),
        );
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert_eq!(served(&c, "a.com"), Some(vec!["a.com".to_owned()]));
        assert_eq!(served(&c, "plain.com"), None, "the built-in default");
        assert!(has_tls(&c, "a.com"));
        assert!(!has_tls(&c, "plain.com"));
    }

    #[test]
    fn secrets_of_other_namespaces_are_never_used() {
        let tls_ingress = with_tls(
            ingress("a", "i", T1, Some("a.com"), vec![path("/", "Prefix", "s")]),
            json!([{"hosts": ["a.com"], "secretName": "shared"}]),
        );
        let c = compiled_with(
            &[class(), service("a", "s"), tls_ingress],
            vec![tls_secret("b", "shared", &["a.com"], 30)],
            &CompileOptions::default(),
            now(),
        );
        assert_eq!(served(&c, "a.com"), None);
        assert!(
            has_tls(&c, "a.com"),
            "listed in a TLS section: still a TLS host"
        );
        assert_eq!(
            reasons(&c),
            vec![("a/i".to_owned(), Reason::InvalidCertificate)]
        );
        assert!(
            c.diagnostics[0].message.contains("a/shared not found"),
            "{}",
            c.diagnostics[0]
        );
    }

    #[test]
    fn mismatched_and_expired_certificates_fall_back_with_a_diagnostic() {
        let mismatched = with_tls(
            ingress("a", "m", T1, Some("a.com"), vec![path("/", "Prefix", "s")]),
            json!([{"hosts": ["a.com"], "secretName": "other"}]),
        );
        let expiring = with_tls(
            ingress("a", "e", T1, Some("e.com"), vec![path("/", "Prefix", "s")]),
            json!([{"hosts": ["e.com"], "secretName": "short"}]),
        );
        let in_a_year = now() + 365 * 86400;
        let c = compiled_with(
            &[class(), service("a", "s"), mismatched, expiring],
            vec![
                tls_secret("a", "other", &["b.com"], 1000),
                tls_secret("a", "short", &["e.com"], 30),
            ],
            &CompileOptions::default(),
            in_a_year,
        );
        assert_eq!(served(&c, "a.com"), None);
        assert_eq!(served(&c, "e.com"), None);
        let messages: Vec<&str> = c.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.contains("not a.com")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("not valid now")),
            "{messages:?}"
        );
    }

    #[test]
    fn unlisted_hosts_match_by_certificate_names_and_the_oldest_ingress_decides() {
        let by_san = with_tls(
            ingress(
                "a",
                "older",
                T1,
                Some("w.example.com"),
                vec![path("/", "Prefix", "s")],
            ),
            json!([{"secretName": "wild"}]),
        );
        let newer = with_tls(
            ingress(
                "a",
                "newer",
                T2,
                Some("w.example.com"),
                vec![path("/x", "Prefix", "s")],
            ),
            json!([{"hosts": ["w.example.com"], "secretName": "exact"}]),
        );
        let c = compiled_with(
            &[class(), service("a", "s"), newer, by_san],
            vec![
                tls_secret("a", "wild", &["*.example.com"], 30),
                tls_secret("a", "exact", &["w.example.com"], 30),
            ],
            &CompileOptions::default(),
            now(),
        );
        assert_eq!(
            served(&c, "w.example.com"),
            Some(vec!["*.example.com".to_owned()])
        );
    }

    #[test]
    fn wildcard_hosts_and_the_default_certificate_option() {
        let wild = with_tls(
            ingress(
                "a",
                "w",
                T1,
                Some("*.apps.test"),
                vec![path("/", "Prefix", "s")],
            ),
            json!([{"hosts": ["*.apps.test"], "secretName": "wild"}]),
        );
        let options = CompileOptions {
            default_ssl_certificate: Some(NsName::new("ingress", "default-cert")),
            ..CompileOptions::default()
        };
        let c = compiled_with(
            &[class(), service("a", "s"), wild],
            vec![
                tls_secret("a", "wild", &["*.apps.test"], 30),
                tls_secret("ingress", "default-cert", &["default.test"], 30),
            ],
            &options,
            now(),
        );
        assert_eq!(
            served(&c, "x.apps.test"),
            Some(vec!["*.apps.test".to_owned()])
        );
        assert_eq!(
            served(&c, "unknown.test"),
            Some(vec!["default.test".to_owned()])
        );
        assert_eq!(
            served(&c, "a.b.apps.test"),
            Some(vec!["default.test".to_owned()])
        );
        let missing = CompileOptions {
            default_ssl_certificate: Some(NsName::new("ingress", "nope")),
            ..CompileOptions::default()
        };
        let c = compiled_with(&[class()], vec![], &missing, now());
        assert_eq!(c.diagnostics[0].reason, Reason::InvalidCertificate);
        assert_eq!(c.diagnostics[0].object.kind, Kind::Secret);
    }

    #[test]
    fn the_cache_reuses_parsed_certificates_until_the_secret_changes() {
        let tls_ingress = with_tls(
            ingress("a", "i", T1, Some("a.com"), vec![path("/", "Prefix", "s")]),
            json!([{"hosts": ["a.com"], "secretName": "a-tls"}]),
        );
        let mut s = snapshot(&[class(), service("a", "s"), tls_ingress]);
        s.apply(tls_secret("a", "a-tls", &["a.com"], 30));
        let mut cache = CompileCache::default();
        let first = compile_with(&s, &CompileOptions::default(), &mut cache, now());
        let second = compile_with(&s, &CompileOptions::default(), &mut cache, now());
        let cert = |c: &Compiled| c.table.certificate(Some("a.com")).unwrap().clone();
        assert!(Arc::ptr_eq(&cert(&first), &cert(&second)));
        s.apply(tls_secret("a", "a-tls", &["a.com"], 30));
        let third = compile_with(&s, &CompileOptions::default(), &mut cache, now());
        assert!(!Arc::ptr_eq(&cert(&first), &cert(&third)));
    }
}

// === routing annotations ===

mod routing_annotations {
    use serde_json::json;

    use super::*;

    fn annotated(mut ingress: Value, annotations: Value) -> Value {
        let mut map = serde_json::Map::new();
        for (k, v) in annotations.as_object().unwrap() {
            map.insert(format!("nginx.ingress.kubernetes.io/{k}"), v.clone());
        }
        ingress["metadata"]["annotations"] = Value::Object(map);
        ingress
    }

    #[test]
    fn use_regex_puts_the_whole_host_in_regex_mode() {
        let regex = annotated(
            ingress(
                "a",
                "regex",
                T1,
                Some("r.com"),
                vec![path("/id/[0-9]+", "ImplementationSpecific", "s")],
            ),
            json!({"use-regex": "true"}),
        );
        let plain = ingress(
            "a",
            "plain",
            T1,
            Some("r.com"),
            vec![path("/Static", "Prefix", "s2")],
        );
        let c = compiled(&[class(), service("a", "s"), service("a", "s2"), regex, plain]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert_eq!(target(&c, "r.com", "/id/123a"), "s@", "start-anchored only");
        // The other Ingress's Prefix path became a case-insensitive regex too.
        assert_eq!(target(&c, "r.com", "/static/x"), "s2@");
        assert_eq!(target(&c, "r.com", "/id/x"), "404");
        // Other hosts keep literal matching.
        let other = compiled(&[
            class(),
            service("a", "s2"),
            ingress(
                "a",
                "p",
                T1,
                Some("o.com"),
                vec![path("/Static", "Prefix", "s2")],
            ),
        ]);
        assert_eq!(target(&other, "o.com", "/static"), "404");
    }

    #[test]
    fn rewrite_target_with_captures() {
        let rewritten = annotated(
            ingress(
                "a",
                "rw",
                T1,
                Some("rw.com"),
                vec![path("/something(/|$)(.*)", "ImplementationSpecific", "s")],
            ),
            json!({"rewrite-target": "/$2", "x-forwarded-prefix": "/something"}),
        );
        let c = compiled(&[class(), service("a", "s"), rewritten]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let route = found(&c, "rw.com", "/something/new").unwrap();
        assert_eq!(
            route
                .rewrite
                .as_ref()
                .unwrap()
                .apply("/something/new", "/something/new", None)
                .as_deref(),
            Some("/new")
        );
        assert_eq!(
            route.policy.x_forwarded_prefix.as_ref().unwrap(),
            "/something"
        );
        let bad = annotated(
            ingress(
                "a",
                "bad",
                T1,
                Some("bad.com"),
                vec![path("/x", "Prefix", "s")],
            ),
            json!({"rewrite-target": "/$host/x"}),
        );
        let c = compiled(&[class(), service("a", "s"), bad]);
        assert_eq!(
            reasons(&c),
            vec![("a/bad".to_owned(), Reason::InvalidAnnotation)]
        );
        assert!(
            found(&c, "bad.com", "/x").is_none(),
            "a path with a broken rewrite is not served"
        );
    }

    #[test]
    fn snippets_refuse_the_ingress_and_neighbours_serve() {
        let snippet = annotated(
            ingress("a", "snippet", T1, None, vec![path("/evil", "Prefix", "s")]),
            json!({"configuration-snippet": "more_set_headers \"x: y\";", "unknown-thing": "1"}),
        );
        let c = compiled(&[
            class(),
            service("a", "s"),
            snippet,
            ingress("a", "good", T1, None, vec![path("/good", "Prefix", "s")]),
        ]);
        assert_eq!(target(&c, "x", "/evil"), "404");
        assert_eq!(target(&c, "x", "/good"), "s@");
        assert_eq!(
            reasons(&c),
            vec![
                ("a/snippet".to_owned(), Reason::UnknownAnnotation),
                ("a/snippet".to_owned(), Reason::RefusedAnnotation),
            ]
        );
        assert_eq!(c.served, vec![NsName::new("a", "good")]);
    }

    #[test]
    fn server_level_redirects_and_aliases() {
        let site = annotated(
            ingress(
                "a",
                "site",
                T1,
                Some("site.com"),
                vec![path("/app", "Prefix", "s")],
            ),
            json!({"app-root": "/app", "from-to-www-redirect": "true", "server-alias": "alias.com, site.com"}),
        );
        let c = compiled(&[class(), service("a", "s"), site]);
        let view = |host: &str| c.table.find(Some(host), b"/").server;
        assert_eq!(view("site.com").app_root.unwrap(), "/app");
        assert_eq!(view("www.site.com").redirect_to, Some("site.com"));
        assert_eq!(target(&c, "alias.com", "/app/x"), "s@");
        assert!(
            view("site.com").redirect_to.is_none(),
            "an alias never shadows a real host"
        );
    }

    #[test]
    fn redirect_annotations_and_upstream_vhost_reach_the_route() {
        let moved = annotated(
            ingress("a", "moved", T1, None, vec![path("/old", "Prefix", "s")]),
            json!({"permanent-redirect": "https://new.example/", "upstream-vhost": "internal.svc:8080"}),
        );
        let c = compiled(&[class(), service("a", "s"), moved]);
        let route = found(&c, "x", "/old").unwrap();
        assert_eq!(route.policy.redirect.as_ref().unwrap().code.as_u16(), 301);
        assert_eq!(
            route.policy.upstream_vhost.as_ref().unwrap(),
            "internal.svc:8080"
        );
    }

    #[test]
    fn default_backend_annotation_and_service_upstream() {
        let mut fallback_svc = service("a", "fallback");
        fallback_svc["spec"]["clusterIP"] = json!("10.96.0.9");
        let with_fallback = annotated(
            ingress("a", "f", T1, None, vec![path("/f", "Prefix", "s")]),
            json!({"default-backend": "fallback"}),
        );
        let mut cluster_svc = service("a", "c");
        cluster_svc["spec"]["clusterIP"] = json!("10.96.0.10");
        let via_cluster_ip = annotated(
            ingress("a", "cip", T1, None, vec![path("/c", "Prefix", "c")]),
            json!({"service-upstream": "true"}),
        );
        let c = compiled(&[
            class(),
            service("a", "s"),
            fallback_svc,
            cluster_svc,
            with_fallback,
            via_cluster_ip,
        ]);
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        let route = found(&c, "x", "/f").unwrap();
        let fallback = c.table.backend(route.fallback.unwrap()).unwrap();
        assert_eq!(&*fallback.key().service, "fallback");
        assert_eq!(target(&c, "x", "/c"), "c@10.96.0.10:80");
    }
}
