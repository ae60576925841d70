//! Request metrics with ingress-nginx's names and labels, recorded without
//! a lock: every route carries its own series (one per method and status
//! seen), found by a lock-free load and a short scan; counters and
//! histogram buckets are atomics.
//!
//! Series live in a store keyed by their labels, so that they survive
//! recompiles (Prometheus counters must not restart); a route that
//! disappears takes its series with it at the next publish. Labels come
//! from routes only (the Ingress path, never the request URI), so no client
//! can create a series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Method;
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType, Summary};

use super::histogram::Histogram;

/// The label values of one route's series, fixed when the route is built.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RouteLabels {
    pub(crate) namespace: Arc<str>,
    pub(crate) ingress: Arc<str>,
    pub(crate) service: Arc<str>,
    pub(crate) path: Arc<str>,
    /// The host label; `None` when hosts are not labelled.
    pub(crate) host: Option<Arc<str>>,
    /// The `canary` label: the canary's upstream name for the series of
    /// the requests a route's canary served, else empty.
    pub(crate) canary: Option<Arc<str>>,
}

/// How request metrics are shaped (ingress-nginx's metric flags).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestMetricsConfig {
    /// `--metrics-per-host`.
    pub per_host: bool,
    /// `--metrics-per-undefined-host`.
    pub per_undefined_host: bool,
    /// `--report-status-classes`.
    pub status_classes: bool,
    /// `--time-buckets`.
    pub time_buckets: Vec<f64>,
    /// `--length-buckets`.
    pub length_buckets: Vec<f64>,
    /// `--size-buckets`.
    pub size_buckets: Vec<f64>,
}

impl Default for RequestMetricsConfig {
    fn default() -> Self {
        Self {
            per_host: true,
            per_undefined_host: false,
            status_classes: false,
            time_buckets: prometheus::DEFAULT_BUCKETS.to_vec(),
            length_buckets: (1..=10).map(|i| f64::from(i) * 10.0).collect(),
            size_buckets: (1..=7).map(|i| 10f64.powi(i)).collect(),
        }
    }
}

/// Methods with a label of their own; any other is `OTHER`, so that a
/// client cannot mint series with made-up methods.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];
const OTHER_METHOD: u8 = METHODS.len() as u8;

fn method_index(method: &Method) -> u8 {
    METHODS
        .iter()
        .position(|m| *m == method.as_str())
        .map_or(OTHER_METHOD, |i| i as u8)
}

fn method_label(index: u8) -> &'static str {
    METHODS.get(usize::from(index)).copied().unwrap_or("OTHER")
}

/// What one finished request contributes to its series.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Observation {
    /// `$request_time`: from the request's arrival to its last response byte.
    pub(crate) request: Duration,
    /// `$upstream_response_time`, when an upstream was reached.
    pub(crate) response: Option<Duration>,
    /// `$upstream_header_time`.
    pub(crate) header: Option<Duration>,
    /// `$upstream_connect_time` (zero for a reused connection).
    pub(crate) connect: Option<Duration>,
    /// `$request_length`.
    pub(crate) request_bytes: u64,
    /// `$bytes_sent`.
    pub(crate) response_bytes: u64,
}

/// The series of one (method, status) pair on one route.
#[derive(Debug)]
struct Series {
    method: u8,
    status: u16,
    requests: AtomicU64,
    request_duration: Histogram,
    response_duration: Histogram,
    header_duration: Histogram,
    connect_duration: Histogram,
    request_size: Histogram,
    response_size: Histogram,
    bytes_sent: Histogram,
}

impl Series {
    fn new(method: u8, status: u16, config: &Buckets) -> Self {
        let time = config.time.len();
        let length = config.length.len();
        Self {
            method,
            status,
            requests: AtomicU64::new(0),
            request_duration: Histogram::new(time),
            response_duration: Histogram::new(time),
            header_duration: Histogram::new(time),
            connect_duration: Histogram::new(time),
            request_size: Histogram::new(length),
            response_size: Histogram::new(length),
            bytes_sent: Histogram::new(config.size.len()),
        }
    }

    fn record(&self, buckets: &Buckets, o: &Observation) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.request_duration
            .observe(&buckets.time, o.request.as_secs_f64());
        if let Some(d) = o.response {
            self.response_duration
                .observe(&buckets.time, d.as_secs_f64());
        }
        if let Some(d) = o.header {
            self.header_duration.observe(&buckets.time, d.as_secs_f64());
        }
        if let Some(d) = o.connect {
            self.connect_duration
                .observe(&buckets.time, d.as_secs_f64());
        }
        self.request_size
            .observe(&buckets.length, o.request_bytes as f64);
        self.response_size
            .observe(&buckets.length, o.response_bytes as f64);
        self.bytes_sent
            .observe(&buckets.size, o.response_bytes as f64);
    }
}

