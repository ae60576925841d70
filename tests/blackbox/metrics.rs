//! Metrics and the access log, end to end: exact request counts with
//! ingress-nginx's names and labels, bounded series under hostile traffic,
//! controller metrics, orphan Ingresses, the access log formats, and
//! `promtool check metrics` on the output.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::metrics::{matching, scrape_text, sum};
use testkit::{
    Client, EchoBackend, Gateway, IngressBuilder, ManifestDir, Sample, TestCa, endpoint_slice,
    eventually, get, ingress_class, join_docs, request, scrape, service, tls_secret,
};

use crate::{BIN, Setup, service_for};

/// `controller_namespace` and `controller_pod`, from the pod's environment.
const CONTROLLER_NAMESPACE: &str = "ingress-nginx";
const CONTROLLER_POD: &str = "edge-gateway-metrics-0";
/// How long a counted request or a manifests change may take to show.
const SHOWS: Duration = Duration::from_secs(10);

/// The request histograms and the bounds of their buckets by default.
const TIME: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const LENGTH: &[f64] = &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];
const SIZE: &[f64] = &[10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7];
const HISTOGRAMS: [(&str, &[f64]); 7] = [
    ("request_duration_seconds", TIME),
    ("response_duration_seconds", TIME),
    ("header_duration_seconds", TIME),
    ("connect_duration_seconds", TIME),
    ("request_size", LENGTH),
    ("response_size", LENGTH),
    ("bytes_sent", SIZE),
];
const P: &str = "nginx_ingress_controller_";

/// Starts the gateway on `docs` (plus the IngressClass) with `args`, as
/// pod `CONTROLLER_POD` in `CONTROLLER_NAMESPACE`, and waits until ready.
async fn start(docs: &[String], args: &[&str]) -> Setup {
    let dir = ManifestDir::new();
    dir.write("class.yaml", &ingress_class());
    dir.write("objects.yaml", &join_docs(docs));
    let env = [
        ("POD_NAMESPACE", CONTROLLER_NAMESPACE),
        ("POD_NAME", CONTROLLER_POD),
    ];
    let gateway = Gateway::start_with_env(BIN, dir.path(), args, &env).await;
    gateway.wait_ready().await;
    Setup { dir, gateway }
}

/// An Ingress `ns/name` (class nginx) routing `host` + `path` (Prefix) to
/// Service `service` port 80; an empty `host` makes a host-less rule.
fn ingress(ns: &str, name: &str, host: &str, path: &str, service: &str) -> IngressBuilder {
    let builder = IngressBuilder::new(ns, name).class("nginx");
    let builder = if host.is_empty() {
        builder
    } else {
        builder.host(host)
    };
    builder.path(path, "Prefix", service, 80)
}

/// Scrapes until `nginx_ingress_controller_requests` matching `labels` adds
/// up to at least `count`, and returns that scrape.
async fn scrape_once_counted(
    metrics: SocketAddr,
    labels: &[(&str, &str)],
    count: f64,
) -> Vec<Sample> {
    eventually(SHOWS, || async {
        let samples = scrape(metrics).await;
        let seen = sum(&samples, &format!("{P}requests"), labels);
        if seen >= count {
            Ok(samples)
        } else {
            Err(format!("requests{labels:?} = {seen}, want {count}"))
        }
    })
    .await
}

/// The labels of `sample` without the `le` label, as a comparable key.
fn series_key(sample: &Sample) -> BTreeMap<String, String> {
    let mut labels = sample.labels.clone();
    labels.remove("le");
    labels
}

