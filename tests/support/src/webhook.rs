//! The admission webhook in tests: a serving certificate the gateway reads
//! from files (as from ingress-nginx's chart's Secret volume), the flags
//! that start it, AdmissionReview documents, and `curl` POSTing them.
//!
//! ```ignore
//! let cert = WebhookCert::new();
//! let gateway = Gateway::start(BIN, dir.path(), &cert.args()).await;
//! let addr = gateway.listening("webhook").unwrap();
//! let review = admission_review("CREATE", &ingress_json, None);
//! let (status, body) = post_review(addr, &cert, &review.to_string()).await;
//! // Or register it with an API server that calls webhooks:
//! api.apply(webhook_configuration(addr, &cert, "Fail"));
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::tls::{IssuedCert, TestCa, curl_https};

/// The name the webhook's certificate is issued for (the webhook Service's
/// name in the API server's eyes).
pub const WEBHOOK_HOST: &str = "edge-gateway-admission.ingress-nginx.svc";

/// A CA and a serving certificate for [`WEBHOOK_HOST`], written to files.
pub struct WebhookCert {
    dir: tempfile::TempDir,
    /// The certificate and key.
    pub issued: IssuedCert,
    ca: TestCa,
}

impl std::fmt::Debug for WebhookCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCert")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl WebhookCert {
    /// Issues the certificate and writes `ca.crt`, `cert` and `key`.
    pub fn new() -> WebhookCert {
        let ca = TestCa::new();
        // The Service name, and loopback for an API server in the test
        // calling it by URL (see `webhook_configuration`).
        let issued = ca.issue(&[WEBHOOK_HOST, "127.0.0.1", "localhost"], 30);
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).expect("write ca.crt");
        std::fs::write(dir.path().join("cert"), &issued.cert_pem).expect("write cert");
        std::fs::write(dir.path().join("key"), &issued.key_pem).expect("write key");
        WebhookCert { dir, issued, ca }
    }

    /// The CA certificate file clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The CA, to issue another certificate (a rotation).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The certificate file the gateway reads.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("cert")
    }

    /// The key file the gateway reads.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("key")
    }

    /// The gateway flags serving the webhook on a free loopback port:
    /// `--validating-webhook=127.0.0.1:0` with this certificate and key.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--validating-webhook=127.0.0.1:0".to_owned(),
            format!(
                "--validating-webhook-certificate={}",
                self.cert_file().display()
            ),
            format!("--validating-webhook-key={}", self.key_file().display()),
        ]
    }
}

impl Default for WebhookCert {
    fn default() -> WebhookCert {
        WebhookCert::new()
    }
}

/// An `admission.k8s.io/v1` AdmissionReview of an Ingress, as the API
/// server sends it.
pub fn admission_review(operation: &str, object: &Value, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4c4b3f5e-1b7a-4d1e-9f0a-000000000001",
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "requestKind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "requestResource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    })
}

/// A ValidatingWebhookConfiguration registering the webhook at `addr` by
/// URL (`https://127.0.0.1:<port>/networking/v1/ingresses`, as a test API
/// server can call it) and trusting `cert`'s CA, with ingress-nginx's
/// rules and this `failure_policy` (`Fail` or `Ignore`).
pub fn webhook_configuration(addr: SocketAddr, cert: &WebhookCert, failure_policy: &str) -> Value {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(cert.ca.pem());
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "edge-gateway-admission"},
        "webhooks": [{
            "name": "validate.nginx.ingress.kubernetes.io",
            "matchPolicy": "Equivalent",
            "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                       "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
            "failurePolicy": failure_policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
            "clientConfig": {
                "url": format!("https://127.0.0.1:{}/networking/v1/ingresses", addr.port()),
                "caBundle": ca,
            },
        }],
    })
}

/// POSTs `body` to the webhook at `addr` with curl, trusting `cert`'s CA,
/// as the API server calls it (`/networking/v1/ingresses`); returns the
/// status and the body.
pub async fn post_review(addr: SocketAddr, cert: &WebhookCert, body: &str) -> (u16, String) {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), body).expect("write the review");
    let data = format!("@{}", file.path().display());
    let out = curl_https(
        addr,
        WEBHOOK_HOST,
        "/networking/v1/ingresses?timeout=10s",
        Some(&cert.ca_file()),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &data,
            "-w",
            "\n%{http_code}",
        ],
    )
    .await;
    let (body, status) = out
        .stdout
        .rsplit_once('\n')
        .unwrap_or(("", out.stdout.as_str()));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl printed no status: {}\n{}", out.stdout, out.stderr));
    (status, body.to_owned())
}
