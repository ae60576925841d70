//! Load balancing: which endpoint of a backend takes a request, and what
//! happens when none can take it yet.
//!
//! - [`Algorithm`]: `round_robin` (the default), ingress-nginx's `ewma`,
//!   `least_request`, `p2c` and `peak_ewma`, one file each;
//! - [`affinity`]: stickiness in front of the algorithm: session cookies
//!   (`affinity: cookie`) and consistent hashing (`upstream-hash-by`) on
//!   a hash [`ring`];
//! - [`BackendPolicy`]: a backend's algorithm plus its admission rules:
//!   a per-endpoint concurrency cap with a FIFO queue (`queue`, which also
//!   holds requests back by [`Criticality`] when the backend is
//!   saturated) and holding requests while the backend has no ready
//!   endpoint (`hold`);
//! - the inference-aware layers, all opt-in: what endpoints are doing now
//!   ([`outstanding`], read by every algorithm but round robin), what
//!   their model servers report ([`server_load`], filled by the
//!   `scrape` task), prompt-prefix affinity ([`prefix`]), and the
//!   pipeline that combines them ([`pick`], the one seam every pick goes
//!   through).
//!
//! Everything an algorithm reads lives on the endpoint
//! ([`crate::backend::Endpoint`]): its in-flight count, its scores, its
//! outstanding work and its server's report. They are atomics, so picking
//! never takes a lock, and they stay with an endpoint across EndpointSlice
//! updates.

pub mod affinity;
mod decay;
pub mod endpoint_metrics;
mod ewma;
pub mod hash_key;
pub(crate) mod hold;
mod least_request;
pub(crate) mod outstanding;
mod p2c;
mod peak_ewma;
pub(crate) mod pick;
pub(crate) mod prefix;
pub(crate) mod queue;
pub mod request;
pub mod ring;
mod round_robin;
pub mod server_load;
pub mod session_cookie;
mod subset;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use http::StatusCode;

use crate::backend::Endpoint;
use crate::clock::now;
pub use affinity::Affinity;
use decay::Decayed;
pub use endpoint_metrics::EndpointMetrics;
pub use request::{ClassByHeader, Criticality, RequestSignals, RouteSignals};
pub use server_load::Saturation;

/// How a backend spreads requests over its endpoints (the `load-balance`
/// ConfigMap key and annotation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Each endpoint in turn (ingress-nginx's default).
    #[default]
    RoundRobin,
    /// ingress-nginx's `ewma`: the lower decayed average response time of
    /// two random endpoints; new endpoints start at the average.
    Ewma,
    /// The fewest requests in flight (counted to the last response byte);
    /// ties go round robin.
    LeastRequest,
    /// Power of two choices: the fewer in flight of two random endpoints.
    P2c,
    /// The lower of two random endpoints' peak-sensitive average time to
    /// first byte × (in flight + 1); failures count as slow, new endpoints
    /// start as slow as the slowest.
    PeakEwma,
}

impl Algorithm {
    /// Every algorithm, for parsers and docs.
    pub const ALL: [Algorithm; 5] = [
        Self::RoundRobin,
        Self::Ewma,
        Self::LeastRequest,
        Self::P2c,
        Self::PeakEwma,
    ];

    /// The name used in annotations and the ConfigMap.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Ewma => "ewma",
            Self::LeastRequest => "least_request",
            Self::P2c => "p2c",
            Self::PeakEwma => "peak_ewma",
        }
    }

    /// The algorithm named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The eligible endpoint this algorithm prefers; `None` when no
    /// endpoint is eligible. `cursor` is the backend's rotation.
    pub(crate) fn pick<'e>(
        self,
        cursor: &AtomicUsize,
        endpoints: &'e [Arc<Endpoint>],
        eligible: impl Fn(&Endpoint) -> bool,
    ) -> Option<&'e Arc<Endpoint>> {
        match self {
            Self::RoundRobin => round_robin::pick(cursor, endpoints, eligible),
            Self::LeastRequest => least_request::pick(cursor, endpoints, eligible, now()),
            Self::P2c => p2c::pick(endpoints, eligible, now()),
            Self::Ewma => ewma::pick(endpoints, eligible, now()),
            Self::PeakEwma => peak_ewma::pick(endpoints, eligible, now()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one backend balances and admits requests. ingress-nginx makes
/// balancing a property of the upstream (one Service port), so this
/// belongs to the backend, not to a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendPolicy {
    /// `load-balance`.
    pub algorithm: Algorithm,
    /// `max-inflight-per-endpoint`: requests one endpoint may have in
    /// flight; `None` is unlimited (no queue).
    pub max_inflight_per_endpoint: Option<usize>,
    /// `max-queue`: requests that may wait for a free endpoint slot (1000).
    pub max_queue: usize,
    /// `queue-timeout`: the longest wait for a free slot (60 s).
    pub queue_timeout: Duration,
    /// `queue-overflow-status`: the answer when the queue is full or the
    /// wait is over (503, or 429), sent with `Retry-After`.
    pub overflow_status: StatusCode,
    /// `hold-when-no-endpoints`: how long a request waits for a ready
    /// endpoint when the Service has none; `None` answers 503 at once.
    pub hold: Option<Duration>,
    /// `max-pending`: requests that may be held at once (1000).
    pub max_pending: usize,
    /// `affinity: cookie` or `upstream-hash-by`: which endpoint a request
    /// sticks to, before the algorithm picks.
    pub affinity: Affinity,
    /// `endpoint-metrics`: scrape each endpoint's model-server metrics
    /// and pick by them; `None`: off.
    pub endpoint_metrics: Option<Arc<EndpointMetrics>>,
    /// `saturation-queue`, `saturation-kv-cache`: when an endpoint counts
    /// as saturated (for the metrics filter and for criticality).
    pub saturation: Saturation,
    /// `prefix-affinity`: prefer the endpoint that served the prompt's
    /// start; `None`: off.
    pub prefix_affinity: Option<PrefixAffinity>,
}

/// `prefix-affinity` and its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixAffinity {
    /// `prefix-affinity-slack`: how many more requests (× stall) than the
    /// algorithm's pick the prefix's endpoint may have and still take it.
    pub slack: u32,
}

