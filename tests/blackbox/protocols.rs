//! Backend protocols: HTTPS upstreams (no verification by default, verified
//! against `proxy-ssl-secret`'s CA when asked), gRPC over h2c with its
//! trailers, WebSocket upgrades spliced both ways, and `proxy-next-upstream`
//! on response statuses. The upstreams are small hyper servers started here.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use testkit::metrics::matching;
use testkit::{
    IngressBuilder, IssuedCert, TestCa, endpoint_slice, eventually, get, scrape, service,
    tls_secret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Setup;

/// How long a request through the gateway may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// An upstream answering every request with `status`, a body naming its
/// address, and (on HTTP/2) gRPC trailers; it counts requests. Stops when
/// dropped.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How an [`Upstream`] speaks.
#[derive(Clone)]
pub(crate) enum Speaks {
    /// HTTP/1.1 over TCP.
    Http1,
    /// HTTP/1.1 over TLS with this certificate.
    Https(IssuedCert),
    /// HTTP/2 with prior knowledge over TCP (h2c), answering like a gRPC
    /// server: a body, then `grpc-status` and `grpc-message` trailers.
    Grpc,
    /// The same over TLS (ALPN `h2`) with this certificate.
    Grpcs(IssuedCert),
}

impl Upstream {
    pub(crate) async fn start(addr: SocketAddr, speaks: Speaks, status: StatusCode) -> Upstream {
        let listener = TcpListener::bind(addr).await.expect("bind an upstream");
        let addr = listener.local_addr().expect("upstream address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let tls = match &speaks {
            Speaks::Https(cert) => Some(acceptor(cert, b"http/1.1")),
            Speaks::Grpcs(cert) => Some(acceptor(cert, b"h2")),
            _ => None,
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let hits = counter.clone();
                let speaks = speaks.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        answer(req, addr, status)
                    });
                    match (speaks, tls) {
                        (Speaks::Grpc, _) => {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        (Speaks::Grpcs(_), Some(tls)) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        (_, Some(tls)) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        (_, None) => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Upstream { addr, hits, task }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

type Answer = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The answer: on HTTP/2, the request body echoed back with gRPC
/// trailers; otherwise JSON naming the upstream and what it saw.
async fn answer(
    req: Request<Incoming>,
    addr: SocketAddr,
    status: StatusCode,
) -> Result<Response<Answer>, Infallible> {
    let http2 = req.version() == hyper::Version::HTTP_2;
    let version = format!("{:?}", req.version());
    let connection = header(req.headers(), "connection");
    let te = header(req.headers(), "te");
    let content_type = header(req.headers(), "content-type");
    let authority = req.uri().authority().map(|a| a.to_string());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut response = if http2 {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "7".parse().unwrap());
        trailers.insert("grpc-message", "denied%20by%20test".parse().unwrap());
        let body = Full::new(body)
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed();
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert("content-type", "application/grpc".parse().unwrap());
        for (name, value) in [("x-seen-te", te), ("x-seen-authority", authority)] {
            if let Some(value) = value {
                headers.insert(name, value.parse().unwrap());
            }
        }
        response
    } else {
        let seen = json!({
            "backend": addr.to_string(),
            "content_type": content_type,
            "version": version,
            "connection": connection,
        });
        Response::new(Full::new(Bytes::from(seen.to_string())).boxed())
    };
    *response.status_mut() = status;
    Ok(response)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn acceptor(cert: &IssuedCert, alpn: &[u8]) -> tokio_rustls::TlsAcceptor {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A Service `ns/name` on port 80 whose endpoints are `addrs` (one port).
pub(crate) fn service_at(ns: &str, name: &str, addrs: &[SocketAddr]) -> Vec<String> {
    let port = addrs[0].port();
    let endpoints: Vec<_> = addrs.iter().map(|a| (a.ip(), Some(true))).collect();
    vec![
        service(ns, name, 80, port),
        endpoint_slice(ns, name, port, &endpoints),
    ]
}

/// An Ingress in namespace `p` sending `host` to Service `service`.
fn ingress(name: &str, host: &str, service: &str, annotations: &[(&str, &str)]) -> IngressBuilder {
    let mut builder = IngressBuilder::new("p", name).class("nginx");
    for (key, value) in annotations {
        builder = builder.annotation(&format!("nginx.ingress.kubernetes.io/{key}"), value);
    }
    builder.host(host).path("/", "Prefix", service, 80)
}

/// A Secret with `ca.crt` only, as `proxy-ssl-secret` reads it.
fn ca_secret(ns: &str, name: &str, ca: &TestCa) -> String {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": ns },
        "stringData": { "ca.crt": ca.pem() },
    });
    serde_json::to_string_pretty(&secret).unwrap()
}

/// HTTPS to the upstream: no verification by default (its certificate is
/// from a CA nobody trusts); with `proxy-ssl-verify: on`, the right CA
/// passes and a wrong one answers 502; a missing Secret denies (503).
#[tokio::test]
async fn https_upstream_with_and_without_verification() {
    let upstream_ca = TestCa::new();
    let other_ca = TestCa::new();
    let cert = upstream_ca.issue(&["backend.internal"], 30);
    let upstream = Upstream::start(
        SocketAddr::from(([127, 0, 150, 1], 0)),
        Speaks::Https(cert),
        StatusCode::OK,
    )
    .await;
    let mut docs = service_at("p", "tls-svc", &[upstream.addr]);
    docs.push(ca_secret("p", "right-ca", &upstream_ca));
    docs.push(ca_secret("p", "wrong-ca", &other_ca));
    let verified = [
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-name", "backend.internal"),
        ("proxy-ssl-server-name", "on"),
    ];
    let with_secret = |secret: &'static str| {
        let mut list = verified.to_vec();
        list.push(("proxy-ssl-secret", secret));
        list
    };
    docs.push(ingress("plain", "plain.test", "tls-svc", &[]).build());
    docs.push(
        ingress(
            "https",
            "https.test",
            "tls-svc",
            &[("backend-protocol", "HTTPS")],
        )
        .build(),
    );
    docs.push(ingress("right", "right.test", "tls-svc", &with_secret("p/right-ca")).build());
    docs.push(ingress("wrong", "wrong.test", "tls-svc", &with_secret("p/wrong-ca")).build());
    docs.push(ingress("missing", "missing.test", "tls-svc", &with_secret("p/nope")).build());
    docs.push(
        ingress(
            "foreign",
            "foreign.test",
            "tls-svc",
            &with_secret("other/right-ca"),
        )
        .build(),
    );
    let s = Setup::start(&docs).await;
    let http = s.http();

    let ok = get(http, "https.test", "/").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["backend"], upstream.addr.to_string());
    assert_eq!(get(http, "right.test", "/").await.status, 200);
    assert_eq!(get(http, "wrong.test", "/").await.status, 502);
    assert_eq!(get(http, "missing.test", "/").await.status, 503);
    assert_eq!(get(http, "foreign.test", "/").await.status, 503);
    // Plain HTTP to a TLS endpoint fails as a bad gateway.
    assert_eq!(get(http, "plain.test", "/").await.status, 502);
    assert!(
        s.gateway
            .logs()
            .contains("proxy-ssl-secret p/nope not found")
    );
}

/// `proxy-ssl-verify-depth` bounds the intermediates between the upstream's
/// certificate and `ca.crt`, as nginx's `proxy_ssl_verify_depth` does: a
/// chain with two is refused (502) at the default depth, 1, and at `0`
/// (which reads as the default), and accepted at 2.
#[tokio::test]
async fn https_upstream_chain_depth() {
    let root = TestCa::new();
    let two = root.intermediate("one").intermediate("two");
    let upstream = Upstream::start(
        SocketAddr::from(([127, 0, 150, 2], 0)),
        Speaks::Https(two.issue(&["backend.internal"], 30)),
        StatusCode::OK,
    )
    .await;
    let mut docs = service_at("p", "deep-svc", &[upstream.addr]);
    docs.push(ca_secret("p", "root-ca", &root));
    let verified = |depth: Option<&'static str>| {
        let mut list = vec![
            ("backend-protocol", "HTTPS"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", "backend.internal"),
            ("proxy-ssl-secret", "p/root-ca"),
        ];
        list.extend(depth.map(|d| ("proxy-ssl-verify-depth", d)));
        list
    };
    docs.push(ingress("default", "default.test", "deep-svc", &verified(None)).build());
    docs.push(ingress("zero", "zero.test", "deep-svc", &verified(Some("0"))).build());
    docs.push(ingress("two", "two.test", "deep-svc", &verified(Some("2"))).build());
    let s = Setup::start(&docs).await;
    let http = s.http();

    assert_eq!(get(http, "default.test", "/").await.status, 502);
    assert_eq!(get(http, "zero.test", "/").await.status, 502);
    let ok = get(http, "two.test", "/").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["backend"], upstream.addr.to_string());
}

