//! Taking an endpoint slot: the balancer's pick, and with
//! `max-inflight-per-endpoint` a FIFO queue at the gateway when every
//! endpoint is at its cap (late binding: a waiting request goes to the
//! first endpoint that frees a slot, like Knative's activator or Ray
//! Serve's `max_ongoing_requests`).
//!
//! Without a cap, taking a slot is one atomic increment: no queue, no
//! lock. With one, a slot is taken by compare-and-swap; a request that
//! finds every slot taken waits on the backend's [`Gate`], which a request
//! ending on a capped endpoint wakes, oldest waiter first.
//!
//! Criticality: a request whose route gives it a class (`criticality`,
//! `criticality-header`) also finds an endpoint busy when it is saturated
//! (its fresh server metrics show `saturation-queue` requests waiting or
//! `saturation-kv-cache` used, or the gateway has `saturation-queue`
//! requests waiting for its first byte). When every endpoint is busy, a
//! `sheddable` request is refused at once (429 with `Retry-After`), a
//! `standard` one waits in the queue, and a `critical` one waits ahead of
//! every standard one: freed slots, answers and fresh metrics wake the
//! oldest critical waiter first. Waiting is bounded by `max-queue` and
//! `queue-timeout` as for the cap.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::affinity::{self, Sticky};
use super::request::Criticality;
use super::{BackendPolicy, Refused};
use crate::backend::{Backend, Endpoint, InFlight};
use crate::clock::now;
use crate::metrics::inference::{InferenceStats, Rejection};

/// Where the requests waiting on one backend sleep, and how many there are.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Woken one at a time when a slot frees, all at once when the
    /// endpoint set changes.
    slots: Notify,
    /// The same for critical requests, woken before the others.
    critical: Notify,
    /// Woken when the endpoint set changes (scale from zero).
    pub(super) endpoints: Notify,
    /// Requests waiting for a slot, critical ones included.
    queued: AtomicUsize,
    /// Critical requests among them.
    queued_critical: AtomicUsize,
    /// Requests held for a ready endpoint.
    pub(super) pending: AtomicUsize,
}

impl Gate {
    /// A slot freed on one of the backend's endpoints (or one answered,
    /// and may no longer be saturated): the oldest critical waiter, else
    /// the oldest waiter, if any, takes it. Backends that never queue have
    /// no waiters, so this is one atomic load for them.
    pub(crate) fn slot_freed(&self) {
        if self.queued.load(Ordering::SeqCst) == 0 {
            return;
        }
        if self.queued_critical.load(Ordering::SeqCst) > 0 {
            self.critical.notify_one();
        } else {
            self.slots.notify_one();
        }
    }

    /// The endpoint set changed: every waiter looks again.
    pub(crate) fn endpoints_changed(&self) {
        self.endpoints.notify_waiters();
        self.recheck();
    }

    /// Something every waiter should look at changed (an endpoint's
    /// server metrics were scraped): they all look again.
    pub(crate) fn recheck(&self) {
        if self.queued.load(Ordering::SeqCst) > 0 {
            self.critical.notify_waiters();
            self.slots.notify_waiters();
        }
    }

