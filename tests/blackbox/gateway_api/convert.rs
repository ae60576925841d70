//! `edge-gateway convert`, proved by serving: the same requests through
//! the Ingresses and through the converted objects (beside the Ingresses
//! that stay) reach the same backends with the same upstream requests,
//! and get the same redirects and headers.

use std::process::Command;

use serde_json::json;
use testkit::{
    EchoBackend, Gateway, IngressBuilder, ManifestDir, TestCa, curl_https, endpoint_slice,
    eventually, ingress_class, join_docs, request, service, tls_secret,
};

use super::services;
use crate::BIN;

/// What a request came to, as far as the two gateways must agree.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: String,
    location: Option<String>,
    hsts: Option<String>,
    backend: String,
    upstream: Option<Upstream>,
}

#[derive(Debug, PartialEq, Eq)]
struct Upstream {
    method: String,
    path: String,
    host: Option<String>,
    forwarded_host: Option<String>,
    forwarded_proto: Option<String>,
    forwarded_for: Option<String>,
    canary_header: Option<String>,
}

struct Backends {
    web: EchoBackend,
    v2: EchoBackend,
    other: EchoBackend,
}

impl Backends {
    fn last(&self, answered: &str) -> Option<Upstream> {
        let backend = [&self.web, &self.v2, &self.other]
            .into_iter()
            .find(|b| b.addr().to_string() == answered)?;
        let seen = backend.last_request()?;
        Some(Upstream {
            method: seen.method.clone(),
            path: seen.path.clone(),
            host: seen.header("host"),
            // curl names each gateway's own port: compare the host.
            forwarded_host: seen
                .header("x-forwarded-host")
                .map(|h| h.split(':').next().unwrap_or("").to_owned()),
            forwarded_proto: seen.header("x-forwarded-proto"),
            forwarded_for: seen.header("x-forwarded-for"),
            canary_header: seen.header("x-canary"),
        })
    }
}

fn ingresses() -> Vec<String> {
    let mut web = IngressBuilder::new("app", "web")
        .class("nginx")
        .annotation(
            "nginx.ingress.kubernetes.io/upstream-vhost",
            "backend.internal",
        )
        .annotation(
            "nginx.ingress.kubernetes.io/preserve-trailing-slash",
            "true",
        )
        .host("secure.test")
        .path("/", "Prefix", "web", 80)
        .path("/api", "Exact", "web", 80)
        .to_value();
    web["spec"]["tls"] = json!([{"hosts": ["secure.test"], "secretName": "cert"}]);
    web["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"http": {"paths": [
        {"path": "/any", "pathType": "ImplementationSpecific",
         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}));
    let canary = IngressBuilder::new("app", "web-canary")
        .class("nginx")
        .annotation("nginx.ingress.kubernetes.io/canary", "true")
        .annotation("nginx.ingress.kubernetes.io/canary-by-header", "x-canary")
        .annotation(
            "nginx.ingress.kubernetes.io/canary-by-header-value",
            "yes-please",
        )
        .host("secure.test")
        .path("/", "Prefix", "v2", 80)
        .build();
    let plain = IngressBuilder::new("app", "plain")
        .class("nginx")
        .host("plain.test")
        .path("/p", "Prefix", "web", 80)
        .default_backend("other", 80)
        .build();
    let legacy = IngressBuilder::new("app", "legacy")
        .class("nginx")
        .annotation("nginx.ingress.kubernetes.io/proxy-body-size", "10m")
        .host("legacy.test")
        .path("/", "Prefix", "other", 80)
        .build();
    vec![web.to_string(), canary, plain, legacy]
}

