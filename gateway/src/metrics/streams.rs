//! Connection-level series of what is not an HTTP request: TCP and UDP
//! services, SSL passthrough connections, and request mirroring. Under the
//! gateway's own prefix: ingress-nginx exports none of these.
//!
//! Series are looked up once per connection (or mirrored request), not per
//! byte: the caller keeps the [`StreamStats`] and bumps its atomics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::proto::{MetricFamily, MetricType};

use super::{counter, family_raw, gauge};

/// Who a stream series is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamLabels {
    /// `tcp`, `udp` or `passthrough`.
    pub protocol: &'static str,
    /// The port the gateway listens on (the HTTPS port for passthrough).
    pub port: u16,
    /// The Service's namespace.
    pub namespace: Arc<str>,
    /// The Service's name.
    pub service: Arc<str>,
    /// The Service port (number or name).
    pub service_port: Arc<str>,
}

/// The counters of one stream series.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Connections (UDP: client sessions) accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicI64,
    /// Bytes received from clients.
    pub received: AtomicU64,
    /// Bytes sent to clients.
    pub sent: AtomicU64,
    /// Connections that reached no endpoint (none ready, or every attempt
    /// to connect failed), or datagrams dropped (UDP).
    pub failed: AtomicU64,
}

impl StreamStats {
    /// Counts a new connection as open until the guard is dropped.
    pub fn open(self: &Arc<Self>) -> ActiveGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self.clone())
    }
}

/// An open stream connection, counted as active until dropped.
#[derive(Debug)]
pub struct ActiveGuard(Arc<StreamStats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Who a mirror series is about: the Ingress whose requests are copied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MirrorLabels {
    /// The Ingress's namespace.
    pub namespace: Arc<str>,
    /// The Ingress's name.
    pub ingress: Arc<str>,
}

/// The counters of one mirror series.
#[derive(Debug, Default)]
pub struct MirrorStats {
    /// Copies that reached the mirror and got a response (any status).
    pub sent: AtomicU64,
    /// Copies that failed: no connection, a timeout, or a broken exchange.
    pub failed: AtomicU64,
    /// Copies never sent or abandoned: too many in flight, or a body too
    /// large or too slow to copy.
    pub dropped: AtomicU64,
}

/// Every stream and mirror series of a process.
#[derive(Debug, Default)]
pub(crate) struct StreamStore {
    streams: Mutex<HashMap<StreamLabels, Arc<StreamStats>>>,
    mirrors: Mutex<HashMap<MirrorLabels, Arc<MirrorStats>>>,
}

impl StreamStore {
    /// The series for `labels`, created on first use.
    pub(crate) fn stream(&self, labels: StreamLabels) -> Arc<StreamStats> {
        let mut map = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(labels).or_default().clone()
    }

    /// The mirror series for `labels`, created on first use.
    pub(crate) fn mirror(&self, labels: MirrorLabels) -> Arc<MirrorStats> {
        let mut map = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(labels).or_default().clone()
    }

    /// The families, at scrape time.
    pub(crate) fn collect(&self) -> Vec<MetricFamily> {
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64;
        let mut families = Vec::new();
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if !streams.is_empty() {
            let mut connections = family_raw(
                "edge_gateway_stream_connections_total",
                "Connections accepted by TCP/UDP services (UDP: client sessions) and SSL passthrough",
                MetricType::COUNTER,
            );
            let mut active = family_raw(
                "edge_gateway_stream_active_connections",
                "Connections (UDP: client sessions) open now",
                MetricType::GAUGE,
            );
            let mut received = family_raw(
                "edge_gateway_stream_received_bytes_total",
                "Bytes received from clients",
                MetricType::COUNTER,
            );
            let mut sent = family_raw(
                "edge_gateway_stream_sent_bytes_total",
                "Bytes sent to clients",
                MetricType::COUNTER,
            );
            let mut failed = family_raw(
                "edge_gateway_stream_upstream_failures_total",
                "Connections that reached no endpoint (UDP: datagrams dropped)",
                MetricType::COUNTER,
            );
            for (labels, stats) in streams.iter() {
                let port = labels.port.to_string();
                let l = [
                    ("protocol", labels.protocol),
                    ("port", port.as_str()),
                    ("namespace", &labels.namespace),
                    ("service", &labels.service),
                    ("service_port", &labels.service_port),
                ];
                connections
                    .mut_metric()
                    .push(counter(&l, load(&stats.connections)));
                active.mut_metric().push(gauge(
                    &l,
                    stats.active.load(Ordering::Relaxed).max(0) as f64,
                ));
                received
                    .mut_metric()
                    .push(counter(&l, load(&stats.received)));
                sent.mut_metric().push(counter(&l, load(&stats.sent)));
                failed.mut_metric().push(counter(&l, load(&stats.failed)));
            }
            families.extend([connections, active, received, sent, failed]);
        }
        drop(streams);
        let mirrors = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        if !mirrors.is_empty() {
            let mut requests = family_raw(
                "edge_gateway_mirror_requests_total",
                "Mirrored copies of requests by result: sent (the mirror answered), failed, dropped (never sent or abandoned)",
                MetricType::COUNTER,
            );
            for (labels, stats) in mirrors.iter() {
                for (result, value) in [
                    ("sent", &stats.sent),
                    ("failed", &stats.failed),
                    ("dropped", &stats.dropped),
                ] {
                    requests.mut_metric().push(counter(
                        &[
                            ("namespace", &labels.namespace),
                            ("ingress", &labels.ingress),
                            ("result", result),
                        ],
                        load(value),
                    ));
                }
            }
            families.push(requests);
        }
        families
    }
}
