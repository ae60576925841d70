//! ingress-nginx annotations through the real binary: what the client gets
//! and what the upstream sees.

use testkit::{EchoBackend, IngressBuilder, get};

use crate::{Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";

fn ingress(
    name: &str,
    host: &str,
    path: &str,
    path_type: &str,
    annotations: &[(&str, &str)],
) -> String {
    let mut builder = IngressBuilder::new("ann", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(host).path(path, path_type, "svc", 80).build()
}

async fn setup(backend: &EchoBackend, ingresses: Vec<String>) -> Setup {
    let mut docs = service_for("ann", "svc", &[backend]);
    docs.extend(ingresses);
    Setup::start(&docs).await
}

#[tokio::test]
async fn rewrite_target_sends_the_captured_path_upstream() {
    let backend = EchoBackend::start([127, 0, 80, 1]).await;
    let s = setup(
        &backend,
        vec![ingress(
            "rw",
            "rw.test",
            "/something(/|$)(.*)",
            "ImplementationSpecific",
            &[
                ("rewrite-target", "/$2"),
                ("x-forwarded-prefix", "/something"),
            ],
        )],
    )
    .await;
    let response = get(s.http(), "rw.test", "/something/new/path?q=1").await;
    assert_eq!(response.status, 200);
    let seen = backend.last_request().unwrap();
    assert_eq!(seen.path, "/new/path?q=1");
    assert_eq!(
        seen.header("x-forwarded-prefix").as_deref(),
        Some("/something")
    );
    get(s.http(), "rw.test", "/SOMETHING").await;
    assert_eq!(
        backend.last_request().unwrap().path,
        "/",
        "case-insensitive, empty capture"
    );
    assert_eq!(get(s.http(), "rw.test", "/other").await.status, 404);
}

/// The rewritten path is escaped as nginx escapes it: what was encoded in
/// the request stays encoded (an encoded `%` or `?` never turns into a
/// path step or a query).
#[tokio::test]
async fn rewritten_paths_keep_their_escapes() {
    let backend = EchoBackend::start([127, 0, 80, 4]).await;
    let s = setup(
        &backend,
        vec![ingress(
            "api",
            "api.test",
            "/api/(.*)",
            "ImplementationSpecific",
            &[("rewrite-target", "/$1")],
        )],
    )
    .await;
    for (sent, upstream) in [
        ("/api/%252e%252e/admin", "/%252e%252e/admin"),
        ("/api/x%3Fadmin=1?q=2", "/x%3Fadmin=1?q=2"),
        ("/api/a%20b%23c", "/a%20b%23c"),
        ("/api/plain/path?x=1&y=2", "/plain/path?x=1&y=2"),
    ] {
        let response = get(s.http(), "api.test", sent).await;
        assert_eq!(response.status, 200, "{sent}");
        assert_eq!(backend.last_request().unwrap().path, upstream, "{sent}");
    }
}

#[tokio::test]
async fn use_regex_matches_start_anchored_and_case_insensitive() {
    let backend = EchoBackend::start([127, 0, 80, 2]).await;
    let s = setup(
        &backend,
        vec![ingress(
            "re",
            "re.test",
            "/id/[0-9]+",
            "ImplementationSpecific",
            &[("use-regex", "true")],
        )],
    )
    .await;
    assert_eq!(get(s.http(), "re.test", "/id/123a").await.status, 200);
    assert_eq!(get(s.http(), "re.test", "/ID/7").await.status, 200);
    assert_eq!(get(s.http(), "re.test", "/id/x").await.status, 404);
    // The path goes upstream unchanged.
    get(s.http(), "re.test", "/ID/7?x=1").await;
    assert_eq!(backend.last_request().unwrap().path, "/ID/7?x=1");
}

#[tokio::test]
async fn redirect_annotations_answer_without_proxying() {
    let backend = EchoBackend::start([127, 0, 80, 3]).await;
    let s = setup(
        &backend,
        vec![
            ingress(
                "perm",
                "perm.test",
                "/",
                "Prefix",
                &[("permanent-redirect", "https://new.example/landing")],
            ),
            ingress(
                "temp",
                "temp.test",
                "/",
                "Prefix",
                &[
                    ("temporal-redirect", "/maintenance"),
                    ("temporal-redirect-code", "307"),
                ],
            ),
            ingress(
                "root",
                "root.test",
                "/app1",
                "Prefix",
                &[("app-root", "/app1")],
            ),
            ingress(
                "www",
                "www-site.test",
                "/",
                "Prefix",
                &[("from-to-www-redirect", "true")],
            ),
        ],
    )
    .await;
    let perm = get(s.http(), "perm.test", "/anything").await;
    assert_eq!(
        (perm.status, perm.header("location").as_deref()),
        (301, Some("https://new.example/landing"))
    );
    let temp = get(s.http(), "temp.test", "/x").await;
    assert_eq!(
        (temp.status, temp.header("location").as_deref()),
        (307, Some("/maintenance"))
    );
    let root = get(s.http(), "root.test", "/").await;
    assert_eq!(root.status, 302);
    assert_eq!(
        root.header("location").as_deref(),
        Some("http://root.test/app1")
    );
    assert_eq!(get(s.http(), "root.test", "/app1/x").await.status, 200);
    let www = get(s.http(), "www.www-site.test", "/a?b=1").await;
    assert_eq!(www.status, 308);
    assert_eq!(
        www.header("location").as_deref(),
        Some("http://www-site.test/a?b=1")
    );
    assert_eq!(
        backend.hits(),
        1,
        "only the app-root route's request was proxied"
    );
}

#[tokio::test]
async fn upstream_vhost_and_server_alias() {
    let backend = EchoBackend::start([127, 0, 80, 4]).await;
    let s = setup(
        &backend,
        vec![ingress(
            "vh",
            "vh.test",
            "/",
            "Prefix",
            &[
                ("upstream-vhost", "internal.svc.cluster.local"),
                ("server-alias", "alias.test"),
            ],
        )],
    )
    .await;
    assert_eq!(get(s.http(), "alias.test", "/x").await.status, 200);
    let seen = backend.last_request().unwrap();
    assert_eq!(
        seen.header("host").as_deref(),
        Some("internal.svc.cluster.local")
    );
    assert_eq!(
        seen.header("x-forwarded-host").as_deref(),
        Some("alias.test"),
        "X-Forwarded-Host is unchanged"
    );
}

#[tokio::test]
async fn a_snippet_ingress_is_refused_while_its_neighbours_serve() {
    let backend = EchoBackend::start([127, 0, 80, 5]).await;
    let s = setup(
        &backend,
        vec![
            ingress(
                "snippet",
                "shared.test",
                "/evil",
                "Prefix",
                &[("configuration-snippet", "more_set_headers \"X-Evil: 1\";")],
            ),
            ingress("neighbour", "shared.test", "/good", "Prefix", &[]),
        ],
    )
    .await;
    assert_eq!(get(s.http(), "shared.test", "/evil").await.status, 404);
    assert_eq!(get(s.http(), "shared.test", "/good").await.status, 200);
    s.gateway
        .wait_for_log("RefusedAnnotation", std::time::Duration::from_secs(5))
        .await;
    assert!(s.gateway.logs().contains("configuration-snippet"));
}

#[tokio::test]
async fn default_backend_annotation_takes_requests_when_no_pod_is_ready() {
    let fallback = EchoBackend::start([127, 0, 80, 6]).await;
    let mut docs = vec![
        testkit::service("ann", "empty", 80, 8080),
        testkit::endpoint_slice("ann", "empty", 8080, &[]),
    ];
    docs.extend(service_for("ann", "fallback", &[&fallback]));
    docs.push(
        IngressBuilder::new("ann", "fb")
            .class("nginx")
            .annotation(&format!("{P}default-backend"), "fallback")
            .host("fb.test")
            .path("/", "Prefix", "empty", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let response = get(s.http(), "fb.test", "/x").await;
    assert_eq!(answered_by(&response), fallback.addr().to_string());
}

#[tokio::test]
async fn a_bad_annotation_value_keeps_the_default_and_is_reported() {
    let backend = EchoBackend::start([127, 0, 80, 7]).await;
    let s = setup(
        &backend,
        vec![ingress(
            "bad",
            "bad.test",
            "/",
            "Prefix",
            &[("proxy-read-timeout", "sixty"), ("no-such-annotation", "x")],
        )],
    )
    .await;
    assert_eq!(get(s.http(), "bad.test", "/").await.status, 200);
    s.gateway
        .wait_for_log("proxy-read-timeout", std::time::Duration::from_secs(5))
        .await;
    let logs = s.gateway.logs();
    assert!(
        logs.contains("InvalidAnnotation") && logs.contains("\"sixty\""),
        "{logs}"
    );
    assert!(logs.contains("UnknownAnnotation"), "{logs}");
}
