//! `edge-gateway check`: the migration report, from a manifests folder and
//! from the fake API server, in text and JSON, with its exit codes.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use controller::annotations::{ANNOTATIONS, Support};
use controller::config_map;
use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{IngressBuilder, ManifestDir, endpoint_slice, ingress_class, join_docs, service};

use crate::BIN;

const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// What one run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `check` on another thread, for tests whose runtime serves the fake API
/// server meanwhile.
async fn check_async(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(&args)
    })
    .await
    .unwrap()
}

fn folder(run_args: &[&str], dir: &Path) -> Run {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--manifests", dir];
    args.extend_from_slice(run_args);
    check(&args)
}

/// A Service `ns/name` (port 80) with `ready` endpoints on 127.0.90.x.
fn backend(ns: &str, name: &str, ready: u8) -> Vec<String> {
    let endpoints: Vec<(IpAddr, Option<bool>)> = (1..=ready)
        .map(|i| (IpAddr::from([127, 0, 90, i]), Some(true)))
        .collect();
    vec![
        service(ns, name, 80, 8080),
        endpoint_slice(ns, name, 8080, &endpoints),
    ]
}

fn model(ns: &str, id: u32) -> IngressBuilder {
    IngressBuilder::new(ns, &format!("model-serving-{id}"))
        .class("nginx")
        .host("localhost")
        .path(
            &format!("/api/v1/predict/{id}"),
            "Prefix",
            &format!("model-serving-{id}"),
            80,
        )
}

/// Two models in `user-1`, one served with two endpoints.
fn clean_docs() -> Vec<String> {
    let mut docs = vec![ingress_class()];
    docs.extend(backend("user-1", "model-serving-1", 2));
    docs.extend(backend("user-1", "model-serving-2", 1));
    docs.push(model("user-1", 1).build());
    docs.push(
        model("user-1", 2)
            .annotation(&format!("{PREFIX}proxy-read-timeout"), "120")
            .build(),
    );
    docs
}

fn write(docs: &[String]) -> ManifestDir {
    let dir = ManifestDir::new();
    dir.write("objects.yaml", &join_docs(docs));
    dir
}

/// The first registry entry with this status, if any is left.
fn first_with(pick: fn(Support) -> bool) -> Option<&'static str> {
    ANNOTATIONS.iter().find(|k| pick(k.support)).map(|k| k.name)
}

#[test]
fn a_clean_folder_passes_and_lists_its_routes() {
    let dir = write(&clean_docs());
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("Ingress user-1/model-serving-1: served\n"),
        "{out}"
    );
    assert!(
        out.contains("localhost  /api/v1/predict/1  Prefix  -> model-serving-1:80 (2 endpoints)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{PREFIX}proxy-read-timeout  supported")),
        "{out}"
    );
    let summary = out.lines().last().unwrap();
    assert!(
        summary.starts_with("check: 2 Ingresses of class nginx: 2 served, 0 refused, 0 denied"),
        "{summary}"
    );
    assert!(summary.ends_with("nothing would be refused"), "{summary}");
    // Deterministic: the same objects print the same bytes.
    assert_eq!(folder(&[], dir.path()).stdout, run.stdout);
}

#[test]
fn a_snippet_ingress_fails_the_check_and_its_neighbours_keep_their_routes() {
    let mut docs = clean_docs();
    docs.push(
        IngressBuilder::new("user-1", "snippet")
            .class("nginx")
            .annotation(
                &format!("{PREFIX}configuration-snippet"),
                "more_set_headers \"X-Evil: 1\";",
            )
            .host("localhost")
            .path("/snippet", "Prefix", "model-serving-1", 80)
            .build(),
    );
    let dir = write(&docs);
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("Ingress user-1/snippet: NOT SERVED (a refused annotation)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{PREFIX}configuration-snippet  refused: ")),
        "{out}"
    );
    assert!(out.contains("RefusedAnnotation: "), "{out}");
    assert!(!out.contains("/snippet  Prefix"), "{out}");
    for id in [1, 2] {
        assert!(
            out.contains(&format!(
                "/api/v1/predict/{id}  Prefix  -> model-serving-{id}:80"
            )),
            "{out}"
        );
    }
    let summary = out.lines().last().unwrap();
    assert!(
        summary.contains("2 served, 1 refused, 0 denied"),
        "{summary}"
    );
    assert!(summary.ends_with("something would be refused"), "{summary}");
}

