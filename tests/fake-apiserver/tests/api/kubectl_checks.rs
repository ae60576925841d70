//! kubectl against the fake as against a cluster: `apply --validate=strict`
//! refuses what a real API server refuses, with its words; `explain` reads
//! the OpenAPI documents; `auth can-i` says yes; `get events` lists the
//! events components write through events.k8s.io; a namespace deletion
//! takes its objects along. Skipped (with a message) without kubectl.

use std::path::Path;

use fake_apiserver::FakeApiServer;
use serde_json::json;

use crate::kubectl::{have_kubectl, kubectl, kubectl_fails};

struct Cluster {
    server: FakeApiServer,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let server = FakeApiServer::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        server
            .write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Self { server, dir }
    }

    fn kc(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Writes a manifest; returns its path.
    fn manifest(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a manifest");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

const WIDGET_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the widget does.
            properties:
              size: {type: integer}
";

fn ingress(path_lines: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: bad\n  namespace: default\n\
         spec:\n  rules:\n  - host: a.example\n    http:\n      paths:\n{path_lines}"
    )
}

const BACKEND: &str = "        backend:\n          service:\n            name: web\n            port:\n              number: 80\n";

async fn refused(kc: &Path, file: &str) -> String {
    kubectl_fails(kc, &["apply", "--validate=strict", "-f", file]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_strict_refuses_as_a_cluster_does() {
    if !have_kubectl().await {
        return;
    }
    let c = Cluster::start().await;
    let kc = c.kc();
    let no_type = c.manifest(
        "no-type.yaml",
        &ingress(&format!("      - path: /api\n{BACKEND}")),
    );
    assert_eq!(
        refused(&kc, &no_type).await.trim(),
        "The Ingress \"bad\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
    );
    let relative = c.manifest(
        "relative.yaml",
        &ingress(&format!(
            "      - path: api\n        pathType: Prefix\n{BACKEND}"
        )),
    );
    assert_eq!(
        refused(&kc, &relative).await.trim(),
        "The Ingress \"bad\" is invalid: spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path"
    );
    let bad_type = c.manifest(
        "bad-type.yaml",
        &ingress(&format!(
            "      - path: /\n        pathType: Regex\n{BACKEND}"
        )),
    );
    assert!(
        refused(&kc, &bad_type).await.contains(
            "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
        )
    );
    let unknown = c.manifest(
        "unknown.yaml",
        &ingress(&format!(
            "      - path: /\n        pathType: Prefix\n        weight: 3\n{BACKEND}"
        )),
    );
    assert_eq!(
        refused(&kc, &unknown).await.trim(),
        format!(
            "Error from server (BadRequest): error when creating \"{unknown}\": Ingress in version \"v1\" cannot be handled as a Ingress: strict decoding error: unknown field \"spec.rules[0].http.paths[0].weight\""
        )
    );
    let no_ports = c.manifest(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n    app: web\n",
    );
    assert_eq!(
        refused(&kc, &no_ports).await.trim(),
        "The Service \"web\" is invalid: spec.ports: Required value"
    );
    let slice = c.manifest(
        "slice.yaml",
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  namespace: default\n\
         addressType: IPv4\nendpoints:\n- addresses: [\"fd00::7\"]\n",
    );
    assert_eq!(
        refused(&kc, &slice).await.trim(),
        "The EndpointSlice \"web-1\" is invalid: endpoints[0].addresses[0]: Invalid value: \"fd00::7\": must be a valid IPv4 address"
    );
    assert!(c.server.list("ingresses", "").is_empty());
    // A valid one goes through.
    let ok = c.manifest(
        "ok.yaml",
        &ingress(&format!(
            "      - path: /api\n        pathType: Prefix\n{BACKEND}"
        )),
    );
    let out = kubectl(&kc, &["apply", "--validate=strict", "-f", &ok]).await;
    assert!(
        out.contains("ingress.networking.k8s.io/bad created"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_the_openapi_documents() {
    if !have_kubectl().await {
        return;
    }
    let c = Cluster::start().await;
    let kc = c.kc();
    let out = kubectl(&kc, &["explain", "ingress.spec.rules.http.paths.pathType"]).await;
    assert!(out.contains("KIND:       Ingress"), "{out}");
    assert!(out.contains("FIELD: pathType <string>"), "{out}");
    assert!(
        out.contains("pathType determines the interpretation of the path matching"),
        "{out}"
    );
    let out = kubectl(
        &kc,
        &[
            "explain",
            "deployment.spec.template.spec.containers",
            "--output=plaintext-openapiv2",
        ],
    )
    .await;
    assert!(out.contains("RESOURCE: containers <[]Object>"), "{out}");
    let crd = c.manifest("crd.yaml", WIDGET_CRD);
    kubectl(&kc, &["apply", "-f", &crd]).await;
    let out = kubectl(&kc, &["explain", "widget.spec"]).await;
    assert!(out.contains("What the widget does."), "{out}");
    let widget = c.manifest(
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: default\nspec:\n  size: 3\n",
    );
    kubectl(&kc, &["apply", "-f", &widget]).await;
    let out = kubectl(&kc, &["get", "widgets", "-A"]).await;
    assert!(out.contains("default") && out.contains(" w "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_events_and_namespace_deletion() {
    if !have_kubectl().await {
        return;
    }
    let c = Cluster::start().await;
    let kc = c.kc();
    assert_eq!(
        kubectl(
            &kc,
            &["auth", "can-i", "create", "ingresses", "-n", "models"]
        )
        .await
        .trim(),
        "yes"
    );
    assert_eq!(
        kubectl(&kc, &["auth", "can-i", "delete", "nodes"])
            .await
            .trim(),
        "yes"
    );
    // An event as the gateway's recorder writes it (events.k8s.io/v1).
    c.server
        .apply(json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "models"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "regarding": {"kind": "Ingress", "name": "web", "namespace": "models"},
            "type": "Warning", "reason": "InvalidPath", "note": "path /a//b is not valid",
            "action": "Sync", "reportingController": "edge-gateway", "reportingInstance": "gw-0"}))
        .expect("an event");
    let out = kubectl(&kc, &["get", "events", "-n", "models"]).await;
    assert!(
        out.contains("LAST SEEN") && out.contains("InvalidPath"),
        "{out}"
    );
    assert!(
        out.contains("ingress/web") && out.contains("path /a//b is not valid"),
        "{out}"
    );
    let out = kubectl(
        &kc,
        &[
            "-n",
            "models",
            "create",
            "configmap",
            "c",
            "--from-literal=a=b",
        ],
    )
    .await;
    assert!(out.contains("created"), "{out}");
    let out = kubectl(&kc, &["delete", "namespace", "models"]).await;
    assert!(out.contains("namespace \"models\" deleted"), "{out}");
    assert!(c.server.get("Namespace", "", "models").is_none());
    assert!(c.server.list("configmaps", "models").is_empty());
    assert!(c.server.list("events", "models").is_empty());
}
