//! A real Prometheus (Debian's `prometheus` binary, on loopback) scrapes
//! the gateway every second while traffic flows; then every query of
//! ingress-nginx's two Grafana dashboards (`nginx.json` and
//! `request-handling-performance.json`, the compatibility contract) and of
//! our own `dashboards/edge-gateway.json` goes through Prometheus's HTTP
//! API: each must parse, and return data where traffic exists.
//!
//! The scrape job labels the target as Kubernetes service discovery would
//! (`namespace`, `pod`, `kubernetes_pod_name`), so the request metrics'
//! own `namespace` label becomes `exported_namespace`, as the dashboards
//! expect.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use testkit::{
    Client, EchoBackend, Gateway, IngressBuilder, ManifestDir, TestCa, eventually, ingress_class,
    join_docs, tls_secret, try_request,
};

use crate::{BIN, service_for};

const CONTROLLER_NAMESPACE: &str = "ingress-nginx";
const CONTROLLER_POD: &str = "edge-gateway-prom-0";
const CONTROLLER_CLASS: &str = "k8s.io/ingress-nginx";
/// How long Prometheus gets to start, and the scrapes to show what we need.
const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(30);

/// The queries of ingress-nginx's `deploy/grafana/dashboards/nginx.json`
/// (panel title, expression), as published.
const NGINX_DASHBOARD: &[(&str, &str)] = &[
    (
        "Config Reloads (annotation)",
        r#"sum(changes(nginx_ingress_controller_config_last_reload_successful_timestamp_seconds{instance!="unknown",controller_class=~"$controller_class",namespace=~"$namespace"}[30s])) by (controller_class)"#,
    ),
    (
        "Controller Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m])), 0.001)"#,
    ),
    (
        "Controller Connections",
        r#"sum(avg_over_time(nginx_ingress_controller_nginx_process_connections{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",state="active"}[2m]))"#,
    ),
    (
        "Controller Success Rate (non-4|5xx responses)",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",status!~"[4-5].*"}[2m])) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Config Reloads",
        r#"avg(irate(nginx_ingress_controller_success{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[1m])) * 60"#,
    ),
    (
        "Last Config Failed",
        r#"count(nginx_ingress_controller_config_last_reload_successful{controller_pod=~"$controller",controller_namespace=~"$namespace"} == 0)"#,
    ),
    (
        "Ingress Request Volume",
        r#"round(sum(irate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (ingress), 0.001)"#,
    ),
    (
        "Ingress Success Rate (non-4|5xx responses)",
        r#"sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",ingress=~"$ingress",status!~"[4-5].*"}[2m])) by (ingress) / sum(rate(nginx_ingress_controller_requests{controller_pod=~"$controller",controller_class=~"$controller_class",namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (ingress)"#,
    ),
    (
        "Network I/O pressure (received)",
        r#"sum (irate (nginx_ingress_controller_request_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Network I/O pressure (sent)",
        r#"- sum (irate (nginx_ingress_controller_response_size_sum{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m]))"#,
    ),
    (
        "Average Memory Usage",
        r#"avg(nginx_ingress_controller_nginx_process_resident_memory_bytes{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}) "#,
    ),
    (
        "Average CPU Usage",
        r#"avg (rate (nginx_ingress_controller_nginx_process_cpu_seconds_total{controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace"}[2m])) "#,
    ),
    (
        "Ingress Percentile Response Times (P50)",
        r#"histogram_quantile(0.50, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times (P90)",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Percentile Response Times (P99)",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (le, ingress))"#,
    ),
    (
        "Ingress Transfer Rates (IN)",
        r#"sum(irate(nginx_ingress_controller_request_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Transfer Rates (OUT)",
        r#"sum(irate(nginx_ingress_controller_response_size_sum{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress"}[2m])) by (ingress)"#,
    ),
    (
        "Ingress Percentile Response Times, Exported Namespaces (P80)",
        r#"histogram_quantile(0.80, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Percentile Response Times, Exported Namespaces (P90)",
        r#"histogram_quantile(0.90, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Percentile Response Times, Exported Namespaces (P99)",
        r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le))"#,
    ),
    (
        "Ingress Request Latency Heatmap (Exported Namespaces)",
        r#"sum(increase(nginx_ingress_controller_request_duration_seconds_bucket{ingress!="",controller_pod=~"$controller",controller_class=~"$controller_class",controller_namespace=~"$namespace",ingress=~"$ingress",exported_namespace=~"$exported_namespace"}[2m])) by (le)"#,
    ),
    (
        "Ingress Certificate Expiry",
        r#"avg(nginx_ingress_controller_ssl_expire_time_seconds{kubernetes_pod_name=~"$controller",namespace=~"$namespace",ingress=~"$ingress"}) by (host) - time()"#,
    ),
];

