//! The Gateway API Inference Extension CRDs of `fixtures/inference-crds.yaml`
//! installed on the fake as on a cluster: kubectl applies and reads
//! InferencePools (by their short name too) and InferenceObjectives. The
//! fake stores custom resources as written (its README): the schema's
//! bounds are not enforced here, so the controller's own refusals of
//! hostile pools are unit-tested (`controller/src/gateway_api/inference`).

use fake_apiserver::FakeApiServer;

use crate::kubectl::{have_kubectl, kubectl};

fn pool(name: &str, ports: &str) -> String {
    format!(
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  selector:\n    matchLabels:\n      app: vllm\n  targetPorts: {ports}\n  endpointPickerRef:\n    name: epp\n    port:\n      number: 9002\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_crds_serve_pools_and_objectives_like_a_cluster() {
    if !have_kubectl().await {
        return;
    }
    let server = FakeApiServer::start().await;
    server
        .apply_yaml(include_str!("../../fixtures/inference-crds.yaml"))
        .expect("the CRDs install");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc).expect("kubeconfig");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("utf-8").to_owned()
    };

    let ok = file("ok.yaml", &pool("vllm", "[{number: 8000}]"));
    let out = kubectl(&kc, &["apply", "--validate=strict", "-f", &ok]).await;
    assert!(
        out.contains("inferencepool.inference.networking.k8s.io/vllm created"),
        "{out}"
    );
    let objective = file(
        "objective.yaml",
        "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata:\n  name: batch\n  namespace: default\n\
         spec:\n  priority: -1\n  poolRef:\n    name: vllm\n",
    );
    let out = kubectl(&kc, &["apply", "--validate=strict", "-f", &objective]).await;
    assert!(out.contains("inferenceobjective"), "{out}");
    let got = kubectl(
        &kc,
        &[
            "get",
            "infpool",
            "vllm",
            "-o",
            "jsonpath={.spec.targetPorts[0].number}",
        ],
    )
    .await;
    assert_eq!(got.trim(), "8000");
    assert_eq!(server.list("inferenceobjectives", "default").len(), 1);
}
