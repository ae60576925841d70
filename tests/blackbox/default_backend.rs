//! `--default-backend-service`: requests that match no Ingress rule go to
//! the flag's Service (its first port) instead of the built-in 404; an
//! Ingress `defaultBackend` still wins; without a ready endpoint the
//! built-in 404 answers, as ingress-nginx falls back to its own default
//! endpoint; `custom-http-errors` without a `default-backend` annotation
//! asks that Service; the requests are counted and logged as ingress-nginx's
//! default backend; `check` honours the flag too.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use testkit::{
    EchoBackend, IngressBuilder, TestResponse, endpoint_slice, eventually, get, ingress_class,
    join_docs, service,
};

use crate::metrics::access_lines;
use crate::{BIN, Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";
const FLAG: &str = "--default-backend-service=ingress-nginx/pages";
const SHOWS: Duration = Duration::from_secs(10);

fn app(name: &str, host: &str, path: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("shop", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(host).path(path, "Prefix", "app", 80).build()
}

/// The Service `ingress-nginx/pages` with two ports (the first is used)
/// and `backends` ready on the first one's target port.
fn pages_service(backends: &[&EchoBackend]) -> Vec<String> {
    let port = backends.first().map_or(8080, |b| b.addr().port());
    let svc = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "ingress-nginx", "name": "pages"},
        "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": port},
            {"name": "other", "port": 9000, "targetPort": 9},
        ]},
    });
    let endpoints: Vec<(IpAddr, Option<bool>)> = backends
        .iter()
        .map(|b| (b.addr().ip(), Some(true)))
        .collect();
    vec![
        svc.to_string(),
        endpoint_slice("ingress-nginx", "pages", port, &endpoints),
    ]
}

fn seen(response: &TestResponse) -> (String, String, String) {
    let json = response.json();
    (
        answered_by(response),
        json["headers"]["host"].as_str().unwrap_or("").to_owned(),
        json["path"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn requests_no_rule_takes_reach_the_default_backend_service() {
    let model = EchoBackend::start([127, 0, 171, 1]).await;
    let pages = EchoBackend::start([127, 0, 171, 2]).await;
    let mut docs = service_for("shop", "app", &[&model]);
    docs.extend(pages_service(&[&pages]));
    docs.push(app("app", "shop.test", "/app", &[]));
    let s = Setup::start_with(&docs, &[FLAG, "--enable-metrics"]).await;
    let pages_addr = pages.addr().to_string();

    // An unknown host: the flag's Service sees the client's Host and path.
    let unknown = get(s.http(), "unknown.test", "/some/where?q=1").await;
    assert_eq!(unknown.status, 200, "{}", unknown.text());
    assert_eq!(
        seen(&unknown),
        (
            pages_addr.clone(),
            "unknown.test".to_owned(),
            "/some/where?q=1".to_owned()
        )
    );
    // A known host's unmatched path too.
    let unmatched = get(s.http(), "shop.test", "/other").await;
    assert_eq!(unmatched.status, 200);
    assert_eq!(
        seen(&unmatched),
        (
            pages_addr.clone(),
            "shop.test".to_owned(),
            "/other".to_owned()
        )
    );
    // Rules and the built-in /healthz keep their own answers.
    let routed = get(s.http(), "shop.test", "/app/x").await;
    assert_eq!(
        (routed.status, answered_by(&routed)),
        (200, model.addr().to_string())
    );
    let health = get(s.http(), "unknown.test", "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(pages.hits(), 2);

    // Access log: like ingress-nginx's default backend, not logged unless
    // enable-access-log-for-default-backend; only the routed request is.
    let lines = eventually(SHOWS, || async {
        let lines = access_lines(&s.gateway);
        if lines.iter().any(|l| l.contains("\"GET /app/x HTTP/1.1\"")) {
            Ok(lines)
        } else {
            Err(format!("no /app/x line in {lines:?}"))
        }
    })
    .await;
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(&pages_addr) || l.contains("upstream-default-backend")),
        "{lines:?}"
    );

    // Metrics: no Ingress series for the default backend's requests.
    let metrics = s.gateway.metrics_addr();
    let body = eventually(SHOWS, || async {
        let body = get(metrics, "metrics", "/metrics").await.text();
        if body.contains("nginx_ingress_controller_requests{") {
            Ok(body)
        } else {
            Err("no request series yet".to_owned())
        }
    })
    .await;
    let series: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("nginx_ingress_controller_requests{"))
        .collect();
    assert!(
        series.iter().all(|l| l.contains("ingress=\"app\"")),
        "{series:?}"
    );
    // (edge-gateway's own per-endpoint gauges list every backend.)
    let pages_lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("nginx_ingress_controller_") && l.contains("service=\"pages\""))
        .collect();
    assert!(pages_lines.is_empty(), "{pages_lines:?}");
}

