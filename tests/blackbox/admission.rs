//! Admission annotations through the real binary: CORS, request limits,
//! address lists, basic and external authentication, and what happens
//! when one of them cannot be applied.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, TestResponse, eventually, get, request};

use crate::{Setup, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";

/// `alice:s3cret` (Apache MD5, as `htpasswd -m` writes it).
const HTPASSWD: &str = "alice:$apr1$jcY6gfPK$J5uRY34gYjFZTWoZsfy4Y0";
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";

fn ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("adm", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(host).path("/", "Prefix", "svc", 80).build()
}

fn users_secret(name: &str, text: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": "adm", "name": name},
        "type": "Opaque",
        "stringData": {"auth": text},
    })
    .to_string()
}

async fn setup(backend: &EchoBackend, docs: Vec<String>) -> Setup {
    let mut all = service_for("adm", "svc", &[backend]);
    all.extend(docs);
    Setup::start(&all).await
}

async fn call(s: &Setup, method: &str, host: &str, headers: &[(&str, &str)]) -> TestResponse {
    request(s.http(), method, host, "/x", headers, Vec::new()).await
}

#[tokio::test]
async fn cors_preflight_and_response_headers() {
    let backend = EchoBackend::start([127, 0, 81, 1]).await;
    let s = setup(
        &backend,
        vec![
            ingress("any", "any.test", &[("enable-cors", "true")]),
            ingress(
                "list",
                "list.test",
                &[
                    ("enable-cors", "true"),
                    ("cors-allow-origin", "https://app.example.com"),
                    ("cors-allow-credentials", "false"),
                ],
            ),
        ],
    )
    .await;
    let origin = [("origin", "https://app.example.com")];
    let preflight = call(&s, "OPTIONS", "any.test", &origin).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        preflight.header("access-control-max-age").as_deref(),
        Some("1728000")
    );
    assert_eq!(backend.hits(), 0, "a preflight never reaches the upstream");

    let listed = call(&s, "GET", "list.test", &origin).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(listed.header("access-control-allow-credentials"), None);
    assert_eq!(listed.header("vary").as_deref(), Some("Origin"));
    let other = call(
        &s,
        "GET",
        "list.test",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    let unmatched_preflight = call(
        &s,
        "OPTIONS",
        "list.test",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(
        unmatched_preflight.status, 200,
        "an origin that does not match is proxied, as ingress-nginx"
    );
}

#[tokio::test]
async fn request_limits_refuse_with_503_and_survive_a_reload() {
    let backend = EchoBackend::start([127, 0, 81, 2]).await;
    let limited = ingress(
        "limited",
        "limited.test",
        &[("limit-rpm", "1"), ("limit-burst-multiplier", "1")],
    );
    let s = setup(&backend, vec![limited.clone()]).await;
    // A new address starts with an empty bucket: burst (1) + 1 pass.
    assert_eq!(get(s.http(), "limited.test", "/").await.status, 200);
    assert_eq!(get(s.http(), "limited.test", "/").await.status, 200);
    assert_eq!(get(s.http(), "limited.test", "/").await.status, 503);

    // Another Ingress appears: the table is rebuilt, the bucket is kept.
    s.dir.write(
        "more.yaml",
        &ingress("other", "other.test", &[("limit-rps", "100")]),
    );
    eventually(Duration::from_secs(5), || async {
        match get(s.http(), "other.test", "/").await.status {
            200 => Ok(()),
            status => Err(format!("other.test answered {status}")),
        }
    })
    .await;
    assert_eq!(get(s.http(), "limited.test", "/").await.status, 503);
}

#[tokio::test]
async fn limit_connections_holds_a_slot_until_the_response_ends() {
    let backend = EchoBackend::start([127, 0, 81, 3]).await;
    let s = setup(
        &backend,
        vec![ingress("conn", "conn.test", &[("limit-connections", "1")])],
    )
    .await;
    let http = s.http();
    let slow = tokio::spawn(async move { get(http, "conn.test", "/x?delay_ms=1500").await });
    eventually(Duration::from_secs(5), || async {
        match backend.hits() {
            1 => Ok(()),
            hits => Err(format!("{hits} requests reached the backend")),
        }
    })
    .await;
    assert_eq!(get(s.http(), "conn.test", "/").await.status, 503);
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(get(s.http(), "conn.test", "/").await.status, 200);
}

#[tokio::test]
async fn address_lists_allow_deny_and_fail_closed() {
    let backend = EchoBackend::start([127, 0, 81, 4]).await;
    let s = setup(
        &backend,
        vec![
            ingress(
                "open",
                "open.test",
                &[("whitelist-source-range", "127.0.0.0/8")],
            ),
            ingress(
                "closed",
                "closed.test",
                &[("whitelist-source-range", "10.0.0.0/8")],
            ),
            ingress(
                "deny",
                "deny.test",
                &[("denylist-source-range", "127.0.0.1/32")],
            ),
            ingress(
                "typo",
                "typo.test",
                &[("whitelist-source-range", "10.0.0.0/33")],
            ),
        ],
    )
    .await;
    assert_eq!(get(s.http(), "open.test", "/").await.status, 200);
    assert_eq!(get(s.http(), "closed.test", "/").await.status, 403);
    assert_eq!(get(s.http(), "deny.test", "/").await.status, 403);
    assert_eq!(
        get(s.http(), "typo.test", "/").await.status,
        503,
        "an unusable list denies the route instead of opening it"
    );
    let logs = s.gateway.logs();
    assert!(logs.contains("LocationDenied"), "{logs}");
}

#[tokio::test]
async fn basic_auth_challenges_verifies_and_hides_credentials() {
    let backend = EchoBackend::start([127, 0, 81, 5]).await;
    let auth = [
        ("auth-type", "basic"),
        ("auth-secret", "users"),
        ("auth-realm", "Models \"staff\""),
    ];
    let s = setup(
        &backend,
        vec![
            users_secret("users", HTPASSWD),
            ingress("basic", "basic.test", &auth),
            ingress(
                "missing",
                "missing.test",
                &[("auth-type", "basic"), ("auth-secret", "nobody")],
            ),
        ],
    )
    .await;
    let challenged = call(&s, "GET", "basic.test", &[]).await;
    assert_eq!(challenged.status, 401);
    assert_eq!(
        challenged.header("www-authenticate").as_deref(),
        Some("Basic realm=\"Models \\\"staff\\\"\"")
    );
    let wrong = call(
        &s,
        "GET",
        "basic.test",
        &[("authorization", "Basic YWxpY2U6bm8=")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(backend.hits(), 0);
    let admitted = call(&s, "GET", "basic.test", &[("authorization", ALICE)]).await;
    assert_eq!(admitted.status, 200);
    let seen = backend.last_request().unwrap();
    assert_eq!(
        seen.header("authorization"),
        None,
        "credentials stay at the gateway"
    );
    assert_eq!(
        call(&s, "GET", "missing.test", &[("authorization", ALICE)])
            .await
            .status,
        503,
        "a missing users Secret denies the route"
    );
}

#[tokio::test]
async fn external_auth_grants_headers_or_passes_the_refusal_back() {
    let backend = EchoBackend::start([127, 0, 81, 6]).await;
    let auth_service = EchoBackend::start([127, 0, 81, 7]).await;
    let url = format!("http://{}/check", auth_service.addr());
    let refusing = format!("http://{}/check?status=401", auth_service.addr());
    let s = setup(
        &backend,
        vec![
            ingress(
                "ext",
                "ext.test",
                &[("auth-url", &url), ("auth-response-headers", "X-Backend")],
            ),
            ingress("refused", "refused.test", &[("auth-url", &refusing)]),
        ],
    )
    .await;
    let admitted = call(&s, "POST", "ext.test", &[("x-backend", "spoofed")]).await;
    assert_eq!(admitted.status, 200);
    let checked = auth_service.last_request().unwrap();
    assert_eq!(checked.method, "GET", "the auth subrequest has no body");
    assert_eq!(checked.header("x-original-method").as_deref(), Some("POST"));
    assert_eq!(
        checked.header("x-original-url").as_deref(),
        Some("http://ext.test/x")
    );
    let seen = backend.last_request().unwrap();
    assert_eq!(
        seen.header("x-backend").as_deref(),
        Some(auth_service.addr().to_string().as_str()),
        "the granted header replaces the client's copy"
    );
    let hits = backend.hits();
    assert_eq!(call(&s, "GET", "refused.test", &[]).await.status, 401);
    assert_eq!(
        backend.hits(),
        hits,
        "a refused request never reaches the upstream"
    );
}