/// A gRPC unary call over h2 (TLS listener, ALPN) reaches an h2c upstream
/// (`GRPC`) or an h2-over-TLS one (`GRPCS`) with `te: trailers` and its
/// authority; the body, `grpc-status` and `grpc-message` trailers come
/// back to the client.
#[tokio::test]
async fn grpc_keeps_trailers() {
    let ca = TestCa::new();
    let h2c = Upstream::start(
        SocketAddr::from(([127, 0, 151, 1], 0)),
        Speaks::Grpc,
        StatusCode::OK,
    )
    .await;
    let h2 = Upstream::start(
        SocketAddr::from(([127, 0, 151, 2], 0)),
        Speaks::Grpcs(ca.issue(&["grpc.internal"], 30)),
        StatusCode::OK,
    )
    .await;
    let mut docs = service_at("p", "grpc-svc", &[h2c.addr]);
    docs.extend(service_at("p", "grpcs-svc", &[h2.addr]));
    docs.push(tls_secret(
        "p",
        "grpc-cert",
        &ca.issue(&["grpc.test", "grpcs.test"], 30),
    ));
    docs.push(
        ingress(
            "grpc",
            "grpc.test",
            "grpc-svc",
            &[("backend-protocol", "GRPC")],
        )
        .tls(&["grpc.test"], "grpc-cert")
        .build(),
    );
    docs.push(
        ingress(
            "grpcs",
            "grpcs.test",
            "grpcs-svc",
            &[("backend-protocol", "GRPCS")],
        )
        .tls(&["grpcs.test"], "grpc-cert")
        .build(),
    );
    let s = Setup::start(&docs).await;
    for (host, upstream) in [("grpc.test", &h2c), ("grpcs.test", &h2)] {
        unary_call(s.gateway.https_addr(), &ca, host).await;
        assert_eq!(upstream.hits(), 1, "{host}");
    }
}

