//! Client certificates (`auth-tls-*`): the matrix of certificates and
//! modes with curl and with a hyper client on rustls, the `ssl-client-*`
//! headers upstream (forged ones replaced), error pages, plain HTTP,
//! the SNI/Host check, and a CA rotation under load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use testkit::{
    CurlOutput, EchoBackend, IngressBuilder, IssuedCert, TestCa, ca_secret, curl_https, eventually,
    get, request, tls_secret,
};
use tokio::net::TcpStream;

use crate::{Setup, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";

/// The CAs and certificates of the matrix, written to files for curl.
struct Certs {
    /// Signs the gateway's server certificates.
    server_ca: TestCa,
    server_ca_file: PathBuf,
    /// The clients' CA (`auth-tls-secret`), with two intermediates below.
    clients: TestCa,
    /// Another CA, unknown to the gateway.
    stranger: TestCa,
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let server_ca = TestCa::named("server CA");
        let server_ca_file = dir.path().join("server-ca.pem");
        std::fs::write(&server_ca_file, server_ca.pem()).unwrap();
        Certs {
            server_ca,
            server_ca_file,
            clients: TestCa::named("clients root"),
            stranger: TestCa::named("stranger CA"),
            dir,
        }
    }

    /// Writes a client certificate and key to files; returns curl's
    /// arguments for them.
    fn curl_args(&self, name: &str, cert: &IssuedCert) -> Vec<String> {
        let cert_file = self.dir.path().join(format!("{name}.crt"));
        let key_file = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_file, &cert.cert_pem).unwrap();
        std::fs::write(&key_file, &cert.key_pem).unwrap();
        vec![
            "--cert".to_owned(),
            path_str(&cert_file),
            "--key".to_owned(),
            path_str(&key_file),
        ]
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// An Ingress for `host` (TLS section with the server certificate) with
/// these `auth-tls-*` annotations (keys without the prefix).
fn mtls_ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("m", name)
        .class("nginx")
        .host(host)
        .path("/", "Prefix", "svc", 80)
        .tls(&[host], "server");
    for (key, value) in annotations {
        builder = builder.annotation(&format!("{P}{key}"), value);
    }
    builder.build()
}

