//! The controller ConfigMap's header keys, through the real binary: who
//! the client is (`use-forwarded-headers`, `enable-real-ip`,
//! `proxy-real-ip-cidr`, `forwarded-for-header`,
//! `compute-full-forwarded-for`), the headers sent upstream and back, the
//! block lists, and the header ConfigMaps `proxy-set-headers` /
//! `add-headers` name, from the manifests folder and from the API.
//!
//! The test client connects from 127.0.0.1, so `proxy-real-ip-cidr`
//! `127.0.0.0/8` trusts it and `10.0.0.0/8` does not.

use std::net::SocketAddr;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{
    EchoBackend, Gateway, IngressBuilder, TestResponse, eventually, ingress_class, request,
};

use crate::{BIN, Setup, service_for};

/// How long a ConfigMap change may take to be served.
const APPLIED: Duration = Duration::from_secs(5);

const CONTROLLER: &str = "ingress-nginx/ingress-nginx-controller";

fn config_map(ns: &str, name: &str, data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": name},
        "data": data,
    })
    .to_string()
}

/// The controller ConfigMap with `data`.
fn controller(data: &[(&str, &str)]) -> String {
    config_map("ingress-nginx", "ingress-nginx-controller", data)
}

/// The Service and Ingress `fwd/app` on `fwd.test` (annotations
/// `annotations`) in front of `backend`.
fn app(backend: &EchoBackend, annotations: &[(&str, &str)]) -> Vec<String> {
    let mut docs = service_for("fwd", "svc", &[backend]);
    let mut ingress = IngressBuilder::new("fwd", "app")
        .class("nginx")
        .host("fwd.test")
        .path("/", "Prefix", "svc", 80);
    for (key, value) in annotations {
        ingress = ingress.annotation(key, value);
    }
    docs.push(ingress.build());
    docs
}

/// A gateway on a manifests folder serving [`app`], reading the
/// controller ConfigMap.
async fn start(backend: &EchoBackend, annotations: &[(&str, &str)]) -> Setup {
    Setup::start_with(&app(backend, annotations), &["--configmap", CONTROLLER]).await
}

async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    request(addr, "GET", "fwd.test", path, headers, Vec::new()).await
}

/// Polls until a GET of `path` with `headers` gives a response for which
/// `check` holds (it explains what it saw otherwise); returns that response.
async fn until(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    check: impl Fn(&TestResponse) -> Result<(), String>,
) -> TestResponse {
    eventually(APPLIED, || async {
        let response = get_with(addr, path, headers).await;
        check(&response).map(|()| response)
    })
    .await
}

/// The header `name` the echo backend received, from its JSON answer.
fn upstream(response: &TestResponse, name: &str) -> Option<String> {
    if response.status != 200 {
        return None;
    }
    response.json()["headers"][name].as_str().map(str::to_owned)
}

/// A check that the backend saw `name: want` (`None`: no such header).
fn saw(
    name: &'static str,
    want: Option<&'static str>,
) -> impl Fn(&TestResponse) -> Result<(), String> {
    move |response| {
        let got = upstream(response, name);
        if response.status == 200 && got.as_deref() == want {
            Ok(())
        } else {
            Err(format!(
                "status {}, {name}: {got:?}, want {want:?}",
                response.status
            ))
        }
    }
}

fn status_is(want: u16) -> impl Fn(&TestResponse) -> Result<(), String> {
    move |response| {
        if response.status == want {
            Ok(())
        } else {
            Err(format!("status {}, want {want}", response.status))
        }
    }
}

const FROM_PROXY: &[(&str, &str)] = &[
    ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "public.example"),
    ("x-forwarded-port", "443"),
];