    /// Requests waiting for a slot now, for metrics.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The outcome of one look at the endpoints.
enum Look {
    /// A slot was taken.
    Taken(InFlight),
    /// Some untried endpoint exists, but all are at their cap (or
    /// saturated, for a request with a class).
    Busy,
    /// Every endpoint was tried (or there is none).
    Exhausted,
}

/// Takes a slot on one of `backend`'s endpoints not in `tried`, waiting in
/// the queue when the backend is capped and full, or saturated for a
/// request with a criticality class (a sheddable one is refused instead).
/// `deadline` is the request's, if it has one.
pub(crate) async fn acquire(
    backend: &Backend,
    policy: &BackendPolicy,
    tried: &[SocketAddr],
    deadline: Option<Instant>,
    stats: Option<&InferenceStats>,
    sticky: &mut Sticky,
) -> Result<InFlight, Refused> {
    let gate = backend.gate();
    let class = sticky.signals().class();
    let critical = class == Some(Criticality::Critical);
    let queues = policy.max_inflight_per_endpoint.is_some() || class.is_some();
    // A newcomer queues behind waiters (a critical one behind critical
    // ones only) rather than taking the slot freed for the oldest of them.
    let ahead = if critical {
        &gate.queued_critical
    } else {
        &gate.queued
    };
    if !queues || ahead.load(Ordering::SeqCst) == 0 {
        match look(backend, policy, tried, sticky) {
            Look::Taken(in_flight) => return Ok(in_flight),
            Look::Exhausted => return Err(Refused::NoEndpoints),
            Look::Busy => {}
        }
    }
    if class == Some(Criticality::Sheddable) {
        return Err(refuse(Refused::Shed, stats));
    }
    if gate.queued.fetch_add(1, Ordering::SeqCst) >= policy.max_queue {
        gate.queued.fetch_sub(1, Ordering::SeqCst);
        return Err(refuse(Refused::QueueFull, stats));
    }
    let _queued = Queued::new(gate, critical);
    let wakes = if critical {
        &gate.critical
    } else {
        &gate.slots
    };
    let started = Instant::now();
    let timeout = started + policy.queue_timeout;
    let (until, expired) = match deadline {
        Some(deadline) if deadline < timeout => (deadline, Refused::Deadline),
        _ => (timeout, Refused::QueueTimeout),
    };
    loop {
        let mut woken = pin!(wakes.notified());
        woken.as_mut().enable();
        match look(backend, policy, tried, sticky) {
            Look::Taken(in_flight) => {
                if let Some(stats) = stats {
                    stats.queued(started.elapsed());
                }
                return Ok(in_flight);
            }
            Look::Exhausted => return Err(Refused::NoEndpoints),
            Look::Busy => {}
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep_until(until) => return Err(refuse(expired, stats)),
        }
    }
}

/// Counts a refusal in the metrics.
fn refuse(refused: Refused, stats: Option<&InferenceStats>) -> Refused {
    let rejection = match refused {
        Refused::QueueFull => Some(Rejection::QueueFull),
        Refused::QueueTimeout => Some(Rejection::QueueTimeout),
        Refused::PendingFull => Some(Rejection::PendingFull),
        Refused::HoldTimeout => Some(Rejection::HoldTimeout),
        Refused::Deadline => Some(Rejection::Deadline),
        Refused::Shed => Some(Rejection::Shed),
        Refused::NoEndpoints | Refused::ServiceNotFound => None,
    };
    if let (Some(stats), Some(rejection)) = (stats, rejection) {
        stats.rejected(rejection);
    }
    refused
}

/// Whether an endpoint counts as saturated for a request with a class:
/// its fresh server metrics say so, or (whatever they say) the gateway
/// already has `saturation-queue` requests waiting for its first byte.
fn saturated(endpoint: &Endpoint, policy: &BackendPolicy, now: u64) -> bool {
    let limits = policy.saturation;
    endpoint.signals().unanswered() >= limits.queue as usize
        || endpoint.server().saturated(limits, now)
}

/// One look at the current endpoints: the sticky endpoint or the
/// picker's among the untried endpoints with a free slot (and, for a
/// request with a class, not saturated). The request's prompt prefix is
/// recorded against the endpoint taken.
fn look(
    backend: &Backend,
    policy: &BackendPolicy,
    tried: &[SocketAddr],
    sticky: &mut Sticky,
) -> Look {
    let set = backend.endpoints();
    let endpoints = set.endpoints();
    let picker = backend.picker(policy);
    let gated = sticky.signals().class().is_some();
    let tracked = gated || policy.tracks();
    let untried = |addr: SocketAddr| !tried.contains(&addr);
    let taken = |in_flight: InFlight, sticky: &Sticky| {
        picker.record(sticky.signals(), in_flight.endpoint());
        Look::Taken(in_flight)
    };
    if policy.max_inflight_per_endpoint.is_none() && !gated {
        let picked = affinity::pick(&picker, sticky, &set, tried, |e| untried(e.addr()));
        return match picked {
            Some(endpoint) => taken(InFlight::start(endpoint.clone(), tracked), sticky),
            None => Look::Exhausted,
        };
    }
    let cap = policy.max_inflight_per_endpoint.unwrap_or(usize::MAX);
    let now = if gated { now() } else { 0 };
    // A slot seen free may be taken before our compare-and-swap; look
    // again, at most once per endpoint.
    for _ in 0..=endpoints.len() {
        let free = |e: &Endpoint| {
            untried(e.addr()) && e.in_flight() < cap && !(gated && saturated(e, policy, now))
        };
        let Some(endpoint) = affinity::pick(&picker, sticky, &set, tried, free) else {
            break;
        };
        if let Some(in_flight) = InFlight::try_start(endpoint, cap, tracked) {
            return taken(in_flight, sticky);
        }
    }
    if endpoints.iter().any(|e| untried(e.addr())) {
        Look::Busy
    } else {
        Look::Exhausted
    }
}

/// A request counted in the queue until it leaves it.
struct Queued<'g> {
    gate: &'g Gate,
    critical: bool,
}

