//! SSL passthrough (`--enable-ssl-passthrough` and the `ssl-passthrough`
//! annotation) through the real binary: the backend's own certificate
//! reaches `openssl s_client` and curl, while other names keep being
//! terminated by the gateway.

use std::time::Duration;

use serde_json::json;
use testkit::{EchoBackend, IngressBuilder, TestCa, TlsBackend, curl_https, eventually, scrape};

use crate::{Setup, service_for};

/// `openssl s_client` against `addr` with SNI `name`; its output.
async fn s_client(addr: std::net::SocketAddr, name: &str) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                name,
            ])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("openssl s_client ends")
    .expect("openssl can run");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn passthrough_hosts_reach_their_backend_undecrypted() {
    let ca = TestCa::new();
    let cert = ca.issue(&["pass.test"], 30);
    let tls = TlsBackend::start([127, 0, 204, 1], "pass", &cert).await;
    let plain = EchoBackend::start([127, 0, 204, 2]).await;
    let mut docs = vec![
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "pass", "name": "tls"},
            "spec": {"ports": [{"name": "http", "port": 443, "targetPort": tls.addr().port()}]},
        })
        .to_string(),
        testkit::endpoint_slice_named(
            "pass",
            "tls-slice",
            "tls",
            tls.addr().port(),
            &[(tls.addr().ip(), Some(true))],
        ),
        IngressBuilder::new("pass", "passthrough")
            .class("nginx")
            .host("pass.test")
            .path("/", "Prefix", "tls", 443)
            .annotation("nginx.ingress.kubernetes.io/ssl-passthrough", "true")
            .build(),
        IngressBuilder::new("pass", "terminated")
            .class("nginx")
            .host("term.test")
            .path("/", "Prefix", "plain", 80)
            .build(),
    ];
    docs.extend(service_for("pass", "plain", &[&plain]));
    let s = Setup::start_with(&docs, &["--enable-ssl-passthrough", "--enable-metrics"]).await;
    let https = s.gateway.https_addr();
    let ca_file = s.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    // curl trusts only the test CA: the backend's certificate got through.
    let out = eventually(Duration::from_secs(10), || async {
        let out = curl_https(https, "pass.test", "/", Some(&ca_file), &[]).await;
        if out.success {
            Ok(out)
        } else {
            Err(out.stderr)
        }
    })
    .await;
    assert_eq!(out.stdout, "tls backend pass");

    let shown = s_client(https, "pass.test").await;
    assert!(shown.contains("CN = pass.test"), "{shown}");
    assert!(shown.contains("edge-gateway test CA"), "{shown}");

    // Another name is terminated here, with the gateway's certificate.
    let shown = s_client(https, "term.test").await;
    assert!(!shown.contains("edge-gateway test CA"), "{shown}");
    let out = curl_https(https, "term.test", "/", None, &[]).await;
    assert!(out.success, "{}", out.stderr);
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(answer["headers"]["x-forwarded-proto"], "https");

    let metrics = scrape(s.gateway.metrics_addr()).await;
    assert!(
        metrics
            .iter()
            .any(|m| m.name == "edge_gateway_stream_connections_total"
                && m.label("protocol") == Some("passthrough")
                && m.label("service") == Some("tls")
                && m.value >= 2.0),
        "no passthrough series"
    );
}