/// Checks every request histogram of the series `labels` (those of one
/// `requests` sample): `_count` equals `count`, buckets have the expected
/// bounds, are cumulative and end with `le="+Inf"` equal to `_count`.
fn check_histograms(samples: &[Sample], labels: &BTreeMap<String, String>, count: f64) {
    for (name, bounds) in HISTOGRAMS {
        let same = |suffix: &str| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.name == format!("{P}{name}{suffix}") && series_key(s) == *labels)
                .collect()
        };
        let counts = same("_count");
        assert_eq!(counts.len(), 1, "{name}_count for {labels:?}");
        assert_eq!(counts[0].value, count, "{name}_count for {labels:?}");
        assert_eq!(same("_sum").len(), 1, "{name}_sum for {labels:?}");
        let mut buckets: Vec<(f64, f64)> = same("_bucket")
            .iter()
            .map(|s| {
                let le = s
                    .label("le")
                    .unwrap_or_else(|| panic!("bucket without le: {s:?}"));
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or_else(|_| panic!("bad le {le:?}"))
                };
                (le, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        let mut want: Vec<f64> = bounds.to_vec();
        want.push(f64::INFINITY);
        assert_eq!(les, want, "{name} bucket bounds");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name} buckets are not cumulative: {buckets:?}"
        );
        assert_eq!(
            buckets.last().map(|b| b.1),
            Some(count),
            "{name} le=+Inf must equal _count"
        );
    }
}