#[tokio::test]
async fn converted_objects_serve_like_the_ingresses() {
    let backends = Backends {
        web: EchoBackend::start([127, 0, 208, 1]).await,
        v2: EchoBackend::start([127, 0, 208, 2]).await,
        other: EchoBackend::start([127, 0, 208, 3]).await,
    };
    let ca = TestCa::new();
    let mut base = services(
        "app",
        &[
            ("web", &backends.web),
            ("v2", &backends.v2),
            ("other", &backends.other),
        ],
    );
    base.push(tls_secret("app", "cert", &ca.issue(&["secure.test"], 30)));
    base.push(ingress_class());

    // Gateway A: the Ingresses.
    let dir_a = ManifestDir::new();
    let mut docs_a = base.clone();
    docs_a.extend(ingresses());
    dir_a.write("objects.yaml", &join_docs(&docs_a));
    let output = Command::new(BIN)
        .args(["convert", "--manifests"])
        .arg(dir_a.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let converted = String::from_utf8(output.stdout).unwrap();
    assert!(converted.contains("# converted app/web\n"), "{converted}");
    assert!(
        converted.contains("# converted app/web-canary\n"),
        "{converted}"
    );
    assert!(converted.contains("# converted app/plain\n"), "{converted}");
    assert!(
        converted.contains(
            "# stays on the Ingress: app/legacy\n#   - nginx.ingress.kubernetes.io/proxy-body-size"
        ),
        "{converted}"
    );

    // Gateway B: the converted objects and the Ingress that stays.
    let dir_b = ManifestDir::new();
    let mut docs_b = base.clone();
    docs_b.push(ingresses().pop().unwrap());
    dir_b.write("objects.yaml", &join_docs(&docs_b));
    dir_b.write("converted.yaml", &converted);

    let a = Gateway::start(BIN, dir_a.path(), &[]).await;
    let b = Gateway::start(BIN, dir_b.path(), &["--enable-gateway-api"]).await;
    a.wait_ready().await;
    b.wait_ready().await;
    let ca_file = dir_a.path().join("ca.pem.txt");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let plain: &[(&str, &str)] = &[
        ("secure.test", "/x?q=1"),
        ("secure.test", "/dir/"),
        ("secure.test", "/.well-known/acme-challenge/token"),
        ("plain.test", "/p/1?a=b"),
        ("plain.test", "/elsewhere"),
        ("unknown.test", "/any/thing"),
        ("legacy.test", "/l"),
        ("nothing.test", "/zzz"),
    ];
    for (host, path) in plain {
        let mut outcomes = Vec::new();
        for gw in [&a, &b] {
            let r = request(gw.http_addr(), "GET", host, path, &[], Vec::new()).await;
            let backend = r.header("x-backend").unwrap_or_default();
            outcomes.push(Outcome {
                status: r.status.to_string(),
                location: r.header("location"),
                hsts: r.header("strict-transport-security"),
                upstream: backends.last(&backend),
                backend,
            });
        }
        assert_eq!(outcomes[0], outcomes[1], "http://{host}{path}");
    }
    let secure: &[(&str, &[&str])] = &[
        ("/", &[]),
        ("/x/y?q=1", &[]),
        ("/api", &[]),
        ("/api/", &[]),
        ("/x", &["-H", "x-canary: yes-please"]),
        ("/x", &["-H", "x-canary: no"]),
    ];
    for (path, extra) in secure {
        let mut outcomes = Vec::new();
        for gw in [&a, &b] {
            let mut args = vec!["-D", "-", "-o", "/dev/null"];
            args.extend_from_slice(extra);
            let out = curl_https(gw.https_addr(), "secure.test", path, Some(&ca_file), &args).await;
            assert!(out.success, "{}", out.stderr);
            let header = |name: &str| {
                out.stdout.lines().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            };
            let status = out
                .stdout
                .lines()
                .next()
                .unwrap_or("")
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .to_owned();
            let backend = header("x-backend").unwrap_or_default();
            outcomes.push(Outcome {
                status,
                location: header("location"),
                hsts: header("strict-transport-security"),
                upstream: backends.last(&backend),
                backend,
            });
        }
        assert_eq!(
            outcomes[0], outcomes[1],
            "https://secure.test{path} {extra:?}"
        );
        assert_eq!(outcomes[0].status, "200", "https://secure.test{path}");
    }
}

/// A `mirror-target` naming a Service converts to a `RequestMirror`: the
/// converted route's copies reach the Service's endpoint while the answer
/// stays the main backend's. (The Ingress side is not served here: its
/// target is a cluster DNS name, which only a cluster resolves.)
#[tokio::test]
async fn a_mirror_target_service_converts_to_a_request_mirror() {
    let main = EchoBackend::start([127, 0, 208, 10]).await;
    let shadow = EchoBackend::start([127, 0, 208, 11]).await;
    let mut docs = services("app", &[("main", &main)]);
    let port = shadow.addr().port();
    docs.push(service("app", "shadow", 8080, port));
    docs.push(endpoint_slice(
        "app",
        "shadow",
        port,
        &[(shadow.addr().ip(), Some(true))],
    ));
    docs.push(ingress_class());
    let objects = join_docs(&docs);
    docs.push(
        IngressBuilder::new("app", "mirrored")
            .class("nginx")
            .annotation(
                "nginx.ingress.kubernetes.io/mirror-target",
                "http://shadow.app.svc.cluster.local:8080$request_uri",
            )
            .host("m.test")
            .path("/", "Prefix", "main", 80)
            .build(),
    );
    let dir_a = ManifestDir::new();
    dir_a.write("objects.yaml", &join_docs(&docs));
    let output = Command::new(BIN)
        .args(["convert", "--manifests"])
        .arg(dir_a.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let converted = String::from_utf8(output.stdout).unwrap();
    assert!(
        converted.contains("# converted app/mirrored\n"),
        "{converted}"
    );
    assert!(converted.contains("RequestMirror"), "{converted}");

    let dir_b = ManifestDir::new();
    dir_b.write("objects.yaml", &objects);
    dir_b.write("converted.yaml", &converted);
    let b = Gateway::start(BIN, dir_b.path(), &["--enable-gateway-api"]).await;
    b.wait_ready().await;
    let r = request(
        b.http_addr(),
        "PUT",
        "m.test",
        "/p?q=1",
        &[],
        b"body".to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-backend").unwrap_or_default(),
        main.addr().to_string()
    );
    let copy = eventually(std::time::Duration::from_secs(10), || async {
        shadow
            .last_request()
            .ok_or_else(|| "no copy yet".to_owned())
    })
    .await;
    assert_eq!(
        (copy.method.as_str(), copy.path.as_str()),
        ("PUT", "/p?q=1")
    );
    assert_eq!(&copy.body[..], b"body");
}
