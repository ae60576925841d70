//! Prometheus metrics under ingress-nginx's names, so that its dashboards
//! and alerts work unchanged (`nginx_ingress_controller_*`, with the
//! constant labels `controller_namespace`, `controller_class`,
//! `controller_pod`).
//!
//! - request metrics ([`requests`]), recorded per route without locks;
//! - inference metrics (`inference`: time to first byte, chunk gaps,
//!   queue and hold), under the gateway's own `edge_gateway_` prefix;
//! - controller metrics: configuration hash and applied changes (our
//!   "reloads"), leader election, orphan Ingresses, certificates;
//! - process metrics, as `process_*` and as ingress-nginx's
//!   `nginx_process_*`.
//!
//! Figures derived from the routing table (orphans, certificates, config
//! hash) are computed when scraped, from the table in use at that moment.

mod histogram;
pub(crate) mod inference;
mod process;
mod requests;
mod streams;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGaugeVec, Registry, TextEncoder};

pub use process::ConnectionStats;
pub(crate) use requests::{Observation, RouteLabels};
pub use requests::{RequestMetricsConfig, RouteStats};
pub use streams::{ActiveGuard, MirrorLabels, MirrorStats, StreamLabels, StreamStats};

use crate::scheme::Scheme;
use crate::tls::Certificate;
use inference::InferenceStore;
use process::ProcessSample;

/// What the access log reports: the lines it dropped (the access log sits
/// above this module and implements it).
pub trait DroppedLines: Send + Sync {
    /// Lines dropped so far: buffers full, or the target not writable.
    fn dropped(&self) -> u64;
}

/// Calls to the global rate limit's store that failed (timed out, refused,
/// garbled), all stores together:
/// `edge_gateway_global_rate_limit_store_errors_total`.
pub static GLOBAL_LIMIT_STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Requests counted on the replica because the global rate limit's store
/// was failing: `edge_gateway_global_rate_limit_local_decisions_total`.
pub static GLOBAL_LIMIT_LOCAL_DECISIONS: AtomicU64 = AtomicU64::new(0);
/// OpenTelemetry spans dropped: the export queue was full, or their
/// export failed (the tracing exporter counts them).
pub static OTEL_SPANS_DROPPED: AtomicU64 = AtomicU64::new(0);
/// OpenTelemetry spans the collector accepted.
pub static OTEL_SPANS_EXPORTED: AtomicU64 = AtomicU64::new(0);
use requests::RequestStore;
use streams::StreamStore;

/// The prefix of every ingress-nginx metric.
pub const PREFIX: &str = "nginx_ingress_controller_";

/// What the metrics endpoint serves, from the command line.
#[derive(Clone, Debug, Default)]
pub struct MetricsConfig {
    /// `--enable-metrics`: request metrics on or off.
    pub requests: Option<RequestMetricsConfig>,
    /// `controller_namespace`, `controller_class`, `controller_pod`.
    pub namespace: String,
    /// The controller class (`--controller-class`).
    pub class: String,
    /// The pod name.
    pub pod: String,
    /// `--exclude-socket-metrics`: request metric families not exported
    /// (names with or without [`PREFIX`]; others are not excludable, as in
    /// ingress-nginx).
    pub exclude: Vec<String>,
}

/// The request ("socket") metric families `--exclude-socket-metrics` can
/// name (ingress-nginx's `collectors/socket.go`).
const EXCLUDABLE: [&str; 8] = [
    "requests",
    "request_duration_seconds",
    "request_size",
    "response_duration_seconds",
    "response_size",
    "bytes_sent",
    "header_duration_seconds",
    "connect_duration_seconds",
];

/// What the metrics read from the routing table at scrape time. The
/// table's handle implements it (in the `table` module, which also gives
/// routes their series on publish), so that the metrics sit below the
/// table they describe.
pub trait TableFamilies: Send + Sync {
    /// The families computed from the current table for `metrics`, whose
    /// controller class is `class`.
    fn families(&self, metrics: &Metrics, class: &str) -> Vec<MetricFamily>;
}