#[tokio::test]
async fn without_a_ready_endpoint_the_built_in_404_answers() {
    let pages = EchoBackend::start([127, 0, 171, 10]).await;
    let mut docs = pages_service(&[]);
    docs.extend(service_for("shop", "app", &[]));
    docs.push(app("app", "shop.test", "/app", &[]));
    let s = Setup::start_with(&docs, &[FLAG]).await;

    // ingress-nginx's getDefaultUpstream puts its own 404 endpoint in an
    // empty default backend.
    let r = get(s.http(), "unknown.test", "/x").await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A rule's Service without endpoints still answers 503.
    assert_eq!(get(s.http(), "shop.test", "/app").await.status, 503);

    // Endpoints arrive: the Service answers, without a restart.
    let mut docs = pages_service(&[&pages]);
    docs.extend(service_for("shop", "app", &[]));
    docs.push(app("app", "shop.test", "/app", &[]));
    s.dir.write("objects.yaml", &join_docs(&docs));
    let pages_addr = pages.addr().to_string();
    eventually(SHOWS, || async {
        let r = get(s.http(), "unknown.test", "/x").await;
        if r.status == 200 && answered_by(&r) == pages_addr {
            Ok(())
        } else {
            Err(format!("{}: {}", r.status, r.text()))
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_service_leaves_the_built_in_404() {
    let model = EchoBackend::start([127, 0, 171, 20]).await;
    let mut docs = service_for("shop", "app", &[&model]);
    docs.push(app("app", "shop.test", "/app", &[]));
    let s = Setup::start_with(&docs, &["--default-backend-service=ingress-nginx/nope"]).await;
    assert_eq!(get(s.http(), "unknown.test", "/x").await.status, 404);
    assert_eq!(get(s.http(), "shop.test", "/app").await.status, 200);
}

#[tokio::test]
async fn an_ingress_default_backend_still_wins() {
    let catch_all = EchoBackend::start([127, 0, 171, 30]).await;
    let site = EchoBackend::start([127, 0, 171, 31]).await;
    let pages = EchoBackend::start([127, 0, 171, 32]).await;
    let mut docs = pages_service(&[&pages]);
    docs.extend(service_for("shop", "catch-all", &[&catch_all]));
    docs.extend(service_for("shop", "site", &[&site]));
    docs.extend(service_for("shop", "app", &[]));
    // A rule-less Ingress: the catch-all of unknown hosts.
    docs.push(
        IngressBuilder::new("shop", "catch-all")
            .class("nginx")
            .default_backend("catch-all", 80)
            .build(),
    );
    // An Ingress with rules and a defaultBackend: its host's fallback.
    docs.push(
        IngressBuilder::new("shop", "site")
            .class("nginx")
            .host("site.test")
            .path("/app", "Prefix", "app", 80)
            .default_backend("site", 80)
            .build(),
    );
    docs.push(app("api", "api.test", "/v1", &[]));
    let s = Setup::start_with(&docs, &[FLAG]).await;

    let unknown = get(s.http(), "unknown.test", "/x").await;
    assert_eq!(
        (unknown.status, answered_by(&unknown)),
        (200, catch_all.addr().to_string())
    );
    let fallback = get(s.http(), "site.test", "/other").await;
    assert_eq!(
        (fallback.status, answered_by(&fallback)),
        (200, site.addr().to_string())
    );
    // A host without a defaultBackend of its own gets the flag's Service,
    // as ingress-nginx's createServers gives hosts the default upstream.
    let other = get(s.http(), "api.test", "/v2").await;
    assert_eq!(
        (other.status, answered_by(&other)),
        (200, pages.addr().to_string())
    );
}

#[tokio::test]
async fn custom_http_errors_without_the_annotation_ask_the_flags_service() {
    let model = EchoBackend::start([127, 0, 171, 40]).await;
    let pages = EchoBackend::start([127, 0, 171, 41]).await;
    let own = EchoBackend::start([127, 0, 171, 42]).await;
    let mut docs = service_for("shop", "app", &[&model]);
    docs.extend(pages_service(&[&pages]));
    docs.extend(service_for("shop", "own-pages", &[&own]));
    docs.push(app(
        "errs",
        "errors.test",
        "/e",
        &[("custom-http-errors", "503")],
    ));
    docs.push(app(
        "own",
        "errors.test",
        "/o",
        &[
            ("custom-http-errors", "503"),
            ("default-backend", "own-pages"),
        ],
    ));
    let s = Setup::start_with(&docs, &[FLAG]).await;

    let r = testkit::request(
        s.http(),
        "GET",
        "errors.test",
        "/e/x?status=503",
        &[("x-request-id", "req-7")],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(answered_by(&r), pages.addr().to_string());
    let json = r.json();
    assert_eq!(json["path"], "/");
    let h = &json["headers"];
    assert_eq!(h["x-code"], "503");
    assert_eq!(h["x-original-uri"], "/e/x?status=503");
    assert_eq!(h["x-namespace"], "shop");
    assert_eq!(h["x-ingress-name"], "errs");
    assert_eq!(h["x-service-name"], "app");
    assert_eq!(h["x-request-id"], "req-7");
    assert_eq!(h["host"], "errors.test");
    // Codes not listed pass through.
    let passed = get(s.http(), "errors.test", "/e?status=500").await;
    assert_eq!(
        (passed.status, answered_by(&passed)),
        (500, model.addr().to_string())
    );
    // The annotation's Service wins over the flag's.
    let annotated = get(s.http(), "errors.test", "/o?status=503").await;
    assert_eq!(
        (annotated.status, answered_by(&annotated)),
        (503, own.addr().to_string())
    );
}

#[test]
fn check_honours_the_flag() {
    let dir = testkit::ManifestDir::new();
    let docs = [
        ingress_class(),
        service("shop", "app", 80, 8080),
        app(
            "errs",
            "errors.test",
            "/e",
            &[("custom-http-errors", "503")],
        ),
    ];
    dir.write("objects.yaml", &join_docs(&docs));
    let run = |flag: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .arg("check")
            .arg("--manifests")
            .arg(dir.path())
            .env_remove("KUBECONFIG");
        if let Some(flag) = flag {
            command.arg(flag);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, without) = run(None);
    assert_eq!(code, Some(0), "{without}");
    assert!(without.contains("has no effect"), "{without}");
    let (code, with) = run(Some("--default-backend-service=shop/app"));
    assert_eq!(code, Some(0), "{with}");
    assert!(!with.contains("has no effect"), "{with}");
    let (_, missing) = run(Some("--default-backend-service=shop/nope"));
    assert!(
        missing.contains("--default-backend-service: service not found"),
        "{missing}"
    );
}
