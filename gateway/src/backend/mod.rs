//! Backends (one per Service port a route sends to) and the endpoint sets
//! behind them.
//!
//! A backend's endpoint set changes far more often than routes do (every pod
//! start and stop), so it is swapped on its own, through an `ArcSwap`, without
//! touching the route table. Endpoints that stay across an update keep their
//! state (in-flight count, balancer scores, idle upstream connections).
//! Which endpoint a request takes is [`balance`]'s business.

pub mod balance;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::upstream::ConnPool;
use balance::outstanding::Signals;
use balance::pick::Picker;
use balance::prefix::PrefixTable;
use balance::queue::Gate;
use balance::ring::{self, Ring};
use balance::server_load::ServerLoad;
use balance::{BackendPolicy, Scores};

/// Names a backend: a Service port in a namespace. Two routes to the same
/// Service port share one backend, and with it its endpoints and balancer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendKey {
    /// Namespace of the Service.
    pub namespace: Arc<str>,
    /// Name of the Service.
    pub service: Arc<str>,
    /// The Service port as the route names it: a number or a port name.
    pub port: Arc<str>,
    /// Whether traffic goes to the Service's single virtual address rather
    /// than to its endpoints (`service-upstream`).
    pub cluster_ip: bool,
}

impl fmt::Display for BackendKey {
    /// ingress-nginx's upstream name, `<namespace>-<service>-<port>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.namespace, self.service, self.port)
    }
}

/// What the control plane knows about a backend's endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    /// Ready endpoint addresses, in a stable order.
    pub addrs: Vec<SocketAddr>,
    /// Whether the Service (and its port) exists; a route to a missing
    /// Service answers 503 like one with no ready endpoint, but is reported
    /// differently.
    pub service_found: bool,
}

/// An ExternalName backend of a table: its name and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalName {
    /// The DNS name (`spec.externalName`), without a trailing dot.
    pub name: Box<str>,
    /// The port connections go to (the Service port's `targetPort`).
    pub port: u16,
}

/// One upstream address and the state that follows it across updates.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    /// The stable hash of the address (ring points, session cookies).
    id: u64,
    in_flight: AtomicUsize,
    scores: Scores,
    /// Outstanding work, for every picker but round robin.
    signals: Signals,
    /// What its model server reports (`endpoint-metrics`).
    server: ServerLoad,
    /// The backend's waiting room, told when a slot frees here.
    gate: Arc<Gate>,
    pub(crate) pool: ConnPool,
}

impl Endpoint {
    fn new(addr: SocketAddr, scores: Scores, gate: Arc<Gate>) -> Self {
        Self {
            addr,
            id: ring::endpoint_id(addr),
            in_flight: AtomicUsize::new(0),
            scores,
            signals: Signals::default(),
            server: ServerLoad::default(),
            gate,
            pool: ConnPool::default(),
        }
    }

    /// An endpoint of no backend, for tests of the balancers.
    #[cfg(test)]
    pub(crate) fn detached(addr: SocketAddr) -> Self {
        Self::new(addr, Scores::default(), Arc::default())
    }

    /// The endpoint's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint's stable identity, a hash of its address.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A short form of its identity (never 0), for compact tables.
    pub(crate) fn tag(&self) -> u32 {
        (self.id as u32) | 1
    }

    /// Requests sent to this endpoint whose response has not ended yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// What the latency-aware balancers know about this endpoint.
    pub(crate) fn scores(&self) -> &Scores {
        &self.scores
    }

    /// Its outstanding work right now.
    pub(crate) fn signals(&self) -> &Signals {
        &self.signals
    }

    /// What its model server last reported.
    pub(crate) fn server(&self) -> &ServerLoad {
        &self.server
    }

