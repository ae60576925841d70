//! Route matching and its precedence (conformance: HTTPRouteExactPathMatching,
//! HTTPRoutePathMatchOrder, HTTPRouteHeaderMatching, HTTPRouteQueryParamMatching,
//! HTTPRouteMethodMatching, HTTPRouteMatching, HTTPRouteMatchingAcrossRoutes).

use serde_json::json;
use testkit::{EchoBackend, get, request};

use super::{backend, http_gateway, parent, route, services, start, who};

#[tokio::test]
async fn paths_follow_the_spec_precedence() {
    let [v1, v2, v3] = [1, 2, 3].map(|i| EchoBackend::start([127, 0, 200, i]));
    let (v1, v2, v3) = (v1.await, v2.await, v3.await);
    let mut docs = services("infra", &[("v1", &v1), ("v2", &v2), ("v3", &v3)]);
    docs.push(http_gateway());
    let rule = |kind: &str, path: &str, svc: &str| json!({"matches": [{"path": {"type": kind, "value": path}}], "backendRefs": backend(svc)});
    // The rules of HTTPRoutePathMatchOrder, plus an expression.
    docs.push(route(
        "infra",
        "order",
        json!({"parentRefs": parent(), "hostnames": ["order.test"], "rules": [
            rule("Exact", "/match", "v1"),
            rule("Exact", "/match/exact", "v2"),
            rule("Exact", "/match/exact/one", "v3"),
            rule("PathPrefix", "/match/", "v3"),
            rule("PathPrefix", "/match/prefix/", "v1"),
            rule("PathPrefix", "/match/prefix/one", "v2"),
            rule("RegularExpression", "/match/[0-9]+", "v1"),
        ]}),
    ));
    let s = start(docs).await;
    let cases = [
        ("/match/exact/one", &v3),
        ("/match/exact", &v2),
        ("/match", &v1),
        ("/match/prefix/one/any", &v2),
        ("/match/prefix/any", &v1),
        ("/match/any", &v3),
        ("/match/exact/one/two", &v3),
        ("/match/42", &v1),
        ("/match/42x", &v3),
    ];
    for (path, want) in cases {
        let r = get(s.http(), "order.test", path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(who(&r), want.addr().to_string(), "{path}");
    }
    // Element-wise prefixes; exact paths compare exactly.
    assert_eq!(get(s.http(), "order.test", "/matchx").await.status, 404);
    assert_eq!(get(s.http(), "order.test", "/").await.status, 404);
    assert_eq!(get(s.http(), "other.test", "/match").await.status, 404);
}

#[tokio::test]
async fn headers_query_and_method_refine_a_path() {
    let backends = [1, 2, 3, 4, 5].map(|i| EchoBackend::start([127, 0, 201, i]));
    let [a, b, c, d, e] = backends;
    let (a, b, c, d, e) = (a.await, b.await, c.await, d.await, e.await);
    let mut docs = services(
        "app",
        &[("a", &a), ("b", &b), ("c", &c), ("d", &d), ("e", &e)],
    );
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "refine",
        json!({"parentRefs": parent(), "rules": [
            // HTTPRouteHeaderMatching: two headers beat one.
            {"matches": [{"headers": [{"name": "version", "value": "one"}]}], "backendRefs": backend("a")},
            {"matches": [{"headers": [{"name": "version", "value": "two"}, {"name": "color", "value": "orange"}]}],
             "backendRefs": backend("b")},
            // HTTPRouteQueryParamMatching, with an expression.
            {"matches": [{"queryParams": [{"name": "animal", "value": "whale"}]},
                         {"queryParams": [{"type": "RegularExpression", "name": "id", "value": "[0-9]{3}"}]}],
             "backendRefs": backend("c")},
            // HTTPRouteMethodMatching: a method beats headers.
            {"matches": [{"method": "POST"}], "backendRefs": backend("d")},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backend("e")},
        ]}),
    ));
    let s = start(docs).await;
    let call = |method: &'static str,
                path: &'static str,
                headers: &'static [(&'static str, &'static str)]| {
        let addr = s.http();
        async move { who(&request(addr, method, "any.test", path, headers, Vec::new()).await) }
    };
    assert_eq!(
        call("GET", "/", &[("version", "one")]).await,
        a.addr().to_string()
    );
    assert_eq!(
        call("GET", "/", &[("Version", "two"), ("color", "orange")]).await,
        b.addr().to_string()
    );
    assert_eq!(
        call("GET", "/", &[("version", "two")]).await,
        e.addr().to_string(),
        "one header of two"
    );
    assert_eq!(
        call("GET", "/", &[("version", "ONE")]).await,
        e.addr().to_string(),
        "values are case-sensitive"
    );
    assert_eq!(
        call("GET", "/?animal=whale", &[]).await,
        c.addr().to_string()
    );
    assert_eq!(
        call("GET", "/?animal=dolphin", &[]).await,
        e.addr().to_string()
    );
    assert_eq!(call("GET", "/?id=123", &[]).await, c.addr().to_string());
    assert_eq!(
        call("GET", "/?id=1234", &[]).await,
        e.addr().to_string(),
        "the whole value"
    );
    assert_eq!(
        call("POST", "/", &[("version", "one")]).await,
        d.addr().to_string(),
        "method first"
    );
    assert_eq!(call("PUT", "/", &[]).await, e.addr().to_string());
}

#[tokio::test]
async fn older_routes_win_ties_across_routes() {
    let [a, b] = [1, 2].map(|i| EchoBackend::start([127, 0, 202, i]));
    let (a, b) = (a.await, b.await);
    let mut docs = services("app", &[("a", &a), ("b", &b)]);
    docs.push(http_gateway());
    let dated = |name: &str, created: &str, svc: &str, extra: serde_json::Value| {
        let mut value: serde_json::Value = serde_json::from_str(&route(
            "app",
            name,
            json!({"parentRefs": parent(), "hostnames": ["tie.test"], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": backend(svc)},
                extra,
            ]}),
        ))
        .unwrap();
        value["metadata"]["creationTimestamp"] = json!(created);
        value.to_string()
    };
    // HTTPRouteMatchingAcrossRoutes: the younger route's other rule still
    // serves its own path.
    docs.push(dated(
        "young",
        "2024-01-02T00:00:00Z",
        "a",
        json!({"matches": [{"path": {"type": "PathPrefix", "value": "/young"}}], "backendRefs": backend("a")}),
    ));
    docs.push(dated(
        "old",
        "2024-01-01T00:00:00Z",
        "b",
        json!({"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}], "backendRefs": backend("b")}),
    ));
    let s = start(docs).await;
    assert_eq!(
        who(&get(s.http(), "tie.test", "/v1/x").await),
        b.addr().to_string()
    );
    assert_eq!(
        who(&get(s.http(), "tie.test", "/young").await),
        a.addr().to_string()
    );
    assert_eq!(
        who(&get(s.http(), "tie.test", "/old").await),
        b.addr().to_string()
    );
}