#[tokio::test]
async fn requests_rise_by_exactly_n_with_ingress_nginx_labels() {
    let backend = EchoBackend::start([127, 0, 90, 1]).await;
    let mut docs = service_for("models", "model-a", &[&backend]);
    docs.push(
        ingress(
            "models",
            "model-a",
            "metrics.test",
            "/api/v1/predict/a",
            "model-a",
        )
        .build(),
    );
    let s = start(&docs, &["--enable-metrics"]).await;
    let metrics = s.gateway.metrics_addr();

    let before = scrape(metrics).await;
    let route = [("ingress", "model-a")];
    assert_eq!(sum(&before, &format!("{P}requests"), &route), 0.0);
    let requests_before = sum(&before, &format!("{P}nginx_process_requests_total"), &[]);

    // 37 requests on one keep-alive connection, each URI different: 31
    // answered 200 and 6 answered 503 by the backend.
    const N: usize = 37;
    let mut client = Client::connect(s.http()).await;
    let mut failed = 0;
    for i in 0..N {
        let path = if i % 6 == 5 {
            failed += 1;
            format!("/api/v1/predict/a/item/{i}?status=503")
        } else {
            format!("/api/v1/predict/a/item/{i}?q={i}")
        };
        let response = client.get("metrics.test", &path).await;
        assert_eq!(
            response.status,
            if i % 6 == 5 { 503 } else { 200 },
            "{path}"
        );
    }
    let ok = N - failed;
    assert_eq!((ok, failed), (31, 6));

    let after = scrape_once_counted(metrics, &route, N as f64).await;
    let requests = format!("{P}requests");
    assert_eq!(
        sum(&after, &requests, &route),
        N as f64,
        "exactly N, no more"
    );
    assert_eq!(sum(&after, &requests, &[("status", "200")]), ok as f64);
    assert_eq!(sum(&after, &requests, &[("status", "503")]), failed as f64);

    // One series per status, with ingress-nginx's labels: the Ingress path
    // (not the URI), the Ingress's namespace, the host, the constant labels.
    let series = matching(&after, &requests, &route);
    assert_eq!(series.len(), 2, "{series:?}");
    for sample in series {
        let status = sample.label("status").unwrap_or_default();
        let want: BTreeMap<String, String> = [
            ("canary", ""),
            ("controller_class", "k8s.io/ingress-nginx"),
            ("controller_namespace", CONTROLLER_NAMESPACE),
            ("controller_pod", CONTROLLER_POD),
            ("host", "metrics.test"),
            ("ingress", "model-a"),
            ("method", "GET"),
            ("namespace", "models"),
            ("path", "/api/v1/predict/a"),
            ("service", "model-a"),
            ("status", status),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(sample.labels, want);
        check_histograms(&after, &sample.labels, sample.value);
    }
    let latency = matching(
        &after,
        &format!("{P}ingress_upstream_latency_seconds_count"),
        &route,
    );
    assert_eq!(latency.len(), 1, "the deprecated summary, per Ingress");
    assert_eq!(latency[0].value, N as f64);

    // The process counters see every request.
    let requests_after = sum(&after, &format!("{P}nginx_process_requests_total"), &[]);
    assert!(requests_after - requests_before >= N as f64);
    assert!(
        sum(
            &after,
            &format!("{P}nginx_process_connections_total"),
            &[("state", "accepted")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn metric_flags_shape_the_series() {
    let backend = EchoBackend::start([127, 0, 90, 2]).await;
    let mut docs = service_for("models", "model-b", &[&backend]);
    docs.push(ingress("models", "model-b", "flags.test", "/b", "model-b").build());
    let args = [
        "--enable-metrics=true",
        "--metrics-per-host=false",
        "--report-status-classes",
        "--time-buckets=0.5,0.1",
        "--length-buckets=1000",
        "--size-buckets=5",
    ];
    let s = start(&docs, &args).await;
    for path in [
        "/b/1",
        "/b/2?status=201",
        "/b/3?status=404",
        "/b/4?status=502",
    ] {
        get(s.http(), "flags.test", path).await;
    }
    let samples = scrape_once_counted(s.gateway.metrics_addr(), &[], 4.0).await;
    let requests = format!("{P}requests");
    assert_eq!(sum(&samples, &requests, &[("status", "2xx")]), 2.0);
    assert_eq!(sum(&samples, &requests, &[("status", "4xx")]), 1.0);
    assert_eq!(sum(&samples, &requests, &[("status", "5xx")]), 1.0);
    assert!(
        matching(&samples, &requests, &[])
            .iter()
            .all(|s| s.label("host").is_none()),
        "--metrics-per-host=false drops the host label"
    );
    let les = |name: &str| -> BTreeSet<String> {
        matching(&samples, &format!("{P}{name}_bucket"), &[("status", "2xx")])
            .iter()
            .filter_map(|s| s.label("le").map(str::to_owned))
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(
        les("request_duration_seconds"),
        set(&["0.1", "0.5", "+Inf"])
    );
    assert_eq!(les("request_size"), set(&["1000", "+Inf"]));
    assert_eq!(les("bytes_sent"), set(&["5", "+Inf"]));
}

/// Deterministic pseudo-random numbers (xorshift64*), enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The gateway's resident memory, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kib * 1024
}

/// Every series of the exposition, by metric name.
fn series_by_name(samples: &[Sample]) -> BTreeMap<String, BTreeSet<Vec<(String, String)>>> {
    let mut out: BTreeMap<String, BTreeSet<Vec<(String, String)>>> = BTreeMap::new();
    for s in samples {
        out.entry(s.name.clone())
            .or_default()
            .insert(s.labels.clone().into_iter().collect());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_hosts_paths_and_methods_add_no_series() {
    let backend = EchoBackend::start([127, 0, 91, 1]).await;
    let mut docs = service_for("r", "app", &[&backend]);
    docs.push(ingress("r", "exact", "metrics.test", "/", "app").build());
    docs.push(ingress("r", "wildcard", "*.wild.test", "/", "app").build());
    docs.push(ingress("r", "hostless", "", "/any", "app").build());
    let s = start(&docs, &["--enable-metrics"]).await;
    let metrics = s.gateway.metrics_addr();

    // The series legitimate traffic makes: GET and an unknown method
    // (OTHER) on the one exact host.
    let mut client = Client::connect(s.http()).await;
    assert_eq!(client.get("metrics.test", "/").await.status, 200);
    let other = client
        .request("MADEUP", "metrics.test", "/x", &[], Vec::new())
        .await;
    assert_eq!(other.status, 200);
    drop(client);
    let before = scrape_once_counted(metrics, &[("ingress", "exact")], 2.0).await;
    let rss_before = rss_bytes(s.gateway.pid());

    // 10,000 requests from 8 connections: unknown hosts (404), hosts under
    // the wildcard and host-less rules (200, not recorded: no exact host),
    // random paths and made-up methods on the exact host (recorded, in the
    // two series above).
    const REQUESTS: usize = 10_000;
    const WORKERS: usize = 8;
    let addr = s.http();
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1));
            let mut client = Client::connect(addr).await;
            let mut recorded = 0_u64;
            for _ in 0..REQUESTS / WORKERS {
                if client.is_closed() {
                    client = Client::connect(addr).await;
                }
                let (a, b) = (rng.next(), rng.next());
                let path = format!("/p{:x}/{:x}?q={a:x}", b % 1000, a % 7919);
                let (method, host, path) = match a % 4 {
                    0 => ("GET".to_owned(), format!("h{b:x}.example"), path),
                    1 => ("GET".to_owned(), format!("x{b:x}.wild.test"), path),
                    2 => {
                        recorded += 1;
                        (
                            format!("M{:X}", b % 100_000),
                            "metrics.test".to_owned(),
                            path,
                        )
                    }
                    _ => (
                        "POST".to_owned(),
                        format!("{b:x}.test"),
                        format!("/any{path}"),
                    ),
                };
                let response = client
                    .try_request(&method, &host, &path, &[], Vec::new())
                    .await;
                let response = match response {
                    Ok(response) => response,
                    // The keep-alive limit closed the connection under us.
                    Err(_) if client.is_closed() => {
                        client = Client::connect(addr).await;
                        client.request(&method, &host, &path, &[], Vec::new()).await
                    }
                    Err(error) => panic!("{method} http://{host}{path}: {error}"),
                };
                let want = if a % 4 == 0 { 404 } else { 200 };
                assert_eq!(response.status, want, "{method} http://{host}{path}");
            }
            recorded
        }));
    }
    let mut recorded = 0;
    for task in tasks {
        recorded += task.await.expect("a traffic task panicked");
    }

    let other = [("ingress", "exact"), ("method", "OTHER")];
    let after = eventually(SHOWS, || async {
        let samples = scrape(metrics).await;
        let seen = sum(&samples, &format!("{P}requests"), &other);
        if seen >= (recorded + 1) as f64 {
            Ok(samples)
        } else {
            Err(format!("OTHER requests = {seen}, want {}", recorded + 1))
        }
    })
    .await;
    assert_eq!(
        sum(&after, &format!("{P}requests"), &other),
        (recorded + 1) as f64
    );
    assert_eq!(
        sum(&after, &format!("{P}requests"), &[("ingress", "wildcard")]),
        0.0
    );
    assert_eq!(
        sum(&after, &format!("{P}requests"), &[("ingress", "hostless")]),
        0.0
    );

    let (before, after) = (series_by_name(&before), series_by_name(&after));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no metric appeared or went"
    );
    for (name, series) in &after {
        if name.starts_with(P) {
            assert_eq!(&before[name], series, "{name}: the series changed");
        }
    }
    let rss_after = rss_bytes(s.gateway.pid());
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 20 << 20,
        "resident memory grew by {} KiB ({rss_before} -> {rss_after})",
        growth >> 10
    );
}