#[derive(Debug)]
struct Buckets {
    time: Box<[f64]>,
    length: Box<[f64]>,
    size: Box<[f64]>,
}

/// The series of one route, shared by every table the route appears in.
#[derive(Debug)]
pub struct RouteStats {
    labels: RouteLabels,
    series: ArcSwap<Vec<Arc<Series>>>,
    store: Arc<Shared>,
}

impl RouteStats {
    /// Counts one finished request.
    pub(crate) fn record(&self, method: &Method, status: u16, observation: &Observation) {
        let method = method_index(method);
        let status = if self.store.status_classes {
            status / 100 * 100
        } else {
            status
        };
        self.series(method, status)
            .record(&self.store.buckets, observation);
    }

    fn series(&self, method: u8, status: u16) -> Arc<Series> {
        let current = self.series.load();
        if let Some(found) = current
            .iter()
            .find(|s| s.method == method && s.status == status)
        {
            return found.clone();
        }
        // First request with this method and status on this route.
        let mut created = None;
        self.series.rcu(|list| {
            let mut list = Vec::clone(list);
            match list
                .iter()
                .find(|s| s.method == method && s.status == status)
            {
                Some(found) => created = Some(found.clone()),
                None => {
                    let series = Arc::new(Series::new(method, status, &self.store.buckets));
                    created = Some(series.clone());
                    list.push(series);
                }
            }
            list
        });
        created.unwrap_or_else(|| Arc::new(Series::new(method, status, &self.store.buckets)))
    }
}

#[derive(Debug)]
struct Shared {
    buckets: Buckets,
    status_classes: bool,
}

/// Every route's series, by labels.
#[derive(Debug)]
pub(crate) struct RequestStore {
    shared: Arc<Shared>,
    routes: Mutex<HashMap<RouteLabels, Arc<RouteStats>>>,
    pub(crate) config: RequestMetricsConfig,
}

impl RequestStore {
    pub(crate) fn new(config: RequestMetricsConfig) -> Self {
        let shared = Shared {
            buckets: Buckets {
                time: config.time_buckets.clone().into(),
                length: config.length_buckets.clone().into(),
                size: config.size_buckets.clone().into(),
            },
            status_classes: config.status_classes,
        };
        Self {
            shared: Arc::new(shared),
            routes: Mutex::new(HashMap::new()),
            config,
        }
    }

