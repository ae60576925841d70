//! The validating admission webhook through the real binary: reviews
//! POSTed with curl over TLS as the API server sends them, against the
//! configuration the gateway serves.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{
    Gateway, IngressBuilder, ManifestDir, WEBHOOK_HOST, WebhookCert, admission_review, curl_https,
    eventually, ingress_class, join_docs, post_review, service,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BIN;

/// A gateway serving the webhook, and the folder it reads.
struct Webhook {
    dir: ManifestDir,
    gateway: Gateway,
    cert: WebhookCert,
}

impl Webhook {
    async fn start(docs: &[String]) -> Webhook {
        let dir = ManifestDir::new();
        dir.write("class.yaml", &ingress_class());
        dir.write("objects.yaml", &join_docs(docs));
        let cert = WebhookCert::new();
        let args = cert.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let gateway = Gateway::start(BIN, dir.path(), &args).await;
        gateway.wait_ready().await;
        Webhook { dir, gateway, cert }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.gateway
            .listening("webhook")
            .expect("the webhook's listening line")
    }

    /// Reviews `object` (an Ingress) and returns the review's response.
    async fn review(&self, operation: &str, object: &Value) -> Value {
        let body = admission_review(operation, object, None).to_string();
        let (status, answer) = post_review(self.addr(), &self.cert, &body).await;
        assert_eq!(status, 200, "{answer}");
        let review: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(
            review["response"]["uid"], "4c4b3f5e-1b7a-4d1e-9f0a-000000000001",
            "the uid is echoed"
        );
        review["response"].clone()
    }
}

fn ingress(name: &str, class: &str, host: &str, annotations: &[(&str, &str)]) -> Value {
    let mut builder = IngressBuilder::new("team", name).class(class);
    for (k, v) in annotations {
        builder = builder.annotation(&format!("nginx.ingress.kubernetes.io/{k}"), v);
    }
    let yaml = builder.host(host).path("/api", "Prefix", "svc", 80).build();
    json_of(&yaml)
}

/// A builder document as a value (the builders write JSON).
fn json_of(doc: &str) -> Value {
    serde_json::from_str(doc).expect("IngressBuilder writes JSON")
}