/// The template variables of `nginx.json`: (variable, Grafana query).
const NGINX_VARIABLES: &[(&str, &str)] = &[
    (
        "namespace",
        r#"label_values(nginx_ingress_controller_config_hash, controller_namespace)"#,
    ),
    (
        "controller_class",
        r#"label_values(nginx_ingress_controller_config_hash{namespace=~"$namespace"}, controller_class) "#,
    ),
    (
        "controller",
        r#"label_values(nginx_ingress_controller_config_hash{namespace=~"$namespace",controller_class=~"$controller_class"}, controller_pod) "#,
    ),
    (
        "ingress",
        r#"label_values(nginx_ingress_controller_requests{namespace=~"$namespace",controller_class=~"$controller_class",controller_pod=~"$controller"}, ingress) "#,
    ),
    (
        "exported_namespace",
        r#"label_values(nginx_ingress_controller_requests{namespace=~"$namespace",controller_class=~"$controller_class",controller_pod=~"$controller", ingress=~"$ingress"}, exported_namespace) "#,
    ),
];

/// The queries of ingress-nginx's
/// `deploy/grafana/dashboards/request-handling-performance.json`.
const REQUEST_HANDLING_DASHBOARD: &[(&str, &str)] = &[
    (
        "Total request handling time (.5)",
        "histogram_quantile(\n  0.5,\n  sum by (le)(\n    rate(\n      nginx_ingress_controller_request_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Total request handling time (.95)",
        "histogram_quantile(\n  0.95,\n  sum by (le)(\n    rate(\n    nginx_ingress_controller_request_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Total request handling time (.99)",
        "histogram_quantile(\n  0.99,\n  sum by (le)(\n    rate(\n      nginx_ingress_controller_request_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Upstream response time (.5)",
        "histogram_quantile(\n  0.5,\n  sum by (le)(\n    rate(\n      nginx_ingress_controller_response_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Upstream response time (.95)",
        "histogram_quantile(\n  0.95,\n  sum by (le)(\n    rate(\n    nginx_ingress_controller_response_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Upstream response time (.99)",
        "histogram_quantile(\n  0.99,\n  sum by (le)(\n    rate(\n      nginx_ingress_controller_response_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Request volume by Path",
        "  sum by (path)(\n    rate(\n      nginx_ingress_controller_request_duration_seconds_count{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n",
    ),
    (
        "Median upstream response time by Path",
        "histogram_quantile(\n  .5,\n  sum by (le, path)(\n    rate(\n      nginx_ingress_controller_response_duration_seconds_bucket{\n        ingress =~ \"$ingress\"\n      }[1m]\n    )\n  )\n)",
    ),
    (
        "Response error rate by Path",
        "sum by (path) (rate(nginx_ingress_controller_request_duration_seconds_count{\n  ingress =~ \"$ingress\",\n  status =~ \"[4-5].*\"\n}[1m])) / sum by (path) (rate(nginx_ingress_controller_request_duration_seconds_count{\n  ingress =~ \"$ingress\",\n}[1m]))",
    ),
    (
        "Upstream time consumed by Path",
        "sum by (path) (rate(nginx_ingress_controller_response_duration_seconds_sum{ingress =~ \"$ingress\"}[1m]))",
    ),
    (
        "Response error volume by Path",
        "  sum (\n    rate(\n      nginx_ingress_controller_request_duration_seconds_count{\n        ingress =~ \"$ingress\",\n        status =~\"[4-5].*\",\n      }[1m]\n    )\n  ) by(path, status)\n",
    ),
    (
        "Average response size by Path",
        "sum (\n  rate (\n      nginx_ingress_controller_response_size_sum {\n        ingress =~ \"$ingress\",\n      }[1m]\n  )\n)  by (path) / sum (\n  rate(\n      nginx_ingress_controller_response_size_count {\n        ingress =~ \"$ingress\",\n      }[1m]\n  )\n) by (path)\n",
    ),
    (
        "Average response size by Path (buckets, hidden)",
        "    sum (rate(nginx_ingress_controller_response_size_bucket{\n        ingress =~ \"$ingress\",\n    }[1m])) by (le)\n",
    ),
    (
        "Upstream service latency",
        "sum (\n  rate(\n      nginx_ingress_controller_ingress_upstream_latency_seconds_sum {\n        ingress =~ \"$ingress\",\n      }[1m]\n)) / sum (\n  rate(\n      nginx_ingress_controller_ingress_upstream_latency_seconds_count {\n        ingress =~ \"$ingress\",\n      }[1m]\n  )\n)\n",
    ),
];

