//! The client-connection keys of the controller ConfigMap (`keep-alive`,
//! `keep-alive-requests`, `client-header-timeout`,
//! `large-client-header-buffers`, `use-http2`): a change applies to new
//! connections without a restart, and open connections keep theirs.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use testkit::{
    Client, EchoBackend, IngressBuilder, TestCa, curl_https, eventually, request, tls_secret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config_map::config_map;
use crate::{Setup, service_for};

const HOST: &str = "listener.test";

/// A gateway following the controller ConfigMap, with `HOST` routed to an
/// echo backend (over TLS too), and the CA file that verifies it.
async fn setup(ip: [u8; 4]) -> (Setup, EchoBackend, std::path::PathBuf) {
    let ca = TestCa::new();
    let backend = EchoBackend::start(ip).await;
    let mut docs = service_for("ln", "svc", &[&backend]);
    docs.push(tls_secret("ln", "cert", &ca.issue(&[HOST], 30)));
    let mut ingress = IngressBuilder::new("ln", "app")
        .class("nginx")
        .host(HOST)
        .path("/", "Prefix", "svc", 80)
        .to_value();
    ingress["spec"]["tls"] = json!([{"hosts": [HOST], "secretName": "cert"}]);
    ingress["metadata"]["annotations"] =
        json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"});
    docs.push(serde_json::to_string_pretty(&ingress).unwrap());
    let setup = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    let ca_file = setup.dir.path().join("ca.pem.txt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (setup, backend, ca_file)
}

/// The `Connection` headers of two requests on one new connection.
async fn two_on_one_connection(addr: SocketAddr) -> (Option<String>, Option<String>) {
    let mut client = Client::connect(addr).await;
    let first = client.get(HOST, "/").await.header("connection");
    let second = client.get(HOST, "/").await.header("connection");
    (first, second)
}

/// Whether the gateway closes a new connection that sends half a request
/// head and stalls, within `within`.
async fn stalled_head_closed(addr: SocketAddr, within: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let head = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return true;
    }
    let mut buf = [0u8; 1024];
    let read_until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_until_closed)
        .await
        .is_ok()
}

#[tokio::test]
async fn connection_limits_apply_to_new_connections_without_restart() {
    let (s, _backend, _ca) = setup([127, 0, 213, 1]).await;
    let addr = s.http();
    let big = "b".repeat(2048);
    let big_header = [("x-big", big.as_str())];
    assert_eq!(two_on_one_connection(addr).await, (None, None));
    assert_eq!(
        request(addr, "GET", HOST, "/", &big_header, Vec::new())
            .await
            .status,
        200
    );
    // Opened before the change: keeps the 1000 requests it started with.
    let mut before = Client::connect(addr).await;
    before.get(HOST, "/").await;

    s.dir.write(
        "cm.yaml",
        &config_map(&[
            ("keep-alive-requests", "2"),
            ("client-header-timeout", "1"),
            ("large-client-header-buffers", "4 1k"),
        ]),
    );
    eventually(Duration::from_secs(10), || async {
        match two_on_one_connection(addr).await {
            (None, Some(close)) if close == "close" => Ok(()),
            other => Err(format!("Connection headers {other:?}")),
        }
    })
    .await;
    for _ in 0..2 {
        let response = before.get(HOST, "/").await;
        assert_eq!(
            response.header("connection"),
            None,
            "an open connection keeps its limits"
        );
    }
    // A 2 KiB header line does not fit one 1k buffer.
    let status = request(addr, "GET", HOST, "/", &big_header, Vec::new())
        .await
        .status;
    assert_eq!(status, 431);
    // A stalled head is closed after about a second, well before 60 s.
    assert!(stalled_head_closed(addr, Duration::from_secs(20)).await);

    s.dir.remove("cm.yaml");
    eventually(Duration::from_secs(10), || async {
        match two_on_one_connection(addr).await {
            (None, None) => Ok(()),
            other => Err(format!("Connection headers {other:?}")),
        }
    })
    .await;
    assert!(!stalled_head_closed(addr, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn keep_alive_closes_idle_connections_and_zero_turns_it_off() {
    let (s, _backend, _ca) = setup([127, 0, 213, 2]).await;
    let addr = s.http();
    s.dir.write("cm.yaml", &config_map(&[("keep-alive", "1")]));
    // Waits for the change: an idle connection closes soon after its
    // response instead of after 75 s.
    eventually(Duration::from_secs(20), || async {
        let mut client = Client::connect(addr).await;
        client.get(HOST, "/").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !client.is_closed() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if client.is_closed() {
            Ok(())
        } else {
            Err("the idle connection is still open".to_owned())
        }
    })
    .await;

    s.dir.write("cm.yaml", &config_map(&[("keep-alive", "0")]));
    eventually(Duration::from_secs(10), || async {
        let mut client = Client::connect(addr).await;
        let response = client.get(HOST, "/").await;
        match response.header("connection").as_deref() {
            Some("close") => Ok(()),
            other => Err(format!("Connection {other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn use_http2_false_offers_only_http1_by_alpn() {
    let (s, _backend, ca_file) = setup([127, 0, 213, 3]).await;
    let https = s.gateway.https_addr();
    let version = || async {
        let out = curl_https(
            https,
            HOST,
            "/",
            Some(&ca_file),
            &["--http2", "-o", "/dev/null", "-w", "%{http_version}"],
        )
        .await;
        out.stdout
    };
    assert_eq!(version().await, "2");
    s.dir
        .write("cm.yaml", &config_map(&[("use-http2", "false")]));
    eventually(Duration::from_secs(10), || async {
        match version().await.as_str() {
            "1.1" => Ok(()),
            other => Err(format!("HTTP version {other:?}")),
        }
    })
    .await;
    s.dir
        .write("cm.yaml", &config_map(&[("use-http2", "true")]));
    eventually(Duration::from_secs(10), || async {
        match version().await.as_str() {
            "2" => Ok(()),
            other => Err(format!("HTTP version {other:?}")),
        }
    })
    .await;
}