#[tokio::test]
async fn without_enable_metrics_only_controller_and_process_metrics() {
    let backend = EchoBackend::start([127, 0, 92, 1]).await;
    let mut docs = service_for("d", "app", &[&backend]);
    docs.push(ingress("d", "app", "off.test", "/", "app").build());
    let s = start(&docs, &[]).await;
    for _ in 0..5 {
        assert_eq!(get(s.http(), "off.test", "/").await.status, 200);
    }
    let samples = eventually(SHOWS, || async {
        let samples = scrape(s.gateway.metrics_addr()).await;
        let seen = sum(&samples, &format!("{P}nginx_process_requests_total"), &[]);
        if seen >= 5.0 {
            Ok(samples)
        } else {
            Err(format!("nginx_process_requests_total = {seen}"))
        }
    })
    .await;
    let request_metrics: Vec<String> = std::iter::once("requests")
        .chain(HISTOGRAMS.iter().map(|(name, _)| *name))
        .chain(std::iter::once("ingress_upstream_latency_seconds"))
        .map(|name| format!("{P}{name}"))
        .collect();
    let leaked: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            request_metrics
                .iter()
                .any(|m| s.name.starts_with(m.as_str()))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "request series without --enable-metrics: {leaked:?}"
    );
    let constant = [
        ("controller_class", "k8s.io/ingress-nginx"),
        ("controller_namespace", CONTROLLER_NAMESPACE),
        ("controller_pod", CONTROLLER_POD),
    ];
    for (name, labels) in [
        ("nginx_ingress_controller_config_hash", &[][..]),
        (
            "nginx_ingress_controller_config_last_reload_successful",
            &[][..],
        ),
        ("nginx_ingress_controller_success", &[][..]),
        (
            "nginx_ingress_controller_nginx_process_connections",
            &[("state", "active")][..],
        ),
        (
            "nginx_ingress_controller_nginx_process_cpu_seconds_total",
            &[][..],
        ),
        (
            "nginx_ingress_controller_nginx_process_resident_memory_bytes",
            &[][..],
        ),
        ("process_cpu_seconds_total", &[][..]),
        ("process_resident_memory_bytes", &[][..]),
    ] {
        let found = matching(&samples, name, labels);
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        if name.starts_with(P) {
            assert!(
                found[0].has_labels(&constant),
                "{name}: {:?}",
                found[0].labels
            );
        }
    }
    assert!(sum(&samples, "nginx_ingress_controller_config_hash", &[]) > 0.0);
    assert_eq!(
        sum(
            &samples,
            "nginx_ingress_controller_config_last_reload_successful",
            &[]
        ),
        1.0
    );
    assert!(sum(&samples, "nginx_ingress_controller_success", &[]) >= 1.0);
    assert!(sum(&samples, "process_resident_memory_bytes", &[]) > 0.0);
}