impl Default for PrefixAffinity {
    fn default() -> Self {
        Self { slack: 2 }
    }
}

impl BackendPolicy {
    /// Whether requests feed the outstanding-work signals: every picker
    /// but plain round robin reads them.
    pub(crate) fn tracks(&self) -> bool {
        self.algorithm != Algorithm::RoundRobin
            || self.endpoint_metrics.is_some()
            || self.prefix_affinity.is_some()
    }
}

impl Default for BackendPolicy {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RoundRobin,
            max_inflight_per_endpoint: None,
            max_queue: 1000,
            queue_timeout: Duration::from_secs(60),
            overflow_status: StatusCode::SERVICE_UNAVAILABLE,
            hold: None,
            max_pending: 1000,
            affinity: Affinity::None,
            endpoint_metrics: None,
            saturation: Saturation::default(),
            prefix_affinity: None,
        }
    }
}

/// Why a request could not get an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The backend has no ready endpoint (and holding is off or over), or
    /// every endpoint was tried.
    #[error("no ready endpoint")]
    NoEndpoints,
    /// The backend's Service (or port) does not exist.
    #[error("service not found")]
    ServiceNotFound,
    /// Every endpoint is at its cap and the queue is full.
    #[error("queue full")]
    QueueFull,
    /// No slot freed up within `queue-timeout`.
    #[error("queue timeout")]
    QueueTimeout,
    /// `max-pending` requests are already held.
    #[error("too many requests held")]
    PendingFull,
    /// No endpoint became ready within `hold-when-no-endpoints`.
    #[error("no endpoint became ready in time")]
    HoldTimeout,
    /// The request's `request-deadline` passed while it waited.
    #[error("request deadline passed")]
    Deadline,
    /// A sheddable request found every endpoint saturated.
    #[error("shed under saturation")]
    Shed,
}

/// What the balancers know about an endpoint besides its in-flight count.
#[derive(Debug, Default)]
pub(crate) struct Scores {
    /// ingress-nginx's `ewma`: decayed average of connect + response time.
    ewma: Decayed,
    /// Peak-sensitive decayed average of the time to first byte.
    peak: Decayed,
}

impl Scores {
    /// Scores for an endpoint joining `peers`: ingress-nginx's slow start
    /// for `ewma` (the average of the peers), pessimistic for `peak_ewma`
    /// (the slowest peer).
    pub(crate) fn joining(peers: &[Arc<Endpoint>]) -> Self {
        let now = now();
        Self {
            ewma: ewma::slow_start(peers, now),
            peak: peak_ewma::pessimistic(peers, now),
        }
    }

    /// Records a finished attempt: `total` from start to its end.
    pub(crate) fn finished(&self, total: Duration, now: u64) {
        ewma::observe(&self.ewma, total, now);
    }

    /// Records an attempt's time to first byte; `failed` (5xx, 429, no
    /// answer) adds the penalty.
    pub(crate) fn first_byte(&self, ttfb: Duration, failed: bool, now: u64) {
        peak_ewma::observe(&self.peak, ttfb, failed, now);
    }

    /// Records an attempt that ended after `waited` without a first byte
    /// (cancelled, timed out, refused).
    pub(crate) fn unanswered(&self, waited: Duration, failed: bool, now: u64) {
        peak_ewma::observe_unanswered(&self.peak, waited, failed, now);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Endpoints with a given load, for the algorithms' tests.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use crate::backend::{Endpoint, InFlight};

    /// `n` endpoints on 127.0.0.1..=n.
    pub(crate) fn endpoints(n: u8) -> Vec<Arc<Endpoint>> {
        (1..=n)
            .map(|i| Arc::new(Endpoint::detached(SocketAddr::from(([127, 0, 0, i], 80)))))
            .collect()
    }

    /// The peak-EWMA average of `endpoint`, decayed to `now`.
    pub(crate) fn peak(endpoint: &Endpoint, now: u64) -> f64 {
        endpoint.scores().peak.decayed(now)
    }

    /// Puts `n` requests in flight on `endpoint`, until the result drops.
    pub(crate) fn busy(endpoint: &Arc<Endpoint>, n: usize) -> Vec<InFlight> {
        (0..n)
            .map(|_| InFlight::start(endpoint.clone(), true))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        assert_eq!(Algorithm::parse("least_conn"), None);
        assert_eq!(Algorithm::default(), Algorithm::RoundRobin);
    }

    #[test]
    fn every_algorithm_respects_eligibility() {
        let endpoints = testing::endpoints(5);
        let cursor = AtomicUsize::new(0);
        let only = endpoints[3].addr();
        for algorithm in Algorithm::ALL {
            for _ in 0..20 {
                let picked = algorithm.pick(&cursor, &endpoints, |e| e.addr() == only);
                assert_eq!(picked.map(|e| e.addr()), Some(only), "{algorithm}");
            }
            assert!(algorithm.pick(&cursor, &endpoints, |_| false).is_none());
            assert!(algorithm.pick(&cursor, &[], |_| true).is_none());
        }
    }

    #[test]
    fn the_clock_never_reads_zero() {
        let a = now();
        let b = now();
        assert!(a >= 1 && b >= a);
    }
}
