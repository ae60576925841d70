//! Inference metrics, beside ingress-nginx's `nginx_ingress_controller_*`
//! series and under their own prefix (`edge_gateway_`), so that nothing an
//! ingress-nginx dashboard reads changes:
//!
//! - `edge_gateway_time_to_first_byte_seconds`: from the start of the
//!   attempt that answered (its connect included) to the first response
//!   body byte (a model's time to first token), histogram;
//! - `edge_gateway_inter_chunk_gap_seconds`: between two response body
//!   chunks (inter-token latency for streams), histogram;
//! - `edge_gateway_queue_time_seconds`, `edge_gateway_hold_time_seconds`:
//!   waits for an endpoint slot (`max-inflight-per-endpoint`) and for a
//!   ready endpoint (`hold-when-no-endpoints`), histograms;
//! - `edge_gateway_pending_requests`: requests held right now, the gauge an
//!   autoscaler reads to scale a model from zero;
//! - `edge_gateway_rejected_requests_total{reason}`: queue and hold
//!   refusals, and sheddable requests shed under saturation;
//!
//! all labelled `namespace`, `ingress`, `service`; and, read from the live
//! backends at scrape time (free on the request path):
//!
//! - `edge_gateway_endpoint_in_flight{namespace,service,port,endpoint}`;
//! - `edge_gateway_queued_requests{namespace,service,port}`.
//!
//! Like the request series, each (namespace, ingress, service) has one
//! [`InferenceStats`] shared by its routes, found at publish time and kept
//! across publishes; recording is atomics only.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::proto::{Histogram as ProtoHistogram, Metric, MetricFamily, MetricType};

use super::histogram::Histogram;
use super::{counter, family_raw, gauge, labels};

/// The prefix of the gateway's own metrics.
pub(crate) const PREFIX: &str = "edge_gateway_";

/// Time to first byte: tens of milliseconds (a small model) to minutes (a
/// long prompt on a loaded replica).
const FIRST_BYTE_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Gaps between chunks: a token every few milliseconds to a stalled stream.
const GAP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Waits in the queue or for a replica to start.
const WAIT_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Why the gateway refused a request it would otherwise have sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Every slot taken and `max-queue` requests waiting.
    QueueFull,
    /// No slot freed within `queue-timeout`.
    QueueTimeout,
    /// `max-pending` requests already held.
    PendingFull,
    /// No endpoint became ready within `hold-when-no-endpoints`.
    HoldTimeout,
    /// `request-deadline` passed while waiting.
    Deadline,
    /// A sheddable request found its backend saturated.
    Shed,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Self::QueueFull,
        Self::QueueTimeout,
        Self::PendingFull,
        Self::HoldTimeout,
        Self::Deadline,
        Self::Shed,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::QueueTimeout => "queue_timeout",
            Self::PendingFull => "pending_full",
            Self::HoldTimeout => "hold_timeout",
            Self::Deadline => "deadline",
            Self::Shed => "shed",
        }
    }
}

/// A histogram of durations in seconds, with its fixed bounds.
#[derive(Debug)]
struct Durations {
    bounds: &'static [f64],
    histogram: Histogram,
}

impl Durations {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            histogram: Histogram::new(bounds.len()),
        }
    }

    fn observe(&self, value: Duration) {
        self.histogram.observe(self.bounds, value.as_secs_f64());
    }

    fn export(&self) -> ProtoHistogram {
        self.histogram.export(self.bounds)
    }
}

/// Whose series these are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Labels {
    namespace: Arc<str>,
    ingress: Arc<str>,
    service: Arc<str>,
}

/// The inference series of one Ingress and Service.
#[derive(Debug)]
pub(crate) struct InferenceStats {
    labels: Labels,
    first_byte: Durations,
    chunk_gap: Durations,
    queue: Durations,
    hold: Durations,
    pending: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
}

impl InferenceStats {
    fn new(labels: Labels) -> Self {
        Self {
            labels,
            first_byte: Durations::new(&FIRST_BYTE_BUCKETS),
            chunk_gap: Durations::new(&GAP_BUCKETS),
            queue: Durations::new(&WAIT_BUCKETS),
            hold: Durations::new(&WAIT_BUCKETS),
            pending: AtomicU64::new(0),
            rejected: Default::default(),
        }
    }

    /// Records a time to first byte.
    pub(crate) fn first_byte(&self, ttfb: Duration) {
        self.first_byte.observe(ttfb);
    }

    /// Records the gap between two response chunks.
    pub(crate) fn chunk_gap(&self, gap: Duration) {
        self.chunk_gap.observe(gap);
    }

    /// Records a wait in the queue that ended with a slot.
    pub(crate) fn queued(&self, wait: Duration) {
        self.queue.observe(wait);
    }

    /// Records a hold that ended with a ready endpoint.
    pub(crate) fn held(&self, wait: Duration) {
        self.hold.observe(wait);
    }

