//! Admission webhooks: a tiny HTTPS webhook (a test CA's certificate)
//! registered through Validating/MutatingWebhookConfigurations, called by
//! the fake on matching writes, with kube-apiserver's answers: the denial
//! as a Status, failurePolicy on a webhook that is down, timeoutSeconds,
//! service references resolved through EndpointSlices, mutation.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use fake_apiserver::FakeApiServer;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use testkit::TestCa;
use tokio::net::TcpListener;

use crate::http::{Reply, post};

const INGS: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
const VWC: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
const MWC: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

/// The test webhook: what it was sent, where it listens, its CA.
struct Hook {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The webhook's answer to a review, by path: `/deny`, `/allow`,
/// `/slow` (answers after 3 s), `/mutate`, `/wrong-uid`.
async fn answer(path: &str, review: &Value) -> Value {
    let uid = review["request"]["uid"].clone();
    let response = match path {
        "/deny" => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden",
                "message": "nginx.ingress.kubernetes.io/server-snippet: snippets are refused"}}),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!({"uid": uid, "allowed": true})
        }
        "/mutate" => {
            let patch = json!([{"op": "add", "path": "/metadata/annotations", "value": {"mutated": "yes"}}]);
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string())})
        }
        "/wrong-uid" => json!({"uid": "not-the-request", "allowed": true}),
        _ => json!({"uid": uid, "allowed": true, "warnings": ["checked by the test webhook"]}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Starts the webhook on 127.0.0.1 with a certificate for `names`.
async fn start_hook(names: &[&str]) -> Hook {
    let ca = TestCa::new();
    let issued = ca.issue(names, 30);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook");
    let addr = listener.local_addr().expect("webhook address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, recorded) = (acceptor.clone(), Arc::clone(&recorded));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let recorded = Arc::clone(&recorded);
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Ok(mut s) = recorded.lock() {
                            s.push(json!({"path": path, "review": review}));
                        }
                        let out = answer(&path, &review).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(out.to_string()),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Hook {
        addr,
        seen,
        ca_pem: ca.pem().to_owned(),
        task,
    }
}

/// A webhook configuration with one webhook on Ingress creates and updates.
fn config(name: &str, client_config: Value, extra: Value) -> Value {
    let mut webhook = json!({
        "name": name,
        "clientConfig": client_config,
        "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Value::Object(w), Value::Object(e)) = (&mut webhook, extra) {
        w.extend(e);
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name.replace('.', "-")}, "webhooks": [webhook]})
}

fn ingress(name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "return 200;"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
}

async fn register(base: &str, path: &str, cfg: Value) {
    let created = post(base, path, cfg).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
}

fn url(hook: &Hook, path: &str) -> Value {
    json!({"url": format!("https://localhost:{}{path}", hook.addr.port()), "caBundle": hook.ca_bundle()})
}

fn assert_failure(reply: &Reply, code: u16, message: &str) {
    assert_eq!(reply.code, code, "{:#}", reply.body);
    assert_eq!(reply.body["kind"], "Status");
    assert_eq!(reply.body["status"], "Failure");
    let got = reply.body["message"].as_str().unwrap_or("");
    assert!(got.contains(message), "{got:?} does not say {message:?}");
}

#[tokio::test]
async fn denial_is_the_webhooks_message_and_code() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let hook = start_hook(&["localhost"]).await;
    register(
        &base,
        VWC,
        config("deny.test.io", url(&hook, "/deny"), json!({})),
    )
    .await;
    let denied = post(&base, INGS, ingress("snippet")).await;
    assert_eq!(denied.code, 403, "{:#}", denied.body);
    assert_eq!(
        denied.body["message"],
        "admission webhook \"deny.test.io\" denied the request: nginx.ingress.kubernetes.io/server-snippet: snippets are refused"
    );
    assert!(server.get("Ingress", "default", "snippet").is_none());
    // What the webhook was sent: an AdmissionReview v1 of the create.
    let seen = hook.seen();
    let request = &seen[0]["review"]["request"];
    assert_eq!(seen[0]["path"], "/deny");
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(
        request["kind"],
        json!({"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"})
    );
    assert_eq!(request["resource"]["resource"], "ingresses");
    assert_eq!(
        (request["namespace"].as_str(), request["name"].as_str()),
        (Some("default"), Some("snippet"))
    );
    assert_eq!(request["object"]["spec"]["rules"][0]["host"], "a.example");
    // Other kinds do not go to it; dry runs do (sideEffects: None).
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(
        post(&base, "/api/v1/namespaces/default/configmaps", cm)
            .await
            .code,
        201
    );
    let dry = post(&base, &format!("{INGS}?dryRun=All"), ingress("dry")).await;
    assert_eq!(dry.code, 403);
    assert_eq!(hook.seen().len(), 2);
    assert_eq!(hook.seen()[1]["review"]["request"]["dryRun"], true);
    assert_eq!(denied.body["reason"], "Forbidden");
    // kubectl prints the webhook's reason and message, as against a cluster.
    if crate::kubectl::have_kubectl().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let kc = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kc).expect("kubeconfig");
        let file = dir.path().join("ingress.json");
        std::fs::write(&file, ingress("snippet").to_string()).expect("write");
        let stderr =
            crate::kubectl::kubectl_fails(&kc, &["apply", "-f", file.to_str().expect("utf-8")])
                .await;
        assert_eq!(
            stderr.trim(),
            format!(
                "Error from server (Forbidden): error when creating \"{}\": admission webhook \"deny.test.io\" denied the request: nginx.ingress.kubernetes.io/server-snippet: snippets are refused",
                file.display()
            )
        );
    }
}

