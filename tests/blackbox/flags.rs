//! ingress-nginx's controller flags through the real binary: every one is
//! accepted (one start with all of them), the ignored ones are logged, the
//! unbuilt ones refuse to start, unknown ones exit 2, and the applied ones
//! do what they say (health path, annotation prefix, metrics exclusions,
//! namespace selector, sync period, leader election).

use std::process::Command;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use testkit::{
    EchoBackend, Gateway, IngressBuilder, ManifestDir, eventually, get, ingress_class, scrape,
};

use crate::{BIN, Setup, service_for};

/// ingress-nginx v1.15's flags (pkg/flags/flags.go, then klog's), each at
/// its default value, in the syntax ingress-nginx's chart renders.
const ALL_FLAGS: &[&str] = &[
    "--apiserver-host=",
    "--certificate-authority=",
    "--kubeconfig=",
    "--default-backend-service=",
    "--ingress-class=nginx",
    "--controller-class=k8s.io/ingress-nginx",
    "--watch-ingress-without-class=false",
    "--ingress-class-by-name=false",
    "--configmap=",
    "--publish-service=",
    "--tcp-services-configmap=",
    "--udp-services-configmap=",
    "--sync-period=0s",
    "--watch-namespace=",
    "--watch-namespace-selector=",
    "--profiling=true",
    "--default-ssl-certificate=",
    "--health-check-path=/healthz",
    "--health-check-timeout=10",
    "--update-status=true",
    "--election-id=ingress-controller-leader",
    "--election-ttl=30s",
    "--update-status-on-shutdown=true",
    "--report-node-internal-ip-address=false",
    "--enable-ssl-passthrough=false",
    "--disable-leader-election=false",
    "--disable-svc-external-name=false",
    "--annotations-prefix=nginx.ingress.kubernetes.io",
    "--enable-annotation-validation=true",
    "--enable-ssl-chain-completion=false",
    "--sync-rate-limit=0.3",
    "--publish-status-address=",
    "--enable-metrics=false",
    "--metrics-per-host=true",
    "--metrics-per-undefined-host=false",
    "--report-status-classes=false",
    "--time-buckets=0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10",
    "--length-buckets=10,20,30,40,50,60,70,80,90,100",
    "--size-buckets=10,100,1000,10000,100000,1e+06,1e+07",
    "--bucket-factor=0",
    "--max-buckets=100",
    "--exclude-socket-metrics=",
    "--monitor-max-batch-size=10000",
    "--http-port=0",
    "--https-port=0",
    "--ssl-passthrough-proxy-port=442",
    "--default-server-port=8181",
    "--healthz-port=0",
    "--healthz-host=",
    "--disable-catch-all=false",
    "--validating-webhook=",
    "--validating-webhook-certificate=",
    "--validating-webhook-key=",
    "--disable-full-test=false",
    "--status-port=10246",
    "--stream-port=10247",
    "--internal-logger-address=127.0.0.1:11514",
    "--profiler-port=10245",
    "--profiler-address=127.0.0.1",
    "--status-update-interval=60",
    "--shutdown-grace-period=0",
    "--post-shutdown-grace-period=0",
    "--deep-inspect=true",
    "--dynamic-configuration-retries=15",
    "--disable-sync-events=false",
    "--enable-topology-aware-routing=false",
    "--maxmind-mirror=",
    "--maxmind-license-key=",
    "--maxmind-edition-ids=GeoLite2-City,GeoLite2-ASN",
    "--maxmind-retries-count=1",
    "--maxmind-retries-timeout=0s",
    "--v=2",
    "--vmodule=",
    "--logtostderr=true",
    "--alsologtostderr=false",
    "--alsologtostderrthreshold=ERROR",
    "--legacy_stderr_threshold_behavior=true",
    "--stderrthreshold=ERROR",
    "--log_dir=",
    "--log_file=",
    "--log_file_max_size=1800",
    "--one_output=false",
    "--skip_log_headers=false",
    "--add_dir_header=false",
    "--skip_headers=false",
    "--log_backtrace_at=",
];

