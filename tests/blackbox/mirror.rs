//! Request mirroring (`mirror-target`, `mirror-request-body`,
//! `mirror-host`) through the real binary: the mirror receives copies,
//! with the body, `Host` and `X-Original-URI`, while the client's answer is
//! the main backend's, unchanged and not held back by a mirror that never
//! answers.

use std::time::{Duration, Instant};

use testkit::{EchoBackend, IngressBuilder, SilentBackend, eventually, request, scrape};

use crate::{Setup, answered_by, service_for};

#[tokio::test]
async fn copies_reach_the_mirror_and_the_answer_stays_the_mains() {
    let main = EchoBackend::start([127, 0, 206, 1]).await;
    let mirror = EchoBackend::start([127, 0, 206, 2]).await;
    let silent = SilentBackend::start([127, 0, 206, 3]).await;
    let mut docs = service_for("mir", "main", &[&main]);
    docs.push(
        IngressBuilder::new("mir", "mirrored")
            .class("nginx")
            .host("mir.test")
            .path("/predict", "Prefix", "main", 80)
            .annotation(
                "nginx.ingress.kubernetes.io/mirror-target",
                &format!("http://{}$request_uri", mirror.addr()),
            )
            .annotation("nginx.ingress.kubernetes.io/mirror-host", "shadow.test")
            .build(),
    );
    docs.push(
        IngressBuilder::new("mir", "stalled")
            .class("nginx")
            .host("mir.test")
            .path("/stalled", "Prefix", "main", 80)
            .annotation(
                "nginx.ingress.kubernetes.io/mirror-target",
                &format!("http://{}$request_uri", silent.addr()),
            )
            .annotation("nginx.ingress.kubernetes.io/mirror-request-body", "off")
            .build(),
    );
    docs.push(
        IngressBuilder::new("mir", "plain")
            .class("nginx")
            .host("mir.test")
            .path("/plain", "Prefix", "main", 80)
            .build(),
    );
    let s = Setup::start_with(&docs, &["--enable-metrics"]).await;

    let answer = request(
        s.http(),
        "POST",
        "mir.test",
        "/predict?model=a",
        &[("content-type", "application/json")],
        b"{\"inputs\":[1,2,3]}".to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answered_by(&answer), main.addr().to_string());
    let copy = eventually(Duration::from_secs(10), || async {
        mirror
            .last_request()
            .ok_or_else(|| "no copy yet".to_owned())
    })
    .await;
    assert_eq!(copy.method, "POST");
    assert_eq!(copy.path, "/predict?model=a");
    assert_eq!(&copy.body[..], b"{\"inputs\":[1,2,3]}");
    assert_eq!(copy.header("host").as_deref(), Some("shadow.test"));
    assert_eq!(
        copy.header("x-original-uri").as_deref(),
        Some("/predict?model=a")
    );
    // The main backend got the request once, as usual.
    assert_eq!(main.hits(), 1);

    // A mirror that never answers holds no one back: each answer comes
    // while the copies still wait.
    let started = Instant::now();
    for _ in 0..3 {
        let answer = request(s.http(), "GET", "mir.test", "/stalled", &[], Vec::new()).await;
        assert_eq!(answer.status, 200);
    }
    let with_stalled_mirror = started.elapsed();
    let started = Instant::now();
    for _ in 0..3 {
        let answer = request(s.http(), "GET", "mir.test", "/plain", &[], Vec::new()).await;
        assert_eq!(answer.status, 200);
    }
    let without_mirror = started.elapsed();
    eventually(Duration::from_secs(10), || async {
        if silent.connections() >= 3 {
            Ok(())
        } else {
            Err(format!(
                "{} copies reached the silent mirror",
                silent.connections()
            ))
        }
    })
    .await;
    println!(
        "3 requests: {with_stalled_mirror:?} with a mirror that never answers, {without_mirror:?} without a mirror"
    );

    let metrics = scrape(s.gateway.metrics_addr()).await;
    let sent = metrics
        .iter()
        .find(|m| {
            m.name == "edge_gateway_mirror_requests_total"
                && m.label("ingress") == Some("mirrored")
                && m.label("result") == Some("sent")
        })
        .map_or(0.0, |m| m.value);
    assert!(sent >= 1.0, "{sent}");
}