    /// The backend's waiting room.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// Counts one request attempt as in flight on an endpoint until dropped,
/// which happens when the response body ends or the request is abandoned;
/// then it frees the endpoint's slot and feeds the balancer scores.
///
/// A `tracked` attempt also feeds the endpoint's outstanding-work signals
/// ([`balance::outstanding`]) as it goes: every picker but round robin
/// reads them, so round robin's requests skip that work.
#[derive(Debug)]
pub(crate) struct InFlight {
    endpoint: Arc<Endpoint>,
    /// When the attempt started, on the balancer clock.
    started: u64,
    /// Whether the time to first byte was recorded.
    first_byte: bool,
    /// Whether the attempt failed (no answer, 5xx, 429).
    failed: bool,
    /// Whether it feeds the outstanding-work signals.
    tracked: bool,
    /// When its last chunk arrived (tracked only).
    last_chunk: u64,
    /// Chunks received (tracked only).
    chunks: u32,
}

impl InFlight {
    /// Counts a request on `endpoint`, whatever its load.
    pub(crate) fn start(endpoint: Arc<Endpoint>, tracked: bool) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::SeqCst);
        Self::counted(endpoint, tracked)
    }

    /// Counts a request on `endpoint` if it has fewer than `cap` in flight.
    pub(crate) fn try_start(endpoint: &Arc<Endpoint>, cap: usize, tracked: bool) -> Option<Self> {
        endpoint
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(Self::counted(endpoint.clone(), tracked))
    }

    fn counted(endpoint: Arc<Endpoint>, tracked: bool) -> Self {
        let started = crate::clock::now();
        if tracked {
            endpoint.signals.sent(started);
        }
        Self {
            endpoint,
            started,
            first_byte: false,
            failed: false,
            tracked,
            last_chunk: 0,
            chunks: 0,
        }
    }

    pub(crate) fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }

    /// Marks the attempt failed: its time to first byte gets the penalty.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// Records the first response byte, once, and returns the time since
    /// the attempt started.
    pub(crate) fn first_byte(&mut self) -> Duration {
        let now = crate::clock::now();
        let ttfb = nanos(now.saturating_sub(self.started));
        if !std::mem::replace(&mut self.first_byte, true) {
            self.endpoint.scores.first_byte(ttfb, self.failed, now);
            if self.tracked {
                self.endpoint.signals.answered(ttfb, self.failed, now);
                self.last_chunk = now;
                self.chunks = 1;
                // An endpoint that answers may no longer be saturated.
                self.endpoint.gate.slot_freed();
            }
        }
        ttfb
    }

    /// Records a body chunk after the first (its decode rate).
    pub(crate) fn chunk(&mut self) {
        if !self.tracked || !self.first_byte {
            return;
        }
        let now = crate::clock::now();
        let gap = nanos(now.saturating_sub(self.last_chunk));
        self.endpoint.signals.chunk(gap, now);
        self.last_chunk = now;
        self.chunks = self.chunks.saturating_add(1);
    }
}

fn nanos(n: u64) -> Duration {
    Duration::from_nanos(n)
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::SeqCst);
        let now = crate::clock::now();
        let elapsed = nanos(now.saturating_sub(self.started));
        let scores = &self.endpoint.scores;
        scores.finished(elapsed, now);
        if !self.first_byte {
            scores.unanswered(elapsed, self.failed, now);
        }
        if self.tracked {
            let last_chunk = self.first_byte.then_some(self.last_chunk);
            self.endpoint.signals.ended(last_chunk, self.chunks, now);
        }
        self.endpoint.gate.slot_freed();
    }
}

/// An immutable set of endpoints; replaced whole on every update.
#[derive(Debug, Default)]
pub struct EndpointSet {
    endpoints: Box<[Arc<Endpoint>]>,
    service_found: bool,
    /// The consistent-hash ring, built on first use by a sticky backend.
    ring: OnceLock<Ring>,
    /// Endpoint positions by tag ([`Endpoint::tag`]), built on first use
    /// by prefix affinity.
    tags: OnceLock<foldhash::HashMap<u32, usize>>,
}

impl EndpointSet {
    /// The endpoints, in the order the control plane gave them.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Whether the Service behind the backend exists.
    pub fn service_found(&self) -> bool {
        self.service_found
    }

    /// The set's consistent-hash ring (built once per set, when first
    /// needed).
    pub(crate) fn ring(&self) -> &Ring {
        self.ring
            .get_or_init(|| Ring::new(self.endpoints.iter().map(|e| e.id)))
    }

    /// The endpoint with this tag ([`Endpoint::tag`]), if in the set.
    pub(crate) fn by_tag(&self, tag: u32) -> Option<&Arc<Endpoint>> {
        let tags = self.tags.get_or_init(|| {
            self.endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| (e.tag(), i))
                .collect()
        });
        tags.get(&tag).and_then(|i| self.endpoints.get(*i))
    }

    fn same_as(&self, update: &EndpointUpdate) -> bool {
        self.service_found == update.service_found
            && self.endpoints.len() == update.addrs.len()
            && self
                .endpoints
                .iter()
                .zip(&update.addrs)
                .all(|(e, a)| e.addr == *a)
    }
}

