//! OCSP stapling (`enable-ocsp`) through the real binary: `openssl ocsp`
//! answers on loopback for a test CA whose leaves name it, and
//! `openssl s_client -status` checks what the handshake staples: the
//! responder's `good` answer; nothing for a revoked certificate; nothing,
//! with the handshake still completing, when the responder is down; and
//! nothing once the ConfigMap turns stapling off.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use testkit::metrics::sum;
use testkit::{EchoBackend, IngressBuilder, TestCa, closed_port, eventually, scrape, tls_secret};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::config_map::config_map;
use crate::{Setup, service_for};

/// Serial numbers of the leaves (hex as `openssl ocsp`'s index writes them).
const GOOD: u64 = 0x4F01;
const REVOKED: u64 = 0x4F02;

/// An `openssl ocsp` responder for `ca`, knowing [`GOOD`] as valid and
/// [`REVOKED`] as revoked; stopped when dropped.
struct Responder {
    _child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Responder {
    async fn start(ca: &TestCa) -> Responder {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| dir.path().join(name);
        std::fs::write(file("ca.pem"), ca.pem()).unwrap();
        std::fs::write(file("ca.key"), ca.key_pem()).unwrap();
        let index = format!(
            "V\t491231235959Z\t\t{GOOD:04X}\tunknown\t/CN=good.ocsp.test\n\
             R\t491231235959Z\t240101000000Z\t{REVOKED:04X}\tunknown\t/CN=revoked.ocsp.test\n"
        );
        std::fs::write(file("index.txt"), index).unwrap();
        // Port 0: the responder picks one and prints it.
        let mut child = Command::new("openssl")
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "ca.pem",
                "-rsigner",
                "ca.pem",
            ])
            .args([
                "-rkey",
                "ca.key",
                "-port",
                "0",
                "-nmin",
                "60",
                "-ignore_err",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl can run (Debian package openssl)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                // `ACCEPT [::]:40777 PID=19471`
                if let Some(rest) = line.strip_prefix("ACCEPT ") {
                    let addr = rest.split_whitespace().next().unwrap();
                    return addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
                }
            }
            panic!("openssl ocsp ended without listening");
        })
        .await
        .expect("openssl ocsp listens within 20 s");
        Responder {
            _child: child,
            _dir: dir,
            port,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// `openssl s_client -status` against `addr` for `name`, trusting `ca`:
/// everything it printed.
async fn s_client_status(addr: SocketAddr, name: &str, ca: &std::path::Path) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                name,
            ])
            .args(["-status", "-CAfile"])
            .arg(ca)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("openssl s_client ends")
    .expect("openssl can run");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether `shown` completed a verified handshake, and with a staple.
fn handshake(shown: &str) -> Result<bool, String> {
    if !shown.contains("Verify return code: 0 (ok)") {
        return Err(format!("no verified handshake:\n{shown}"));
    }
    if shown.contains("OCSP response: no response sent") {
        return Ok(false);
    }
    if shown.contains("OCSP Response Status: successful") && shown.contains("Cert Status: good") {
        return Ok(true);
    }
    Err(format!("no OCSP status shown:\n{shown}"))
}

#[tokio::test]
async fn staples_good_responses_and_serves_without_when_it_cannot() {
    let ca = TestCa::named("edge-gateway OCSP test CA");
    let responder = Responder::start(&ca).await;
    let down = format!("http://{}/", closed_port([127, 0, 0, 1]));
    let backend = EchoBackend::start([127, 0, 215, 1]).await;
    let mut docs = service_for("ocsp", "svc", &[&backend]);
    let hosts = [
        ("good.ocsp.test", "good", GOOD, responder.url()),
        ("revoked.ocsp.test", "revoked", REVOKED, responder.url()),
        ("down.ocsp.test", "down", 0x4F03, down),
    ];
    let mut ingress = IngressBuilder::new("ocsp", "app").class("nginx");
    for (host, secret, serial, url) in &hosts {
        docs.push(tls_secret(
            "ocsp",
            secret,
            &ca.issue_with_ocsp(&[host], *serial, url),
        ));
        ingress = ingress
            .host(host)
            .path("/", "Prefix", "svc", 80)
            .tls(&[host], secret);
    }
    docs.push(ingress.build());
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    s.dir
        .write("cm.yaml", &config_map(&[("enable-ocsp", "true")]));
    let ca_file = s.dir.path().join("ca.pem.txt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let https = s.gateway.https_addr();

    // Each certificate's fetch came back: good, revoked, no answer.
    eventually(Duration::from_secs(30), || async {
        let metrics = scrape(s.gateway.metrics_addr()).await;
        let count = |result: &str| {
            sum(
                &metrics,
                "edge_gateway_ocsp_fetches_total",
                &[("result", result)],
            )
        };
        let counts = [count("good"), count("not_good"), count("unreachable")];
        if counts.iter().all(|c| *c >= 1.0) {
            Ok(())
        } else {
            Err(format!("good, not_good, unreachable: {counts:?}"))
        }
    })
    .await;

    let stapled = handshake(&s_client_status(https, "good.ocsp.test", &ca_file).await);
    assert_eq!(stapled, Ok(true), "the responder's good answer is stapled");
    for host in ["revoked.ocsp.test", "down.ocsp.test"] {
        let shown = handshake(&s_client_status(https, host, &ca_file).await);
        assert_eq!(shown, Ok(false), "{host}: served without a staple");
    }
    assert!(
        s.gateway.logs().contains("OCSP fetch failed"),
        "the responder being down is logged"
    );

    // Stapling off: the next handshakes carry none.
    s.dir
        .write("cm.yaml", &config_map(&[("enable-ocsp", "false")]));
    eventually(Duration::from_secs(10), || async {
        match handshake(&s_client_status(https, "good.ocsp.test", &ca_file).await) {
            Ok(false) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