fn backend_service() -> String {
    service("team", "svc", 80, 8080)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ingresses_are_denied_with_the_diagnostic_and_others_allowed() {
    let existing = IngressBuilder::new("team", "existing")
        .class("nginx")
        .host("taken.example.com")
        .path("/api", "Prefix", "svc", 80)
        .build();
    let w = Webhook::start(&[backend_service(), existing]).await;

    let good = w
        .review("CREATE", &ingress("good", "nginx", "a.example.com", &[]))
        .await;
    assert_eq!(good["allowed"], true, "{good}");
    assert!(good.get("warnings").is_none(), "{good}");

    let snippet = w
        .review(
            "CREATE",
            &ingress(
                "bad",
                "nginx",
                "a.example.com",
                &[
                    ("configuration-snippet", "more_set_headers \"x: y\";"),
                    ("proxy-read-timeout", "soon"),
                ],
            ),
        )
        .await;
    assert_eq!(snippet["allowed"], false, "{snippet}");
    assert_eq!(snippet["status"]["code"], 400);
    let message = snippet["status"]["message"].as_str().unwrap();
    assert!(message.contains("configuration-snippet"), "{message}");
    assert!(
        message.contains("proxy-read-timeout"),
        "every diagnostic: {message}"
    );

    let conflict = w
        .review(
            "CREATE",
            &ingress("second", "nginx", "taken.example.com", &[]),
        )
        .await;
    assert_eq!(conflict["allowed"], false, "{conflict}");
    let message = conflict["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("PathConflict") && message.contains("team/existing"),
        "{message}"
    );

    let other_class = w
        .review(
            "CREATE",
            &ingress(
                "theirs",
                "traefik",
                "a.example.com",
                &[("server-snippet", "x")],
            ),
        )
        .await;
    assert_eq!(other_class["allowed"], true, "{other_class}");

    let mut no_service = ingress("later", "nginx", "b.example.com", &[]);
    no_service["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        "not-yet".into();
    let warned = w.review("CREATE", &no_service).await;
    assert_eq!(warned["allowed"], true, "{warned}");
    assert!(
        warned["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("ServiceNotFound"),
        "{warned}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_judges_against_the_live_configuration() {
    let w = Webhook::start(&[backend_service()]).await;
    let candidate = ingress("new", "nginx", "live.example.com", &[]);
    assert_eq!(w.review("CREATE", &candidate).await["allowed"], true);
    // Another Ingress takes the path; the next review sees it.
    let holder = IngressBuilder::new("team", "holder")
        .class("nginx")
        .host("live.example.com")
        .path("/api", "Prefix", "svc", 80)
        .build();
    w.dir.write("holder.yaml", &holder);
    let w = Arc::new(w);
    eventually(Duration::from_secs(10), || {
        let w = w.clone();
        let candidate = candidate.clone();
        async move {
            match w.review("CREATE", &candidate).await["allowed"].as_bool() {
                Some(false) => Ok(()),
                other => Err(format!("allowed: {other:?}")),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_malformed_and_non_post_requests_are_refused() {
    let w = Webhook::start(&[backend_service()]).await;
    let addr = w.addr();
    // Larger than any review the API server can send (5 MiB).
    let huge = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                      "padding": "x".repeat(6 << 20)});
    let (status, body) = post_review(addr, &w.cert, &huge.to_string()).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = post_review(addr, &w.cert, "{not json").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not an AdmissionReview"), "{body}");
    let (status, _) = post_review(addr, &w.cert, r#"{"apiVersion": "v1", "kind": "Pod"}"#).await;
    assert_eq!(status, 400);
    let get = curl_https(
        addr,
        WEBHOOK_HOST,
        "/networking/v1/ingresses",
        Some(&w.cert.ca_file()),
        &["-w", "%{http_code}", "-o", "/dev/null"],
    )
    .await;
    assert_eq!(get.stdout.trim(), "405", "{}", get.stderr);
    // By address, as `webhook_configuration` registers it for a test API
    // server: the certificate covers 127.0.0.1 too.
    let by_ip = curl_https(
        addr,
        "127.0.0.1",
        "/networking/v1/ingresses",
        Some(&w.cert.ca_file()),
        &["-w", "%{http_code}", "-o", "/dev/null"],
    )
    .await;
    assert_eq!(by_ip.stdout.trim(), "405", "{}", by_ip.stderr);
    let registered = testkit::webhook_configuration(addr, &w.cert, "Fail");
    assert_eq!(
        registered["webhooks"][0]["clientConfig"]["url"],
        format!("https://127.0.0.1:{}/networking/v1/ingresses", addr.port())
    );
    // The gateway is still fine.
    let ok = w
        .review("CREATE", &ingress("good", "nginx", "a.example.com", &[]))
        .await;
    assert_eq!(ok["allowed"], true);
}

/// Reads until the peer closes (or errors), returning what arrived.
async fn read_to_close(mut stream: impl AsyncReadExt + Unpin) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0_u8; 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let w = Webhook::start(&[backend_service()]).await;
    let addr = w.addr();
    // The server's bounds are 10 s for the handshake and the head, 10 s
    // for the body; a client stalling longer is cut off well before 60 s.
    let bound = Duration::from_secs(60);

    // A TCP connection that never starts TLS.
    let silent = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        tokio::time::timeout(bound, read_to_close(stream))
            .await
            .expect("a silent connection is closed")
    };

    // A TLS client that sends half a body, then nothing.
    let stalled = async {
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(w.cert.ca_file()).unwrap();
        for cert in rustls_pki_types_certs(&ca) {
            roots.add(cert).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(WEBHOOK_HOST).unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(
            format!(
                "POST /networking/v1/ingresses HTTP/1.1\r\nHost: {WEBHOOK_HOST}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"apiVersion\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let answer = tokio::time::timeout(bound, read_to_close(tls))
            .await
            .expect("a stalled body is answered and closed");
        String::from_utf8_lossy(&answer).into_owned()
    };

    let (silent, stalled) = tokio::join!(silent, stalled);
    assert!(silent.is_empty());
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
}

fn rustls_pki_types_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let w = Webhook::start(&[backend_service()]).await;
    let addr = w.addr();
    let expiry = || async {
        let out = curl_https(
            addr,
            WEBHOOK_HOST,
            "/",
            Some(&w.cert.ca_file()),
            &["-v", "-o", "/dev/null"],
        )
        .await;
        out.stderr
            .lines()
            .find(|l| l.contains("expire date"))
            .unwrap_or_default()
            .to_owned()
    };
    let before = expiry().await;
    assert!(!before.is_empty(), "curl -v shows the expiry");
    let rotated = w.cert.ca().issue(&[WEBHOOK_HOST], 90);
    std::fs::write(w.cert.key_file(), &rotated.key_pem).unwrap();
    std::fs::write(w.cert.cert_file(), &rotated.cert_pem).unwrap();
    eventually(Duration::from_secs(20), || async {
        let now = expiry().await;
        if !now.is_empty() && now != before {
            Ok(())
        } else {
            Err(format!("still {now:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_without_a_usable_certificate_does_not_start() {
    let dir = ManifestDir::new();
    let missing = dir.path().join("missing");
    let output = std::process::Command::new(BIN)
        .arg("--manifests")
        .arg(dir.path())
        .args(["--http-port=0", "--https-port=0", "--metrics-port=0"])
        .args([
            "--bind-address=127.0.0.1",
            "--validating-webhook=127.0.0.1:0",
        ])
        .arg(format!(
            "--validating-webhook-certificate={}",
            missing.display()
        ))
        .arg(format!("--validating-webhook-key={}", missing.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--validating-webhook-certificate"),
        "{stderr}"
    );
    // Without the files at all: a usage error, as clap requires them.
    let output = std::process::Command::new(BIN)
        .args(["--validating-webhook=:8443"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
