//! Listeners: hostnames, isolation, HTTPS with certificateRefs, and which
//! routes may attach (conformance: HTTPRouteHostnameIntersection,
//! HTTPRouteListenerHostnameMatching, GatewayHTTPListenerIsolation,
//! HTTPRouteHTTPSListener, GatewaySecretReferenceGrant{AllInNamespace,Specific},
//! GatewaySecretMissingReferenceGrant, HTTPRouteCrossNamespace,
//! HTTPRouteInvalidCrossNamespaceParentRef, HTTPRouteDisallowedKind).

use serde_json::json;
use testkit::{EchoBackend, TestCa, curl_https, get, tls_secret};

use super::{backend, gateway, route, services, start, who};

#[tokio::test]
async fn hostnames_intersect_and_listeners_are_isolated() {
    let backends = [1, 2, 3, 4].map(|i| EchoBackend::start([127, 0, 204, i]));
    let [a, b, c, d] = backends;
    let (a, b, c, d) = (a.await, b.await, c.await, d.await);
    let mut docs = services("infra", &[("a", &a), ("b", &b), ("c", &c), ("d", &d)]);
    docs.push(gateway(
        "infra",
        "gw",
        json!([
            {"name": "empty", "port": 80, "protocol": "HTTP"},
            {"name": "wildcard", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
            {"name": "foo", "port": 80, "protocol": "HTTP", "hostname": "foo.example.com"},
            {"name": "bar-wild", "port": 80, "protocol": "HTTP", "hostname": "*.bar.example.com"},
        ]),
    ));
    let attached = |name: &str,
                    section: &str,
                    hostnames: serde_json::Value,
                    path: &str,
                    svc: &str| {
        route(
            "infra",
            name,
            json!({"parentRefs": [{"name": "gw", "sectionName": section}], "hostnames": hostnames,
                   "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                              "backendRefs": backend(svc)}]}),
        )
    };
    docs.push(attached("on-empty", "empty", json!([]), "/empty", "a"));
    docs.push(attached(
        "on-wildcard",
        "wildcard",
        json!([]),
        "/wildcard",
        "b",
    ));
    docs.push(attached("on-foo", "foo", json!([]), "/foo", "c"));
    // HTTPRouteHostnameIntersection: only the hostnames both name are served.
    docs.push(attached(
        "on-bar",
        "bar-wild",
        json!(["x.bar.example.com", "*.y.bar.example.com", "other.test"]),
        "/bar",
        "d",
    ));
    let s = start(docs).await;
    let call = |host: &'static str, path: &'static str| {
        let addr = s.http();
        async move { get(addr, host, path).await }
    };
    assert_eq!(
        who(&call("unknown.test", "/empty").await),
        a.addr().to_string()
    );
    assert_eq!(
        who(&call("a.example.com", "/wildcard").await),
        b.addr().to_string()
    );
    assert_eq!(
        who(&call("a.b.example.com", "/wildcard").await),
        b.addr().to_string(),
        "a wildcard covers any depth"
    );
    assert_eq!(
        who(&call("foo.example.com", "/foo").await),
        c.addr().to_string()
    );
    // Isolation: a request is routed by the most specific listener only.
    assert_eq!(call("foo.example.com", "/wildcard").await.status, 404);
    assert_eq!(call("foo.example.com", "/empty").await.status, 404);
    assert_eq!(call("a.example.com", "/empty").await.status, 404);
    assert_eq!(call("unknown.test", "/wildcard").await.status, 404);
    // Intersection.
    assert_eq!(
        who(&call("x.bar.example.com", "/bar").await),
        d.addr().to_string()
    );
    assert_eq!(
        who(&call("z.y.bar.example.com", "/bar").await),
        d.addr().to_string()
    );
    assert_eq!(call("w.bar.example.com", "/bar").await.status, 404);
    assert_eq!(call("other.test", "/bar").await.status, 404);
}

#[tokio::test]
async fn https_listeners_terminate_tls_with_their_certificates() {
    let ca = TestCa::new();
    let a = EchoBackend::start([127, 0, 204, 10]).await;
    let mut docs = services("infra", &[("a", &a)]);
    docs.push(tls_secret(
        "infra",
        "local",
        &ca.issue(&["secure.example.com"], 30),
    ));
    docs.push(tls_secret(
        "certs",
        "granted",
        &ca.issue(&["granted.example.com"], 30),
    ));
    docs.push(tls_secret(
        "certs",
        "refused",
        &ca.issue(&["refused.example.com"], 30),
    ));
    docs.push(
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
               "metadata": {"name": "gateways", "namespace": "certs"},
               "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra"}],
                        "to": [{"group": "", "kind": "Secret", "name": "granted"}]}})
        .to_string(),
    );
    let https = |name: &str, host: &str, secret: serde_json::Value| {
        json!({"name": name, "port": 443, "protocol": "HTTPS", "hostname": host,
               "tls": {"certificateRefs": [secret]}})
    };
    docs.push(gateway(
        "infra",
        "gw",
        json!([
            {"name": "http", "port": 80, "protocol": "HTTP"},
            https("local", "secure.example.com", json!({"name": "local"})),
            https("granted", "granted.example.com", json!({"name": "granted", "namespace": "certs"})),
            https("refused", "refused.example.com", json!({"name": "refused", "namespace": "certs"})),
        ]),
    ));
    docs.push(route(
        "infra",
        "https-only",
        json!({"parentRefs": [{"name": "gw", "sectionName": "local"},
                              {"name": "gw", "sectionName": "granted"},
                              {"name": "gw", "sectionName": "refused"}],
               "rules": [{"backendRefs": backend("a")}]}),
    ));
    let s = start(docs).await;
    let ca_file = s.dir.path().join("ca.pem.txt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let https_addr = s.gateway.https_addr();
    for host in ["secure.example.com", "granted.example.com"] {
        let out = curl_https(
            https_addr,
            host,
            "/x",
            Some(&ca_file),
            &["-w", "%{http_code}", "-o", "/dev/null"],
        )
        .await;
        assert!(out.success, "{host}: {}", out.stderr);
        assert_eq!(out.stdout, "200", "{host}");
    }
    // A Secret no ReferenceGrant opens is not used: the listener is not
    // served (its status says RefNotPermitted), so its certificate is not
    // the listener's and its routes answer nothing.
    let out = curl_https(
        https_addr,
        "refused.example.com",
        "/x",
        Some(&ca_file),
        &["-w", "%{http_code}"],
    )
    .await;
    assert!(
        !out.success,
        "the refused Secret's certificate must not be served"
    );
    let out = curl_https(
        https_addr,
        "refused.example.com",
        "/x",
        None,
        &["-w", "%{http_code}", "-o", "/dev/null"],
    )
    .await;
    assert_eq!(out.stdout, "404");
    // Routes attached to HTTPS listeners only are not served on plain HTTP.
    assert_eq!(get(s.http(), "secure.example.com", "/x").await.status, 404);
}

