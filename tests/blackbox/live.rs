//! The live configuration view: `/configuration` on the metrics port with
//! `--enable-configuration-view`, and `edge-gateway check --live URL`
//! printing it.

use std::process::Command;

use serde_json::Value;
use testkit::{EchoBackend, IngressBuilder, get};

use crate::{BIN, Setup, service_for};

fn check_live(url: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["check", "--live", url])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn serving(args: &[&str]) -> (Setup, EchoBackend) {
    let backend = EchoBackend::start([127, 0, 96, 1]).await;
    let mut docs = service_for("live", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("live", "web")
            .class("nginx")
            .host("live.example.com")
            .path("/v1", "Prefix", "svc", 80)
            .build(),
    );
    (Setup::start_with(&docs, args).await, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_configuration_is_shown_and_printed() {
    let (s, backend) = serving(&["--enable-configuration-view"]).await;
    let metrics = s.gateway.metrics_addr();
    let view = get(metrics, &metrics.to_string(), "/configuration").await;
    assert_eq!(view.status, 200);
    let view: Value = view.json();
    let route = view["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ingress"] == "live/web")
        .expect("the Ingress's route");
    assert_eq!(route["host"], "live.example.com");
    assert_eq!(route["action"]["backend"], "live-svc-80");
    let endpoint = backend.addr().to_string();
    assert_eq!(
        view["backends"][0]["endpoints"][0]["address"],
        endpoint.as_str()
    );

    let compat = get(metrics, &metrics.to_string(), "/configuration/backends").await;
    let compat: Value = compat.json();
    assert_eq!(compat[0]["name"], "live-svc-80");
    assert_eq!(
        compat[0]["endpoints"][0]["port"],
        backend.addr().port().to_string()
    );

    let url = format!("http://{metrics}");
    let (code, text, stderr) = check_live(&url, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(text.contains("Routes (2)"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("live.example.com"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "live.example.com",
            "/v1",
            "Prefix",
            "live/web",
            "live-svc-80"
        ]
    );
    assert!(
        text.contains(&format!("  {endpoint}  in flight 0")),
        "{text}"
    );

    let (code, json, _) = check_live(&url, &["--output=json"]);
    assert_eq!(code, Some(0));
    let printed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(printed["backends"][0]["name"], "live-svc-80");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_is_off_by_default_and_says_how_to_turn_it_on() {
    let (s, _backend) = serving(&[]).await;
    let metrics = s.gateway.metrics_addr();
    assert_eq!(
        get(metrics, &metrics.to_string(), "/configuration")
            .await
            .status,
        404
    );
    let (code, _, stderr) = check_live(&format!("http://{metrics}"), &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--enable-configuration-view"), "{stderr}");
    // Nothing listening: a clear error, no hang.
    let (code, _, stderr) = check_live(
        &format!("http://{}", testkit::closed_port([127, 0, 96, 2])),
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("edge-gateway check --live"), "{stderr}");
    // --live is not combined with a source.
    let (code, _, _) = check_live("http://127.0.0.1:1", &["--manifests=/tmp"]);
    assert_eq!(code, Some(2));
}