/// The template variable of `request-handling-performance.json`.
const REQUEST_HANDLING_VARIABLES: &[(&str, &str)] = &[(
    "ingress",
    r#"label_values(nginx_ingress_controller_requests, ingress) "#,
)];

/// A Prometheus server started for the test; killed (by PID) when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` on a free loopback port, scraping
    /// `target` every second, labelled as Kubernetes would label the pod.
    fn start(target: SocketAddr) -> Prometheus {
        let binary = prometheus_binary();
        let dir = tempfile::Builder::new()
            .prefix("edge-gateway-prometheus-")
            .tempdir()
            .expect("a temporary folder for Prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: ingress-nginx\n    static_configs:\n      \
                 - targets: ['{target}']\n        labels:\n          \
                 namespace: {CONTROLLER_NAMESPACE}\n          pod: {CONTROLLER_POD}\n          \
                 kubernetes_pod_name: {CONTROLLER_POD}\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// GET `path` on the HTTP API, parsed; `Err` for transport errors and
    /// for answers whose `status` is not `success`.
    async fn api(&self, path: &str) -> Result<Value, String> {
        let host = self.addr.to_string();
        let response = try_request(self.addr, "GET", &host, path, &[], Vec::new()).await?;
        let body: Value = serde_json::from_slice(&response.body)
            .map_err(|error| format!("{path}: not JSON ({error}): {}", response.text()))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "{}: {}",
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or_default()
            ))
        }
    }

    /// An instant query: the result vector (a scalar counts as one element).
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", encode(expr)))
            .await?;
        Ok(match &data["result"] {
            Value::Array(result) => result.clone(),
            Value::Null => Vec::new(),
            scalar => vec![scalar.clone()],
        })
    }

    /// Grafana's `label_values(selector, label)`, through the series API.
    async fn label_values(&self, query: &str) -> Result<BTreeSet<String>, String> {
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .ok_or_else(|| format!("not a label_values query: {query}"))?;
        let (selector, label) = inner
            .rsplit_once(',')
            .ok_or_else(|| format!("no label in {query}"))?;
        let data = self
            .api(&format!(
                "/api/v1/series?match[]={}",
                encode(selector.trim())
            ))
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|series| series[label.trim()].as_str().map(str::to_owned))
            .collect())
    }

    /// The value of the first element of `expr`'s result, if any.
    async fn value(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr).await.ok()?;
        number(result.first()?)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("--- prometheus log ---\n{}", self.log());
            }
        }
    }
}

/// `/usr/bin/prometheus` (or one on `PATH`), or a failure saying how to
/// get it.
fn prometheus_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("prometheus"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "prometheus is missing: install the Debian package `prometheus` \
                 (apt-get install -y prometheus; do not start its service); .ci/run installs it"
            )
        })
}