impl<'g> Queued<'g> {
    /// Counts a request already added to `queued`; a critical one also
    /// in `queued_critical`.
    fn new(gate: &'g Gate, critical: bool) -> Self {
        if critical {
            gate.queued_critical.fetch_add(1, Ordering::SeqCst);
        }
        Self { gate, critical }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.critical {
            self.gate.queued_critical.fetch_sub(1, Ordering::SeqCst);
        }
        self.gate.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::balance::Algorithm;
    use crate::backend::{BackendKey, EndpointUpdate};

    fn backend(n: u8, policy: BackendPolicy) -> Arc<Backend> {
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let addrs = (1..=n)
            .map(|i| SocketAddr::from(([127, 0, 0, i], 80)))
            .collect();
        let backend = Backend::new(
            key,
            &EndpointUpdate {
                addrs,
                service_found: true,
            },
        );
        backend.set_policy(Arc::new(policy));
        Arc::new(backend)
    }

    fn capped(cap: usize, max_queue: usize) -> BackendPolicy {
        BackendPolicy {
            algorithm: Algorithm::LeastRequest,
            max_inflight_per_endpoint: Some(cap),
            max_queue,
            queue_timeout: Duration::from_secs(5),
            ..BackendPolicy::default()
        }
    }

    #[tokio::test]
    async fn uncapped_backends_never_queue() {
        let backend = backend(2, BackendPolicy::default());
        let policy = backend.policy();
        let mut held = Vec::new();
        for _ in 0..100 {
            held.push(
                acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(backend.gate().queued(), 0);
        let all: Vec<SocketAddr> = backend
            .endpoints()
            .endpoints()
            .iter()
            .map(|e| e.addr())
            .collect();
        assert_eq!(
            acquire(&backend, &policy, &all, None, None, &mut Sticky::default())
                .await
                .err(),
            Some(Refused::NoEndpoints)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_take_freed_slots_in_order() {
        let backend = backend(1, capped(1, 10));
        let policy = backend.policy();
        let first = acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..3 {
            let backend = backend.clone();
            let policy = policy.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let slot =
                    acquire(&backend, &policy, &[], None, None, &mut Sticky::default()).await;
                let _ = tx.send((i, slot.is_ok()));
                // Hold the slot a moment, then free it for the next.
                tokio::time::sleep(Duration::from_millis(10)).await;
            });
            // Let each waiter queue before the next arrives.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(backend.gate().queued(), 3);
        drop(first);
        for expected in 0..3 {
            assert_eq!(rx.recv().await, Some((expected, true)));
        }
        assert_eq!(backend.gate().queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_and_a_long_wait_are_refused() {
        let backend = backend(1, capped(1, 1));
        let policy = backend.policy();
        let _slot = acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
            .await
            .unwrap();
        let waiter = {
            let backend = backend.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
                    .await
                    .err()
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
                .await
                .err(),
            Some(Refused::QueueFull)
        );
        let started = Instant::now();
        assert_eq!(waiter.await.unwrap(), Some(Refused::QueueTimeout));
        assert!(started.elapsed() >= Duration::from_secs(4));
        let deadline = Some(Instant::now() + Duration::from_millis(100));
        assert_eq!(
            acquire(
                &backend,
                &policy,
                &[],
                deadline,
                None,
                &mut Sticky::default()
            )
            .await
            .err(),
            Some(Refused::Deadline)
        );
        assert_eq!(backend.gate().queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn new_endpoints_release_waiters() {
        let backend = backend(1, capped(1, 10));
        let policy = backend.policy();
        let _slot = acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
            .await
            .unwrap();
        let waiter = {
            let backend = backend.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
                    .await
                    .map(|f| f.endpoint().addr())
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let two = SocketAddr::from(([127, 0, 0, 2], 80));
        backend.update(&EndpointUpdate {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 80)), two],
            service_found: true,
        });
        assert_eq!(waiter.await.unwrap(), Ok(two));
    }

    #[tokio::test]
    async fn the_cap_holds_under_contention() {
        let backend = backend(3, capped(2, 1000));
        let policy = backend.policy();
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let backend = backend.clone();
            let policy = policy.clone();
            tasks.push(tokio::spawn(async move {
                let slot = acquire(&backend, &policy, &[], None, None, &mut Sticky::default())
                    .await
                    .unwrap();
                let peak = backend
                    .endpoints()
                    .endpoints()
                    .iter()
                    .map(|e| e.in_flight())
                    .max()
                    .unwrap_or(0);
                tokio::task::yield_now().await;
                drop(slot);
                peak
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap() <= 2);
        }
        assert!(
            backend
                .endpoints()
                .endpoints()
                .iter()
                .all(|e| e.in_flight() == 0)
        );
    }
}
