//! The API over raw HTTP: CRUD, conflicts, patches, lists, discovery.

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

use crate::http::{assert_status, call, call_raw, delete, get, patch, post, put, rv};

const INGS: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";

fn ingress(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": format!("{name}.example")}]},
    })
}

#[tokio::test]
async fn create_get_list_update_delete() {
    let server = FakeApiServer::start().await;
    let base = server.url();

    let created = post(&base, INGS, ingress("web")).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    let obj = &created.body;
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert!(
        obj["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(
        obj["metadata"]["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let rv1 = rv(obj);

    assert_status(
        &post(&base, INGS, ingress("web")).await,
        409,
        "AlreadyExists",
    );

    let got = get(&base, &format!("{INGS}/web")).await;
    assert_eq!(got.code, 200);
    assert_eq!(got.body, created.body);
    let missing = get(&base, &format!("{INGS}/nope")).await;
    assert_status(&missing, 404, "NotFound");
    assert_eq!(
        missing.body["message"],
        "ingresses.networking.k8s.io \"nope\" not found"
    );
    assert_eq!(missing.body["details"]["name"], "nope");

    let list = get(&base, "/apis/networking.k8s.io/v1/ingresses").await;
    assert_eq!(list.body["kind"], "IngressList");
    assert_eq!(list.body["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(
        list.body["metadata"]["resourceVersion"],
        server.resource_version().to_string()
    );
    assert_eq!(list.body["items"][0]["metadata"]["name"], "web");

    // Optimistic concurrency.
    let mut update = created.body.clone();
    update["spec"]["rules"][0]["host"] = json!("changed.example");
    let ok = put(&base, &format!("{INGS}/web"), update.clone()).await;
    assert_eq!(ok.code, 200, "{:#}", ok.body);
    assert!(rv(&ok.body) > rv1);
    assert_eq!(ok.body["metadata"]["generation"], 2);
    assert_eq!(ok.body["metadata"]["uid"], created.body["metadata"]["uid"]);
    assert_eq!(
        ok.body["metadata"]["creationTimestamp"],
        created.body["metadata"]["creationTimestamp"]
    );
    let stale = put(&base, &format!("{INGS}/web"), update.clone()).await;
    assert_status(&stale, 409, "Conflict");
    assert!(
        stale.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("the object has been modified"))
    );

    // Body/URL mismatches and unknown namespaces.
    assert_status(
        &put(&base, &format!("{INGS}/other"), update.clone()).await,
        400,
        "BadRequest",
    );
    let mut svc_kind = ingress("x");
    svc_kind["kind"] = json!("Service");
    assert_status(&post(&base, INGS, svc_kind).await, 400, "BadRequest");
    assert_status(
        &post(&base, INGS, json!({"metadata": {"name": "Bad_Name"}})).await,
        422,
        "Invalid",
    );
    let no_ns = post(
        &base,
        "/apis/networking.k8s.io/v1/namespaces/ghost/ingresses",
        ingress("a"),
    )
    .await;
    assert_status(&no_ns, 404, "NotFound");
    assert_status(
        &put(&base, &format!("{INGS}/nope"), ingress("nope")).await,
        404,
        "NotFound",
    );
    assert_status(
        &call(&base, "POST", &format!("{INGS}/web"), None, None).await,
        405,
        "MethodNotAllowed",
    );
    assert_status(
        &get(&base, "/apis/gateway.networking.k8s.io/v1/gateways").await,
        404,
        "NotFound",
    );
    let garbage = call_raw(
        &base,
        "POST",
        INGS,
        Some("application/json"),
        None,
        Some("{nope".to_owned()),
    )
    .await;
    assert_status(&garbage, 400, "BadRequest");

    let deleted = delete(&base, &format!("{INGS}/web")).await;
    assert_eq!(deleted.code, 200);
    assert_eq!(deleted.body["kind"], "Status");
    assert_eq!(deleted.body["status"], "Success");
    assert_eq!(deleted.body["details"]["name"], "web");
    assert_eq!(deleted.body["details"]["group"], "networking.k8s.io");
    assert_eq!(deleted.body["details"]["kind"], "ingresses");
    assert_eq!(deleted.body["details"]["uid"], obj["metadata"]["uid"]);
    assert_status(&get(&base, &format!("{INGS}/web")).await, 404, "NotFound");
    assert_status(
        &delete(&base, &format!("{INGS}/web")).await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn status_subresource_is_separate() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let mut obj = ingress("web");
    obj["status"] = json!({"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}});
    let created = post(&base, INGS, obj).await;
    assert_eq!(
        created.body["status"],
        json!({"loadBalancer": {}}),
        "create ignores status"
    );

    let mut with_status = created.body.clone();
    with_status["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    with_status["spec"]["ingressClassName"] = json!("ignored-by-status");
    let st = put(&base, &format!("{INGS}/web/status"), with_status).await;
    assert_eq!(st.code, 200, "{:#}", st.body);
    assert_eq!(
        st.body["status"]["loadBalancer"]["ingress"][0]["ip"],
        "1.2.3.4"
    );
    assert_eq!(st.body["spec"]["ingressClassName"], "nginx");
    assert_eq!(st.body["metadata"]["generation"], 1);

    let mut main = st.body.clone();
    main["status"] = json!({});
    main["spec"]["ingressClassName"] = json!("other");
    let upd = put(&base, &format!("{INGS}/web"), main).await;
    assert_eq!(upd.body["spec"]["ingressClassName"], "other");
    assert_eq!(
        upd.body["status"]["loadBalancer"]["ingress"][0]["ip"], "1.2.3.4",
        "PUT keeps status"
    );

    let merge = patch(
        &base,
        &format!("{INGS}/web/status"),
        "application/merge-patch+json",
        json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}, "spec": {"x": 1}}),
    )
    .await;
    assert_eq!(
        merge.body["status"]["loadBalancer"]["ingress"][0]["hostname"],
        "lb.example"
    );
    assert!(merge.body["spec"].get("x").is_none());
    // Secrets have no status subresource.
    let path = "/api/v1/namespaces/default/secrets/s/status";
    assert_status(&get(&base, path).await, 404, "NotFound");
}

#[tokio::test]
async fn patch_kinds() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let svcs = "/api/v1/namespaces/default/services";
    let svc = json!({"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443}]}});
    let created = post(&base, svcs, svc).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    let ip = created.body["spec"]["clusterIP"].clone();
    assert!(ip.as_str().is_some_and(|s| s.starts_with("10.96.")));
    let url = format!("{svcs}/web");

    let merged = patch(
        &base,
        &url,
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
    )
    .await;
    assert_eq!(merged.code, 200, "{:#}", merged.body);
    assert_eq!(
        merged.body["metadata"]["labels"],
        json!({"b": "2", "c": "3"})
    );

    let smp = patch(
        &base,
        &url,
        "application/strategic-merge-patch+json",
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
    )
    .await;
    let ports = &smp.body["spec"]["ports"];
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports:#}");
    assert_eq!(ports[0]["targetPort"], 9090);
    assert_eq!(smp.body["spec"]["clusterIP"], ip, "clusterIP is kept");

    let jp = patch(
        &base,
        &url,
        "application/json-patch+json",
        json!([
            {"op": "test", "path": "/spec/ports/1/port", "value": 443},
            {"op": "remove", "path": "/spec/ports/1"},
            {"op": "add", "path": "/metadata/labels/d", "value": "4"},
            {"op": "replace", "path": "/spec/selector/app", "value": "api"},
        ]),
    )
    .await;
    assert_eq!(jp.code, 200, "{:#}", jp.body);
    assert_eq!(jp.body["spec"]["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(jp.body["spec"]["selector"]["app"], "api");
    let failed = patch(
        &base,
        &url,
        "application/json-patch+json",
        json!([{"op": "test", "path": "/spec/selector/app", "value": "nope"}]),
    )
    .await;
    assert_status(&failed, 422, "Invalid");
    let stale = patch(
        &base,
        &url,
        "application/merge-patch+json",
        json!({"metadata": {"resourceVersion": "1"}}),
    )
    .await;
    assert_status(&stale, 409, "Conflict");
    let unsupported = patch(&base, &url, "text/plain", json!({})).await;
    assert_status(&unsupported, 415, "UnsupportedMediaType");
    assert_status(
        &patch(
            &base,
            &format!("{svcs}/nope"),
            "application/merge-patch+json",
            json!({}),
        )
        .await,
        404,
        "NotFound",
    );

    // Server-side apply: creates, then applies with field ownership;
    // fieldManager is required.
    let cms = "/api/v1/namespaces/default/configmaps";
    let apply_ct = "application/apply-patch+yaml";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
    let no_manager = patch(&base, &format!("{cms}/cfg"), apply_ct, cm.clone()).await;
    assert_status(&no_manager, 422, "Invalid");
    let url = format!("{cms}/cfg?fieldManager=test&force=true");
    let first = patch(&base, &url, apply_ct, cm).await;
    assert_eq!(first.code, 201, "{:#}", first.body);
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  b: \"2\"\n";
    let second = call_raw(
        &base,
        "PATCH",
        &url,
        Some(apply_ct),
        None,
        Some(yaml.to_owned()),
    )
    .await;
    assert_eq!(second.code, 200, "{:#}", second.body);
    // The manager no longer applies `a`: it goes, as on a real server.
    assert_eq!(second.body["data"], json!({"b": "2"}));
    assert_eq!(
        second.body["metadata"]["managedFields"][0]["manager"],
        "test"
    );
    // Another manager's field stays when the first one re-applies.
    let other = format!("{cms}/cfg?fieldManager=other");
    let c = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"c": "3"}});
    assert_eq!(patch(&base, &other, apply_ct, c).await.code, 200);
    let again = call_raw(
        &base,
        "PATCH",
        &url,
        Some(apply_ct),
        None,
        Some(yaml.to_owned()),
    )
    .await;
    assert_eq!(again.body["data"], json!({"b": "2", "c": "3"}));
    assert_eq!(
        second.body["metadata"]["uid"],
        first.body["metadata"]["uid"]
    );
}

#[tokio::test]
async fn finalizers_delay_deletion() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let cms = "/api/v1/namespaces/default/configmaps";
    let created = post(
        &base,
        cms,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    assert_eq!(created.code, 201);
    let marked = delete(&base, &format!("{cms}/held")).await;
    assert_eq!(marked.code, 200);
    assert!(marked.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        get(&base, &format!("{cms}/held")).await.code,
        200,
        "still there"
    );
    let released = patch(
        &base,
        &format!("{cms}/held"),
        "application/merge-patch+json",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    assert_eq!(released.code, 200, "{:#}", released.body);
    assert_eq!(
        get(&base, &format!("{cms}/held")).await.code,
        404,
        "gone once released"
    );
}

/// The `fake-apiserver` binary: seeds a folder, writes a kubeconfig, prints
/// where it listens.
#[tokio::test]
async fn binary_seeds_and_serves() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(seed.join("nested")).expect("mkdir");
    std::fs::write(
        seed.join("nested/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seeded\n  namespace: default\ndata:\n  a: b\n",
    )
    .expect("write");
    let kc = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--port", "0", "--kubeconfig"])
        .arg(&kc)
        .arg("--seed")
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(crate::http::DEADLINE, lines.next_line())
        .await
        .expect("deadline")
        .expect("read")
        .expect("a line");
    let url = line
        .strip_prefix("listening ")
        .expect("`listening URL`")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let kubeconfig = std::fs::read_to_string(&kc).expect("kubeconfig written");
    assert!(
        kubeconfig.contains(&format!("server: {url}")),
        "{kubeconfig}"
    );
    let got = get(&url, "/api/v1/namespaces/default/configmaps/seeded").await;
    assert_eq!(got.code, 200);
    assert_eq!(got.body["data"]["a"], "b");
    child.kill().await.expect("kill");
}