    /// The stats of the routes with these labels, created on first use.
    /// Stats not handed out since the last [`RequestStore::retain`] go then.
    pub(crate) fn stats(
        &self,
        labels: RouteLabels,
        live: &mut Vec<RouteLabels>,
    ) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        live.push(labels.clone());
        routes
            .entry(labels.clone())
            .or_insert_with(|| {
                Arc::new(RouteStats {
                    labels,
                    series: ArcSwap::from_pointee(Vec::new()),
                    store: self.shared.clone(),
                })
            })
            .clone()
    }

    /// Drops the series of routes that are gone.
    pub(crate) fn retain(&self, live: &[RouteLabels]) {
        let live: std::collections::HashSet<&RouteLabels> = live.iter().collect();
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.retain(|labels, _| live.contains(labels));
    }

    /// The families, in the text format's terms.
    pub(crate) fn collect(&self, prefix: &str) -> Vec<MetricFamily> {
        let routes: Vec<Arc<RouteStats>> = {
            let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            routes.values().cloned().collect()
        };
        let buckets = &self.shared.buckets;
        type Pick = fn(&Series) -> &Histogram;
        let histograms: [(&str, &str, Pick, &[f64]); 7] = [
            (
                "request_duration_seconds",
                "The request processing time in seconds",
                |s| &s.request_duration,
                &buckets.time,
            ),
            (
                "response_duration_seconds",
                "The time spent on receiving the response from the upstream server",
                |s| &s.response_duration,
                &buckets.time,
            ),
            (
                "header_duration_seconds",
                "The time spent on receiving first header from the upstream server",
                |s| &s.header_duration,
                &buckets.time,
            ),
            (
                "connect_duration_seconds",
                "The time spent on establishing a connection with the upstream server",
                |s| &s.connect_duration,
                &buckets.time,
            ),
            (
                "request_size",
                "The request length (including request line, header, and request body)",
                |s| &s.request_size,
                &buckets.length,
            ),
            (
                "response_size",
                "The response length (including request line, header, and request body)",
                |s| &s.response_size,
                &buckets.length,
            ),
            (
                "bytes_sent",
                "DEPRECATED The number of bytes sent to a client",
                |s| &s.bytes_sent,
                &buckets.size,
            ),
        ];
        let mut counter = family(
            &format!("{prefix}requests"),
            "The total number of client requests",
            MetricType::COUNTER,
        );
        let mut families: Vec<MetricFamily> = histograms
            .iter()
            .map(|(name, help, _, _)| {
                family(&format!("{prefix}{name}"), help, MetricType::HISTOGRAM)
            })
            .collect();
        for route in &routes {
            for series in route.series.load().iter() {
                let labels = self.labels(route, series);
                let mut metric = Metric::default();
                metric.set_label(labels.clone());
                let mut value = Counter::default();
                value.set_value(series.requests.load(Ordering::Relaxed) as f64);
                metric.set_counter(value);
                counter.mut_metric().push(metric);
                for ((_, _, pick, bounds), family) in histograms.iter().zip(families.iter_mut()) {
                    let mut metric = Metric::default();
                    metric.set_label(labels.clone());
                    metric.set_histogram(pick(series).export(bounds));
                    family.mut_metric().push(metric);
                }
            }
        }
        families.insert(0, counter);
        families.push(upstream_latency(prefix, &routes));
        families
    }

    fn labels(&self, route: &RouteStats, series: &Series) -> Vec<LabelPair> {
        let l = &route.labels;
        let status = if self.shared.status_classes {
            format!("{}xx", series.status / 100)
        } else {
            series.status.to_string()
        };
        let mut pairs = vec![
            pair("canary", l.canary.as_deref().unwrap_or("")),
            pair("ingress", &l.ingress),
            pair("method", method_label(series.method)),
            pair("namespace", &l.namespace),
            pair("path", &l.path),
            pair("service", &l.service),
            pair("status", &status),
        ];
        if let Some(host) = &l.host {
            pairs.insert(1, pair("host", host));
        }
        pairs
    }
}