#[tokio::test]
async fn allowed_writes_carry_the_webhooks_warnings_and_mutations() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let hook = start_hook(&["localhost"]).await;
    register(
        &base,
        VWC,
        config("allow.test.io", url(&hook, "/allow"), json!({})),
    )
    .await;
    let mut mutating = config("mutate.test.io", url(&hook, "/mutate"), json!({}));
    mutating["kind"] = json!("MutatingWebhookConfiguration");
    register(&base, MWC, mutating).await;
    let created = post(&base, INGS, ingress("ok")).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    assert_eq!(
        created.body["metadata"]["annotations"],
        json!({"mutated": "yes"})
    );
    assert_eq!(created.warnings, ["299 - \"checked by the test webhook\""]);
    // Mutating webhooks run first, validating ones see the result.
    let paths: Vec<Value> = hook.seen().iter().map(|s| s["path"].clone()).collect();
    assert_eq!(paths, [json!("/mutate"), json!("/allow")]);
    assert_eq!(
        hook.seen()[1]["review"]["request"]["object"]["metadata"]["annotations"]["mutated"],
        "yes"
    );
}

#[tokio::test]
async fn failure_policy_decides_when_the_webhook_is_down() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let closed = testkit::closed_port([127, 0, 0, 1]);
    let down = json!({"url": format!("https://{closed}/validate"),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(TestCa::new().pem())});
    register(
        &base,
        VWC,
        config(
            "down.test.io",
            down.clone(),
            json!({"failurePolicy": "Fail"}),
        ),
    )
    .await;
    let refused = post(&base, INGS, ingress("a")).await;
    assert_failure(
        &refused,
        500,
        "Internal error occurred: failed calling webhook \"down.test.io\": failed to call webhook: Post \"https://127.0.0.1:",
    );
    assert_eq!(refused.body["reason"], "InternalError");
    assert!(
        refused.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("/validate?timeout=10s\""))
    );
    // The same webhook failing open lets writes through.
    let mut open = config("down.test.io", down, json!({"failurePolicy": "Ignore"}));
    open["metadata"]["resourceVersion"] = json!(null);
    let replaced = crate::http::put(&base, &format!("{VWC}/down-test-io"), open).await;
    assert_eq!(replaced.code, 200, "{:#}", replaced.body);
    assert_eq!(post(&base, INGS, ingress("a")).await.code, 201);
}

#[tokio::test]
async fn slow_webhooks_time_out_and_bad_answers_fail() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let hook = start_hook(&["localhost"]).await;
    register(
        &base,
        VWC,
        config(
            "slow.test.io",
            url(&hook, "/slow"),
            json!({"timeoutSeconds": 1}),
        ),
    )
    .await;
    let slow = post(&base, INGS, ingress("a")).await;
    assert_failure(&slow, 500, "failed calling webhook \"slow.test.io\"");
    assert!(
        slow.body["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("/slow?timeout=1s\": context deadline exceeded")),
        "{:#}",
        slow.body
    );
    let server = FakeApiServer::start().await;
    let base = server.url();
    register(
        &base,
        VWC,
        config("uid.test.io", url(&hook, "/wrong-uid"), json!({})),
    )
    .await;
    let wrong = post(&base, INGS, ingress("a")).await;
    assert_failure(
        &wrong,
        500,
        "received invalid webhook response: expected response.uid=",
    );
    // A certificate the caBundle does not vouch for fails the call.
    let server = FakeApiServer::start().await;
    let base = server.url();
    let mut untrusted = url(&hook, "/allow");
    untrusted["caBundle"] =
        json!(base64::engine::general_purpose::STANDARD.encode(TestCa::new().pem()));
    register(&base, VWC, config("tls.test.io", untrusted, json!({}))).await;
    assert_failure(&post(&base, INGS, ingress("a")).await, 500, "tls:");
}

#[tokio::test]
async fn service_references_resolve_through_endpoint_slices() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let hook = start_hook(&["hook.webhooks.svc"]).await;
    server
        .apply_yaml(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: hook, namespace: webhooks}}\n\
             spec: {{ports: [{{name: https, port: 443, targetPort: 8443}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: hook-1, namespace: webhooks, labels: {{kubernetes.io/service-name: hook}}}}\n\
             addressType: IPv4\nports: [{{name: https, port: {}}}]\n\
             endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]\n",
            hook.addr.port()
        ))
        .expect("seed the webhook's Service");
    let service = json!({"service": {"namespace": "webhooks", "name": "hook", "path": "/deny"}, "caBundle": hook.ca_bundle()});
    register(&base, VWC, config("svc.test.io", service, json!({}))).await;
    let denied = post(&base, INGS, ingress("a")).await;
    assert_failure(
        &denied,
        403,
        "admission webhook \"svc.test.io\" denied the request",
    );
    // Without a ready endpoint the call fails, as on a cluster.
    server
        .delete("endpointslices", "webhooks", "hook-1")
        .expect("delete the slice");
    assert_failure(
        &post(&base, INGS, ingress("a")).await,
        500,
        "no endpoints available for service \"hook\"",
    );
}
