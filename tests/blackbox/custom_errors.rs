//! `custom-http-errors` through the real binary: an upstream answer with a
//! listed code is replaced by the `default-backend` Service's answer to
//! ingress-nginx's error request (its X-* headers), sent with the
//! upstream's status; other codes pass through; the ConfigMap key is the
//! default for Ingresses without the annotation.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, TestResponse, eventually, request};

use crate::{Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";
const HOST: &str = "errors.test";

fn ingress(name: &str, path: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("errs", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(HOST).path(path, "Prefix", "model", 80).build()
}

fn config_map(codes: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller"},
        "data": {"custom-http-errors": codes},
    })
    .to_string()
}

async fn call(s: &Setup, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    request(s.http(), "GET", HOST, path, headers, Vec::new()).await
}

#[tokio::test]
async fn a_listed_upstream_error_is_answered_by_the_default_backend() {
    let model = EchoBackend::start([127, 0, 167, 1]).await;
    let pages = EchoBackend::start([127, 0, 167, 2]).await;
    let mut docs = service_for("errs", "model", &[&model]);
    docs.extend(service_for("errs", "error-pages", &[&pages]));
    docs.push(ingress(
        "app",
        "/app",
        &[
            ("custom-http-errors", "404, 503"),
            ("default-backend", "error-pages"),
        ],
    ));
    docs.push(ingress(
        "plain",
        "/plain",
        &[("default-backend", "error-pages")],
    ));
    docs.push(config_map("502"));
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;

    let headers = [("accept", "application/json"), ("x-request-id", "req-42")];
    let page = call(&s, "/app/x?status=503", &headers).await;
    assert_eq!(page.status, 503, "{}", page.text());
    assert_eq!(answered_by(&page), pages.addr().to_string());
    let seen = page.json();
    assert_eq!(seen["path"], "/");
    assert_eq!(seen["method"], "GET");
    let h = &seen["headers"];
    assert_eq!(h["x-code"], "503");
    assert_eq!(h["x-format"], "application/json");
    assert_eq!(h["x-original-uri"], "/app/x?status=503");
    assert_eq!(h["x-namespace"], "errs");
    assert_eq!(h["x-ingress-name"], "app");
    assert_eq!(h["x-service-name"], "model");
    assert_eq!(h["x-service-port"], "80");
    assert_eq!(h["x-request-id"], "req-42");
    assert_eq!(h["host"], HOST);
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(model.hits(), 1);

    // 404 too; a code not listed passes through; success is untouched.
    let missing = call(&s, "/app?status=404", &[]).await;
    assert_eq!(
        (missing.status, answered_by(&missing)),
        (404, pages.addr().to_string())
    );
    let passed = call(&s, "/app?status=500", &[]).await;
    assert_eq!(
        (passed.status, answered_by(&passed)),
        (500, model.addr().to_string())
    );
    let ok = call(&s, "/app", &[]).await;
    assert_eq!(
        (ok.status, answered_by(&ok)),
        (200, model.addr().to_string())
    );

    // The ConfigMap's list is the default where the annotation is absent.
    eventually(Duration::from_secs(5), || async {
        let r = call(&s, "/plain?status=502", &[]).await;
        if r.status == 502 && answered_by(&r) == pages.addr().to_string() {
            Ok(())
        } else {
            Err(format!("{} from {}", r.status, answered_by(&r)))
        }
    })
    .await;
    let own = call(&s, "/plain?status=503", &[]).await;
    assert_eq!(
        (own.status, answered_by(&own)),
        (503, model.addr().to_string())
    );
    // The annotation replaces the ConfigMap's list.
    let replaced = call(&s, "/app?status=502", &[]).await;
    assert_eq!(
        (replaced.status, answered_by(&replaced)),
        (502, model.addr().to_string())
    );
}

#[tokio::test]
async fn without_a_reachable_default_backend_the_upstream_answer_stays() {
    let model = EchoBackend::start([127, 0, 167, 10]).await;
    let mut docs = service_for("errs", "model", &[&model]);
    // The error pages' Service exists but has no ready pod.
    docs.extend(service_for("errs", "error-pages", &[]));
    docs.push(ingress(
        "app",
        "/",
        &[
            ("custom-http-errors", "503"),
            ("default-backend", "error-pages"),
        ],
    ));
    let s = Setup::start(&docs).await;
    let r = call(&s, "/?status=503", &[]).await;
    assert_eq!((r.status, answered_by(&r)), (503, model.addr().to_string()));
}
