//! What a route does to its upstream's answer, through the real binary:
//! `proxy-redirect-from` / `-to` and `proxy-cookie-domain` / `-path` as
//! nginx rewrites them, `custom-headers` under
//! `global-allowed-response-headers`, and `limit-rate` pacing.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{EchoBackend, IngressBuilder, eventually, get, request};

use crate::{Setup, service_for};

const CONTROLLER: &str = "ingress-nginx/controller";

fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": name},
        "data": data,
    })
    .to_string()
}

#[tokio::test]
async fn redirects_cookies_and_headers_are_rewritten() {
    let backend = EchoBackend::start([127, 0, 207, 1]).await;
    let mut docs = service_for("rw", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("rw", "app")
            .class("nginx")
            .host("rw.test")
            .path("/", "Prefix", "svc", 80)
            .annotation(
                "nginx.ingress.kubernetes.io/proxy-redirect-from",
                "http://backend.local/",
            )
            .annotation(
                "nginx.ingress.kubernetes.io/proxy-redirect-to",
                "https://rw.test/app/",
            )
            .annotation(
                "nginx.ingress.kubernetes.io/proxy-cookie-domain",
                "backend.local rw.test",
            )
            .annotation("nginx.ingress.kubernetes.io/proxy-cookie-path", "/ /app/")
            .annotation("nginx.ingress.kubernetes.io/custom-headers", "headers")
            .build(),
    );
    docs.push(
        IngressBuilder::new("rw", "refused")
            .class("nginx")
            .host("refused.test")
            .path("/", "Prefix", "svc", 80)
            .annotation("nginx.ingress.kubernetes.io/custom-headers", "rw/too-many")
            .build(),
    );
    docs.push(config_map("rw", "headers", &[("X-Team", "models")]));
    docs.push(config_map(
        "rw",
        "too-many",
        &[("X-Team", "models"), ("X-Secret", "1")],
    ));
    docs.push(config_map(
        "ingress-nginx",
        "controller",
        &[("global-allowed-response-headers", "X-Team")],
    ));
    let s = Setup::start_with(&docs, &["--configmap", CONTROLLER]).await;

    let path = "/login?header=location:http://backend.local/next&header=refresh:3;url=http://backend.local/home&header=set-cookie:s=1;Domain=BACKEND.local;Path=/x;HttpOnly";
    let response = eventually(Duration::from_secs(10), || async {
        let response = get(s.http(), "rw.test", path).await;
        match response.headers.get("x-team") {
            Some(v) if v == "models" => Ok(response),
            other => Err(format!("status {}, x-team {other:?}", response.status)),
        }
    })
    .await;
    assert_eq!(response.headers["location"], "https://rw.test/app/next");
    assert_eq!(
        response.headers["refresh"],
        "3;url=https://rw.test/app/home"
    );
    assert_eq!(
        response.headers["set-cookie"],
        "s=1;Domain=rw.test;Path=/app/x;HttpOnly"
    );

    // A header the controller ConfigMap does not allow: 503.
    let refused = get(s.http(), "refused.test", "/").await;
    assert_eq!(refused.status, 503);
}

#[tokio::test]
async fn limit_rate_paces_the_response() {
    let backend = EchoBackend::start([127, 0, 207, 2]).await;
    let mut docs = service_for("rate", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("rate", "slow")
            .class("nginx")
            .host("rate.test")
            .path("/", "Prefix", "svc", 80)
            .annotation("nginx.ingress.kubernetes.io/limit-rate", "4")
            .annotation("nginx.ingress.kubernetes.io/limit-rate-after", "4")
            .build(),
    );
    let s = Setup::start(&docs).await;
    // 20 KiB at 4 KiB/s after 4 KiB, one second's worth at once: at least
    // 2.9 s for the rest. (A lower bound: a loaded machine only adds.)
    let started = Instant::now();
    let response = request(
        s.http(),
        "GET",
        "rate.test",
        "/?bytes=20480",
        &[],
        Vec::new(),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 20480);
    assert!(took >= Duration::from_millis(2900), "paced in {took:?}");
    println!("20 KiB at limit-rate 4 (KiB/s) after 4 KiB: {took:?}");
}
