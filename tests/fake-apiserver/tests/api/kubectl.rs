//! kubectl against the fake server: apply a folder, read it back, apply an
//! edit, server-side apply, delete. Skipped (with a message) when kubectl is
//! not on PATH.

use std::path::Path;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use tokio::process::Command;

const KUBECTL_DEADLINE: Duration = Duration::from_secs(60);

/// Whether kubectl can be run.
pub(crate) async fn have_kubectl() -> bool {
    let probe = Command::new("kubectl")
        .args(["version", "--client"])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(KUBECTL_DEADLINE, probe).await {
        Ok(Ok(out)) if out.status.success() => true,
        _ => {
            println!("SKIPPED: kubectl is not on PATH; the kubectl tests did not run");
            false
        }
    }
}

/// Runs kubectl with the kubeconfig; returns stdout, panics with stderr on failure.
pub(crate) async fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let run = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(KUBECTL_DEADLINE, run)
        .await
        .expect("kubectl deadline")
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains("error"),
        "kubectl {args:?} complained:\n{stderr}"
    );
    stdout
}

/// Runs kubectl expecting a failure; returns stderr.
pub(crate) async fn kubectl_fails(kubeconfig: &Path, args: &[&str]) -> String {
    let run = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=20s")
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(KUBECTL_DEADLINE, run)
        .await
        .expect("kubectl deadline")
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded; stderr:\n{stderr}"
    );
    stderr
}

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: models
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
spec:
  ingressClassName: nginx
  rules:
  - host: HOST
    http:
      paths:
      - path: /api/v1/predict
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
";

const REST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: models
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: models
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: models
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
- addresses: [\"10.0.0.7\"]
  conditions:
    ready: true
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_edit_delete() {
    if !have_kubectl().await {
        return;
    }
    let server = FakeApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc).expect("kubeconfig");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    // `0-` sorts first: kubectl applies files in name order, namespace first.
    std::fs::write(manifests.join("0-base.yaml"), REST).expect("write");
    std::fs::write(
        manifests.join("ingress.yaml"),
        INGRESS.replace("HOST", "a.example"),
    )
    .expect("write");
    let m = manifests.to_str().expect("utf-8 path");

    // Default validation works: the server's OpenAPI v3 says it validates.
    let out = kubectl(&kc, &["apply", "-f", m]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/web created"),
        "{out}"
    );
    assert!(out.contains("service/web created"), "{out}");
    assert!(
        out.contains("endpointslice.discovery.k8s.io/web-abc created"),
        "{out}"
    );

    let yaml = kubectl(&kc, &["get", "ingress", "-A", "-o", "yaml"]).await;
    assert!(yaml.contains("host: a.example"), "{yaml}");
    assert!(yaml.contains("kind: Ingress"), "{yaml}");
    assert!(yaml.contains("namespace: models"), "{yaml}");
    let table = kubectl(&kc, &["get", "ing", "-A"]).await;
    assert!(
        table.contains("models") && table.contains("a.example"),
        "{table}"
    );
    let svc_ip = kubectl(
        &kc,
        &[
            "-n",
            "models",
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    )
    .await;
    assert!(svc_ip.starts_with("10.96."), "{svc_ip}");

    std::fs::write(
        manifests.join("ingress.yaml"),
        INGRESS.replace("HOST", "b.example"),
    )
    .expect("write");
    let out = kubectl(&kc, &["apply", "-f", m]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/web configured"),
        "{out}"
    );
    assert!(out.contains("service/web unchanged"), "{out}");
    let stored = server.get("Ingress", "models", "web").expect("stored");
    assert_eq!(stored["spec"]["rules"][0]["host"], "b.example");
    assert_eq!(stored["metadata"]["generation"], 2);

    let out = kubectl(&kc, &["apply", "--server-side", "-f", m]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    let out = kubectl(
        &kc,
        &["-n", "models", "label", "ingress", "web", "tier=front"],
    )
    .await;
    assert!(out.contains("labeled"), "{out}");
    let selected = kubectl(&kc, &["get", "ing", "-A", "-l", "tier=front", "-o", "name"]).await;
    assert_eq!(selected.trim(), "ingress.networking.k8s.io/web");

    let ingress_file = manifests.join("ingress.yaml");
    let out = kubectl(
        &kc,
        &["delete", "-f", ingress_file.to_str().expect("utf-8")],
    )
    .await;
    assert!(out.contains("deleted"), "{out}");
    assert!(server.get("Ingress", "models", "web").is_none());
    let none = kubectl(&kc, &["get", "ingress", "-A", "-o", "name"]).await;
    assert_eq!(none.trim(), "");
    assert!(server.get("Service", "models", "web").is_some());
}

/// The generator commands send protobuf bodies (typed clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators() {
    if !have_kubectl().await {
        return;
    }
    let server = FakeApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc).expect("kubeconfig");
    kubectl(&kc, &["create", "namespace", "extra"]).await;
    let ns = server.get("Namespace", "", "extra").expect("namespace");
    assert_eq!(ns["status"]["phase"], "Active");
    kubectl(
        &kc,
        &[
            "-n",
            "extra",
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
        ],
    )
    .await;
    let secret = server.get("Secret", "extra", "creds").expect("secret");
    assert_eq!(secret["data"]["user"], "YWRtaW4=");
    assert_eq!(secret["type"], "Opaque");
    kubectl(
        &kc,
        &[
            "-n",
            "extra",
            "create",
            "configmap",
            "settings",
            "--from-literal=mode=fast",
        ],
    )
    .await;
    let cm = server
        .get("ConfigMap", "extra", "settings")
        .expect("configmap");
    assert_eq!(cm["data"]["mode"], "fast");
    let out = kubectl(&kc, &["-n", "extra", "delete", "secret", "creds"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(server.get("Secret", "extra", "creds").is_none());
}
