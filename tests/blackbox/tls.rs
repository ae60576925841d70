//! HTTPS: certificates chosen by SNI from Ingress TLS Secrets, HTTP/2 by
//! ALPN, the HTTPS redirect and HSTS, hot certificate swaps, old protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::{EchoBackend, IngressBuilder, TestCa, curl_https, eventually, get, tls_secret};

use crate::{Setup, answered_by, service_for};

/// A gateway with three TLS hosts and one plain host, and the CA file.
struct TlsSetup {
    setup: Setup,
    backend: EchoBackend,
    ca: TestCa,
    ca_file: std::path::PathBuf,
    /// The documents of `objects.yaml`; [`EXACT_SECRET`] is the Secret of
    /// `secure.test`.
    docs: Vec<String>,
}

/// Where the Secret of `secure.test` is in [`TlsSetup::docs`].
const EXACT_SECRET: usize = 2;

async fn tls_setup() -> TlsSetup {
    let ca = TestCa::new();
    let backend = EchoBackend::start([127, 0, 60, 1]).await;
    let mut docs = service_for("t", "svc", &[&backend]);
    docs.push(tls_secret("t", "exact", &ca.issue(&["secure.test"], 30)));
    docs.push(tls_secret("t", "wild", &ca.issue(&["*.wild.test"], 30)));
    // The Secret the third host names lives in another namespace only.
    docs.push(tls_secret(
        "elsewhere",
        "foreign",
        &ca.issue(&["foreign.test"], 30),
    ));
    let mut ingress = IngressBuilder::new("t", "tls")
        .class("nginx")
        .host("secure.test")
        .path("/", "Prefix", "svc", 80)
        .host("*.wild.test")
        .path("/", "Prefix", "svc", 80)
        .host("foreign.test")
        .path("/", "Prefix", "svc", 80)
        .host("plain.test")
        .path("/", "Prefix", "svc", 80)
        .to_value();
    ingress["spec"]["tls"] = json!([
        {"hosts": ["secure.test"], "secretName": "exact"},
        {"hosts": ["*.wild.test"], "secretName": "wild"},
        {"hosts": ["foreign.test"], "secretName": "foreign"},
    ]);
    docs.push(serde_json::to_string_pretty(&ingress).unwrap());
    let setup = Setup::start(&docs).await;
    let ca_file = setup.dir.path().join("ca.pem.txt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    TlsSetup {
        setup,
        backend,
        ca,
        ca_file,
        docs,
    }
}

