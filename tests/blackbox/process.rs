//! The process: flags, exit codes, readiness and graceful shutdown.

use std::process::Command;
use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, get_frames};

use crate::{BIN, Setup, service_for};

#[test]
fn help_names_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--manifests",
        "--http-port",
        "--ingress-class",
        "--watch-ingress-without-class",
        "demo",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn bad_flags_and_missing_folders_exit_2_with_a_message() {
    let out = Command::new(BIN)
        .arg("--http-port=notaport")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-port"));

    let out = Command::new(BIN)
        .args(["--manifests", "/nonexistent/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/folder"));

    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--manifests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_stream_in_flight_finish() {
    let backend = EchoBackend::start([127, 0, 50, 1]).await;
    let mut docs = service_for("p", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("p", "svc")
            .class("nginx")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let addr = s.http();
    let stream =
        tokio::spawn(async move { get_frames(addr, "p.test", "/?sse=6&interval_ms=200").await });
    // Wait until the stream is under way, then ask the gateway to stop.
    testkit::eventually(Duration::from_secs(5), || async {
        if backend.hits() > 0 {
            Ok(())
        } else {
            Err("stream not started".to_owned())
        }
    })
    .await;
    s.gateway.signal("TERM");
    let (status, frames) = stream.await.unwrap();
    assert_eq!(status, 200);
    let text: String = frames
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(
        text.matches("data: event").count(),
        6,
        "the stream was cut: {text}"
    );
    let exit = s.gateway.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit.and_then(|e| e.code()), Some(0));
}