#[tokio::test]
async fn forwarded_headers_are_trusted_only_when_configured_and_from_trusted_peers() {
    let backend = EchoBackend::start([127, 0, 106, 1]).await;
    let s = start(&backend, &[]).await;

    // Default: the connection's view; the client's chain is kept aside.
    let seen = get_with(s.http(), "/", FROM_PROXY).await;
    assert_eq!(upstream(&seen, "x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        upstream(&seen, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        upstream(&seen, "x-original-forwarded-for").as_deref(),
        Some("203.0.113.9, 10.1.1.1")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-host").as_deref(),
        Some("fwd.test")
    );
    assert_eq!(upstream(&seen, "x-forwarded-port").as_deref(), Some("80"));

    // Trusted: nginx's realip walk skips the trusted 10.1.1.1.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("use-forwarded-headers", "true"),
            ("proxy-real-ip-cidr", "127.0.0.0/8, 10.0.0.0/8"),
        ]),
    );
    let seen = until(
        s.http(),
        "/",
        FROM_PROXY,
        saw("x-real-ip", Some("203.0.113.9")),
    )
    .await;
    assert_eq!(
        upstream(&seen, "x-forwarded-for").as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-scheme").as_deref(),
        Some("https")
    );
    assert_eq!(upstream(&seen, "x-scheme").as_deref(), Some("https"));
    assert_eq!(
        upstream(&seen, "x-forwarded-host").as_deref(),
        Some("public.example")
    );
    assert_eq!(upstream(&seen, "x-forwarded-port").as_deref(), Some("443"));

    // compute-full-forwarded-for: the chain plus the peer.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("use-forwarded-headers", "true"),
            ("compute-full-forwarded-for", "true"),
            ("proxy-real-ip-cidr", "127.0.0.0/8, 10.0.0.0/8"),
        ]),
    );
    until(
        s.http(),
        "/",
        FROM_PROXY,
        saw("x-forwarded-for", Some("203.0.113.9, 10.1.1.1, 127.0.0.1")),
    )
    .await;

    // A peer outside proxy-real-ip-cidr: nothing it says counts.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("use-forwarded-headers", "true"),
            ("proxy-real-ip-cidr", "10.0.0.0/8"),
        ]),
    );
    let seen = until(
        s.http(),
        "/",
        FROM_PROXY,
        saw("x-real-ip", Some("127.0.0.1")),
    )
    .await;
    assert_eq!(
        upstream(&seen, "x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-host").as_deref(),
        Some("fwd.test")
    );

    // enable-real-ip with another header: the address only.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("enable-real-ip", "true"),
            ("forwarded-for-header", "CF-Connecting-IP"),
        ]),
    );
    let mut headers = FROM_PROXY.to_vec();
    headers.push(("cf-connecting-ip", "198.51.100.7"));
    let seen = until(
        s.http(),
        "/",
        &headers,
        saw("x-real-ip", Some("198.51.100.7")),
    )
    .await;
    assert_eq!(
        upstream(&seen, "x-forwarded-for").as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        upstream(&seen, "x-original-forwarded-for").as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        upstream(&seen, "x-forwarded-proto").as_deref(),
        Some("http")
    );
}

#[tokio::test]
async fn the_real_client_address_feeds_access_lists_and_the_access_log() {
    let backend = EchoBackend::start([127, 0, 106, 2]).await;
    let s = start(
        &backend,
        &[(
            "nginx.ingress.kubernetes.io/whitelist-source-range",
            "203.0.113.0/24",
        )],
    )
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(
        get_with(s.http(), "/", &from("203.0.113.5")).await.status,
        403
    );

    s.dir
        .write("cm.yaml", &controller(&[("use-forwarded-headers", "true")]));
    until(
        s.http(),
        "/logged-client",
        &from("203.0.113.5"),
        status_is(200),
    )
    .await;
    assert_eq!(
        get_with(s.http(), "/", &from("198.51.100.1")).await.status,
        403
    );
    assert_eq!(get_with(s.http(), "/", &[]).await.status, 403);

    // block-cidrs sees the same address.
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("use-forwarded-headers", "true"),
            ("block-cidrs", "203.0.113.5/32"),
        ]),
    );
    until(s.http(), "/", &from("203.0.113.5"), status_is(403)).await;
    assert_eq!(
        get_with(s.http(), "/", &from("203.0.113.6")).await.status,
        200
    );

    let line = eventually(APPLIED, || async {
        s.gateway
            .stdout()
            .lines()
            .find(|l| l.contains("\"GET /logged-client HTTP/1.1\" 200 "))
            .map(str::to_owned)
            .ok_or_else(|| "no access log line for /logged-client".to_owned())
    })
    .await;
    // ingress-nginx's upstreaminfo format: `$remote_addr - $remote_user ...`.
    assert!(line.starts_with("203.0.113.5 - "), "{line}");
}

