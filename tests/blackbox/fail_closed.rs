//! Nothing protective is silently dropped, through the real binary: what
//! is not built fails closed (client certificates, ModSecurity), global
//! external auth applies where it should and refuses when its service
//! cannot answer, and `satisfy: any` lets in on one passing check.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, closed_port, curl_https, eventually, request};

use crate::config_map::config_map;
use crate::{Setup, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";
const CONFIG: [&str; 2] = ["--configmap", "ingress-nginx/ingress-nginx-controller"];

fn ingress(name: &str, host: &str, path: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("fc", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(host).path(path, "Prefix", "svc", 80).build()
}

async fn status(s: &Setup, host: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    request(s.http(), "GET", host, path, headers, Vec::new())
        .await
        .status
}

/// Polls until `host` + `path` answers `want`.
async fn until(s: &Setup, host: &str, path: &str, want: u16) {
    eventually(Duration::from_secs(5), || async {
        match status(s, host, path, &[]).await {
            got if got == want => Ok(()),
            got => Err(format!("{host}{path}: {got}, want {want}")),
        }
    })
    .await;
}

/// The first case: a client-certificate Ingress answered 200 to a
/// client without a certificate. With its CA Secret missing it answers
/// 503, over HTTP and HTTPS, and its neighbour still serves (the mTLS
/// matrix with a usable CA is in `client_certs.rs`).
#[tokio::test]
async fn client_certificate_ingresses_without_their_ca_fail_closed() {
    let backend = EchoBackend::start([127, 0, 180, 1]).await;
    let mut docs = service_for("fc", "svc", &[&backend]);
    docs.push(ingress(
        "mtls",
        "mtls.test",
        "/",
        &[
            ("auth-tls-verify-client", "on"),
            ("auth-tls-secret", "fc/ca"),
        ],
    ));
    docs.push(ingress("open", "open.test", "/", &[]));
    let s = Setup::start(&docs).await;
    assert_eq!(status(&s, "mtls.test", "/x", &[]).await, 503);
    assert_eq!(status(&s, "open.test", "/x", &[]).await, 200);
    let https = s.gateway.https_addr();
    let answer = curl_https(
        https,
        "mtls.test",
        "/x",
        None,
        &["-o", "/dev/null", "-w", "%{http_code}"],
    )
    .await;
    assert_eq!(answer.stdout, "503", "{answer:?}");
    assert_eq!(
        backend.hits(),
        1,
        "only the open Ingress reached the backend"
    );
    s.gateway
        .wait_for_log("LocationDenied", Duration::from_secs(5))
        .await;
    assert!(s.gateway.logs().contains("auth-tls-secret fc/ca not found"));
}

#[tokio::test]
async fn modsecurity_fails_closed_unless_the_operator_serves_without_it() {
    let backend = EchoBackend::start([127, 0, 180, 2]).await;
    let mut docs = service_for("fc", "svc", &[&backend]);
    docs.push(ingress(
        "waf",
        "waf.test",
        "/",
        &[
            ("enable-modsecurity", "true"),
            ("enable-owasp-core-rules", "true"),
        ],
    ));
    docs.push(ingress("plain", "plain.test", "/", &[]));
    docs.push(ingress(
        "off",
        "off.test",
        "/",
        &[("enable-modsecurity", "false")],
    ));
    let s = Setup::start_with(&docs, &CONFIG).await;
    until(&s, "waf.test", "/", 503).await;
    assert_eq!(status(&s, "plain.test", "/", &[]).await, 200);

    // The WAF on for everyone: every route fails closed but the one that
    // turns it off.
    s.dir
        .write("cm.yaml", &config_map(&[("enable-modsecurity", "true")]));
    until(&s, "plain.test", "/", 503).await;
    assert_eq!(status(&s, "off.test", "/", &[]).await, 200);

    // The operator's explicit choice: served without a WAF, with a warning.
    s.dir.write(
        "cm.yaml",
        &config_map(&[
            ("enable-modsecurity", "true"),
            ("edge-gateway.io/serve-without-waf", "true"),
        ]),
    );
    until(&s, "waf.test", "/", 200).await;
    assert_eq!(status(&s, "plain.test", "/", &[]).await, 200);
    s.gateway
        .wait_for_log("WafNotApplied", Duration::from_secs(5))
        .await;
}

/// Global auth: on for an Ingress without auth of its own, off with
/// `enable-global-auth: "false"`, skipped on `no-auth-locations`, the
/// Ingress's own `auth-url` winning; an unreachable auth service refuses
/// with 500 (as ingress-nginx's failed `auth_request`), never passes.
#[tokio::test]
async fn global_auth_applies_per_ingress_and_refuses_when_unreachable() {
    let backend = EchoBackend::start([127, 0, 180, 3]).await;
    let global = EchoBackend::start([127, 0, 180, 4]).await;
    let own = EchoBackend::start([127, 0, 180, 5]).await;
    let mut docs = service_for("fc", "svc", &[&backend]);
    docs.push(ingress("plain", "ga.test", "/plain", &[]));
    docs.push(ingress(
        "opted-out",
        "ga.test",
        "/public",
        &[("enable-global-auth", "false")],
    ));
    docs.push(ingress(
        "acme",
        "ga.test",
        "/.well-known/acme-challenge",
        &[],
    ));
    let own_url = format!("http://{}/own?status=401", own.addr());
    docs.push(ingress("own", "ga.test", "/own", &[("auth-url", &own_url)]));
    let refusing = format!("http://{}/global?status=403", global.addr());
    let cm = |url: &str| {
        config_map(&[
            ("global-auth-url", url),
            ("global-auth-response-headers", "X-Global-User"),
        ])
    };
    docs.push(cm(&refusing));
    let s = Setup::start_with(&docs, &CONFIG).await;
    until(&s, "ga.test", "/plain", 403).await;
    assert_eq!(status(&s, "ga.test", "/public", &[]).await, 200);
    assert_eq!(
        status(&s, "ga.test", "/.well-known/acme-challenge/token", &[]).await,
        200
    );
    assert_eq!(
        status(&s, "ga.test", "/own", &[]).await,
        401,
        "its own auth-url"
    );
    assert!(own.hits() >= 1);
    let global_hits = global.hits();

    // An auth service that lets in.
    let allowing = format!("http://{}/global", global.addr());
    s.dir.write("cm.yaml", &cm(&allowing));
    until(&s, "ga.test", "/plain", 200).await;
    assert!(global.hits() > global_hits);
    let seen = global.last_request().unwrap();
    assert_eq!(
        seen.header("x-original-url").as_deref(),
        Some("http://ga.test/plain")
    );
    let forged = [("x-global-user", "admin")];
    let hits = backend.hits();
    assert_eq!(status(&s, "ga.test", "/plain", &forged).await, 200);
    let upstream = backend.requests().into_iter().nth(hits).unwrap();
    assert_eq!(
        upstream.header("x-global-user"),
        None,
        "a header the auth service did not grant never reaches the upstream"
    );

    // Unreachable: refused, never passed.
    let unreachable = format!("http://{}/global", closed_port([127, 0, 180, 6]));
    s.dir.write("cm.yaml", &cm(&unreachable));
    until(&s, "ga.test", "/plain", 500).await;
    assert_eq!(status(&s, "ga.test", "/public", &[]).await, 200);

    // Unusable: the routes it covers fail closed.
    s.dir.write("cm.yaml", &cm("not a url"));
    until(&s, "ga.test", "/plain", 503).await;
    assert_eq!(status(&s, "ga.test", "/public", &[]).await, 200);
    assert_eq!(
        status(&s, "ga.test", "/.well-known/acme-challenge/t", &[]).await,
        200
    );
}

/// `satisfy: any`: the address list or the password; `all` (the
/// default) needs both.
#[tokio::test]
async fn satisfy_any_lets_in_on_one_passing_check() {
    let backend = EchoBackend::start([127, 0, 180, 7]).await;
    let mut docs = service_for("fc", "svc", &[&backend]);
    docs.push(
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"namespace": "fc", "name": "users"},
            "stringData": {"auth": "alice:{PLAIN}s3cret\n"},
        })
        .to_string(),
    );
    let checks = |satisfy: &'static str, allow: &'static str| {
        vec![
            ("auth-type", "basic"),
            ("auth-secret", "users"),
            ("whitelist-source-range", allow),
            ("satisfy", satisfy),
        ]
    };
    docs.push(ingress(
        "any-listed",
        "any.test",
        "/listed",
        &checks("any", "127.0.0.0/8"),
    ));
    docs.push(ingress(
        "any-other",
        "any.test",
        "/other",
        &checks("any", "192.0.2.0/24"),
    ));
    docs.push(ingress(
        "all",
        "all.test",
        "/",
        &checks("all", "127.0.0.0/8"),
    ));
    let s = Setup::start(&docs).await;
    let alice = [("authorization", "Basic YWxpY2U6czNjcmV0")];
    assert_eq!(
        status(&s, "any.test", "/listed", &[]).await,
        200,
        "listed address"
    );
    assert_eq!(
        status(&s, "any.test", "/other", &[]).await,
        401,
        "401 before 403"
    );
    assert_eq!(
        status(&s, "any.test", "/other", &alice).await,
        200,
        "password"
    );
    assert_eq!(status(&s, "all.test", "/", &[]).await, 401, "satisfy all");
    assert_eq!(status(&s, "all.test", "/", &alice).await, 200);
}