#[tokio::test]
async fn orphan_ingresses_appear_and_go_with_the_manifests() {
    let backend = EchoBackend::start([127, 0, 93, 1]).await;
    let port = backend.addr().port();
    let idle = |ready: bool| {
        vec![
            service("o", "idle", 80, port),
            endpoint_slice("o", "idle", port, &[(backend.addr().ip(), Some(ready))]),
        ]
    };
    let ingresses = [
        ingress("o", "no-svc", "orphans.test", "/missing", "missing").build(),
        ingress("o", "no-ep", "orphans.test", "/idle", "idle").build(),
        ingress("o", "fine", "orphans.test", "/fine", "fine").build(),
    ];
    let mut docs: Vec<String> = ingresses.to_vec();
    docs.extend(idle(false));
    docs.extend(service_for("o", "fine", &[&backend]));
    let s = start(&docs, &[]).await;
    let metrics = s.gateway.metrics_addr();
    let orphan = format!("{P}orphan_ingress");

    let samples = scrape(metrics).await;
    let orphans: BTreeSet<(String, String)> = matching(&samples, &orphan, &[("namespace", "o")])
        .iter()
        .map(|s| {
            assert_eq!(s.value, 1.0);
            (
                s.label("ingress").unwrap_or_default().to_owned(),
                s.label("type").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [("no-ep", "no-endpoint"), ("no-svc", "no-service")]
        .iter()
        .map(|(i, t)| ((*i).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(orphans, want);
    assert_eq!(get(s.http(), "orphans.test", "/missing").await.status, 503);
    assert_eq!(get(s.http(), "orphans.test", "/idle").await.status, 503);

    // Fixed: the missing Service exists, the idle one's endpoint is ready.
    let mut fixed: Vec<String> = ingresses.to_vec();
    fixed.extend(idle(true));
    fixed.extend(service_for("o", "fine", &[&backend]));
    fixed.extend(service_for("o", "missing", &[&backend]));
    s.dir.write("objects.yaml", &join_docs(&fixed));
    eventually(SHOWS, || async {
        let samples = scrape(metrics).await;
        let left = matching(&samples, &orphan, &[]);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("orphans left: {left:?}"))
        }
    })
    .await;
    assert_eq!(get(s.http(), "orphans.test", "/missing").await.status, 200);
    assert_eq!(get(s.http(), "orphans.test", "/idle").await.status, 200);
}

/// The lines the access log wrote so far (stdout without the listening lines).
pub(crate) fn access_lines(gateway: &Gateway) -> Vec<String> {
    gateway
        .stdout()
        .lines()
        .filter(|l| !l.starts_with("listening "))
        .map(str::to_owned)
        .collect()
}

/// Waits until the access log has at least `count` lines and returns them.
async fn wait_access_lines(gateway: &Gateway, count: usize) -> Vec<String> {
    eventually(SHOWS, || async {
        let lines = access_lines(gateway);
        if lines.len() >= count {
            Ok(lines)
        } else {
            Err(format!(
                "{} access log lines, want {count}: {lines:?}",
                lines.len()
            ))
        }
    })
    .await
}

/// Whether the gateway runs a thread named `access-log`.
fn has_access_log_thread(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|error| panic!("list /proc/{pid}/task: {error}"))
        .filter_map(Result::ok)
        .any(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim() == "access-log")
        })
}

