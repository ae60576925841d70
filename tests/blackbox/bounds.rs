//! Connection bounds: a client that stops reading is cut off at the send
//! timeout (its upstream connection and in-flight slot released), the
//! `max-worker-connections` cap with its counter, HTTP/2 idle close after
//! `keep-alive` whatever the pings, and PING floods.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use testkit::{EchoBackend, IngressBuilder, TestCa, eventually, get, scrape, tls_secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config_map::config_map;
use crate::{Setup, service_for};

const HOST: &str = "bounds.test";

/// A gateway with `HOST` (TLS too) on an echo backend and this controller
/// ConfigMap; returns it with the CA that signed its certificate.
async fn setup(ip: [u8; 4], settings: &[(&str, &str)]) -> (Setup, EchoBackend, TestCa) {
    let ca = TestCa::new();
    let backend = EchoBackend::start(ip).await;
    let mut docs = service_for("bd", "svc", &[&backend]);
    docs.push(tls_secret("bd", "cert", &ca.issue(&[HOST], 30)));
    let mut ingress = IngressBuilder::new("bd", "app")
        .class("nginx")
        .annotation("nginx.ingress.kubernetes.io/ssl-redirect", "false")
        .host(HOST)
        .path("/", "Prefix", "svc", 80)
        .to_value();
    ingress["spec"]["tls"] = json!([{"hosts": [HOST], "secretName": "cert"}]);
    docs.push(ingress.to_string());
    docs.push(config_map(settings));
    let setup = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    (setup, backend, ca)
}

/// A metric's value (the first series matching `labels`), 0 if absent.
async fn metric(setup: &Setup, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = scrape(setup.gateway.metrics_addr()).await;
    testkit::metrics::matching(&samples, name, labels)
        .first()
        .map_or(0.0, |s| s.value)
}

const WRITING: &str = "nginx_ingress_controller_nginx_process_connections";

#[tokio::test]
async fn a_client_that_stops_reading_is_released_at_the_send_timeout() {
    let (s, _backend, _ca) = setup(
        [127, 0, 214, 1],
        &[("edge-gateway.io/client-send-timeout", "1")],
    )
    .await;
    let mut stream = TcpStream::connect(s.http()).await.unwrap();
    let total: u64 = 500 << 20;
    let head = format!("GET /?bytes={total} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The request is in flight while the response fills the buffers...
    eventually(Duration::from_secs(10), || async {
        match metric(&s, WRITING, &[("state", "writing")]).await {
            n if n >= 1.0 => Ok(()),
            n => Err(format!("{n} requests in flight")),
        }
    })
    .await;
    // ... and released once the writes have stalled for a second, though
    // the client never reads and never closes.
    eventually(Duration::from_secs(30), || async {
        match metric(&s, WRITING, &[("state", "writing")]).await {
            0.0 => Ok(()),
            n => Err(format!("{n} requests still in flight")),
        }
    })
    .await;
    let mut read = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n as u64,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection stayed open");
    assert!(read < total, "the whole response was sent");
    // Others are served as ever.
    assert_eq!(get(s.http(), HOST, "/").await.status, 200);
}

#[tokio::test]
async fn connections_beyond_max_worker_connections_are_closed_and_counted() {
    let (s, _backend, _ca) = setup([127, 0, 214, 2], &[("max-worker-connections", "2")]).await;
    let held = [
        TcpStream::connect(s.http()).await.unwrap(),
        TcpStream::connect(s.http()).await.unwrap(),
    ];
    let mut extra = TcpStream::connect(s.http()).await.unwrap();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the third connection was served: {closed:?}"
    );
    let refused = metric(
        &s,
        "edge_gateway_refused_connections_total",
        &[("listener", "http")],
    )
    .await;
    assert!(refused >= 1.0, "{refused}");
    drop(held);
    eventually(Duration::from_secs(10), || async {
        match testkit::try_request(s.http(), "GET", HOST, "/", &[], Vec::new()).await {
            Ok(response) if response.status == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A TLS connection to the gateway offering only `h2`.
async fn h2_tls(addr: SocketAddr, ca: &TestCa) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_idle_http2_connection_closes_after_keep_alive_even_when_pinging() {
    let (s, _backend, ca) = setup([127, 0, 214, 3], &[("keep-alive", "2")]).await;
    let tls = h2_tls(s.gateway.https_addr(), &ca).await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(300))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("https://{HOST}/"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    // The client keeps pinging; the server closes all the same.
    let closed = tokio::time::timeout(Duration::from_secs(20), connection).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection stayed open");
}

/// An HTTP/2 frame header and payload.
fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        kind,
        flags,
        0,
        0,
        0,
        0,
    ];
    out.extend_from_slice(payload);
    out
}

/// Sends `frames` in batches until the gateway closes or `limit` bytes
/// went out, reading everything it answers; returns the bytes sent.
async fn flood(addr: SocketAddr, ca: &TestCa, one: &[u8], limit: usize) -> usize {
    let tls = h2_tls(addr, ca).await;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(frame(4, 0, &[]));
    writer.write_all(&start).await.unwrap();
    let batch = one.repeat(1000);
    let mut sent = 0;
    while sent < limit {
        if writer.write_all(&batch).await.is_err() {
            break;
        }
        sent += batch.len();
    }
    let closed = tokio::time::timeout(Duration::from_secs(30), drain).await;
    assert!(closed.is_ok(), "the flooding connection stayed open");
    sent
}

/// A PING flood (SETTINGS and the other frames without payload count the
/// same way: see `client_io`'s unit tests) is cut off, as nginx's
/// "http2 flood detected".
#[tokio::test]
async fn a_ping_flood_is_cut_off() {
    let (s, _backend, ca) = setup([127, 0, 214, 4], &[]).await;
    let limit = 40 << 20;
    let sent = flood(s.gateway.https_addr(), &ca, &frame(6, 0, &[0; 8]), limit).await;
    assert!(sent < limit, "40 MiB of PINGs were all read");
    s.gateway
        .wait_for_log("http2 flood detected", Duration::from_secs(5))
        .await;
}

/// `proxy-send-timeout` on the upstream side: an upstream that stops
/// reading the request body gets the request cut after the timeout (504),
/// long before `proxy-read-timeout`.
#[tokio::test]
async fn an_upstream_that_stops_reading_the_body_times_out() {
    let silent = testkit::SilentBackend::start([127, 0, 214, 5]).await;
    let mut docs = vec![
        testkit::service("bd", "silent", 80, silent.addr().port()),
        testkit::endpoint_slice(
            "bd",
            "silent",
            silent.addr().port(),
            &[(silent.addr().ip(), Some(true))],
        ),
    ];
    docs.push(
        IngressBuilder::new("bd", "upload")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/proxy-send-timeout", "1")
            .annotation("nginx.ingress.kubernetes.io/proxy-read-timeout", "120")
            .annotation("nginx.ingress.kubernetes.io/proxy-body-size", "0")
            .host(HOST)
            .path("/", "Prefix", "silent", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let body = vec![b'x'; 64 << 20];
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        testkit::try_request(s.http(), "POST", HOST, "/upload", &[], body),
    )
    .await;
    match response {
        Ok(Ok(response)) => assert_eq!(response.status, 504),
        // The gateway may answer and close before reading the whole body.
        Ok(Err(error)) => assert!(!error.contains("timed out"), "{error}"),
        Err(_) => panic!("no answer within 60 s: proxy-send-timeout was not applied"),
    }
}
