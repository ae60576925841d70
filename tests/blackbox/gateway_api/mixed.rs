//! An Ingress and an HTTPRoute on one host: both served from one table;
//! an Ingress keeps every path it routes, otherwise the longest match
//! wins whichever kind it comes from.

use serde_json::json;
use testkit::{EchoBackend, IngressBuilder, get};

use super::{backend, http_gateway, parent, route, services, start, who};

#[tokio::test]
async fn ingress_and_httproute_share_a_host() {
    let [ing, rt] = [1, 2].map(|i| EchoBackend::start([127, 0, 206, i]));
    let (ing, rt) = (ing.await, rt.await);
    let mut docs = services("app", &[("ing", &ing), ("rt", &rt)]);
    docs.push(
        IngressBuilder::new("app", "legacy")
            .class("nginx")
            .host("m.test")
            .path("/ingress", "Prefix", "ing", 80)
            .path("/both", "Prefix", "ing", 80)
            .build(),
    );
    docs.push(http_gateway());
    let prefix = |path: &str| json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": backend("rt")});
    docs.push(route(
        "app",
        "migrated",
        json!({"parentRefs": parent(), "hostnames": ["m.test"], "rules": [
            prefix("/route"), prefix("/both"), prefix("/both/deeper"),
        ]}),
    ));
    let s = start(docs).await;
    let at = |path: &'static str| {
        let addr = s.http();
        async move { who(&get(addr, "m.test", path).await) }
    };
    assert_eq!(at("/ingress/x").await, ing.addr().to_string());
    assert_eq!(at("/route/x").await, rt.addr().to_string());
    assert_eq!(
        at("/both/x").await,
        ing.addr().to_string(),
        "the Ingress keeps its path"
    );
    assert_eq!(
        at("/both/deeper/x").await,
        rt.addr().to_string(),
        "the longest match wins"
    );
    assert_eq!(get(s.http(), "m.test", "/elsewhere").await.status, 404);
    s.gateway
        .wait_for_log("RouteShadowed", std::time::Duration::from_secs(5))
        .await;
}

/// The README's example (`examples/gateway-api`): the Ingress and the
/// HTTPRoute both serve, from the folder as shipped.
#[tokio::test]
async fn the_side_by_side_example_serves_both_kinds() {
    let four = EchoBackend::start_at("127.0.0.41:8080".parse().unwrap()).await;
    let five = EchoBackend::start_at("127.0.0.51:8080".parse().unwrap()).await;
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway-api");
    let gw = testkit::Gateway::start(crate::BIN, &folder, &["--enable-gateway-api"]).await;
    gw.wait_ready().await;
    let r = get(gw.http_addr(), "localhost", "/api/v1/predict/4/health").await;
    assert_eq!(who(&r), four.addr().to_string());
    let r = get(gw.http_addr(), "localhost", "/api/v1/predict/5/health").await;
    assert_eq!(who(&r), five.addr().to_string());
}
