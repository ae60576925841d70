//! Host rules, path rules, default backends and class selection.

use testkit::{EchoBackend, IngressBuilder, get};

use crate::{Setup, answered_by, service_for};

#[tokio::test]
async fn host_rules_exact_wildcard_and_default_server() {
    let exact = EchoBackend::start([127, 0, 1, 1]).await;
    let wild = EchoBackend::start([127, 0, 1, 2]).await;
    let default = EchoBackend::start([127, 0, 1, 3]).await;
    let mut docs = Vec::new();
    docs.extend(service_for("web", "exact", &[&exact]));
    docs.extend(service_for("web", "wild", &[&wild]));
    docs.extend(service_for("web", "default", &[&default]));
    docs.push(
        IngressBuilder::new("web", "hosts")
            .class("nginx")
            .host("api.example.com")
            .path("/", "Prefix", "exact", 80)
            .host("*.example.org")
            .path("/", "Prefix", "wild", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("web", "any")
            .class("nginx")
            .path("/", "Prefix", "default", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let addr = s.http();
    let who = |host: &'static str| async move { answered_by(&get(addr, host, "/x").await) };
    assert_eq!(who("api.example.com").await, exact.addr().to_string());
    assert_eq!(
        who("API.Example.COM:30080").await,
        exact.addr().to_string(),
        "case and port ignored"
    );
    assert_eq!(who("a.example.org").await, wild.addr().to_string());
    assert_eq!(
        who("b.a.example.org").await,
        default.addr().to_string(),
        "one label only"
    );
    assert_eq!(who("example.org").await, default.addr().to_string());
    assert_eq!(who("unknown.test").await, default.addr().to_string());
}

#[tokio::test]
async fn path_rules_follow_the_ingress_spec() {
    let prefix = EchoBackend::start([127, 0, 2, 1]).await;
    let exact = EchoBackend::start([127, 0, 2, 2]).await;
    let slash = EchoBackend::start([127, 0, 2, 3]).await;
    let mut docs = Vec::new();
    docs.extend(service_for("p", "prefix", &[&prefix]));
    docs.extend(service_for("p", "exact", &[&exact]));
    docs.extend(service_for("p", "slash", &[&slash]));
    docs.push(
        IngressBuilder::new("p", "paths")
            .class("nginx")
            .host("paths.test")
            .path("/foo", "Prefix", "prefix", 80)
            .path("/foo/bar", "Exact", "exact", 80)
            .path("/aaa/bbb/", "Prefix", "slash", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let cases = [
        ("/foo", Some(&prefix)),
        ("/foo/", Some(&prefix)),
        ("/foo/x/y?q=1", Some(&prefix)),
        ("/foobar", None),
        ("/FOO", None),
        ("/foo/bar", Some(&exact)),
        ("/foo/bar/", Some(&prefix)),
        ("/foo/%62ar", Some(&exact)),
        ("/foo//bar", Some(&exact)),
        ("/aaa/bbb", Some(&slash)),
        ("/aaa/bbb/ccc", Some(&slash)),
        ("/aaa/bbbc", None),
        ("/", None),
    ];
    for (path, want) in cases {
        let response = get(s.http(), "paths.test", path).await;
        match want {
            Some(backend) => {
                assert_eq!(response.status, 200, "{path}");
                assert_eq!(answered_by(&response), backend.addr().to_string(), "{path}");
            }
            None => assert_eq!(response.status, 404, "{path}"),
        }
    }
    // The path goes upstream exactly as sent, not normalised.
    get(s.http(), "paths.test", "/foo//bar").await;
    assert_eq!(exact.last_request().unwrap().path, "/foo//bar");
}

#[tokio::test]
async fn default_backend_catches_unmatched_requests() {
    let app = EchoBackend::start([127, 0, 3, 1]).await;
    let fallback = EchoBackend::start([127, 0, 3, 2]).await;
    let mut docs = Vec::new();
    docs.extend(service_for("d", "app", &[&app]));
    docs.extend(service_for("d", "fallback", &[&fallback]));
    docs.push(
        IngressBuilder::new("d", "catch-all")
            .class("nginx")
            .default_backend("fallback", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("d", "app")
            .class("nginx")
            .host("app.test")
            .path("/app", "Prefix", "app", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    assert_eq!(
        answered_by(&get(s.http(), "app.test", "/app/1").await),
        app.addr().to_string()
    );
    let unmatched = get(s.http(), "other.test", "/anything").await;
    assert_eq!(answered_by(&unmatched), fallback.addr().to_string());
    // A matched host with no matching path: 404, as ingress-nginx.
    assert_eq!(get(s.http(), "app.test", "/nope").await.status, 404);
    // The default server's built-in health check.
    assert_eq!(get(s.http(), "other.test", "/healthz").await.status, 200);
}

#[tokio::test]
async fn without_any_ingress_everything_is_404() {
    let s = Setup::start(&[]).await;
    let response = get(s.http(), "localhost", "/api/v1/predict/1").await;
    assert_eq!(response.status, 404);
    assert!(response.text().contains("404 Not Found"));
}

#[tokio::test]
async fn class_selection_follows_ingress_nginx() {
    let backend = EchoBackend::start([127, 0, 4, 1]).await;
    let mut docs = service_for("c", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("c", "by-field")
            .class("nginx")
            .path("/field", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("c", "other-class")
            .class("traefik")
            .path("/other", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("c", "by-annotation")
            .annotation("kubernetes.io/ingress.class", "nginx")
            .path("/annotation", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("c", "wrong-annotation")
            .annotation("kubernetes.io/ingress.class", "haproxy")
            .path("/wrong", "Prefix", "svc", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("c", "classless")
            .path("/none", "Prefix", "svc", 80)
            .build(),
    );
    let status = |s: &Setup, path: &'static str| {
        let addr = s.http();
        async move { get(addr, "x.test", path).await.status }
    };

    let s = Setup::start(&docs).await;
    assert_eq!(status(&s, "/field").await, 200);
    assert_eq!(status(&s, "/annotation").await, 200);
    assert_eq!(status(&s, "/other").await, 404);
    assert_eq!(status(&s, "/wrong").await, 404);
    assert_eq!(status(&s, "/none").await, 404);
    drop(s);

    let s = Setup::start_with(&docs, &["--watch-ingress-without-class=true"]).await;
    assert_eq!(status(&s, "/none").await, 200);
    assert_eq!(status(&s, "/other").await, 404);
    drop(s);

    let s = Setup::start_with(&docs, &["--watch-namespace", "elsewhere"]).await;
    assert_eq!(status(&s, "/field").await, 404);
}

#[tokio::test]
async fn conflicting_paths_oldest_ingress_wins() {
    let old = EchoBackend::start([127, 0, 5, 1]).await;
    let new = EchoBackend::start([127, 0, 5, 2]).await;
    let mut docs = Vec::new();
    docs.extend(service_for("a", "old", &[&old]));
    docs.extend(service_for("b", "new", &[&new]));
    docs.push(
        IngressBuilder::new("b", "newer")
            .class("nginx")
            .creation_timestamp("2025-06-01T00:00:00Z")
            .host("shared.test")
            .path("/api", "Prefix", "new", 80)
            .path("/only-new", "Prefix", "new", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("a", "older")
            .class("nginx")
            .creation_timestamp("2025-01-01T00:00:00Z")
            .host("shared.test")
            .path("/api", "Prefix", "old", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    assert_eq!(
        answered_by(&get(s.http(), "shared.test", "/api").await),
        old.addr().to_string()
    );
    assert_eq!(
        answered_by(&get(s.http(), "shared.test", "/only-new").await),
        new.addr().to_string()
    );
    s.gateway
        .wait_for_log("PathConflict", std::time::Duration::from_secs(5))
        .await;
    assert!(s.gateway.logs().contains("a/older"), "{}", s.gateway.logs());
}