/// Percent-encoding for a query-string value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The number of a vector element (`{"metric":..,"value":[t,"v"]}`) or a
/// scalar (`[t,"v"]`).
fn number(element: &Value) -> Option<f64> {
    let pair = element.get("value").unwrap_or(element);
    pair.get(1)?.as_str()?.parse().ok()
}

/// The dashboard variables as Grafana sets them for "All", or for one
/// selected value of each.
fn substitute(expr: &str, selected: bool) -> String {
    let values: [(&str, &str); 7] = if selected {
        [
            ("$exported_namespace", "models-1"),
            ("$controller_class", CONTROLLER_CLASS),
            ("$controller", CONTROLLER_POD),
            ("$namespace", CONTROLLER_NAMESPACE),
            ("$ingress", "model-1"),
            ("$__rate_interval", "1m"),
            ("$__interval", "1m"),
        ]
    } else {
        [
            ("$exported_namespace", ".*"),
            ("$controller_class", ".*"),
            ("$controller", ".*"),
            ("$namespace", ".*"),
            ("$ingress", ".*"),
            ("$__rate_interval", "1m"),
            ("$__interval", "1m"),
        ]
    };
    // Longest names first: `$controller_class` before `$controller`.
    let mut expr = expr.to_owned();
    for (name, value) in values {
        expr = expr.replace(name, value);
    }
    assert!(!expr.contains('$'), "a variable is left in {expr}");
    expr
}

/// (panel title or variable name, query) pairs.
type Queries = Vec<(String, String)>;

/// Every `expr` of a Grafana dashboard (panels, rows, annotations), with
/// the panel title, and every query variable.
fn dashboard_queries(path: &Path) -> (Queries, Queries) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let dashboard: Value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
    fn walk(value: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(Value::String(expr)) = map.get("expr") {
                    let name = map.get("name").and_then(Value::as_str).unwrap_or(title);
                    out.push((name.to_owned(), expr.clone()));
                }
                for (key, child) in map {
                    if key != "templating" {
                        walk(child, title, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, title, out)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard, "", &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = match &v["query"] {
                Value::String(q) => q.clone(),
                other => other["query"].as_str().unwrap_or_default().to_owned(),
            };
            (v["name"].as_str().unwrap_or_default().to_owned(), query)
        })
        .collect();
    (exprs, variables)
}