#[tokio::test]
async fn json_access_log_has_one_line_per_request_with_upstream_fields() {
    let backend = EchoBackend::start([127, 0, 94, 1]).await;
    let mut docs = service_for("logs", "model-j", &[&backend]);
    docs.push(ingress("logs", "model-j", "log.test", "/j", "model-j").build());
    let s = start(&docs, &["--access-log", "json"]).await;
    assert!(has_access_log_thread(s.gateway.pid()));
    // Not logged: the default server (enable-access-log-for-default-backend
    // is off by default).
    assert_eq!(get(s.http(), "unknown.test", "/j").await.status, 404);
    let given = request(
        s.http(),
        "POST",
        "log.test",
        "/j/1?x=1",
        &[("x-request-id", "given-id-1")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(given.status, 200);
    let generated = get(s.http(), "log.test", "/j/2?status=503").await;
    assert_eq!(generated.status, 503);

    let lines = wait_access_lines(&s.gateway, 2).await;
    assert_eq!(lines.len(), 2, "one line per logged request: {lines:?}");
    let seen = backend.requests();
    for (line, (method, path, status, upstream)) in lines.iter().zip([
        ("POST", "/j/1", "200", &seen[0]),
        ("GET", "/j/2", "503", &seen[1]),
    ]) {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        let field = |name: &str| {
            entry[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name}: {line}"))
                .to_owned()
        };
        assert_eq!(field("method"), method);
        assert_eq!(field("path"), path);
        assert_eq!(field("status"), status);
        assert_eq!(field("upstream_status"), status);
        assert_eq!(field("upstream_addr"), backend.addr().to_string());
        assert_eq!(field("namespace"), "logs");
        assert_eq!(field("ingress"), "model-j");
        assert_eq!(field("service"), "model-j");
        assert_eq!(field("host"), "log.test");
        assert_eq!(field("remote_addr"), "127.0.0.1");
        let request_id = upstream
            .header("x-request-id")
            .expect("X-Request-ID upstream");
        assert_eq!(field("request_id"), request_id);
        assert!(!field("request_time").is_empty() && field("request_time") != "-");
    }
    assert_eq!(
        seen[0].header("x-request-id").as_deref(),
        Some("given-id-1")
    );
    assert!(
        lines[0].contains("\"request\":\"/j/1?x=1\""),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn text_access_log_follows_upstreaminfo() {
    let backend = EchoBackend::start([127, 0, 94, 2]).await;
    let mut docs = service_for("logs", "model-t", &[&backend]);
    docs.push(ingress("logs", "model-t", "text.test", "/t", "model-t").build());
    let s = start(&docs, &["--access-log", "text"]).await;
    let response = request(
        s.http(),
        "GET",
        "text.test",
        "/t/1?q=2",
        &[
            ("user-agent", "agent \"quoted\""),
            ("referer", "http://r.test/"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(response.status, 200);
    let lines = wait_access_lines(&s.gateway, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    let request_id = backend.requests()[0]
        .header("x-request-id")
        .expect("X-Request-ID");

    // $remote_addr - $remote_user [$time_local] "$request" $status
    // $body_bytes_sent "$http_referer" "$http_user_agent" $request_length
    // $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name]
    // $upstream_addr $upstream_response_length $upstream_response_time
    // $upstream_status $req_id
    let (head, rest) = line.split_once(" [").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(head, "127.0.0.1 - -");
    let (time, rest) = rest.split_once("] \"").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(time.len(), "24/Nov/2025:16:00:00 +0000".len(), "{time}");
    let (request_line, rest) = rest.split_once("\" ").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(request_line, "GET /t/1?q=2 HTTP/1.1");
    let quoted: Vec<&str> = rest.split('"').collect();
    // status bytes "referer" "agent" rest
    assert_eq!(quoted.len(), 5, "{line}");
    let status_bytes: Vec<&str> = quoted[0].split_whitespace().collect();
    assert_eq!(status_bytes[0], "200");
    assert_eq!(status_bytes[1], response.body.len().to_string());
    assert_eq!(quoted[1], "http://r.test/");
    assert_eq!(
        quoted[3], "agent \\x22quoted\\x22",
        "quotes are escaped as nginx does"
    );
    let tail: Vec<&str> = quoted[4].split_whitespace().collect();
    assert_eq!(tail.len(), 9, "{line}");
    assert!(tail[0].parse::<u64>().is_ok(), "request_length {line}");
    assert!(tail[1].parse::<f64>().is_ok(), "request_time {line}");
    assert_eq!(tail[2], "[logs-model-t-80]");
    assert_eq!(tail[3], "[]");
    assert_eq!(tail[4], backend.addr().to_string());
    assert!(
        tail[6].parse::<f64>().is_ok(),
        "upstream_response_time {line}"
    );
    assert_eq!(tail[7], "200");
    assert_eq!(tail[8], request_id);
}

#[tokio::test]
async fn access_log_off_and_per_ingress_annotation() {
    let backend = EchoBackend::start([127, 0, 94, 3]).await;
    let mut docs = service_for("logs", "app", &[&backend]);
    docs.push(ingress("logs", "loud", "annotated.test", "/loud", "app").build());
    docs.push(
        ingress("logs", "quiet", "annotated.test", "/quiet", "app")
            .annotation("nginx.ingress.kubernetes.io/enable-access-log", "false")
            .build(),
    );

    // --access-log off: no writer at all, and nothing written.
    let off = start(&docs, &["--access-log", "off", "--enable-metrics"]).await;
    assert!(!has_access_log_thread(off.gateway.pid()));
    for path in ["/loud/1", "/quiet/1"] {
        assert_eq!(get(off.http(), "annotated.test", path).await.status, 200);
    }
    // Once the requests are counted they were finished (and would have
    // been handed to a writer); give one a moment anyway.
    scrape_once_counted(off.gateway.metrics_addr(), &[], 2.0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < deadline {
        assert!(
            access_lines(&off.gateway).is_empty(),
            "{:?}",
            access_lines(&off.gateway)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(off);

    // The annotation silences its Ingress only. The quiet requests are
    // counted (so finished) before the loud one is sent: had they been
    // logged, their lines would come first.
    let s = start(&docs, &["--enable-metrics"]).await;
    for i in 0..3 {
        let path = format!("/quiet/{i}");
        assert_eq!(get(s.http(), "annotated.test", &path).await.status, 200);
    }
    scrape_once_counted(s.gateway.metrics_addr(), &[("ingress", "quiet")], 3.0).await;
    assert_eq!(get(s.http(), "annotated.test", "/loud/1").await.status, 200);
    let lines = wait_access_lines(&s.gateway, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" [logs-app-80] "), "{}", lines[0]);
    assert!(
        lines[0].contains("\"GET /loud/1 HTTP/1.1\""),
        "{}",
        lines[0]
    );
}

/// `promtool`, or a failure saying how to get it.
fn promtool() -> String {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file());
    match found {
        Some(path) => path.display().to_string(),
        None => panic!(
            "promtool is missing: install the Debian package `prometheus` \
             (apt-get install -y prometheus); .ci/run installs it"
        ),
    }
}

/// Lint findings `promtool check metrics` reports that are ingress-nginx's
/// own metric names (the compatibility contract): counters without `_total`.
const CONTRACT_LINT: [&str; 3] = [
    "nginx_ingress_controller_errors counter metrics should have \"_total\" suffix",
    "nginx_ingress_controller_requests counter metrics should have \"_total\" suffix",
    "nginx_ingress_controller_success counter metrics should have \"_total\" suffix",
];

#[tokio::test]
async fn promtool_check_metrics_passes() {
    let promtool = promtool();
    let backend = EchoBackend::start([127, 0, 95, 1]).await;
    let ca = TestCa::new();
    let mut docs = service_for("models", "model-p", &[&backend]);
    docs.push(ingress("models", "model-p", "promtool.test", "/p", "model-p").build());
    docs.push(ingress("models", "orphan", "promtool.test", "/orphan", "missing").build());
    docs.push(tls_secret(
        "models",
        "p-tls",
        &ca.issue(&["secure.promtool.test"], 30),
    ));
    docs.push(
        ingress("models", "secure", "secure.promtool.test", "/", "model-p")
            .tls(&["secure.promtool.test"], "p-tls")
            .build(),
    );
    let s = start(&docs, &["--enable-metrics"]).await;
    for path in ["/p/1", "/p/2?status=500", "/orphan"] {
        get(s.http(), "promtool.test", path).await;
    }
    request(s.http(), "DELETE", "promtool.test", "/p/3", &[], Vec::new()).await;
    scrape_once_counted(s.gateway.metrics_addr(), &[], 4.0).await;
    let text = scrape_text(s.gateway.metrics_addr()).await;
    for family in [
        "requests",
        "request_duration_seconds",
        "ingress_upstream_latency_seconds",
        "orphan_ingress",
        "ssl_expire_time_seconds",
        "ssl_certificate_info",
        "config_hash",
        "nginx_process_connections",
    ] {
        assert!(
            text.contains(&format!("# TYPE {P}{family} ")),
            "{family} missing"
        );
    }

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {promtool}: {error}"));
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0: clean; 3: lint findings only (1 would be a parse error).
    let findings: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    let unexpected: Vec<&&str> = findings
        .iter()
        .filter(|l| !CONTRACT_LINT.contains(&l.trim()))
        .collect();
    assert!(
        matches!(out.status.code(), Some(0 | 3)) && unexpected.is_empty(),
        "promtool check metrics: {}\n{report}\n--- metrics ---\n{text}",
        out.status
    );
}

#[tokio::test]
async fn a_client_leaving_mid_request_is_counted_499_and_not_left_in_flight() {
    use tokio::io::AsyncWriteExt;

    let backend = EchoBackend::start([127, 0, 96, 1]).await;
    let mut docs = service_for("c", "slow", &[&backend]);
    docs.push(ingress("c", "slow", "slow.test", "/", "slow").build());
    for args in [&["--enable-metrics"][..], &["--access-log", "off"][..]] {
        let s = start(&docs, args).await;
        let metrics = s.gateway.metrics_addr();
        backend.reset();
        let mut stream = tokio::net::TcpStream::connect(s.http())
            .await
            .expect("connect");
        stream
            .write_all(b"GET /?delay_ms=1500 HTTP/1.1\r\nHost: slow.test\r\n\r\n")
            .await
            .expect("send a request");
        eventually(SHOWS, || async {
            if backend.hits() == 1 {
                Ok(())
            } else {
                Err("the request has not reached the backend".to_owned())
            }
        })
        .await;
        let writing = [("state", "writing")];
        let during = sum(
            &scrape(metrics).await,
            &format!("{P}nginx_process_connections"),
            &writing,
        );
        assert_eq!(during, 1.0, "{args:?}: the request is in flight");
        drop(stream);
        eventually(SHOWS, || async {
            let samples = scrape(metrics).await;
            let active = sum(
                &samples,
                &format!("{P}nginx_process_connections"),
                &[("state", "active")],
            );
            let writing = sum(&samples, &format!("{P}nginx_process_connections"), &writing);
            if active == 0.0 && writing == 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "{args:?}: active {active}, writing {writing} after the client left"
                ))
            }
        })
        .await;
        // Counted as nginx counts it: 499 on its Ingress.
        if args.contains(&"--enable-metrics") {
            scrape_once_counted(metrics, &[("ingress", "slow"), ("status", "499")], 1.0).await;
        }
    }
}
