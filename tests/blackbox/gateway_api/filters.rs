//! Filters, weights and timeouts (conformance: HTTPRouteRequestHeaderModifier,
//! HTTPRouteBackendRequestHeaderModifier, HTTPRouteResponseHeaderModifier,
//! HTTPRouteRedirect{HostAndStatus,Path,Port,Scheme}, HTTPRoute30{3,7,8}Redirect,
//! HTTPRouteRewriteHost, HTTPRouteRewritePath, HTTPRouteCORS, HTTPRouteWeight,
//! HTTPRouteOmittedBackendRefs, HTTPRouteTimeoutRequest,
//! HTTPRouteTimeoutBackendRequest). Mirroring: `mirror.rs`.

use serde_json::json;
use testkit::{EchoBackend, get, request};

use super::{backend, http_gateway, parent, route, services, start, who};

#[tokio::test]
async fn header_modifiers_on_rules_and_backends() {
    let a = EchoBackend::start([127, 0, 203, 1]).await;
    let mut docs = services("app", &[("a", &a)]);
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "headers",
        json!({"parentRefs": parent(), "hostnames": ["h.test"], "rules": [{
            "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
                    "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
                    "remove": ["X-Header-Remove"]}},
                {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                    "set": [{"name": "X-Resp-Set", "value": "set"}],
                    "remove": ["x-backend"]}},
            ],
            "backendRefs": [{"name": "a", "port": 80, "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Backend-Set", "value": "a"}]}},
                {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                    "add": [{"name": "X-Resp-Backend", "value": "a"}]}},
            ]}],
        }]}),
    ));
    let s = start(docs).await;
    let r = request(
        s.http(),
        "GET",
        "h.test",
        "/x",
        &[
            ("X-Header-Set", "some-other-value"),
            ("X-Header-Add", "some-other-value"),
            ("X-Header-Remove", "val"),
            ("Keep", "k"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = a.last_request().unwrap();
    assert_eq!(
        seen.header("x-header-set").as_deref(),
        Some("set-overwrites-values")
    );
    assert_eq!(
        seen.header("x-header-add").as_deref(),
        Some("some-other-value,add-appends-values")
    );
    assert_eq!(seen.header("x-header-remove"), None);
    assert_eq!(seen.header("keep").as_deref(), Some("k"));
    assert_eq!(seen.header("x-backend-set").as_deref(), Some("a"));
    assert_eq!(r.header("x-resp-set").as_deref(), Some("set"));
    assert_eq!(r.header("x-resp-backend").as_deref(), Some("a"));
    assert_eq!(r.header("x-backend"), None, "removed from the response");
}

#[tokio::test]
async fn redirects_build_their_location_from_the_request() {
    let mut docs = vec![http_gateway()];
    let redirect = |path: &str, filter: serde_json::Value| {
        json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}],
               "filters": [{"type": "RequestRedirect", "requestRedirect": filter}]})
    };
    docs.push(route(
        "app",
        "redirects",
        json!({"parentRefs": parent(), "hostnames": ["r.test"], "rules": [
            redirect("/hostname", json!({"hostname": "example.org"})),
            redirect("/status", json!({"statusCode": 301})),
            redirect("/scheme", json!({"scheme": "https"})),
            redirect("/port", json!({"port": 8083})),
            redirect("/scheme-port", json!({"scheme": "https", "port": 8443})),
            redirect("/full", json!({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/replacement"}})),
            redirect("/prefix", json!({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}, "statusCode": 308})),
            redirect("/see-other", json!({"statusCode": 303})),
            redirect("/temporary", json!({"statusCode": 307})),
        ]}),
    ));
    let s = start(docs).await;
    let cases = [
        ("/hostname/x?q=1", 302, "http://example.org/hostname/x?q=1"),
        ("/status", 301, "http://r.test/status"),
        ("/scheme", 302, "https://r.test/scheme"),
        ("/port", 302, "http://r.test:8083/port"),
        ("/scheme-port", 302, "https://r.test:8443/scheme-port"),
        ("/full/one/two?x", 302, "http://r.test/replacement?x"),
        ("/prefix/one", 308, "http://r.test/new/one"),
        ("/prefix", 308, "http://r.test/new"),
        ("/see-other", 303, "http://r.test/see-other"),
        ("/temporary", 307, "http://r.test/temporary"),
    ];
    for (path, status, location) in cases {
        let r = get(s.http(), "r.test", path).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.header("location").as_deref(), Some(location), "{path}");
    }
}