/// One gRPC call to `host` through the gateway, checking what came back.
async fn unary_call(gateway: SocketAddr, ca: &TestCa, host: &str) {
    let mut sender = h2_client(gateway, ca, host).await;
    // A gRPC message: not compressed, 5 bytes long.
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x05hello");
    let request = Request::post(format!("https://{host}/echo.Echo/Say"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(message.clone()))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["x-seen-te"], "trailers");
    assert_eq!(headers["x-seen-authority"], host);
    let collected = tokio::time::timeout(WAIT, response.into_body().collect())
        .await
        .expect("the body in time")
        .expect("the body");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(collected.to_bytes(), message);
    assert_eq!(trailers["grpc-status"], "7");
    assert_eq!(trailers["grpc-message"], "denied%20by%20test");
}

/// An HTTP/2 client over TLS to `host` at `addr`, trusting `ca`.
pub(crate) async fn h2_client(
    addr: SocketAddr,
    ca: &TestCa,
    host: &str,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A WebSocket-style upgrade: the upstream answers 101 and echoes bytes;
/// the client sees 101 with the upgrade headers, and bytes go both ways.
/// The 101 is counted in the request metrics. With 1 s read/send
/// timeouts, an idle upgraded connection is closed.
#[tokio::test]
async fn websocket_upgrade_is_spliced() {
    let (upstream_addr, echo) = websocket_echo(SocketAddr::from(([127, 0, 152, 1], 0))).await;
    let docs = {
        let mut docs = service_at("p", "ws-svc", &[upstream_addr]);
        docs.push(ingress("ws", "ws.test", "ws-svc", &[]).build());
        let timeouts = [("proxy-read-timeout", "1"), ("proxy-send-timeout", "1")];
        docs.push(ingress("ws-idle", "ws-idle.test", "ws-svc", &timeouts).build());
        docs
    };
    let s = Setup::start_with(&docs, &["--enable-metrics"]).await;
    let mut client = upgrade(s.http(), "ws.test").await;
    for message in [&b"hello"[..], b"second message"] {
        client.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(WAIT, client.read_exact(&mut echoed))
            .await
            .expect("the echo in time")
            .unwrap();
        assert_eq!(echoed, message);
    }
    let metrics = s.gateway.metrics_addr();
    eventually(WAIT, || async {
        let samples = scrape(metrics).await;
        let counted = matching(
            &samples,
            "nginx_ingress_controller_requests",
            &[("status", "101"), ("ingress", "ws")],
        );
        if counted.iter().any(|s| s.value >= 1.0) {
            Ok(())
        } else {
            Err("no status=\"101\" request counted".to_owned())
        }
    })
    .await;

    let mut idle = upgrade(s.http(), "ws-idle.test").await;
    idle.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(WAIT, idle.read_exact(&mut echoed))
        .await
        .expect("the echo in time")
        .unwrap();
    let mut rest = [0u8; 16];
    let read = tokio::time::timeout(WAIT, idle.read(&mut rest))
        .await
        .expect("the idle connection closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    echo.abort();
}

/// Sends a WebSocket upgrade for `host` and returns the connection after
/// checking the 101 head.
async fn upgrade(gateway: SocketAddr, host: &str) -> TcpStream {
    let mut client = TcpStream::connect(gateway).await.unwrap();
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let head = tokio::time::timeout(WAIT, read_head(&mut client))
        .await
        .expect("the 101 in time");
    let lower = head.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 101"), "{head}");
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    client
}

/// A raw upstream that answers a WebSocket upgrade with 101 and then
/// echoes every byte.
async fn websocket_echo(bind: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                if !head.to_ascii_lowercase().contains("upgrade: websocket") {
                    let refusal = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
                    let _ = stream.write_all(refusal).await;
                    return;
                }
                let switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
                let _ = stream.write_all(switching).await;
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// Reads an HTTP head (up to the blank line) byte by byte.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `proxy-next-upstream: error timeout http_503` sends a GET answered 503
/// to the other endpoint; with `off`, the 503 is the answer. Also
/// `proxy-http-version: 1.0` on the same upstreams.
#[tokio::test]
async fn next_upstream_on_503_and_off() {
    let failing = Upstream::start(
        SocketAddr::from(([127, 0, 153, 1], 0)),
        Speaks::Http1,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    let port = failing.addr.port();
    let healthy = Upstream::start(
        SocketAddr::from(([127, 0, 153, 2], port)),
        Speaks::Http1,
        StatusCode::OK,
    )
    .await;
    let mut docs = service_at("p", "pair", &[failing.addr, healthy.addr]);
    docs.push(
        ingress(
            "retry",
            "retry.test",
            "pair",
            &[("proxy-next-upstream", "error timeout http_503")],
        )
        .build(),
    );
    docs.push(ingress("off", "off.test", "pair", &[("proxy-next-upstream", "off")]).build());
    docs.push(
        ingress(
            "old",
            "old.test",
            "healthy",
            &[("proxy-http-version", "1.0")],
        )
        .build(),
    );
    docs.extend(service_at("p", "healthy", &[healthy.addr]));
    let s = Setup::start(&docs).await;
    let http = s.http();
    // Round robin alternates: in four requests each endpoint comes first
    // at least once.
    for _ in 0..4 {
        let response = get(http, "retry.test", "/").await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["backend"], healthy.addr.to_string());
    }
    assert!(failing.hits() >= 1, "the failing endpoint was tried");
    let before = failing.hits();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(http, "off.test", "/").await.status);
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(failing.hits() - before, 2, "{statuses:?}");

    // `proxy-http-version: 1.0` (here, with the healthy endpoint alone).
    let old = get(http, "old.test", "/").await;
    assert_eq!(old.status, 200);
    assert_eq!(old.json()["version"], "HTTP/1.0");
    assert_eq!(old.json()["connection"], "close");
    assert_eq!(
        get(http, "retry.test", "/").await.json()["version"],
        "HTTP/1.1"
    );
}