#[tokio::test]
async fn certificates_are_chosen_by_sni_and_verify_against_the_ca() {
    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    for host in ["secure.test", "a.wild.test"] {
        let out = curl_https(https, host, "/x", Some(&t.ca_file), &[]).await;
        assert!(out.success, "{host}: {}", out.stderr);
        assert!(out.stdout.contains("\"backend\""), "{host}: {}", out.stdout);
    }
    // Two labels under the wildcard, another namespace's Secret, an
    // unknown name: the default certificate, which the CA did not sign.
    for host in ["a.b.wild.test", "foreign.test", "unknown.test"] {
        let out = curl_https(https, host, "/", Some(&t.ca_file), &[]).await;
        assert!(!out.success, "{host} verified against the test CA");
        let out = curl_https(https, host, "/", None, &["-v"]).await;
        assert!(
            out.stderr
                .contains("Kubernetes Ingress Controller Fake Certificate"),
            "{host}: {}",
            out.stderr
        );
    }
    // The diagnostic names the Secret looked for, in the Ingress's namespace.
    t.setup
        .gateway
        .wait_for_log("secret t/foreign not found", Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn alpn_picks_http2_or_http1_and_upstreams_see_https() {
    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    let h2 = curl_https(
        https,
        "secure.test",
        "/",
        Some(&t.ca_file),
        &["--http2", "-o", "/dev/null", "-w", "%{http_version}"],
    )
    .await;
    assert_eq!(h2.stdout, "2", "{}", h2.stderr);
    let h1 = curl_https(
        https,
        "secure.test",
        "/",
        Some(&t.ca_file),
        &["--http1.1", "-o", "/dev/null", "-w", "%{http_version}"],
    )
    .await;
    assert_eq!(h1.stdout, "1.1", "{}", h1.stderr);
    let seen = t.backend.last_request().unwrap();
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(seen.header("x-forwarded-port").as_deref(), Some("443"));
    assert_eq!(
        seen.header("host").as_deref(),
        Some(&*format!("secure.test:{}", https.port()))
    );
    // An HTTP/2 request reaches the upstream as HTTP/1.1 with a Host header.
    curl_https(https, "secure.test", "/h2", Some(&t.ca_file), &["--http2"]).await;
    let seen = t.backend.last_request().unwrap();
    assert_eq!(seen.path, "/h2");
    assert!(seen.header("host").is_some());
}

#[tokio::test]
async fn plain_http_redirects_to_https_for_tls_hosts_only() {
    let t = tls_setup().await;
    let http = t.setup.http();
    let redirected = get(http, "secure.test", "/some/path/?q=1").await;
    assert_eq!(redirected.status, 308);
    assert_eq!(
        redirected.header("location").as_deref(),
        Some("https://secure.test/some/path/?q=1")
    );
    let trailing = get(http, "secure.test", "/dir/").await;
    assert_eq!(
        trailing.header("location").as_deref(),
        Some("https://secure.test/dir")
    );
    // A TLS section without a usable Secret still makes a TLS host.
    assert_eq!(get(http, "foreign.test", "/").await.status, 308);
    // ACME HTTP-01 challenges are never redirected.
    let acme = get(http, "secure.test", "/.well-known/acme-challenge/token").await;
    assert_eq!(acme.status, 200);
    assert_eq!(answered_by(&acme), t.backend.addr().to_string());
    assert_eq!(get(http, "plain.test", "/").await.status, 200);
}

#[tokio::test]
async fn redirect_annotations_switch_it_on_and_off() {
    let backend = EchoBackend::start([127, 0, 60, 2]).await;
    let ca = TestCa::new();
    let mut docs = service_for("r", "svc", &[&backend]);
    docs.push(tls_secret("r", "cert", &ca.issue(&["off.test"], 30)));
    let mut off = IngressBuilder::new("r", "off")
        .class("nginx")
        .annotation("nginx.ingress.kubernetes.io/ssl-redirect", "false")
        .host("off.test")
        .path("/", "Prefix", "svc", 80)
        .to_value();
    off["spec"]["tls"] = json!([{"hosts": ["off.test"], "secretName": "cert"}]);
    docs.push(serde_json::to_string_pretty(&off).unwrap());
    docs.push(
        IngressBuilder::new("r", "forced")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/force-ssl-redirect", "true")
            .host("forced.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    assert_eq!(get(s.http(), "off.test", "/").await.status, 200);
    let forced = get(s.http(), "forced.test", "/a").await;
    assert_eq!(forced.status, 308);
    assert_eq!(
        forced.header("location").as_deref(),
        Some("https://forced.test/a")
    );
}

#[tokio::test]
async fn hsts_is_sent_over_https_for_hosts_with_tls() {
    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    let with_tls = curl_https(
        https,
        "secure.test",
        "/",
        Some(&t.ca_file),
        &["-D", "-", "-o", "/dev/null"],
    )
    .await;
    assert!(
        with_tls
            .stdout
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000; includesubdomains"),
        "{}",
        with_tls.stdout
    );
    let without = curl_https(
        https,
        "plain.test",
        "/",
        None,
        &["-D", "-", "-o", "/dev/null"],
    )
    .await;
    assert!(
        !without
            .stdout
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{}",
        without.stdout
    );
    let over_http = get(t.setup.http(), "plain.test", "/").await;
    assert!(over_http.header("strict-transport-security").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_swap_under_load_fails_no_request() {
    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, failures, done, ca) = (
            stop.clone(),
            failures.clone(),
            done.clone(),
            t.ca_file.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let out = curl_https(
                    https,
                    "secure.test",
                    "/",
                    Some(&ca),
                    &["-o", "/dev/null", "-w", "%{http_code}"],
                )
                .await;
                if !out.success || out.stdout != "200" {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut docs = t.docs.clone();
    for round in 0..3 {
        let name = format!("v{round}.secure.test");
        let renewed = t.ca.issue(&[&name, "secure.test"], 30);
        docs[EXACT_SECRET] = tls_secret("t", "exact", &renewed);
        t.setup
            .dir
            .write("objects.yaml", &testkit::join_docs(&docs));
        let ca = t.ca_file.clone();
        eventually(Duration::from_secs(5), move || {
            let (ca, name) = (ca.clone(), name.clone());
            async move {
                let out = curl_https(
                    https,
                    "secure.test",
                    "/",
                    Some(&ca),
                    &["-v", "-o", "/dev/null"],
                )
                .await;
                if out.stderr.contains(&format!("CN={name}")) {
                    Ok(())
                } else {
                    Err(format!("old certificate still served (want CN={name})"))
                }
            }
        })
        .await;
    }
    // The swaps can apply faster than a handful of handshakes: let the
    // client finish a few before it stops.
    let counted = done.clone();
    eventually(Duration::from_secs(10), move || {
        let counted = counted.clone();
        async move {
            match counted.load(Ordering::Relaxed) {
                n if n >= 5 => Ok(()),
                n => Err(format!("{n} requests done")),
            }
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn tls_1_1_and_older_are_refused() {
    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    let out = curl_https(
        https,
        "secure.test",
        "/",
        None,
        &[
            "--tlsv1.0",
            "--tls-max",
            "1.1",
            "--ciphers",
            "DEFAULT@SECLEVEL=0",
        ],
    )
    .await;
    assert!(
        !out.success,
        "a TLS 1.1 handshake succeeded: {}",
        out.stdout
    );
    assert!(
        [
            "protocol version",
            "unsupported protocol",
            "no protocols",
            "handshake failure"
        ]
        .iter()
        .any(|m| out.stderr.contains(m)),
        "{}",
        out.stderr
    );
    // The listener is unharmed.
    let ok = curl_https(https, "secure.test", "/", Some(&t.ca_file), &["--tlsv1.2"]).await;
    assert!(ok.success, "{}", ok.stderr);
}

#[tokio::test]
async fn garbage_on_the_https_port_is_closed_and_harms_no_one() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let t = tls_setup().await;
    let https = t.setup.gateway.https_addr();
    let garbage: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: secure.test\r\n\r\n",
        b"\x16\x03\x01\xff\xff\x00\x00garbage",
        &[0xAB; 4096],
    ];
    for bytes in garbage {
        let mut stream = tokio::net::TcpStream::connect(https).await.unwrap();
        let _ = stream.write_all(bytes).await;
        // Whatever the gateway answers (a TLS alert at most), it closes.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{bytes:?}: still open after 5 s");
    }
    let ok = curl_https(https, "secure.test", "/", Some(&t.ca_file), &[]).await;
    assert!(ok.success, "{}", ok.stderr);
}

#[tokio::test]
async fn certificate_metrics_name_their_secret_as_ingress_nginx_does() {
    let t = tls_setup().await;
    let samples = testkit::scrape(t.setup.gateway.metrics_addr()).await;
    let expiry = testkit::metrics::matching(
        &samples,
        "nginx_ingress_controller_ssl_expire_time_seconds",
        &[
            ("host", "secure.test"),
            ("namespace", "t"),
            ("secret_name", "exact"),
            ("class", "k8s.io/ingress-nginx"),
        ],
    );
    assert_eq!(expiry.len(), 1, "{samples:?}");
    assert!(
        expiry[0]
            .label("identifier")
            .is_some_and(|i| i.starts_with('-'))
    );
    let info = testkit::metrics::matching(
        &samples,
        "nginx_ingress_controller_ssl_certificate_info",
        &[("host", "*.wild.test"), ("secret_name", "wild")],
    );
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].label("issuer_common_name"),
        Some("edge-gateway test CA")
    );
    assert_eq!(info[0].label("issuer_organization"), Some(""));
    assert!(
        info[0]
            .label("serial_number")
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    );
    // The generated default certificate, as ingress-nginx's `_` server.
    let default = testkit::metrics::matching(
        &samples,
        "nginx_ingress_controller_ssl_certificate_info",
        &[("host", "_"), ("issuer_organization", "Acme Co")],
    );
    assert_eq!(default.len(), 1, "{samples:?}");
    let dropped =
        testkit::metrics::matching(&samples, "edge_gateway_access_log_dropped_lines_total", &[]);
    assert_eq!(dropped.len(), 1);
}