#[test]
fn an_unusable_allow_list_is_denied_and_fails_the_check() {
    let mut docs = clean_docs();
    docs.push(
        model("user-2", 3)
            .annotation(&format!("{PREFIX}whitelist-source-range"), "not-a-cidr")
            .build(),
    );
    docs.extend(backend("user-2", "model-serving-3", 1));
    let dir = write(&docs);
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("Ingress user-2/model-serving-3: DENIED (its routes answer 503)"),
        "{out}"
    );
    assert!(
        out.contains("localhost  /api/v1/predict/3  Prefix  -> status 503"),
        "{out}"
    );
    assert!(out.contains("LocationDenied: "), "{out}");
}

#[test]
fn unknown_and_not_yet_annotations_and_config_map_keys_are_reported() {
    let not_yet = first_with(|s| matches!(s, Support::NotYet(_)));
    let differs = first_with(|s| matches!(s, Support::Differs(_)));
    let mut ingress = model("user-1", 1).annotation(&format!("{PREFIX}no-such-annotation"), "x");
    for name in not_yet.iter().chain(&differs) {
        ingress = ingress.annotation(&format!("{PREFIX}{name}"), "x");
    }
    let mut docs = vec![ingress_class(), ingress.build()];
    docs.extend(backend("user-1", "model-serving-1", 1));
    let key_not_yet = config_map::registry::KEYS
        .iter()
        .find(|k| matches!(k.support, Support::NotYet(_)))
        .map_or("no-such-key-either", |k| k.name);
    docs.push(
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "ingress-nginx", "name": "controller"},
            "data": {
                "proxy-read-timeout": "90", key_not_yet: "x",
                "no-such-key": "1", "proxy-body-size": "huge",
            },
        })
        .to_string(),
    );
    let dir = write(&docs);
    let run = folder(&["--configmap", "ingress-nginx/controller"], dir.path());
    // Unknown and not-yet annotations are reported, never refused.
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(&format!("{PREFIX}no-such-annotation  ")) && out.contains("  unknown\n"),
        "{out}"
    );
    assert!(out.contains("UnknownAnnotation: "), "{out}");
    if let Some(name) = not_yet {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("{PREFIX}{name} ")))
            .unwrap_or_default();
        assert!(line.contains("  not yet: "), "{out}");
    }
    if let Some(name) = differs {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("{PREFIX}{name} ")))
            .unwrap_or_default();
        assert!(line.contains("  differs: "), "{out}");
    }
    let section = out
        .split("ConfigMap ingress-nginx/controller:\n")
        .nth(1)
        .unwrap_or_default();
    let key_status = |key: &str| {
        let line = section
            .lines()
            .find(|l| l.starts_with(&format!("    {key} ")));
        line.unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(key_status("proxy-read-timeout"), "supported", "{out}");
    assert_eq!(key_status("no-such-key"), "unknown", "{out}");
    assert!(
        section.contains("  invalid: proxy-body-size: \"huge\""),
        "{out}"
    );
    let mut not_applied = ["no-such-key", key_not_yet];
    not_applied.sort_unstable();
    assert!(
        section.contains(&format!("  not applied: {}\n", not_applied.join(", "))),
        "{out}"
    );
    assert!(out.contains("2 ConfigMap keys not applied"), "{out}");

    let run = folder(&["--configmap", "ingress-nginx/missing"], dir.path());
    assert!(
        run.stdout
            .contains("ConfigMap ingress-nginx/missing: not found; the built-in defaults apply"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_output_is_one_document_for_pipelines() {
    let mut docs = clean_docs();
    docs.push(
        IngressBuilder::new("user-1", "snippet")
            .class("nginx")
            .annotation(&format!("{PREFIX}server-snippet"), "return 200;")
            .annotation(&format!("{PREFIX}no-such-annotation"), "x")
            .path("/snippet", "Exact", "model-serving-1", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("user-1", "theirs")
            .class("traefik")
            .path("/theirs", "Exact", "model-serving-1", 80)
            .build(),
    );
    let dir = write(&docs);
    let run = folder(&["--output", "json"], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["exitCode"], 1);
    assert_eq!(report["summary"]["ingresses"], 3);
    assert_eq!(report["summary"]["refused"], 1);
    assert_eq!(report["summary"]["skipped"], 1);
    assert_eq!(report["configMap"], Value::Null);
    let ingresses = report["ingresses"].as_array().unwrap();
    let names: Vec<&str> = ingresses
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["model-serving-1", "model-serving-2", "snippet"]);
    let snippet = &ingresses[2];
    assert_eq!(snippet["status"], "refused");
    assert_eq!(snippet["routes"], json!([]));
    let statuses: Vec<(&str, &str)> = snippet["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("nginx.ingress.kubernetes.io/no-such-annotation", "unknown"),
            ("nginx.ingress.kubernetes.io/server-snippet", "refused"),
        ]
    );
    assert_eq!(
        ingresses[0]["routes"],
        json!([{
            "ingress": "user-1/model-serving-1", "host": "localhost",
            "path": "/api/v1/predict/1", "pathType": "Prefix",
            "service": "model-serving-1", "port": "80", "endpoints": 2,
        }])
    );
    let reasons: Vec<&str> = snippet["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"RefusedAnnotation"), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_gives_the_same_report_as_its_manifests() {
    let mut docs = clean_docs();
    docs.push(
        IngressBuilder::new("user-1", "snippet")
            .class("nginx")
            .annotation(&format!("{PREFIX}auth-snippet"), "deny all;")
            .path("/snippet", "Exact", "model-serving-1", 80)
            .build(),
    );
    docs.push(
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "ingress-nginx", "name": "controller"},
            "data": {"use-geoip2": "true"},
        })
        .to_string(),
    );
    let dir = write(&docs);
    let server = FakeApiServer::start().await;
    for ns in ["user-1", "ingress-nginx"] {
        server
            .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    }
    server.seed_dir(dir.path()).unwrap();
    let config = tempfile::tempdir().unwrap();
    let kubeconfig = config.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let dir_arg = dir.path().to_str().unwrap();

    for output in ["text", "json"] {
        let flags = [
            "--configmap",
            "ingress-nginx/controller",
            "--output",
            output,
        ];
        let from_folder = check_async(&[&["--manifests", dir_arg][..], &flags].concat()).await;
        let from_cluster = check_async(&[&["--kubeconfig", kubeconfig][..], &flags].concat()).await;
        assert_eq!(from_cluster.code, Some(1), "{}", from_cluster.stderr);
        assert_eq!(from_cluster.code, from_folder.code);
        assert_eq!(from_cluster.stdout, from_folder.stdout);
        assert!(
            from_cluster.stdout.contains("use-geoip2"),
            "{}",
            from_cluster.stdout
        );
    }
    // The cluster was read, never written or watched.
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.method == "GET" && !r.is_watch()));
    assert!(requests.iter().any(|r| r.path.ends_with("/ingresses")));

    // --watch-namespace and the class flags apply as when serving.
    let run = check_async(&[
        "--kubeconfig",
        kubeconfig,
        "--watch-namespace",
        "other",
        "--output",
        "json",
    ])
    .await;
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"]["ingresses"], 0);
    assert_eq!(run.code, Some(0));
    let run = check_async(&[
        "--kubeconfig",
        kubeconfig,
        "--ingress-class-by-name",
        "--controller-class",
        "example.com/other",
    ])
    .await;
    assert!(
        run.stdout.contains("3 Ingresses of class nginx"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_source_or_bad_flags_exit_2() {
    let run = check(&["--manifests", "/nonexistent/folder"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("/nonexistent/folder"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let run = check(&["--manifests", "/tmp", "--kubeconfig", "/tmp/kubeconfig"]);
    assert_eq!(run.code, Some(2));
    let run = check(&["--output", "yaml"]);
    assert_eq!(run.code, Some(2));

    let server = FakeApiServer::start().await;
    let config = tempfile::tempdir().unwrap();
    let kubeconfig = config.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    server.stop().await;
    let kubeconfig = kubeconfig.to_str().unwrap();
    let run = check_async(&["--kubeconfig", kubeconfig, "--request-timeout", "5s"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("edge-gateway check: "),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

/// Protective keys that are not built (the auth subrequest's extra
/// headers, ModSecurity) deny their Ingress's routes, and the check exits 1.
#[test]
fn protective_keys_that_are_not_built_fail_the_check() {
    let mut docs = clean_docs();
    docs.push(
        model("user-2", 3)
            .annotation(&format!("{PREFIX}auth-url"), "http://auth.user-2/check")
            .annotation(
                &format!("{PREFIX}auth-proxy-set-headers"),
                "user-2/auth-headers",
            )
            .build(),
    );
    docs.extend(backend("user-2", "model-serving-3", 1));
    docs.push(
        model("user-3", 4)
            .annotation(&format!("{PREFIX}enable-modsecurity"), "true")
            .build(),
    );
    docs.extend(backend("user-3", "model-serving-4", 1));
    let dir = write(&docs);
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let out = &run.stdout;
    for id in ["user-2/model-serving-3", "user-3/model-serving-4"] {
        assert!(
            out.contains(&format!("Ingress {id}: DENIED (its routes answer 503)")),
            "{out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.contains(&format!("{PREFIX}auth-proxy-set-headers "))
                && l.contains(" fails closed: ")),
        "{out}"
    );
    let summary = out.lines().last().unwrap();
    assert!(
        summary.contains("2 served, 0 refused, 2 denied"),
        "{summary}"
    );
}

/// An unusable `global-auth-url` denies the routes global auth covers (the
/// check exits 1); `use-regex` on a host shared with another namespace is
/// a warning (the check still exits 0 without the ConfigMap).
#[test]
fn global_auth_and_shared_regex_hosts_are_reported() {
    let mut docs = clean_docs();
    docs.extend(backend("user-2", "model-serving-3", 1));
    docs.push(
        model("user-2", 3)
            .annotation(&format!("{PREFIX}use-regex"), "true")
            .build(),
    );
    let dir = write(&docs);
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "SharedHostRegexMode: use-regex or rewrite-target puts host localhost in regex mode"
        ) && run.stdout.contains("namespace(s) user-1"),
        "{}",
        run.stdout
    );
    dir.write(
        "cm.yaml",
        &json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "ingress-nginx", "name": "controller"},
            "data": {"global-auth-url": "not a url"},
        })
        .to_string(),
    );
    let run = folder(&["--configmap", "ingress-nginx/controller"], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("invalid: global-auth-url: \"not a url\"")
            && run.stdout.contains("the routes it covers answer 503"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("routes under global auth answer 503"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unusable_client_certificate_secret_is_reported_and_fails_the_check() {
    let mut docs = clean_docs();
    docs.push(
        model("user-1", 3)
            .annotation(&format!("{PREFIX}auth-tls-secret"), "missing-ca")
            .annotation(&format!("{PREFIX}auth-tls-verify-client"), "on")
            .build(),
    );
    let dir = write(&docs);
    let run = folder(&[], dir.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("auth-tls-secret user-1/missing-ca not found"),
        "{}",
        run.stdout
    );
}