#[tokio::test]
async fn header_keys_change_what_goes_upstream_and_back() {
    let backend = EchoBackend::start([127, 0, 106, 3]).await;
    let s = start(&backend, &[]).await;
    let path = "/p?q=1&header=server:gunicorn&header=x-powered-by:php";
    let client = [("x_user", "u"), ("x-request-id", "given-1")];

    // Defaults: a generated id when none is sent, the client's otherwise;
    // underscored headers dropped; Server hidden; no X-Original-URI.
    let seen = get_with(s.http(), path, &[]).await;
    let id = upstream(&seen, "x-request-id").unwrap_or_default();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    let seen = get_with(s.http(), path, &client).await;
    assert_eq!(upstream(&seen, "x-request-id").as_deref(), Some("given-1"));
    assert_eq!(upstream(&seen, "x_user"), None);
    assert_eq!(upstream(&seen, "x-original-uri"), None);
    assert_eq!(seen.header("server"), None);
    assert_eq!(seen.header("x-powered-by").as_deref(), Some("php"));

    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("generate-request-id", "false"),
            ("enable-underscores-in-headers", "true"),
            ("proxy-add-original-uri-header", "true"),
            ("allow-backend-server-header", "true"),
            ("hide-headers", "X-Powered-By"),
        ]),
    );
    let seen = until(s.http(), path, &client, saw("x_user", Some("u"))).await;
    assert_eq!(upstream(&seen, "x-request-id").as_deref(), Some("given-1"));
    assert_eq!(upstream(&seen, "x-original-uri").as_deref(), Some(path));
    assert_eq!(seen.header("server").as_deref(), Some("gunicorn"));
    assert_eq!(seen.header("x-powered-by"), None);
    let seen = get_with(s.http(), path, &[]).await;
    assert_eq!(upstream(&seen, "x-request-id"), None, "no id generated");
}

#[tokio::test]
async fn blocked_user_agents_and_referers_get_403_before_any_backend() {
    let backend = EchoBackend::start([127, 0, 106, 4]).await;
    let s = start(&backend, &[]).await;
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("block-user-agents", "~*bot, curl/7.0"),
            ("block-referers", "~^https://spam\\."),
        ]),
    );
    until(
        s.http(),
        "/",
        &[("user-agent", "EvilBot/1")],
        status_is(403),
    )
    .await;
    let hits = backend.hits();
    for blocked in [
        [("user-agent", "CURL/7.0")],
        [("referer", "https://spam.example/")],
    ] {
        assert_eq!(
            get_with(s.http(), "/", &blocked).await.status,
            403,
            "{blocked:?}"
        );
    }
    assert_eq!(
        backend.hits(),
        hits,
        "blocked requests never reach a backend"
    );
    for allowed in [
        [("user-agent", "curl/7.01")],
        [("referer", "https://example/?https://spam.x")],
    ] {
        assert_eq!(
            get_with(s.http(), "/", &allowed).await.status,
            200,
            "{allowed:?}"
        );
    }

    // A pattern that does not compile: reported, and the routes fail
    // closed (503) rather than serve without the block list.
    s.dir.write(
        "cm.yaml",
        &controller(&[("block-user-agents", "~(unclosed")]),
    );
    until(
        s.http(),
        "/",
        &[("user-agent", "EvilBot/1")],
        status_is(503),
    )
    .await;
    s.gateway.wait_for_log("block-user-agents", APPLIED).await;
}