/// The flags the issue found crash-looping the pod (exit 2), with values
/// that change nothing refused here.
const ISSUE_FLAGS: &[&str] = &[
    "-v=3",
    "--enable-ssl-passthrough=false",
    "--watch-namespace-selector=",
    "--tcp-services-configmap=",
    "--udp-services-configmap=",
    "--annotations-prefix=nginx.ingress.kubernetes.io",
    "--enable-annotation-validation",
    "--sync-period=10m",
    "--exclude-socket-metrics=nginx_ingress_controller_bytes_sent",
    "--enable-topology-aware-routing",
    "--maxmind-license-key=lic-0f9e2b",
    "--post-shutdown-grace-period=0",
    "--health-check-path=/healthz",
];

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ingress_nginx_flag_starts_the_gateway_and_the_ignored_ones_are_logged() {
    assert_eq!(ALL_FLAGS.len(), 86, "every flag but --version");
    let mut args = ALL_FLAGS.to_vec();
    // And the 13 the issue named (repeated flags: the last wins).
    args.extend_from_slice(ISSUE_FLAGS);
    let s = Setup::start_with(&[], &args).await;
    let logs = s.gateway.logs();
    for ignored in [
        "profiling",
        "health-check-timeout",
        "sync-rate-limit",
        "bucket-factor",
        "default-server-port",
        "status-port",
        "enable-topology-aware-routing",
        "maxmind-license-key",
        "logtostderr",
        "log_file_max_size",
    ] {
        let line = format!("ingress-nginx flag --{ignored} ignored: ");
        assert_eq!(logs.matches(&line).count(), 1, "{line}\n{logs}");
    }
    assert!(
        logs.contains("argument left out: an empty value is the default"),
        "{logs}"
    );
    assert!(
        !logs.contains("lic-0f9e2b"),
        "a license key is never logged"
    );
    // Applied ones: nothing logged about them.
    assert!(!logs.contains("--health-check-path ignored"), "{logs}");
    // ingress-nginx's chart passes its binary's path first.
    let version = Command::new(BIN)
        .args(["/nginx-ingress-controller", "--version"])
        .output()
        .unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("edge-gateway "));
}