#[tokio::test]
async fn url_rewrites_change_host_and_path() {
    let a = EchoBackend::start([127, 0, 203, 2]).await;
    let mut docs = services("app", &[("a", &a)]);
    docs.push(http_gateway());
    let rewrite = |path: &str, filter: serde_json::Value| {
        json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}],
               "filters": [{"type": "URLRewrite", "urlRewrite": filter}],
               "backendRefs": backend("a")})
    };
    docs.push(route(
        "app",
        "rewrites",
        json!({"parentRefs": parent(), "hostnames": ["w.test"], "rules": [
            rewrite("/prefix/one", json!({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}})),
            rewrite("/strip-prefix", json!({"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}})),
            rewrite("/full/one", json!({"path": {"type": "ReplaceFullPath", "replaceFullPath": "/one"}})),
            rewrite("/rewrite-host", json!({"hostname": "one.example.org"})),
        ]}),
    ));
    let s = start(docs).await;
    let upstream = |path: &'static str| {
        let addr = s.http();
        let a = &a;
        async move {
            let r = get(addr, "w.test", path).await;
            assert_eq!(r.status, 200, "{path}");
            let seen = a.last_request().unwrap();
            let host = seen.header("host").unwrap_or_default();
            (seen.path, host)
        }
    };
    assert_eq!(upstream("/prefix/one/two?q=1").await.0, "/one/two?q=1");
    assert_eq!(upstream("/prefix/one").await.0, "/one");
    assert_eq!(upstream("/strip-prefix/three").await.0, "/three");
    assert_eq!(upstream("/strip-prefix").await.0, "/");
    assert_eq!(upstream("/full/one/two").await.0, "/one");
    let (path, host) = upstream("/rewrite-host/x").await;
    assert_eq!(
        (path.as_str(), host.as_str()),
        ("/rewrite-host/x", "one.example.org")
    );
    let seen = a.last_request().unwrap();
    assert_eq!(seen.header("x-forwarded-host").as_deref(), Some("w.test"));
}

