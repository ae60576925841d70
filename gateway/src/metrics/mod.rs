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
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGaugeVec, Registry, TextEncoder};

pub use process::ConnectionStats;
pub(crate) use requests::{Observation, RouteLabels};
pub use requests::{RequestMetricsConfig, RouteStats};
pub use streams::{ActiveGuard, MirrorLabels, MirrorStats, StreamLabels, StreamStats};

use crate::access_log::AccessLog;
use crate::proxy::TableHandle;
use crate::settings::Scheme;
use crate::table::{RouteAction, RouteTable};
use crate::tls::Certificate;
use inference::InferenceStore;
use process::ProcessSample;
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
    access_log: OnceLock<Arc<AccessLog>>,
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
        table: TableHandle,
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

    /// Gives every proxied route of `table` its series (reusing those of the
    /// routes it had before) and forgets the series of routes that are gone.
    pub fn attach(&self, table: &mut RouteTable) {
        if let Some(inference) = &self.inference {
            inference.attach(table);
        }
        let Some(store) = &self.requests else { return };
        let mut live = Vec::new();
        let per_host = store.config.per_host;
        let undefined = store.config.per_undefined_host;
        for (route, service) in table.routes_with_services() {
            let Some(source) = &route.source else {
                continue;
            };
            let host = match (per_host, route.host.as_ref()) {
                (false, _) => None,
                // Only exact hosts are "defined" for ingress-nginx; the
                // others are recorded only when asked, under their pattern.
                (true, h) if !h.is_empty() && !h.starts_with("*.") => Some(route.host.clone()),
                (true, _) if undefined => Some(route.host.clone()),
                (true, _) => continue,
            };
            let labels = RouteLabels {
                namespace: source.namespace.clone(),
                ingress: source.name.clone(),
                service,
                path: route.path.clone(),
                host,
                canary: None,
            };
            // A canary's requests: the main route's labels, plus `canary`.
            if let Some(canary) = &mut route.canary {
                let labels = RouteLabels {
                    canary: Some(canary.upstream.clone()),
                    ..labels.clone()
                };
                canary.stats = Some(store.stats(labels, &mut live));
            }
            route.stats = Some(store.stats(labels, &mut live));
        }
        store.retain(&live);
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

    /// Counts one OCSP fetch with its `result` (see the family's help).
    pub fn ocsp_fetched(&self, result: &str) {
        self.ocsp.with_label_values(&[result]).inc();
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

    /// Reports the lines `log` dropped (see [`AccessLog`]).
    pub fn watch_access_log(&self, log: Arc<AccessLog>) {
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
    table: TableHandle,
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
        let table = self.table.load();
        if let Some(inference) = &metrics.inference {
            families.extend(inference.collect(&table));
        }
        families.extend(table_families(&table));
        families.extend(certificate_families(
            &table,
            metrics.fallback_certificate.get(),
            &self.class,
        ));
        families.extend(metrics.streams.collect());
        families.extend(process_families(
            &metrics.connections,
            &ProcessSample::read(),
        ));
        families.extend(gateway_families(&metrics));
        families
    }
}

fn table_families(table: &RouteTable) -> Vec<MetricFamily> {
    let mut hash = family(
        "config_hash",
        "Running configuration hash actually running",
        MetricType::GAUGE,
    );
    hash.mut_metric()
        .push(gauge(&[], config_hash(table) as f64));
    let mut ok = family(
        "config_last_reload_successful",
        "Whether the last configuration change was applied successfully",
        MetricType::GAUGE,
    );
    ok.mut_metric().push(gauge(&[], 1.0));

    let mut orphans = family(
        "orphan_ingress",
        "Gauge reporting status of ingress orphanity, 1 indicates orphaned ingress",
        MetricType::GAUGE,
    );
    let mut seen = std::collections::HashSet::new();
    for route in table.routes() {
        let (Some(source), RouteAction::Proxy(id)) = (&route.source, &route.action) else {
            continue;
        };
        let Some(backend) = table.backend(*id) else {
            continue;
        };
        let endpoints = backend.endpoints();
        let kind = if !endpoints.service_found() {
            "no-service"
        } else if endpoints.endpoints().is_empty() {
            "no-endpoint"
        } else {
            continue;
        };
        if seen.insert((source.namespace.clone(), source.name.clone(), kind)) {
            orphans.mut_metric().push(gauge(
                &[
                    ("namespace", &source.namespace),
                    ("ingress", &source.name),
                    ("type", kind),
                ],
                1.0,
            ));
        }
    }

    let mut build = family(
        "build_info",
        "A metric with a constant '1' labeled with information about the build.",
        MetricType::GAUGE,
    );
    build.mut_metric().push(gauge(
        &[
            ("release", env!("CARGO_PKG_VERSION")),
            ("build", "edge-gateway"),
            ("repository", "edge-gateway"),
        ],
        1.0,
    ));
    vec![hash, ok, orphans, build]
}

/// `ssl_expire_time_seconds` and `ssl_certificate_info` with ingress-nginx's
/// labels (`SetSSLExpireTime`, `SetSSLInfo`): the Secret's namespace and
/// name, the controller `class`, the host (`_` for the default
/// certificate), and the certificate's identifier, issuer and serial.
fn certificate_families(
    table: &RouteTable,
    fallback: Option<&Arc<Certificate>>,
    class: &str,
) -> Vec<MetricFamily> {
    let mut expire = family(
        "ssl_expire_time_seconds",
        "Number of seconds since 1970 to the SSL Certificate expire.",
        MetricType::GAUGE,
    );
    let mut info = family(
        "ssl_certificate_info",
        "Hold all labels associated to a certificate",
        MetricType::GAUGE,
    );
    let fallback = fallback
        .filter(|_| table.certificate(None).is_none())
        .map(|cert| (None, cert));
    for (host, cert) in table.certificates().chain(fallback) {
        let host = host.unwrap_or_else(|| "_".to_owned());
        let (namespace, secret) = cert.source().unwrap_or(("", ""));
        let labels = [
            ("namespace", namespace),
            ("class", class),
            ("host", host.as_str()),
            ("secret_name", secret),
            ("identifier", cert.identifier()),
        ];
        expire
            .mut_metric()
            .push(gauge(&labels, cert.not_after() as f64));
        let mut all = labels.to_vec();
        all.extend([
            ("issuer_organization", cert.issuer_organization()),
            ("issuer_common_name", cert.issuer()),
            ("serial_number", cert.serial()),
            ("public_key_algorithm", cert.key_algorithm()),
        ]);
        info.mut_metric().push(gauge(&all, 1.0));
    }
    vec![expire, info]
}

/// The gateway's own counters: access log lines dropped, connections
/// refused at a listener's cap.
fn gateway_families(metrics: &Metrics) -> Vec<MetricFamily> {
    let mut dropped = family_raw(
        &format!("{}access_log_dropped_lines_total", inference::PREFIX),
        "Access log lines dropped because the writer fell behind (queue full by count or bytes)",
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
    vec![dropped, refused]
}

/// A stable hash of what the table routes where (ingress-nginx exposes the
/// hash of its rendered configuration).
fn config_hash(table: &RouteTable) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0xc0f1).build_hasher();
    for route in table.routes() {
        hasher.write(route.host.as_bytes());
        hasher.write(route.path.as_bytes());
        hasher.write(route.path_kind.as_str().as_bytes());
        if let RouteAction::Proxy(id) = route.action
            && let Some(backend) = table.backend(id)
        {
            hasher.write(backend.name().as_bytes());
        }
        if let Some(canary) = &route.canary {
            hasher.write(canary.upstream.as_bytes());
        }
    }
    for (host, cert) in table.certificates() {
        hasher.write(host.unwrap_or_default().as_bytes());
        hasher.write(cert.serial().as_bytes());
    }
    // Prometheus values are f64: keep the hash exact in one.
    hasher.finish() >> 11
}

fn process_families(connections: &ConnectionStats, sample: &ProcessSample) -> Vec<MetricFamily> {
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed) as f64;
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

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    family_raw(&format!("{PREFIX}{name}"), help, kind)
}

fn family_raw(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
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

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(pairs));
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    metric.set_gauge(gauge);
    metric
}

fn counter(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(pairs));
    let mut counter = Counter::default();
    counter.set_value(value);
    metric.set_counter(counter);
    metric
}