#[test]
fn unbuilt_features_refuse_to_start_and_unknown_flags_exit_2() {
    // The one flag whose value would change behaviour here without the
    // feature: refused at start.
    let args = ["--disable-svc-external-name"];
    let (code, stderr) = run(&[&["--manifests=/nonexistent"][..], &args].concat());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing them as this flag asks is not built"),
        "{stderr}"
    );
    for args in [
        &["--no-such-flag"][..],
        &["--enable-ssl-passthrough=maybe"],
        &["--sync-period=soon"],
        &["-log_dir=/tmp"],
        &["--log-dir=/tmp"],
        &["--watch-namespace=a", "--watch-namespace-selector=b=c"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_path_and_metrics_exclusions_apply() {
    let backend = EchoBackend::start([127, 0, 95, 1]).await;
    let mut docs = service_for("flags", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("flags", "web")
            .class("nginx")
            .host("flags.example.com")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let dir = ManifestDir::new();
    dir.write("class.yaml", &ingress_class());
    dir.write("objects.yaml", &testkit::join_docs(&docs));
    let gateway = Gateway::start(
        BIN,
        dir.path(),
        &[
            "--health-check-path=/ready",
            "--enable-metrics",
            "--exclude-socket-metrics=nginx_ingress_controller_requests,response_size,config_hash",
        ],
    )
    .await;
    let metrics = gateway.metrics_addr();
    let host = metrics.to_string();
    eventually(Duration::from_secs(30), || async {
        match get(metrics, &host, "/ready").await.status {
            200 => Ok(()),
            other => Err(format!("/ready: {other}")),
        }
    })
    .await;
    assert_eq!(get(metrics, &host, "/healthz").await.status, 404);
    assert_eq!(
        get(gateway.http_addr(), "flags.example.com", "/")
            .await
            .status,
        200
    );
    let families: Vec<String> = scrape(metrics)
        .await
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let has = |name: &str| families.iter().any(|f| f.starts_with(name));
    assert!(has("nginx_ingress_controller_request_duration_seconds"));
    assert!(!has("nginx_ingress_controller_requests"));
    assert!(!has("nginx_ingress_controller_response_size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_are_read_under_the_configured_prefix() {
    let backend = EchoBackend::start([127, 0, 95, 2]).await;
    let mut docs = service_for("flags", "svc", &[&backend]);
    for (name, key) in [
        ("custom", "ingress.example.com/permanent-redirect"),
        ("default", "nginx.ingress.kubernetes.io/permanent-redirect"),
    ] {
        docs.push(
            IngressBuilder::new("flags", name)
                .class("nginx")
                .annotation(key, "https://moved.example.com/")
                .host(&format!("{name}.example.com"))
                .path("/", "Prefix", "svc", 80)
                .build(),
        );
    }
    let s = Setup::start_with(&docs, &["--annotations-prefix=ingress.example.com"]).await;
    let custom = get(s.http(), "custom.example.com", "/").await;
    assert_eq!(custom.status, 301);
    assert_eq!(
        custom.header("location").unwrap(),
        "https://moved.example.com/"
    );
    // The default prefix is not read any more.
    assert_eq!(get(s.http(), "default.example.com", "/").await.status, 200);
}

/// The fake API server with a kubeconfig file.
struct Api {
    server: FakeApiServer,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(docs: &[Value]) -> Api {
        let server = FakeApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        server
            .apply(serde_json::from_str(&ingress_class()).unwrap())
            .unwrap();
        for doc in docs {
            server.apply(doc.clone()).unwrap();
        }
        Api {
            server,
            kubeconfig,
            _dir: dir,
        }
    }

    async fn gateway(&self, args: &[&str]) -> Gateway {
        let env = [("POD_NAME", "gw-0"), ("POD_NAMESPACE", "ingress-nginx")];
        Gateway::start_with_kubeconfig(BIN, &self.kubeconfig, args, &env).await
    }
}

fn namespace(name: &str, team: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"team": team}}})
}

fn json_docs(docs: Vec<String>) -> Vec<Value> {
    docs.iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

async fn wait_status(gateway: &Gateway, host: &'static str, want: u16) {
    let addr = gateway.http_addr();
    eventually(Duration::from_secs(10), move || async move {
        match get(addr, host, "/").await.status {
            status if status == want => Ok(()),
            status => Err(format!("{host}: {status}, want {want}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_selector_follows_label_changes() {
    let backend = EchoBackend::start([127, 0, 95, 3]).await;
    let mut docs = vec![
        namespace("ingress-nginx", "infra"),
        namespace("blue", "blue"),
    ];
    docs.push(namespace("green", "green"));
    for ns in ["blue", "green"] {
        docs.extend(json_docs(service_for(ns, "svc", &[&backend])));
        docs.extend(json_docs(vec![
            IngressBuilder::new(ns, "web")
                .class("nginx")
                .host(&format!("{ns}.example.com"))
                .path("/", "Prefix", "svc", 80)
                .build(),
        ]));
    }
    let api = Api::start(&docs).await;
    let gw = api
        .gateway(&["--watch-namespace-selector=team in (blue)"])
        .await;
    gw.wait_ready().await;
    wait_status(&gw, "blue.example.com", 200).await;
    wait_status(&gw, "green.example.com", 404).await;
    // Namespaces are watched with the selector, server side.
    let requests = api.server.requests();
    assert!(
        requests.iter().any(|r| r.path.ends_with("/namespaces")
            && r.query_param("labelSelector").as_deref() == Some("team in (blue)")),
        "{requests:?}"
    );
    api.server.apply(namespace("green", "blue")).unwrap();
    wait_status(&gw, "green.example.com", 200).await;
    api.server.apply(namespace("blue", "red")).unwrap();
    wait_status(&gw, "blue.example.com", 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_period_lists_again_and_leader_election_can_be_off() {
    let api = Api::start(&[namespace("ingress-nginx", "infra")]).await;
    let gw = api
        .gateway(&[
            "--sync-period=1s",
            "--disable-leader-election",
            "--publish-status-address=10.0.0.1",
        ])
        .await;
    gw.wait_ready().await;
    let lists = || {
        api.server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/ingresses") && !r.is_watch())
            .count()
    };
    let first = lists();
    eventually(Duration::from_secs(10), || async {
        match lists() {
            n if n >= first + 2 => Ok(()),
            n => Err(format!("{n} lists of Ingresses, {first} at start")),
        }
    })
    .await;
    assert!(
        !api.server
            .requests()
            .iter()
            .any(|r| r.path.contains("/leases")),
        "no Lease is read or written without leader election"
    );
    assert!(gw.logs().contains("leader election disabled"));
}

#[test]
fn check_reads_namespaces_with_the_selector_and_the_prefix() {
    let dir = ManifestDir::new();
    dir.write("class.yaml", &ingress_class());
    let mut docs = vec![
        namespace("blue", "blue").to_string(),
        namespace("green", "green").to_string(),
    ];
    for ns in ["blue", "green"] {
        docs.push(
            IngressBuilder::new(ns, "web")
                .class("nginx")
                .annotation("custom.io/server-snippet", "x")
                .host(&format!("{ns}.example.com"))
                .path("/", "Prefix", "svc", 80)
                .build(),
        );
    }
    dir.write("objects.yaml", &testkit::join_docs(&docs));
    let out = Command::new(BIN)
        .args(["check", "--output=json", "--annotations-prefix=custom.io"])
        .arg("--watch-namespace-selector=team=blue")
        .arg("--manifests")
        .arg(dir.path())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ingresses = report["ingresses"].as_array().unwrap();
    assert_eq!(ingresses.len(), 1, "{report}");
    assert_eq!(ingresses[0]["namespace"], "blue");
    assert_eq!(ingresses[0]["status"], "refused", "{report}");
    assert_eq!(
        ingresses[0]["annotations"][0]["key"],
        "custom.io/server-snippet"
    );
    // The snippet under the configured prefix is refused.
    assert_eq!(out.status.code(), Some(1), "{report}");
}