    /// Counts a request as pending until the result is dropped.
    pub(crate) fn pending(&self) -> Pending<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Pending(self)
    }

    /// Counts a refusal.
    pub(crate) fn rejected(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// A held request in the pending gauge.
#[derive(Debug)]
pub(crate) struct Pending<'s>(&'s InferenceStats);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every Ingress and Service's inference series.
#[derive(Debug, Default)]
pub(crate) struct InferenceStore {
    series: Mutex<HashMap<Labels, Arc<InferenceStats>>>,
}

impl InferenceStore {
    /// The series of each route named by `(namespace, ingress, service)`
    /// (`None`: a route without series), created on first use; forgets the
    /// series no route names any more.
    pub(crate) fn series<I>(&self, routes: I) -> Vec<Option<Arc<InferenceStats>>>
    where
        I: IntoIterator<Item = Option<(Arc<str>, Arc<str>, Arc<str>)>>,
    {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut live = HashSet::new();
        let stats = routes
            .into_iter()
            .map(|route| {
                let (namespace, ingress, service) = route?;
                let labels = Labels {
                    namespace,
                    ingress,
                    service,
                };
                live.insert(labels.clone());
                let stats = series
                    .entry(labels.clone())
                    .or_insert_with(|| Arc::new(InferenceStats::new(labels)));
                Some(stats.clone())
            })
            .collect();
        series.retain(|labels, _| live.contains(labels));
        stats
    }

    /// The families of the series (the table adds the live backends').
    pub(crate) fn collect(&self) -> Vec<MetricFamily> {
        let series: Vec<Arc<InferenceStats>> = {
            let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
            series.values().cloned().collect()
        };
        type Pick = fn(&InferenceStats) -> &Durations;
        let histograms: [(&str, &str, Pick); 4] = [
            (
                "time_to_first_byte_seconds",
                "Time from the start of the upstream attempt to the first response body byte",
                |s| &s.first_byte,
            ),
            (
                "inter_chunk_gap_seconds",
                "Time between two response body chunks from the upstream",
                |s| &s.chunk_gap,
            ),
            (
                "queue_time_seconds",
                "Time requests waited for a free endpoint slot (max-inflight-per-endpoint)",
                |s| &s.queue,
            ),
            (
                "hold_time_seconds",
                "Time requests were held for a ready endpoint (hold-when-no-endpoints)",
                |s| &s.hold,
            ),
        ];
        let mut families: Vec<MetricFamily> = histograms
            .iter()
            .map(|(name, help, _)| {
                family_raw(&format!("{PREFIX}{name}"), help, MetricType::HISTOGRAM)
            })
            .collect();
        let mut pending = family_raw(
            &format!("{PREFIX}pending_requests"),
            "Requests held for a ready endpoint now",
            MetricType::GAUGE,
        );
        let mut rejected = family_raw(
            &format!("{PREFIX}rejected_requests_total"),
            "Requests refused by the gateway's queue or hold",
            MetricType::COUNTER,
        );
        for stats in &series {
            let l = &stats.labels;
            let pairs = [
                ("ingress", &*l.ingress),
                ("namespace", &*l.namespace),
                ("service", &*l.service),
            ];
            for ((_, _, pick), family) in histograms.iter().zip(families.iter_mut()) {
                let mut metric = Metric::default();
                metric.set_label(labels(&pairs));
                metric.set_histogram(pick(stats).export());
                family.mut_metric().push(metric);
            }
            pending
                .mut_metric()
                .push(gauge(&pairs, stats.pending.load(Ordering::Relaxed) as f64));
            for (why, count) in Rejection::ALL.iter().zip(&stats.rejected) {
                let mut with_reason = pairs.to_vec();
                with_reason.push(("reason", why.label()));
                rejected
                    .mut_metric()
                    .push(counter(&with_reason, count.load(Ordering::Relaxed) as f64));
            }
        }
        families.push(pending);
        families.push(rejected);
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> InferenceStats {
        InferenceStats::new(Labels {
            namespace: "ns".into(),
            ingress: "ing".into(),
            service: "model".into(),
        })
    }

    #[test]
    fn histograms_bucket_durations() {
        let s = stats();
        s.first_byte(Duration::from_millis(30));
        s.first_byte(Duration::from_secs(400));
        let h = s.first_byte.export();
        assert_eq!(h.get_sample_count(), 2);
        // 30 ms falls in the 0.05 bucket (index 3).
        assert_eq!(h.get_bucket()[2].cumulative_count(), 0);
        assert_eq!(h.get_bucket()[3].cumulative_count(), 1);
        assert_eq!(h.get_bucket().last().unwrap().cumulative_count(), 1);
        assert!((h.get_sample_sum() - 400.03).abs() < 1e-9);
    }

    #[test]
    fn pending_counts_until_dropped() {
        let s = stats();
        let a = s.pending();
        let b = s.pending();
        assert_eq!(s.pending.load(Ordering::Relaxed), 2);
        drop(a);
        drop(b);
        assert_eq!(s.pending.load(Ordering::Relaxed), 0);
        s.rejected(Rejection::HoldTimeout);
        assert_eq!(s.rejected[3].load(Ordering::Relaxed), 1);
    }
}