/// All metrics of one gateway process.
pub struct Metrics {
    registry: Registry,
    requests: Option<RequestStore>,
    /// Recorded with the request series (`--enable-metrics`).
    inference: Option<InferenceStore>,
    pub(crate) connections: ConnectionStats,
    /// TCP/UDP services, passthrough and mirroring (always recorded).
    streams: StreamStore,
    success: IntCounter,
    errors: IntCounter,
    last_success: prometheus::Gauge,
    leader: IntGaugeVec,
    /// OCSP fetches, by result (`enable-ocsp`).
    ocsp: IntCounterVec,
    /// The certificate served when nothing else applies (the generated
    /// one), reported as host `_` unless `--default-ssl-certificate` is set.
    fallback_certificate: OnceLock<Arc<Certificate>>,
    /// The access log, whose dropped lines are reported.
    access_log: OnceLock<Arc<dyn DroppedLines>>,
    /// Full names of the families left out of the exposition.
    excluded: Vec<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("requests", &self.requests.is_some())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Builds the registry. `table` is read at scrape time.
    pub fn new(
        config: &MetricsConfig,
        table: Arc<dyn TableFamilies>,
    ) -> Result<Arc<Metrics>, prometheus::Error> {
        let labels = HashMap::from([
            ("controller_namespace".to_owned(), config.namespace.clone()),
            ("controller_class".to_owned(), config.class.clone()),
            ("controller_pod".to_owned(), config.pod.clone()),
        ]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let success = IntCounter::new(
            format!("{PREFIX}success"),
            "Cumulative number of configuration changes applied (ingress-nginx: reload operations)",
        )?;
        let errors = IntCounter::new(
            format!("{PREFIX}errors"),
            "Cumulative number of configuration changes that could not be applied",
        )?;
        let last_success = prometheus::Gauge::new(
            format!("{PREFIX}config_last_reload_successful_timestamp_seconds"),
            "Timestamp of the last successful configuration change",
        )?;
        let leader = IntGaugeVec::new(
            prometheus::Opts::new(
                format!("{PREFIX}leader_election_status"),
                "Gauge reporting status of the leader election, 0 indicates follower, 1 indicates leader",
            ),
            &["name"],
        )?;
        registry.register(Box::new(success.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        let ocsp = IntCounterVec::new(
            prometheus::Opts::new(
                "edge_gateway_ocsp_fetches_total",
                "OCSP responses fetched for stapling, by result: good (stapled), unreachable (no answer from the responder), invalid (not stapled: malformed, mismatched, badly signed or out of date), not_good (revoked or unknown)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(ocsp.clone()))?;
        let metrics = Arc::new(Metrics {
            registry,
            requests: config.requests.clone().map(RequestStore::new),
            inference: config.requests.as_ref().map(|_| InferenceStore::default()),
            connections: ConnectionStats::default(),
            streams: StreamStore::default(),
            success,
            errors,
            last_success,
            leader,
            ocsp,
            fallback_certificate: OnceLock::new(),
            access_log: OnceLock::new(),
            excluded: config
                .exclude
                .iter()
                .map(|name| name.trim().trim_start_matches(PREFIX))
                .filter(|name| EXCLUDABLE.contains(name))
                .map(|name| format!("{PREFIX}{name}"))
                .collect(),
        });
        metrics.registry.register(Box::new(Scraped {
            metrics: Arc::downgrade(&metrics),
            table,
            class: config.class.clone(),
            desc: Vec::new(),
        }))?;
        Ok(metrics)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut families = self.registry.gather();
        families.retain(|f| !self.excluded.iter().any(|name| name == f.name()));
        if let Err(error) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        out
    }

    /// The request series, when recorded (`--enable-metrics`).
    pub(crate) fn request_store(&self) -> Option<&RequestStore> {
        self.requests.as_ref()
    }

    /// The inference series, recorded with the request series.
    pub(crate) fn inference_store(&self) -> Option<&InferenceStore> {
        self.inference.as_ref()
    }

    /// The generated default certificate, once set.
    pub(crate) fn fallback_certificate(&self) -> Option<&Arc<Certificate>> {
        self.fallback_certificate.get()
    }

    /// Notes that a configuration change was applied.
    pub fn configuration_applied(&self) {
        self.success.inc();
        self.last_success
            .set(jiff::Timestamp::now().as_second() as f64);
    }

    /// Notes a configuration change that could not be applied.
    pub fn configuration_failed(&self) {
        self.errors.inc();
    }

    /// Reports this replica's leader election state for `election`.
    pub fn set_leader(&self, election: &str, leading: bool) {
        self.leader
            .with_label_values(&[election])
            .set(i64::from(leading));
    }

    /// Whether request series are recorded (`--enable-metrics`).
    pub fn records_requests(&self) -> bool {
        self.requests.is_some()
    }

    /// The client connection counters the listeners keep.
    pub fn connections(&self) -> &ConnectionStats {
        &self.connections
    }

    /// Reports `certificate` (the generated default) as host `_` while no
    /// `--default-ssl-certificate` is in the table, as ingress-nginx does.
    pub fn set_fallback_certificate(&self, certificate: Arc<Certificate>) {
        let _ = self.fallback_certificate.set(certificate);
    }

    /// Reports the lines `log` dropped (the access log: see
    /// [`DroppedLines`]).
    pub fn watch_access_log(&self, log: Arc<dyn DroppedLines>) {
        let _ = self.access_log.set(log);
    }

    /// Counts a connection refused at `scheme`'s listener cap.
    pub(crate) fn connection_refused(&self, scheme: Scheme) {
        let at = usize::from(scheme == Scheme::Https);
        self.connections.refused[at].fetch_add(1, Ordering::Relaxed);
        // Accepted, not handled: nginx's counters differ by such drops.
        self.connections.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// The series of a TCP/UDP service or passthrough backend.
    pub fn stream(&self, labels: StreamLabels) -> Arc<StreamStats> {
        self.streams.stream(labels)
    }

    /// The mirroring series of an Ingress.
    pub fn mirror(&self, labels: MirrorLabels) -> Arc<MirrorStats> {
        self.streams.mirror(labels)
    }
}

/// An open client connection, counted as active until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl ConnectionGuard {
    pub(crate) fn open(metrics: &Arc<Metrics>) -> Self {
        let c = &metrics.connections;
        c.accepted.fetch_add(1, Ordering::Relaxed);
        c.handled.fetch_add(1, Ordering::Relaxed);
        c.active.fetch_add(1, Ordering::Relaxed);
        Self(metrics.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Metrics computed at scrape time: request series, process figures, and
/// what the current table says.
struct Scraped {
    metrics: std::sync::Weak<Metrics>,
    table: Arc<dyn TableFamilies>,
    /// The controller class, ingress-nginx's `class` label.
    class: String,
    desc: Vec<Desc>,
}

impl Collector for Scraped {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = Vec::new();
        let Some(metrics) = self.metrics.upgrade() else {
            return families;
        };
        if let Some(store) = &metrics.requests {
            families.extend(store.collect(PREFIX));
        }
        if let Some(inference) = &metrics.inference {
            families.extend(inference.collect());
        }
        families.extend(self.table.families(&metrics, &self.class));
        families.extend(metrics.streams.collect());
        families.extend(process_families(
            &metrics.connections,
            &ProcessSample::read(),
        ));
        families.extend(gateway_families(&metrics));
        families
    }
}

/// The gateway's own counters: access log lines dropped, connections
/// refused at a listener's cap, global rate limit store failures, spans
/// dropped and exported.
fn gateway_families(metrics: &Metrics) -> Vec<MetricFamily> {
    let mut dropped = family_raw(
        &format!("{}access_log_dropped_lines_total", inference::PREFIX),
        "Access log lines dropped because the writer fell behind (buffers full) or could not write",
        MetricType::COUNTER,
    );
    let lines = metrics.access_log.get().map_or(0, |log| log.dropped());
    dropped.mut_metric().push(counter(&[], lines as f64));
    let mut refused = family_raw(
        &format!("{}refused_connections_total", inference::PREFIX),
        "Client connections closed at once because the listener was at max-worker-connections",
        MetricType::COUNTER,
    );
    for (listener, count) in ["http", "https"].iter().zip(&metrics.connections.refused) {
        refused.mut_metric().push(counter(
            &[("listener", listener)],
            count.load(Ordering::Relaxed) as f64,
        ));
    }
    let mut store_errors = family_raw(
        &format!("{}global_rate_limit_store_errors_total", inference::PREFIX),
        "Calls to the global rate limit's memcached that failed (the replica counted those requests itself)",
        MetricType::COUNTER,
    );
    let errors = GLOBAL_LIMIT_STORE_ERRORS.load(Ordering::Relaxed);
    store_errors.mut_metric().push(counter(&[], errors as f64));
    let mut local = family_raw(
        &format!(
            "{}global_rate_limit_local_decisions_total",
            inference::PREFIX
        ),
        "Requests under a global rate limit counted on this replica because memcached was failing",
        MetricType::COUNTER,
    );
    let decisions = GLOBAL_LIMIT_LOCAL_DECISIONS.load(Ordering::Relaxed);
    local.mut_metric().push(counter(&[], decisions as f64));
    let mut spans_dropped = family_raw(
        &format!("{}otel_spans_dropped_total", inference::PREFIX),
        "OpenTelemetry spans dropped: the export queue was full (otel-max-queuesize) or the collector failed or timed out",
        MetricType::COUNTER,
    );
    let spans = OTEL_SPANS_DROPPED.load(Ordering::Relaxed);
    spans_dropped.mut_metric().push(counter(&[], spans as f64));
    let mut spans_exported = family_raw(
        &format!("{}otel_spans_exported_total", inference::PREFIX),
        "OpenTelemetry spans the collector accepted",
        MetricType::COUNTER,
    );
    let spans = OTEL_SPANS_EXPORTED.load(Ordering::Relaxed);
    spans_exported.mut_metric().push(counter(&[], spans as f64));
    vec![
        dropped,
        refused,
        store_errors,
        local,
        spans_dropped,
        spans_exported,
    ]
}

fn process_families(connections: &ConnectionStats, sample: &ProcessSample) -> Vec<MetricFamily> {
    let load = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64;
    let active = connections.active.load(Ordering::Relaxed).max(0) as f64;
    let writing = connections.in_flight.load(Ordering::Relaxed).max(0) as f64;
    let mut conns = family_raw(
        "nginx_ingress_controller_nginx_process_connections",
        "current number of client connections with state {active, reading, writing, waiting}",
        MetricType::GAUGE,
    );
    for (state, value) in [
        ("active", active),
        ("reading", 0.0),
        ("writing", writing),
        ("waiting", (active - writing).max(0.0)),
    ] {
        conns.mut_metric().push(gauge(&[("state", state)], value));
    }
    let mut conns_total = family_raw(
        "nginx_ingress_controller_nginx_process_connections_total",
        "total number of connections with state {accepted, handled}",
        MetricType::COUNTER,
    );
    conns_total.mut_metric().push(counter(
        &[("state", "accepted")],
        load(&connections.accepted),
    ));
    conns_total
        .mut_metric()
        .push(counter(&[("state", "handled")], load(&connections.handled)));
    let mut requests = family_raw(
        "nginx_ingress_controller_nginx_process_requests_total",
        "total number of client requests",
        MetricType::COUNTER,
    );
    requests
        .mut_metric()
        .push(counter(&[], load(&connections.requests)));

    let mut families = vec![conns, conns_total, requests];
    let nginx = "nginx_ingress_controller_nginx_process_";
    let figures: [(String, &str, MetricType, f64); 15] = [
        (
            format!("{nginx}cpu_seconds_total"),
            "Cpu usage in seconds",
            MetricType::COUNTER,
            sample.cpu_seconds,
        ),
        (
            format!("{nginx}resident_memory_bytes"),
            "number of bytes of memory in use",
            MetricType::GAUGE,
            sample.resident_bytes,
        ),
        (
            format!("{nginx}virtual_memory_bytes"),
            "number of bytes of memory in use",
            MetricType::GAUGE,
            sample.virtual_bytes,
        ),
        (
            format!("{nginx}oldest_start_time_seconds"),
            "start time in seconds since 1970/01/01",
            MetricType::GAUGE,
            sample.start_time_seconds,
        ),
        (
            format!("{nginx}read_bytes_total"),
            "number of bytes read",
            MetricType::COUNTER,
            sample.read_bytes,
        ),
        (
            format!("{nginx}write_bytes_total"),
            "number of bytes written",
            MetricType::COUNTER,
            sample.write_bytes,
        ),
        (
            format!("{nginx}num_procs"),
            "number of processes",
            MetricType::GAUGE,
            1.0,
        ),
        (
            "process_cpu_seconds_total".to_owned(),
            "Total user and system CPU time spent in seconds.",
            MetricType::COUNTER,
            sample.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes".to_owned(),
            "Resident memory size in bytes.",
            MetricType::GAUGE,
            sample.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes".to_owned(),
            "Virtual memory size in bytes.",
            MetricType::GAUGE,
            sample.virtual_bytes,
        ),
        (
            "process_start_time_seconds".to_owned(),
            "Start time of the process since unix epoch in seconds.",
            MetricType::GAUGE,
            sample.start_time_seconds,
        ),
        (
            "process_open_fds".to_owned(),
            "Number of open file descriptors.",
            MetricType::GAUGE,
            sample.open_fds,
        ),
        (
            "process_max_fds".to_owned(),
            "Maximum number of open file descriptors.",
            MetricType::GAUGE,
            sample.max_fds,
        ),
        (
            "process_read_bytes_total".to_owned(),
            "Bytes read by the process.",
            MetricType::COUNTER,
            sample.read_bytes,
        ),
        (
            "process_write_bytes_total".to_owned(),
            "Bytes written by the process.",
            MetricType::COUNTER,
            sample.write_bytes,
        ),
    ];
    for (name, help, kind, value) in figures {
        let mut f = family_raw(&name, help, kind);
        f.mut_metric().push(if kind == MetricType::COUNTER {
            counter(&[], value)
        } else {
            gauge(&[], value)
        });
        families.push(f);
    }
    families
}

pub(crate) fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    family_raw(&format!("{PREFIX}{name}"), help, kind)
}

pub(crate) fn family_raw(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

pub(crate) fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(pairs));
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    metric.set_gauge(gauge);
    metric
}

pub(crate) fn counter(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(pairs));
    let mut counter = Counter::default();
    counter.set_value(value);
    metric.set_counter(counter);
    metric
}

impl crate::tls::ocsp::FetchCounter for Metrics {
    /// Counts one OCSP fetch with its `result` (see the family's help).
    fn ocsp_fetched(&self, result: &str) {
        self.ocsp.with_label_values(&[result]).inc();
    }
}
