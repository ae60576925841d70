//! GRPCRoute over an HTTPS listener (HTTP/2 by ALPN) to h2c backends
//! (conformance: GRPCExactMethodMatching, GRPCRouteHeaderMatching,
//! GRPCRouteListenerHostnameMatching, a RequestMirror over h2c), and
//! session persistence of an HTTPRoute rule.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::json;
use testkit::{EchoBackend, TestCa, eventually, get, request, tls_secret};

use super::{backend, gateway, http_gateway, parent, route, start, who};
use crate::protocols::{Speaks, Upstream, h2_client, service_at};

#[tokio::test]
async fn grpc_routes_match_service_method_and_headers() {
    let a = Upstream::start(
        "127.0.209.1:0".parse().unwrap(),
        Speaks::Grpc,
        StatusCode::OK,
    )
    .await;
    let b = Upstream::start(
        "127.0.209.2:0".parse().unwrap(),
        Speaks::Grpc,
        StatusCode::OK,
    )
    .await;
    let m = Upstream::start(
        "127.0.209.3:0".parse().unwrap(),
        Speaks::Grpc,
        StatusCode::OK,
    )
    .await;
    let ca = TestCa::new();
    let mut docs = service_at("app", "a", &[a.addr]);
    docs.extend(service_at("app", "b", &[b.addr]));
    docs.extend(service_at("app", "m", &[m.addr]));
    docs.push(tls_secret("app", "cert", &ca.issue(&["grpc.test"], 30)));
    docs.push(gateway(
        "app",
        "gw",
        json!([{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "grpc.test",
                "tls": {"certificateRefs": [{"name": "cert"}]}}]),
    ));
    docs.push(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "echo", "namespace": "app"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [
            {"matches": [{"method": {"service": "echo.Echo", "method": "Say"}}],
             "filters": [{"type": "RequestMirror",
                          "requestMirror": {"backendRef": {"name": "m", "port": 80}}}],
             "backendRefs": backend("a")},
            {"matches": [{"method": {"service": "other.Svc"}},
                         {"headers": [{"name": "x-route", "value": "b"}]}],
             "backendRefs": backend("b")},
        ]}})
        .to_string(),
    );
    let s = start(docs).await;
    let mut client = h2_client(s.gateway.https_addr(), &ca, "grpc.test").await;
    let mut call = async |path: &str, header: Option<(&str, &str)>| {
        let mut builder = Request::post(format!("https://grpc.test{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x02hi")))
            .unwrap();
        client
            .send_request(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(call("/echo.Echo/Say", None).await, 200);
    assert_eq!((a.hits(), b.hits()), (1, 0));
    // The mirror gets its copy over h2c.
    eventually(std::time::Duration::from_secs(10), || async {
        (m.hits() == 1)
            .then_some(())
            .ok_or_else(|| format!("{} copies at the gRPC mirror", m.hits()))
    })
    .await;
    assert_eq!(call("/other.Svc/Anything", None).await, 200);
    assert_eq!((a.hits(), b.hits()), (1, 1));
    assert_eq!(call("/echo.Echo/Other", Some(("x-route", "b"))).await, 200);
    assert_eq!((a.hits(), b.hits()), (1, 2));
    assert_eq!(call("/echo.Echo/Other", None).await, 404);
    assert_eq!((a.hits(), b.hits()), (1, 2));
}

#[tokio::test]
async fn session_persistence_sticks_to_an_endpoint() {
    let group = EchoBackend::start_group(&[[127, 0, 209, 10], [127, 0, 209, 11]]).await;
    let mut docs = crate::service_for("app", "pool", &[&group[0], &group[1]]);
    docs.push(http_gateway());
    docs.push(route(
        "app",
        "sticky",
        json!({"parentRefs": parent(), "hostnames": ["s.test"], "rules": [{
            "sessionPersistence": {"sessionName": "pin", "type": "Cookie"},
            "backendRefs": backend("pool")}]}),
    ));
    let s = start(docs).await;
    let first = get(s.http(), "s.test", "/").await;
    let cookie = first.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with("pin="), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let pinned = who(&first);
    for _ in 0..10 {
        let r = request(
            s.http(),
            "GET",
            "s.test",
            "/",
            &[("cookie", &pair)],
            Vec::new(),
        )
        .await;
        assert_eq!(who(&r), pinned);
    }
    // Without the cookie, round robin spreads requests over both.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(who(&get(s.http(), "s.test", "/").await));
    }
    assert_eq!(seen.len(), 2);
}
