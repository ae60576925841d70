//! `edge-gateway webhook-certgen` against the fake API server: `create`
//! stores a CA and a serving certificate for the hosts once; `patch` says
//! clearly what is missing.

use std::process::{Command, Output};

use fake_apiserver::FakeApiServer;
use serde_json::json;

use crate::BIN;

async fn certgen(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("webhook-certgen")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn secret_data(server: &FakeApiServer, key: &str) -> Vec<u8> {
    use base64::Engine as _;
    let secret = server
        .get("Secret", "ingress-nginx", "edge-gateway-admission")
        .expect("the Secret");
    let encoded = secret["data"][key].as_str().expect("the key");
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stores_a_ca_and_a_certificate_once() {
    let server = FakeApiServer::start().await;
    server
        .apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let create = [
        "create",
        "--host=edge-gateway-controller-admission,edge-gateway-controller-admission.ingress-nginx.svc",
        "--namespace=ingress-nginx",
        "--secret-name=edge-gateway-admission",
    ];
    let out = certgen(&kubeconfig, &create).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ca, cert) = (secret_data(&server, "ca"), secret_data(&server, "cert"));
    assert!(!secret_data(&server, "key").is_empty());
    std::fs::write(dir.path().join("ca"), &ca).unwrap();
    std::fs::write(dir.path().join("cert"), &cert).unwrap();
    // openssl agrees: signed by the CA, for the Service's names.
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.path().join("ca"))
        .arg(dir.path().join("cert"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let names = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(dir.path().join("cert"))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout);
    assert!(
        names.contains("DNS:edge-gateway-controller-admission.ingress-nginx.svc"),
        "{names}"
    );
    // Again: the Secret stays as it is.
    let out = certgen(&kubeconfig, &create).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(secret_data(&server, "ca"), ca);

    // patch reads that CA; a configuration that does not exist is an error
    // naming it (exit 1).
    let out = certgen(
        &kubeconfig,
        &[
            "patch",
            "--webhook-name=edge-gateway-admission",
            "--namespace=ingress-nginx",
            "--secret-name=edge-gateway-admission",
            "--patch-mutating=false",
            "--patch-failure-policy=Fail",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ValidatingWebhookConfiguration edge-gateway-admission"),
        "{stderr}"
    );
    // Without the Secret: what to run first.
    let out = certgen(
        &kubeconfig,
        &[
            "patch",
            "--webhook-name=x",
            "--namespace=ingress-nginx",
            "--secret-name=missing",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run create first"));
    let out = certgen(
        &kubeconfig,
        &[
            "patch",
            "--webhook-name=x",
            "--namespace=n",
            "--secret-name=s",
            "--patch-failure-policy=Sometimes",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
}