/// Runs every query with both substitutions; `expect_empty` names the
/// (title, selected) cases that must parse but are empty by design.
/// Returns the failures.
async fn check_queries(
    prometheus: &Prometheus,
    source: &str,
    queries: &[(String, String)],
    expect_empty: &[(&str, bool)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (title, expr) in queries {
        for selected in [false, true] {
            let expr = substitute(expr, selected);
            let pass = if selected { "selected" } else { "All" };
            match prometheus.query(&expr).await {
                Err(error) => {
                    failures.push(format!("{source} / {title} ({pass}): {error}\n  {expr}"));
                }
                Ok(result) => {
                    let empty_by_design = expect_empty.contains(&(title.as_str(), selected));
                    if result.is_empty() != empty_by_design {
                        failures.push(format!(
                            "{source} / {title} ({pass}): {} result\n  {expr}",
                            if result.is_empty() {
                                "empty"
                            } else {
                                "unexpected"
                            }
                        ));
                    }
                }
            }
        }
    }
    failures
}

/// Checks `label_values` variables: each must list the values we serve.
async fn check_variables(
    prometheus: &Prometheus,
    source: &str,
    variables: &[(String, String)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, query) in variables {
        for selected in [false, true] {
            let want: &[&str] = match name.as_str() {
                "namespace" => &[CONTROLLER_NAMESPACE],
                "controller_class" => &[CONTROLLER_CLASS],
                "controller" => &[CONTROLLER_POD],
                "ingress" => &["model-1", "model-2"],
                // Only model-1's namespace once $ingress is model-1.
                "exported_namespace" if selected => &["models-1"],
                "exported_namespace" => &["models-1", "models-2"],
                other => {
                    failures.push(format!("{source}: unknown variable {other}"));
                    break;
                }
            };
            let query = substitute(query, selected);
            match prometheus.label_values(&query).await {
                Err(error) => failures.push(format!("{source} / ${name}: {error}\n  {query}")),
                Ok(values) => {
                    if !want.iter().all(|w| values.contains(*w)) {
                        failures.push(format!(
                            "{source} / ${name}: {values:?} lacks {want:?}\n  {query}"
                        ));
                    }
                }
            }
        }
    }
    failures
}

fn owned(pairs: &[(&str, &str)]) -> Queries {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_dashboards_work_against_a_real_prometheus() {
    let one = EchoBackend::start([127, 0, 100, 1]).await;
    let two = EchoBackend::start([127, 0, 100, 2]).await;
    let ca = TestCa::new();
    let mut docs = service_for("models-1", "model-1", &[&one]);
    docs.extend(service_for("models-2", "model-2", &[&two]));
    let model = |ns: &str, name: &str, path: &str| {
        IngressBuilder::new(ns, name)
            .class("nginx")
            .host("models.test")
            .path(path, "Prefix", name, 80)
            .build()
    };
    docs.push(model("models-1", "model-1", "/api/v1/predict/1"));
    docs.push(model("models-2", "model-2", "/api/v1/predict/2"));
    docs.push(model("models-2", "model-9", "/api/v1/predict/9")); // no Service: an orphan
    docs.push(tls_secret(
        "models-1",
        "secure-tls",
        &ca.issue(&["secure.test"], 30),
    ));
    docs.push(
        IngressBuilder::new("models-1", "secure")
            .class("nginx")
            .tls(&["secure.test"], "secure-tls")
            .host("secure.test")
            .path("/", "Prefix", "model-1", 80)
            .build(),
    );
    let dir = ManifestDir::new();
    dir.write("class.yaml", &ingress_class());
    dir.write("objects.yaml", &join_docs(&docs));
    let env = [
        ("POD_NAMESPACE", CONTROLLER_NAMESPACE),
        ("POD_NAME", CONTROLLER_POD),
    ];
    let gateway = Gateway::start_with_env(BIN, dir.path(), &["--enable-metrics"], &env).await;
    gateway.wait_ready().await;
    let prometheus = Prometheus::start(gateway.metrics_addr());

    // Traffic until the end: model-1 with some 503s and slower answers,
    // model-2 all 200.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, addr) = (stop.clone(), gateway.http_addr());
        tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            let mut sent = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                if client.is_closed() {
                    client = Client::connect(addr).await;
                }
                let path = match sent % 10 {
                    0 => "/api/v1/predict/1/x?status=503".to_owned(),
                    1 => "/api/v1/predict/1/slow?delay_ms=30".to_owned(),
                    n if n % 2 == 0 => format!("/api/v1/predict/1/{sent}"),
                    _ => format!("/api/v1/predict/2/{sent}"),
                };
                let _ = client
                    .try_request("GET", "models.test", &path, &[], Vec::new())
                    .await;
                sent += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };

    // Prometheus up, scraping, with several samples of the request series.
    eventually(PROMETHEUS_DEADLINE, || async {
        let up = prometheus.value(r#"up{job="ingress-nginx"}"#).await;
        let samples = prometheus
            .value(r#"count_over_time(nginx_ingress_controller_requests{ingress="model-2",status="200"}[1m])"#)
            .await;
        match (up, samples) {
            (Some(up), Some(samples)) if up == 1.0 && samples >= 4.0 => Ok(()),
            _ => Err(format!("up = {up:?}, samples = {samples:?}\n{}", prometheus.log())),
        }
    })
    .await;
    // A configuration change, so that the reload panels have one to show.
    let applied = prometheus
        .value("max(nginx_ingress_controller_success)")
        .await
        .unwrap_or_default();
    docs.push(model("models-2", "model-2b", "/api/v1/predict/2b"));
    dir.write("objects.yaml", &join_docs(&docs));
    eventually(PROMETHEUS_DEADLINE, || async {
        let now = prometheus
            .value("max(nginx_ingress_controller_success)")
            .await
            .unwrap_or_default();
        if now > applied {
            Ok(())
        } else {
            Err(format!("success still {now}"))
        }
    })
    .await;

    let mut failures = Vec::new();
    failures.extend(
        check_queries(
            &prometheus,
            "nginx.json",
            &owned(NGINX_DASHBOARD),
            &[
                // count(... == 0) is empty while no configuration failed.
                ("Last Config Failed", false),
                ("Last Config Failed", true),
                // The certificate metric has no `ingress` label, in
                // ingress-nginx too: the panel only works with "All".
                ("Ingress Certificate Expiry", true),
            ],
        )
        .await,
    );
    failures.extend(check_variables(&prometheus, "nginx.json", &owned(NGINX_VARIABLES)).await);
    failures.extend(
        check_queries(
            &prometheus,
            "request-handling-performance.json",
            &owned(REQUEST_HANDLING_DASHBOARD),
            &[],
        )
        .await,
    );
    failures.extend(
        check_variables(
            &prometheus,
            "request-handling-performance.json",
            &owned(REQUEST_HANDLING_VARIABLES),
        )
        .await,
    );
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/edge-gateway.json");
    let (exprs, variables) = dashboard_queries(&ours);
    assert!(
        exprs.len() >= 30,
        "{} queries in {}",
        exprs.len(),
        ours.display()
    );
    failures.extend(check_queries(&prometheus, "edge-gateway.json", &exprs, &[]).await);
    failures.extend(check_variables(&prometheus, "edge-gateway.json", &variables).await);

    // The figures, not just their presence.
    let by_ingress = |expr: &'static str| {
        let prometheus = &prometheus;
        async move {
            let mut out = std::collections::BTreeMap::new();
            for element in prometheus.query(expr).await.unwrap_or_default() {
                let ingress = element["metric"]["ingress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                out.insert(ingress, number(&element).unwrap_or(f64::NAN));
            }
            out
        }
    };
    let volume = by_ingress(
        r#"sum(rate(nginx_ingress_controller_requests{controller_class=~".*"}[1m])) by (ingress)"#,
    )
    .await;
    let of = |map: &std::collections::BTreeMap<String, f64>, ingress: &str| {
        map.get(ingress).copied().unwrap_or(f64::NAN)
    };
    assert!(
        of(&volume, "model-1") > 0.0 && of(&volume, "model-2") > 0.0,
        "{volume:?}"
    );
    let success = by_ingress(
        r#"sum(rate(nginx_ingress_controller_requests{status!~"[4-5].*"}[2m])) by (ingress) / sum(rate(nginx_ingress_controller_requests[2m])) by (ingress)"#,
    )
    .await;
    let model_1 = of(&success, "model-1");
    assert!(model_1 > 0.7 && model_1 < 0.95, "{success:?}");
    assert_eq!(of(&success, "model-2"), 1.0, "{success:?}");
    for q in ["0.50", "0.90", "0.99"] {
        let expr = format!(
            r#"histogram_quantile({q}, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{{ingress!=""}}[2m])) by (le, ingress))"#
        );
        for element in prometheus.query(&expr).await.unwrap_or_default() {
            let value = number(&element).unwrap_or(f64::NAN);
            assert!(
                value.is_finite() && value > 0.0 && value <= 10.0,
                "p{q}: {element}"
            );
        }
    }
    let p99 = prometheus
        .value(r#"histogram_quantile(0.99, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress="model-1"}[2m])) by (le))"#)
        .await
        .unwrap_or_default();
    assert!(p99 >= 0.025, "model-1's p99 sees its 30 ms requests: {p99}");

    stop.store(true, Ordering::Relaxed);
    let sent = traffic.await.expect("the traffic task panicked");
    drop(prometheus);
    assert!(sent > 0);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