#[tokio::test]
async fn named_header_config_maps_apply_and_change_without_restart() {
    let backend = EchoBackend::start([127, 0, 106, 5]).await;
    let s = start(&backend, &[]).await;
    s.dir.write(
        "cm.yaml",
        &controller(&[
            ("proxy-set-headers", "ingress-nginx/upstream-headers"),
            ("add-headers", "response-headers"),
        ]),
    );
    s.dir.write(
        "headers.yaml",
        &format!(
            "{}\n---\n{}",
            config_map(
                "ingress-nginx",
                "upstream-headers",
                &[("X-Team", "models"), ("X-Client", "$remote_addr")],
            ),
            config_map(
                "ingress-nginx",
                "response-headers",
                &[("X-Frame-Options", "DENY")]
            ),
        ),
    );
    let seen = until(s.http(), "/", &[], saw("x-team", Some("models"))).await;
    assert_eq!(upstream(&seen, "x-client"), None, "variables are refused");
    assert_eq!(seen.header("x-frame-options").as_deref(), Some("DENY"));
    s.gateway.wait_for_log("X-Client", APPLIED).await;
    // add-headers go on the gateway's own answers too.
    let missing = request(s.http(), "GET", "unknown.test", "/", &[], Vec::new()).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-frame-options").as_deref(), Some("DENY"));

    // Editing only the named ConfigMap applies.
    s.dir.write(
        "headers.yaml",
        &format!(
            "{}\n---\n{}",
            config_map("ingress-nginx", "upstream-headers", &[("X-Team", "search")]),
            config_map("ingress-nginx", "response-headers", &[]),
        ),
    );
    let seen = until(s.http(), "/", &[], saw("x-team", Some("search"))).await;
    assert_eq!(seen.header("x-frame-options"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_header_config_maps_are_read_from_the_api() {
    let backend = EchoBackend::start([127, 0, 106, 6]).await;
    let server = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let apply = |doc: &str| server.apply(serde_json::from_str(doc).unwrap()).unwrap();
    apply(&ingress_class());
    for ns in ["ingress-nginx", "fwd"] {
        apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
        );
    }
    for doc in app(&backend, &[]) {
        apply(&doc);
    }
    apply(&controller(&[("proxy-set-headers", "upstream-headers")]));
    apply(&config_map(
        "ingress-nginx",
        "upstream-headers",
        &[("X-Team", "models")],
    ));
    let env = [("POD_NAME", "gw-0"), ("POD_NAMESPACE", "ingress-nginx")];
    let gateway =
        Gateway::start_with_kubeconfig(BIN, &kubeconfig, &["--configmap", CONTROLLER], &env).await;
    gateway.wait_ready().await;
    let addr = gateway.http_addr();
    until(addr, "/", &[], saw("x-team", Some("models"))).await;

    apply(&config_map(
        "ingress-nginx",
        "upstream-headers",
        &[("X-Team", "search")],
    ));
    until(addr, "/", &[], saw("x-team", Some("search"))).await;
    server
        .delete("configmaps", "ingress-nginx", "upstream-headers")
        .unwrap();
    until(addr, "/", &[], saw("x-team", None)).await;
}

#[tokio::test]
async fn a_trusted_x_forwarded_proto_decides_the_https_redirect() {
    let backend = EchoBackend::start([127, 0, 106, 7]).await;
    let mut docs = service_for("fwd", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("fwd", "app")
            .class("nginx")
            .host("fwd.test")
            .path("/", "Prefix", "svc", 80)
            .tls(&["fwd.test"], "fwd-cert")
            .build(),
    );
    let s = Setup::start_with(&docs, &["--configmap", CONTROLLER]).await;
    let https = [("x-forwarded-proto", "https")];
    let redirected = get_with(s.http(), "/a", &https).await;
    assert_eq!(redirected.status, 308);
    assert_eq!(
        redirected.header("location").as_deref(),
        Some("https://fwd.test/a")
    );

    // Behind a TLS-terminating proxy: no redirect loop.
    s.dir
        .write("cm.yaml", &controller(&[("use-forwarded-headers", "true")]));
    until(s.http(), "/a", &https, status_is(200)).await;
    let plain = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "public.example:8080"),
    ];
    let redirected = get_with(s.http(), "/a", &plain).await;
    assert_eq!(redirected.status, 308);
    assert_eq!(
        redirected.header("location").as_deref(),
        Some("https://public.example/a")
    );
}