#[tokio::test]
async fn allowed_routes_by_namespace_and_kind() {
    let a = EchoBackend::start([127, 0, 204, 20]).await;
    let mut docs = Vec::new();
    for ns in ["infra", "team-a", "team-b"] {
        docs.extend(services(ns, &[("a", &a)]));
    }
    for (ns, team) in [("team-a", "a"), ("team-b", "b")] {
        docs.push(
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": ns, "labels": {"team": team}}})
            .to_string(),
        );
    }
    docs.push(gateway(
        "infra",
        "gw",
        json!([
            {"name": "same", "port": 80, "protocol": "HTTP", "hostname": "same.test"},
            {"name": "selector", "port": 80, "protocol": "HTTP", "hostname": "selector.test",
             "allowedRoutes": {"namespaces": {"from": "Selector",
                 "selector": {"matchLabels": {"team": "a"}}}}},
            {"name": "grpc-only", "port": 80, "protocol": "HTTP", "hostname": "kinds.test",
             "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]}},
        ]),
    ));
    let everywhere = |ns: &str, name: &str, path: &str| {
        route(
            ns,
            name,
            json!({"parentRefs": [{"name": "gw", "namespace": "infra"}],
                   "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                              "backendRefs": backend("a")}]}),
        )
    };
    docs.push(everywhere("infra", "local", "/infra"));
    docs.push(everywhere("team-a", "a", "/team-a"));
    docs.push(everywhere("team-b", "b", "/team-b"));
    let s = start(docs).await;
    let status = |host: &'static str, path: &'static str| {
        let addr = s.http();
        async move { get(addr, host, path).await.status }
    };
    assert_eq!(status("same.test", "/infra").await, 200);
    assert_eq!(
        status("same.test", "/team-a").await,
        404,
        "Same: other namespaces cannot attach"
    );
    assert_eq!(status("selector.test", "/team-a").await, 200);
    assert_eq!(status("selector.test", "/team-b").await, 404);
    assert_eq!(status("selector.test", "/infra").await, 404);
    assert_eq!(
        status("kinds.test", "/infra").await,
        404,
        "HTTPRoutes not allowed"
    );
}