#[tokio::test]
async fn cors_answers_preflights_and_decorates_responses() {
    let a = EchoBackend::start([127, 0, 203, 3]).await;
    let mut docs = services("app", &[("a", &a)]);
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "cors",
        json!({"parentRefs": parent(), "hostnames": ["c.test"], "rules": [{
            "filters": [{"type": "CORS", "cors": {
                "allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
                "allowMethods": ["GET", "OPTIONS"],
                "allowHeaders": ["x-header-1", "x-header-2"],
                "exposeHeaders": ["x-header-3"],
                "allowCredentials": true, "maxAge": 3600}}],
            "backendRefs": backend("a")}]}),
    ));
    let s = start(docs).await;
    let preflight = |origin: &'static str| {
        let addr = s.http();
        async move {
            request(
                addr,
                "OPTIONS",
                "c.test",
                "/cors",
                &[("Origin", origin), ("Access-Control-Request-Method", "GET")],
                Vec::new(),
            )
            .await
        }
    };
    for origin in [
        "https://www.foo.com",
        "https://www.bar.com",
        "https://xpto.www.bar.com",
    ] {
        let r = preflight(origin).await;
        assert!(r.status == 200 || r.status == 204, "{origin}: {}", r.status);
        assert_eq!(
            r.header("access-control-allow-origin").as_deref(),
            Some(origin)
        );
        assert_eq!(
            r.header("access-control-allow-methods").as_deref(),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            r.header("access-control-allow-headers").as_deref(),
            Some("x-header-1, x-header-2")
        );
        assert_eq!(r.header("access-control-max-age").as_deref(), Some("3600"));
        assert_eq!(
            r.header("access-control-allow-credentials").as_deref(),
            Some("true")
        );
    }
    let denied = preflight("https://foobar.com").await;
    assert_eq!(denied.header("access-control-allow-origin"), None);
    assert_eq!(a.hits(), 0, "preflights never reach the backend");
    let simple = request(
        s.http(),
        "GET",
        "c.test",
        "/x",
        &[("Origin", "https://www.foo.com")],
        Vec::new(),
    )
    .await;
    assert_eq!(simple.status, 200);
    assert_eq!(
        simple.header("access-control-allow-origin").as_deref(),
        Some("https://www.foo.com")
    );
    assert_eq!(
        simple.header("access-control-expose-headers").as_deref(),
        Some("x-header-3")
    );
    let foreign = request(
        s.http(),
        "GET",
        "c.test",
        "/x",
        &[("Origin", "https://foobar.com")],
        Vec::new(),
    )
    .await;
    assert_eq!(foreign.status, 200);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn weights_split_traffic_and_bad_backends_answer_500() {
    let [a, b] = [1, 2].map(|i| EchoBackend::start([127, 0, 203, 10 + i]));
    let (a, b) = (a.await, b.await);
    let mut docs = services("app", &[("a", &a), ("b", &b)]);
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "weights",
        json!({"parentRefs": parent(), "hostnames": ["wt.test"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/split"}}],
             "backendRefs": [{"name": "a", "port": 80, "weight": 3}, {"name": "b", "port": 80, "weight": 1},
                             {"name": "a", "port": 80, "weight": 0}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/half-missing"}}],
             "backendRefs": [{"name": "a", "port": 80}, {"name": "missing", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/omitted"}}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/missing"}}],
             "backendRefs": [{"name": "missing", "port": 80}]},
        ]}),
    ));
    let s = start(docs).await;
    let (mut to_a, mut to_b) = (0, 0);
    for _ in 0..400 {
        let r = get(s.http(), "wt.test", "/split").await;
        assert_eq!(r.status, 200);
        if who(&r) == a.addr().to_string() {
            to_a += 1;
        } else {
            to_b += 1;
        }
    }
    // 3:1 within a generous margin (a fair draw lands within ±45 of 300
    // far more often than one run in a million).
    assert!((240..=360).contains(&to_a), "a {to_a}, b {to_b}");
    let (mut ok, mut errors) = (0, 0);
    for _ in 0..200 {
        match get(s.http(), "wt.test", "/half-missing").await.status {
            200 => ok += 1,
            500 => errors += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(ok > 50 && errors > 50, "ok {ok}, 500 {errors}");
    assert_eq!(get(s.http(), "wt.test", "/omitted").await.status, 500);
    assert_eq!(get(s.http(), "wt.test", "/missing").await.status, 500);
}

#[tokio::test]
async fn timeouts_answer_504_and_unsupported_filters_500() {
    let a = EchoBackend::start([127, 0, 203, 20]).await;
    let mut docs = services("app", &[("a", &a)]);
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "timeouts",
        json!({"parentRefs": parent(), "hostnames": ["t.test"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/request"}}],
             "timeouts": {"request": "300ms"}, "backendRefs": backend("a")},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/backend"}}],
             "timeouts": {"backendRequest": "300ms"}, "backendRefs": backend("a")},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/external"}}],
             "filters": [{"type": "ExternalAuth", "externalAuth": {"protocol": "HTTP",
                "backendRef": {"name": "a", "port": 80}}}],
             "backendRefs": backend("a")},
        ]}),
    ));
    let s = start(docs).await;
    assert_eq!(
        get(s.http(), "t.test", "/request?delay_ms=50").await.status,
        200
    );
    assert_eq!(
        get(s.http(), "t.test", "/request?delay_ms=2000")
            .await
            .status,
        504
    );
    assert_eq!(
        get(s.http(), "t.test", "/backend?delay_ms=2000")
            .await
            .status,
        504
    );
    a.reset();
    // External authentication is not implemented: the rule answers 500
    // rather than run without it (and its status says so).
    assert_eq!(get(s.http(), "t.test", "/external").await.status, 500);
    assert_eq!(a.hits(), 0);
}