/// ingress-nginx's deprecated `ingress_upstream_latency_seconds` summary
/// (`$upstream_connect_time` per Ingress and Service), which its "Request
/// Handling Performance" dashboard still reads: `_sum` and `_count` only,
/// summed from the connect-time histograms at scrape time, so it costs the
/// request path nothing.
fn upstream_latency(prefix: &str, routes: &[Arc<RouteStats>]) -> MetricFamily {
    let mut totals: std::collections::BTreeMap<[&str; 4], (u64, f64)> =
        std::collections::BTreeMap::new();
    for route in routes {
        let l = &route.labels;
        let canary = l.canary.as_deref().unwrap_or("");
        let key = [&*l.ingress, &*l.namespace, &*l.service, canary];
        for series in route.series.load().iter() {
            let (count, sum) = series.connect_duration.totals();
            if count > 0 {
                let total = totals.entry(key).or_default();
                total.0 += count;
                total.1 += sum;
            }
        }
    }
    let mut latency = family(
        &format!("{prefix}ingress_upstream_latency_seconds"),
        "DEPRECATED Upstream service latency per Ingress",
        MetricType::SUMMARY,
    );
    for ([ingress, namespace, service, canary], (count, sum)) in totals {
        let mut summary = Summary::default();
        summary.set_sample_count(count);
        summary.set_sample_sum(sum);
        let mut metric = Metric::default();
        metric.set_label(vec![
            pair("canary", canary),
            pair("ingress", ingress),
            pair("namespace", namespace),
            pair("service", service),
        ]);
        metric.set_summary(summary);
        latency.mut_metric().push(metric);
    }
    latency
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> RouteLabels {
        RouteLabels {
            namespace: "ns".into(),
            ingress: "ing".into(),
            service: "svc".into(),
            path: path.into(),
            host: Some("a.com".into()),
            canary: None,
        }
    }

    fn observation(ms: u64, bytes: u64) -> Observation {
        Observation {
            request: Duration::from_millis(ms),
            response: Some(Duration::from_millis(ms)),
            header: Some(Duration::from_millis(ms / 2)),
            connect: Some(Duration::ZERO),
            request_bytes: bytes,
            response_bytes: bytes * 2,
        }
    }

    fn find<'f>(families: &'f [MetricFamily], name: &str) -> &'f MetricFamily {
        families.iter().find(|f| f.name() == name).unwrap()
    }

    #[test]
    fn counts_and_buckets_are_exact() {
        let store = RequestStore::new(RequestMetricsConfig::default());
        let mut live = Vec::new();
        let stats = store.stats(labels("/a"), &mut live);
        for _ in 0..3 {
            stats.record(&Method::GET, 200, &observation(3, 15));
        }
        stats.record(&Method::POST, 503, &observation(700, 95));
        stats.record(
            &Method::from_bytes(b"MADEUP").unwrap(),
            200,
            &observation(1, 1),
        );
        let families = store.collect("p_");
        let requests = find(&families, "p_requests");
        let count = |method: &str, status: &str| {
            requests
                .get_metric()
                .iter()
                .find(|m| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == "method" && l.value() == method)
                        && m.get_label()
                            .iter()
                            .any(|l| l.name() == "status" && l.value() == status)
                })
                .map(|m| m.get_counter().get_value())
        };
        assert_eq!(count("GET", "200"), Some(3.0));
        assert_eq!(count("POST", "503"), Some(1.0));
        assert_eq!(
            count("OTHER", "200"),
            Some(1.0),
            "unknown methods share one label"
        );

        let durations = find(&families, "p_request_duration_seconds");
        let get = durations
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == "GET"))
            .unwrap()
            .get_histogram();
        assert_eq!(get.get_sample_count(), 3);
        assert!((get.get_sample_sum() - 0.009).abs() < 1e-9);
        // 3 ms falls in the first bucket (le=0.005), cumulatively in all.
        assert!(get.get_bucket().iter().all(|b| b.cumulative_count() == 3));
        let sizes = find(&families, "p_request_size");
        let post = sizes
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == "POST"))
            .unwrap()
            .get_histogram();
        let le = |bound: f64| {
            post.get_bucket()
                .iter()
                .find(|b| b.upper_bound() == bound)
                .unwrap()
                .cumulative_count()
        };
        assert_eq!((le(90.0), le(100.0)), (0, 1));
    }

    #[test]
    fn series_survive_republishing_and_go_with_their_route() {
        let store = RequestStore::new(RequestMetricsConfig::default());
        let mut live = Vec::new();
        let first = store.stats(labels("/a"), &mut live);
        first.record(&Method::GET, 200, &observation(1, 1));
        let mut live = Vec::new();
        let again = store.stats(labels("/a"), &mut live);
        assert!(Arc::ptr_eq(&first, &again));
        store.retain(&live);
        assert_eq!(store.collect("p_")[0].get_metric().len(), 1);
        store.retain(&[]);
        assert!(store.collect("p_")[0].get_metric().is_empty());
    }

    #[test]
    fn upstream_latency_sums_connect_times_per_ingress() {
        let store = RequestStore::new(RequestMetricsConfig::default());
        let mut live = Vec::new();
        let a = store.stats(labels("/a"), &mut live);
        let b = store.stats(labels("/b"), &mut live);
        let connect = |stats: &RouteStats, ms: u64| {
            let o = Observation {
                connect: Some(Duration::from_millis(ms)),
                ..observation(1, 1)
            };
            stats.record(&Method::GET, 200, &o);
        };
        connect(&a, 2);
        connect(&a, 4);
        connect(&b, 10);
        // A request that never reached an upstream has no connect time.
        b.record(&Method::GET, 503, &Observation::default());
        let families = store.collect("p_");
        let latency = find(&families, "p_ingress_upstream_latency_seconds");
        assert_eq!(latency.get_field_type(), MetricType::SUMMARY);
        let metrics = latency.get_metric();
        assert_eq!(metrics.len(), 1, "one series per ingress and service");
        let summary = metrics[0].get_summary();
        assert_eq!(summary.sample_count(), 3);
        assert!((summary.sample_sum() - 0.016).abs() < 1e-9);
        let names: Vec<&str> = metrics[0].get_label().iter().map(|l| l.name()).collect();
        assert_eq!(names, ["canary", "ingress", "namespace", "service"]);
    }

    #[test]
    fn status_classes() {
        let store = RequestStore::new(RequestMetricsConfig {
            status_classes: true,
            ..RequestMetricsConfig::default()
        });
        let stats = store.stats(labels("/a"), &mut Vec::new());
        stats.record(&Method::GET, 201, &observation(1, 1));
        stats.record(&Method::GET, 204, &observation(1, 1));
        let families = store.collect("p_");
        let metrics = families[0].get_metric();
        assert_eq!(metrics.len(), 1);
        assert!(
            metrics[0]
                .get_label()
                .iter()
                .any(|l| l.name() == "status" && l.value() == "2xx")
        );
        assert_eq!(metrics[0].get_counter().get_value(), 2.0);
    }
}
