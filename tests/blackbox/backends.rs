//! Endpoints: balancing, readiness, and what happens when there are none or
//! they fail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use testkit::{
    EchoBackend, IngressBuilder, SilentBackend, closed_port, endpoint_slice, endpoint_slice_named,
    get, request, service,
};

use crate::{Setup, answered_by, service_for};

fn ingress(ns: &str, service: &str) -> String {
    IngressBuilder::new(ns, service)
        .class("nginx")
        .host("lb.test")
        .path("/", "Prefix", service, 80)
        .build()
}

#[tokio::test]
async fn round_robin_reaches_all_ten_endpoints() {
    let ips: Vec<[u8; 4]> = (1..=10).map(|i| [127, 0, 10, i]).collect();
    let backends = EchoBackend::start_group(&ips).await;
    let refs: Vec<&EchoBackend> = backends.iter().collect();
    let mut docs = service_for("lb", "svc", &refs);
    docs.push(ingress("lb", "svc"));
    let s = Setup::start(&docs).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..100 {
        let response = get(s.http(), "lb.test", "/").await;
        assert_eq!(response.status, 200);
        *seen.entry(answered_by(&response)).or_default() += 1;
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(
        seen.values().all(|n| *n == 10),
        "round robin is even: {seen:?}"
    );
}

#[tokio::test]
async fn not_ready_endpoints_get_no_traffic() {
    let backends =
        EchoBackend::start_group(&[[127, 0, 11, 1], [127, 0, 11, 2], [127, 0, 11, 3]]).await;
    let port = backends[0].addr().port();
    let endpoints: Vec<(IpAddr, Option<bool>)> = vec![
        (backends[0].addr().ip(), Some(true)),
        (backends[1].addr().ip(), Some(false)),
        (backends[2].addr().ip(), None),
    ];
    let docs = vec![
        service("r", "svc", 80, port),
        endpoint_slice("r", "svc", port, &endpoints),
        ingress("r", "svc"),
    ];
    let s = Setup::start(&docs).await;
    for _ in 0..30 {
        assert_eq!(get(s.http(), "lb.test", "/").await.status, 200);
    }
    assert_eq!(backends[1].hits(), 0, "not-ready endpoint was used");
    assert_eq!(backends[0].hits() + backends[2].hits(), 30);
    assert!(backends[0].hits() > 0 && backends[2].hits() > 0);
}

#[tokio::test]
async fn no_endpoint_and_missing_service_are_503() {
    let docs = vec![
        service("e", "empty", 80, 8080),
        endpoint_slice("e", "empty", 8080, &[]),
        IngressBuilder::new("e", "routes")
            .class("nginx")
            .host("e.test")
            .path("/empty", "Prefix", "empty", 80)
            .path("/missing", "Prefix", "missing", 80)
            .build(),
    ];
    let s = Setup::start(&docs).await;
    assert_eq!(get(s.http(), "e.test", "/empty").await.status, 503);
    assert_eq!(get(s.http(), "e.test", "/missing").await.status, 503);
    s.gateway
        .wait_for_log("ServiceNotFound", Duration::from_secs(5))
        .await;
    assert!(
        s.gateway.logs().contains("e/missing"),
        "the diagnostic names the Service"
    );
}

#[tokio::test]
async fn refused_connections_are_502() {
    let dead = closed_port([127, 0, 12, 1]);
    let docs = vec![
        service("f", "svc", 80, dead.port()),
        endpoint_slice("f", "svc", dead.port(), &[(dead.ip(), Some(true))]),
        ingress("f", "svc"),
    ];
    let s = Setup::start(&docs).await;
    assert_eq!(get(s.http(), "lb.test", "/").await.status, 502);
    let post = request(s.http(), "POST", "lb.test", "/", &[], b"{}".to_vec()).await;
    assert_eq!(post.status, 502);
}

#[tokio::test]
async fn failed_connects_are_retried_on_another_endpoint_for_every_method() {
    let live = EchoBackend::start([127, 0, 13, 1]).await;
    let dead = closed_port([127, 0, 13, 2]);
    let docs = vec![
        service("g", "svc", 80, live.addr().port()),
        endpoint_slice_named(
            "g",
            "svc-live",
            "svc",
            live.addr().port(),
            &[(live.addr().ip(), None)],
        ),
        endpoint_slice_named("g", "svc-dead", "svc", dead.port(), &[(dead.ip(), None)]),
        ingress("g", "svc"),
    ];
    let s = Setup::start(&docs).await;
    for method in ["GET", "POST", "PUT", "DELETE"] {
        for _ in 0..4 {
            let response = request(s.http(), method, "lb.test", "/", &[], b"body".to_vec()).await;
            assert_eq!(response.status, 200, "{method}");
        }
    }
    assert_eq!(live.hits(), 16);
}

#[tokio::test]
async fn a_silent_upstream_times_out_with_504() {
    let silent = SilentBackend::start([127, 0, 14, 1]).await;
    let docs = vec![
        service("t", "svc", 80, silent.addr().port()),
        endpoint_slice(
            "t",
            "svc",
            silent.addr().port(),
            &[(silent.addr().ip(), None)],
        ),
        IngressBuilder::new("t", "svc")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/proxy-read-timeout", "1")
            .host("lb.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    ];
    let s = Setup::start(&docs).await;
    let started = Instant::now();
    let response = get(s.http(), "lb.test", "/").await;
    assert_eq!(response.status, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "timed out early: {took:?}"
    );
    assert!(silent.connections() >= 1);
}

#[tokio::test]
async fn upstream_status_codes_pass_through() {
    let backend = EchoBackend::start([127, 0, 15, 1]).await;
    let mut docs = service_for("u", "svc", &[&backend]);
    docs.push(ingress("u", "svc"));
    let s = Setup::start(&docs).await;
    for status in [201, 302, 404, 500, 503] {
        let response = get(s.http(), "lb.test", &format!("/?status={status}")).await;
        assert_eq!(response.status, status);
    }
}