/// A Service port that routes send traffic to, with its live endpoint set
/// and balancer state.
#[derive(Debug)]
pub struct Backend {
    key: BackendKey,
    name: Box<str>,
    endpoints: ArcSwap<EndpointSet>,
    cursor: AtomicUsize,
    policy: ArcSwap<BackendPolicy>,
    gate: Arc<Gate>,
    /// The prompt prefixes its endpoints served, made on first use by
    /// `prefix-affinity` (256 KiB).
    prefixes: OnceLock<PrefixTable>,
}

impl Backend {
    /// A backend with an initial endpoint set.
    pub fn new(key: BackendKey, update: &EndpointUpdate) -> Self {
        let name = key.to_string().into_boxed_str();
        let backend = Self {
            key,
            name,
            endpoints: ArcSwap::from_pointee(EndpointSet::default()),
            cursor: AtomicUsize::new(fastrand::usize(..1024)),
            policy: ArcSwap::from_pointee(BackendPolicy::default()),
            gate: Arc::default(),
            prefixes: OnceLock::new(),
        };
        backend.update(update);
        backend
    }

    /// The key the control plane knows this backend by.
    pub fn key(&self) -> &BackendKey {
        &self.key
    }

    /// ingress-nginx's upstream name for logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current endpoint set. A request loads it once and keeps it.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.endpoints.load_full()
    }

    /// How this backend balances and admits requests.
    pub fn policy(&self) -> Arc<BackendPolicy> {
        self.policy.load_full()
    }

    /// Replaces the balancing and admission rules (a new table's, when
    /// this live backend is adopted by it).
    pub fn set_policy(&self, policy: Arc<BackendPolicy>) {
        if **self.policy.load() != *policy {
            self.policy.store(policy);
        }
    }

    /// Takes a new table's endpoint set and policy when that table adopts
    /// this live backend; its endpoints keep their state. `None` keeps the
    /// endpoint set: an ExternalName backend holds DNS answers the new
    /// table knows nothing of.
    pub fn take_over(&self, endpoints: Option<&EndpointUpdate>, policy: Arc<BackendPolicy>) {
        if let Some(endpoints) = endpoints {
            self.update(endpoints);
        }
        self.set_policy(policy);
    }

    /// The round-robin cursor, for pickers outside the request path
    /// (TCP/UDP services, SSL passthrough).
    pub(crate) fn cursor(&self) -> &AtomicUsize {
        &self.cursor
    }

    /// Where requests wait for a slot or for a ready endpoint.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The picker for one look at this backend under `policy`.
    pub(crate) fn picker<'a>(&'a self, policy: &'a BackendPolicy) -> Picker<'a> {
        Picker {
            policy,
            cursor: &self.cursor,
            prefixes: policy
                .prefix_affinity
                .map(|_| self.prefixes.get_or_init(PrefixTable::default)),
        }
    }

    /// Replaces the endpoint set. Endpoints whose address stays keep their
    /// state; removed ones are dropped once their last request ends; new
    /// ones join with scores drawn from the others. Requests waiting on the
    /// backend look again. Returns whether anything changed.
    pub fn update(&self, update: &EndpointUpdate) -> bool {
        let current = self.endpoints.load();
        if current.same_as(update) {
            return false;
        }
        let endpoints = update
            .addrs
            .iter()
            .map(|addr| {
                current
                    .endpoints
                    .iter()
                    .find(|e| e.addr == *addr)
                    .cloned()
                    .unwrap_or_else(|| {
                        let scores = Scores::joining(&current.endpoints);
                        Arc::new(Endpoint::new(*addr, scores, self.gate.clone()))
                    })
            })
            .collect();
        self.endpoints.store(Arc::new(EndpointSet {
            endpoints,
            service_found: update.service_found,
            ring: OnceLock::new(),
            tags: OnceLock::new(),
        }));
        self.gate.endpoints_changed();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BackendKey {
        BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        }
    }

    fn addrs(n: u8) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([127, 0, 0, i], 8080)))
            .collect()
    }

    fn update(addrs: Vec<SocketAddr>) -> EndpointUpdate {
        EndpointUpdate {
            addrs,
            service_found: true,
        }
    }

    #[test]
    fn name_is_ingress_nginx_upstream_name() {
        assert_eq!(key().to_string(), "ns-svc-80");
    }

    #[test]
    fn update_keeps_state_of_staying_endpoints() {
        let backend = Backend::new(key(), &update(addrs(2)));
        let before = backend.endpoints();
        let kept = before.endpoints()[1].clone();
        let _busy = InFlight::start(kept.clone(), true);
        let mut next = addrs(3);
        next.remove(0);
        assert!(backend.update(&update(next.clone())));
        let after = backend.endpoints();
        assert!(Arc::ptr_eq(&after.endpoints()[0], &kept));
        assert_eq!(after.endpoints()[0].in_flight(), 1);
        assert!(!backend.update(&update(next)));
    }

    #[test]
    fn joining_endpoints_are_scored_from_their_peers() {
        let backend = Backend::new(key(), &update(addrs(2)));
        for endpoint in backend.endpoints().endpoints() {
            let mut attempt = InFlight::start(endpoint.clone(), true);
            attempt.first_byte();
        }
        assert!(backend.update(&update(addrs(3))));
        let set = backend.endpoints();
        let now = crate::clock::now();
        let slowest = set.endpoints()[..2]
            .iter()
            .map(|e| balance::testing::peak(e, now))
            .fold(0.0, f64::max);
        let start = balance::testing::peak(&set.endpoints()[2], now);
        assert!(
            start > 0.0 && start >= slowest * 0.99,
            "{start} vs {slowest}"
        );
    }

    #[test]
    fn a_capped_start_never_goes_past_the_cap() {
        let endpoint = Arc::new(Endpoint::detached(addrs(1)[0]));
        let held: Vec<InFlight> = (0..5)
            .filter_map(|_| InFlight::try_start(&endpoint, 3, true))
            .collect();
        assert_eq!(held.len(), 3);
        assert_eq!(endpoint.in_flight(), 3);
        drop(held);
        assert_eq!(endpoint.in_flight(), 0);
    }

    /// One step of a request's life on a backend.
    #[derive(Clone, Debug)]
    enum Step {
        /// Start a request on endpoint `i` (modulo the set), uncapped.
        Start(usize),
        /// Start one on endpoint `i` under a cap of `cap`.
        StartCapped(usize, usize),
        /// The response head arrived for request `i`.
        FirstByte(usize),
        /// Request `i` got another body chunk.
        Chunk(usize),
        /// Request `i` failed.
        Fail(usize),
        /// Request `i` ended (body done, or the client went away).
        End(usize),
        /// The endpoint set became the first `n` addresses.
        Scale(u8),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0..8usize).prop_map(Step::Start),
            (0..8usize, 1..4usize).prop_map(|(i, c)| Step::StartCapped(i, c)),
            (0..32usize).prop_map(Step::FirstByte),
            (0..32usize).prop_map(Step::Chunk),
            (0..32usize).prop_map(Step::Fail),
            (0..32usize).prop_map(Step::End),
            (0..6u8).prop_map(Step::Scale),
        ]
    }

    proptest::proptest! {
        #[test]
        fn in_flight_counts_return_to_zero(steps in proptest::collection::vec(step(), 0..200)) {
            let backend = Backend::new(key(), &update(addrs(3)));
            let mut seen: Vec<Arc<Endpoint>> = backend.endpoints().endpoints().to_vec();
            let mut live: Vec<InFlight> = Vec::new();
            for step in steps {
                let set = backend.endpoints();
                let pick = |i: usize| set.endpoints().get(i % set.endpoints().len().max(1)).cloned();
                match step {
                    Step::Start(i) => live.extend(pick(i).map(|e| InFlight::start(e, true))),
                    Step::StartCapped(i, cap) => {
                        live.extend(pick(i).and_then(|e| InFlight::try_start(&e, cap, i % 2 == 0)));
                    }
                    Step::FirstByte(i) => {
                        if let Some(f) = live.get_mut(i) {
                            f.first_byte();
                        }
                    }
                    Step::Chunk(i) => {
                        if let Some(f) = live.get_mut(i) {
                            f.chunk();
                        }
                    }
                    Step::Fail(i) => {
                        if let Some(f) = live.get_mut(i) {
                            f.fail();
                        }
                    }
                    Step::End(i) => {
                        if i < live.len() {
                            live.swap_remove(i);
                        }
                    }
                    Step::Scale(n) => {
                        backend.update(&update(addrs(n)));
                        for endpoint in backend.endpoints().endpoints() {
                            if !seen.iter().any(|e| Arc::ptr_eq(e, endpoint)) {
                                seen.push(endpoint.clone());
                            }
                        }
                    }
                }
                let counted: usize = seen.iter().map(|e| e.in_flight()).sum();
                proptest::prop_assert_eq!(counted, live.len());
            }
            drop(live);
            for endpoint in &seen {
                proptest::prop_assert_eq!(endpoint.in_flight(), 0);
                proptest::prop_assert_eq!(endpoint.signals().unanswered(), 0);
                proptest::prop_assert_eq!(endpoint.signals().streaming(), 0);
            }
            proptest::prop_assert_eq!(backend.gate().queued(), 0);
        }
    }
}