async fn matrix_setup(certs: &Certs, backend: &EchoBackend) -> Setup {
    let hosts = [
        "on.test",
        "optional.test",
        "noca.test",
        "cn.test",
        "redirect.test",
        "page.test",
        "broken.test",
        "plain.test",
    ];
    let mut docs = service_for("m", "svc", &[backend]);
    docs.push(tls_secret(
        "m",
        "server",
        &certs.server_ca.issue(&hosts, 30),
    ));
    docs.push(ca_secret("m", "clients", certs.clients.pem()));
    docs.push(mtls_ingress(
        "on",
        "on.test",
        &[
            ("auth-tls-secret", "clients"),
            ("auth-tls-pass-certificate-to-upstream", "true"),
        ],
    ));
    docs.push(mtls_ingress(
        "optional",
        "optional.test",
        &[
            ("auth-tls-secret", "m/clients"),
            ("auth-tls-verify-client", "optional"),
        ],
    ));
    docs.push(mtls_ingress(
        "noca",
        "noca.test",
        &[
            ("auth-tls-secret", "clients"),
            ("auth-tls-verify-client", "optional_no_ca"),
        ],
    ));
    docs.push(mtls_ingress(
        "cn",
        "cn.test",
        &[
            ("auth-tls-secret", "clients"),
            ("auth-tls-match-cn", "CN=alice$"),
        ],
    ));
    docs.push(mtls_ingress(
        "redirect",
        "redirect.test",
        &[
            ("auth-tls-secret", "clients"),
            ("auth-tls-error-page", "https://help.test/certificates"),
        ],
    ));
    docs.push(mtls_ingress(
        "page",
        "page.test",
        &[
            ("auth-tls-secret", "clients"),
            ("auth-tls-error-page", "/cert-error"),
        ],
    ));
    docs.push(mtls_ingress(
        "broken",
        "broken.test",
        &[("auth-tls-secret", "no-such-secret")],
    ));
    docs.push(mtls_ingress("plain", "plain.test", &[]));
    // A host with client certificates and no TLS section: plain HTTP
    // reaches it without a redirect.
    docs.push(
        IngressBuilder::new("m", "http-only")
            .class("nginx")
            .annotation(&format!("{P}auth-tls-secret"), "clients")
            .host("http-only.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    Setup::start(&docs).await
}

/// `curl` to `host` on the gateway's HTTPS port with these extra
/// arguments, printing the status then the body.
async fn curl(setup: &Setup, certs: &Certs, host: &str, path: &str, args: &[String]) -> CurlOutput {
    let mut extra: Vec<&str> = args.iter().map(String::as_str).collect();
    extra.extend(["-w", "\n%{http_code}"]);
    curl_https(
        setup.gateway.https_addr(),
        host,
        path,
        Some(&certs.server_ca_file),
        &extra,
    )
    .await
}

/// The status curl printed last, and the body before it.
fn status_and_body(out: &CurlOutput) -> (u16, String) {
    let (body, status) = out.stdout.rsplit_once('\n').unwrap_or(("", &out.stdout));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn the_certificate_matrix_with_curl() {
    let certs = Certs::new();
    let backend = EchoBackend::start([127, 0, 61, 1]).await;
    let setup = matrix_setup(&certs, &backend).await;
    let good = certs.curl_args("good", &certs.clients.issue_client("alice", -1, 30));
    let bob = certs.curl_args("bob", &certs.clients.issue_client("bob", -1, 30));
    let foreign = certs.curl_args("foreign", &certs.stranger.issue_client("alice", -1, 30));
    let expired = certs.curl_args("expired", &certs.clients.issue_client("alice", -30, -1));
    let one = certs.clients.intermediate("one");
    let two = one.intermediate("two");
    let via_one = certs.curl_args("via-one", &one.issue_client("alice", -1, 30));
    let via_two = certs.curl_args("via-two", &two.issue_client("alice", -1, 30));
    let none: Vec<String> = Vec::new();

    // `on`: only a valid certificate within the depth (1) passes.
    for (args, status, text) in [
        (&none, 400, "No required SSL certificate was sent"),
        (&foreign, 400, "The SSL certificate error"),
        (&expired, 400, "The SSL certificate error"),
        (&via_two, 400, "The SSL certificate error"),
        (&via_one, 200, "\"backend\""),
        (&good, 200, "\"backend\""),
    ] {
        let out = curl(&setup, &certs, "on.test", "/", args).await;
        let (got, body) = status_and_body(&out);
        assert_eq!(got, status, "{args:?}: {}", out.stderr);
        assert!(body.contains(text), "{args:?}: {body}");
    }
    assert_eq!(
        backend.hits(),
        2,
        "only the two valid certificates got through"
    );

    // Upstream headers: the gateway's, whatever the client sent.
    let mut forged = good.clone();
    forged.extend(
        [
            "-H",
            "ssl-client-verify: FAILED",
            "-H",
            "ssl-client-subject-dn: CN=admin",
        ]
        .map(str::to_owned),
    );
    let out = curl(&setup, &certs, "on.test", "/", &forged).await;
    assert_eq!(status_and_body(&out).0, 200, "{}", out.stderr);
    let seen = backend.last_request().unwrap();
    assert_eq!(seen.header("ssl-client-verify").as_deref(), Some("SUCCESS"));
    assert_eq!(
        seen.header("ssl-client-subject-dn").as_deref(),
        Some("O=edge-gateway tests,CN=alice")
    );
    assert_eq!(
        seen.header("ssl-client-issuer-dn").as_deref(),
        Some("CN=clients root")
    );
    let escaped = seen.header("ssl-client-cert").unwrap();
    assert!(
        escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
        "{escaped}"
    );

    // `optional`: none passes (NONE, forged values replaced), invalid not.
    let mut forged_none = none.clone();
    forged_none.extend(["-H", "ssl-client-verify: SUCCESS"].map(str::to_owned));
    let out = curl(&setup, &certs, "optional.test", "/", &forged_none).await;
    assert_eq!(status_and_body(&out).0, 200, "{}", out.stderr);
    let seen = backend.last_request().unwrap();
    assert_eq!(seen.header("ssl-client-verify").as_deref(), Some("NONE"));
    assert_eq!(seen.header("ssl-client-cert"), None, "not asked to pass it");
    let out = curl(&setup, &certs, "optional.test", "/", &foreign).await;
    assert_eq!(status_and_body(&out).0, 400);

    // `optional_no_ca`: an unknown issuer passes, and says so.
    let out = curl(&setup, &certs, "noca.test", "/", &foreign).await;
    assert_eq!(status_and_body(&out).0, 200, "{}", out.stderr);
    let verify = backend.last_request().unwrap().header("ssl-client-verify");
    assert!(
        verify.as_deref().is_some_and(|v| v.starts_with("FAILED:")),
        "{verify:?}"
    );
    assert_eq!(
        status_and_body(&curl(&setup, &certs, "noca.test", "/", &expired).await).0,
        400
    );

    // `auth-tls-match-cn`.
    assert_eq!(
        status_and_body(&curl(&setup, &certs, "cn.test", "/", &good).await).0,
        200
    );
    let out = curl(&setup, &certs, "cn.test", "/", &bob).await;
    assert_eq!(
        status_and_body(&out),
        (403, "client certificate unauthorized".to_owned())
    );

    // Error pages: a URL is a redirect, a path is served by the host.
    let mut headers = none.clone();
    headers.extend(["-D", "-"].map(str::to_owned));
    let out = curl(&setup, &certs, "redirect.test", "/x", &headers).await;
    assert!(
        out.stdout.starts_with("HTTP/1.1 302") || out.stdout.starts_with("HTTP/2 302"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("location: https://help.test/certificates"),
        "{}",
        out.stdout
    );
    let mut post = none.clone();
    post.extend(["-d", "body"].map(str::to_owned));
    let out = curl(&setup, &certs, "page.test", "/x?y=1", &post).await;
    assert_eq!(status_and_body(&out).0, 200, "{}", out.stderr);
    let seen = backend.last_request().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("GET", "/cert-error")
    );
    assert!(seen.body.is_empty());
    assert_eq!(seen.header("ssl-client-verify").as_deref(), Some("NONE"));

    // An unusable Secret: 503, never served.
    let out = curl(&setup, &certs, "broken.test", "/", &good).await;
    assert_eq!(status_and_body(&out).0, 503);
    setup
        .gateway
        .wait_for_log(
            "auth-tls-secret m/no-such-secret not found",
            Duration::from_secs(5),
        )
        .await;

    // HSTS on the gateway's own answers for a TLS host.
    let mut with_head = none.clone();
    with_head.extend(["-D", "-"].map(str::to_owned));
    let out = curl(&setup, &certs, "on.test", "/", &with_head).await;
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{}",
        out.stdout
    );

    // Plain HTTP: redirected to HTTPS where there is TLS, else refused.
    let http = setup.http();
    assert_eq!(get(http, "on.test", "/").await.status, 308);
    let refused = get(http, "http-only.test", "/").await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .text()
            .contains("No required SSL certificate was sent")
    );
    let forged = request(
        http,
        "GET",
        "optional.test",
        "/",
        &[("ssl-client-verify", "SUCCESS")],
        Vec::new(),
    )
    .await;
    assert_eq!(forged.status, 308, "a TLS host redirects first");
}

/// A hyper HTTP/2 client over rustls to the gateway, trusting the server
/// CA `server_ca` (PEM), asking for `sni`, presenting `client` if any.
async fn h2_client(
    addr: std::net::SocketAddr,
    sni: &str,
    server_ca: &str,
    client: Option<&IssuedCert>,
) -> SendRequest<Empty<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(cert) => {
            let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// One GET on an HTTP/2 connection: the status, or `None` if it failed.
async fn h2_get(sender: &mut SendRequest<Empty<Bytes>>, host: &str, path: &str) -> Option<u16> {
    let request = hyper::Request::get(format!("https://{host}{path}"))
        .header("ssl-client-verify", "SUCCESS")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

#[tokio::test]
async fn http2_clients_on_rustls_and_the_server_name_check() {
    let certs = Certs::new();
    let backend = EchoBackend::start([127, 0, 61, 2]).await;
    let setup = matrix_setup(&certs, &backend).await;
    let https = setup.gateway.https_addr();
    let good = certs.clients.issue_client("alice", -1, 30);
    let foreign = certs.stranger.issue_client("alice", -1, 30);

    let server_ca = certs.server_ca.pem();
    let mut with_cert = h2_client(https, "on.test", server_ca, Some(&good)).await;
    for _ in 0..3 {
        assert_eq!(h2_get(&mut with_cert, "on.test", "/").await, Some(200));
    }
    let seen = backend.last_request().unwrap();
    assert_eq!(seen.header("ssl-client-verify").as_deref(), Some("SUCCESS"));
    let mut without = h2_client(https, "on.test", server_ca, None).await;
    assert_eq!(h2_get(&mut without, "on.test", "/").await, Some(400));
    let mut stranger = h2_client(https, "on.test", server_ca, Some(&foreign)).await;
    assert_eq!(h2_get(&mut stranger, "on.test", "/").await, Some(400));

    // A connection made for one host cannot ask for a host that checks
    // certificates differently: 421, as nginx.
    let mut plain = h2_client(https, "plain.test", server_ca, None).await;
    assert_eq!(h2_get(&mut plain, "plain.test", "/").await, Some(200));
    assert_eq!(h2_get(&mut plain, "on.test", "/").await, Some(421));
    assert_eq!(
        h2_get(&mut with_cert, "optional.test", "/").await,
        Some(421)
    );
    // The other way round is fine: plain.test checks nothing.
    assert_eq!(h2_get(&mut with_cert, "plain.test", "/").await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_under_load_fails_no_request() {
    let certs = Certs::new();
    let backend = EchoBackend::start([127, 0, 61, 3]).await;
    let next = TestCa::named("next clients root");
    let mut docs = service_for("m", "svc", &[&backend]);
    docs.push(tls_secret(
        "m",
        "server",
        &certs.server_ca.issue(&["on.test"], 30),
    ));
    docs.push(ca_secret("m", "clients", certs.clients.pem()));
    docs.push(mtls_ingress(
        "on",
        "on.test",
        &[("auth-tls-secret", "clients")],
    ));
    let setup = Setup::start(&docs).await;
    let https = setup.gateway.https_addr();
    let old = certs.clients.issue_client("old", -1, 30);
    let new = next.issue_client("new", -1, 30);

    // Load: one long-lived connection and new connections, all presenting
    // a certificate of the old CA, which every CA bundle below trusts.
    let server_ca = certs.server_ca.pem().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for fresh in [false, true] {
        let (stop, failures, done) = (stop.clone(), failures.clone(), done.clone());
        let (server_ca, old) = (server_ca.clone(), old.clone());
        clients.push(tokio::spawn(async move {
            let mut sender = h2_client(https, "on.test", &server_ca, Some(&old)).await;
            while !stop.load(Ordering::Relaxed) {
                if fresh {
                    sender = h2_client(https, "on.test", &server_ca, Some(&old)).await;
                }
                if h2_get(&mut sender, "on.test", "/").await != Some(200) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let bundles = [
        format!("{}{}", certs.clients.pem(), next.pem()),
        format!("{}{}", next.pem(), certs.clients.pem()),
    ];
    for (round, bundle) in bundles.iter().enumerate() {
        docs[3] = ca_secret("m", "clients", bundle);
        setup.dir.write("objects.yaml", &testkit::join_docs(&docs));
        let (server_ca, new) = (server_ca.clone(), new.clone());
        eventually(Duration::from_secs(10), move || {
            let (server_ca, new) = (server_ca.clone(), new.clone());
            async move {
                let mut sender = h2_client(https, "on.test", &server_ca, Some(&new)).await;
                match h2_get(&mut sender, "on.test", "/").await {
                    Some(200) => Ok(()),
                    other => Err(format!("round {round}: the new CA's client got {other:?}")),
                }
            }
        })
        .await;
    }
    // Swaps apply within milliseconds: let the load reach a few requests
    // across the rotation before it stops.
    let counted = done.clone();
    eventually(Duration::from_secs(10), move || {
        let n = counted.load(Ordering::Relaxed);
        async move {
            if n >= 10 {
                Ok(())
            } else {
                Err(format!("{n} requests under load"))
            }
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);

    // Dropping the old CA takes effect on an open connection too.
    let kept = h2_client(https, "on.test", &server_ca, Some(&old)).await;
    let mut probe = kept.clone();
    assert_eq!(h2_get(&mut probe, "on.test", "/").await, Some(200));
    docs[3] = ca_secret("m", "clients", next.pem());
    setup.dir.write("objects.yaml", &testkit::join_docs(&docs));
    eventually(Duration::from_secs(10), || {
        let mut kept = kept.clone();
        async move {
            match h2_get(&mut kept, "on.test", "/").await {
                Some(400) => Ok(()),
                other => Err(format!("the old CA's client still got {other:?}")),
            }
        }
    })
    .await;
}
