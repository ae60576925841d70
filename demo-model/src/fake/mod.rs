//! Fake model replicas for tests and benchmarks.
//!
//! A fake replica is a [`ModelServer`](crate::ModelServer) bound with a
//! [`Profile`] ([`ModelServer::bind_fake`](crate::ModelServer::bind_fake)):
//! its predictions and streams then behave like a model server under load
//! instead of answering at once. Each request waits in a FIFO queue for one
//! of the profile's `slots`, then generates its tokens: the first after the
//! time to first token, the others spaced by the inter-token delay. Delays
//! and lengths come from seeded distributions, so a run can be repeated.
//!
//! Routes are those of the demo replica, plus `GET .../metrics`:
//!
//! | last segment | methods   | answer                                                 |
//! |--------------|-----------|--------------------------------------------------------|
//! | `health`     | GET, HEAD | as the demo (never queued)                             |
//! | `metrics`    | GET       | `vllm:num_requests_running`/`waiting`, request counts  |
//! | `stream`     | GET, POST | an SSE token stream, one event per token, `[DONE]`     |
//! | anything     | POST      | a JSON answer once the last token is generated         |
//!
//! Every generated answer carries `x-queue-depth` (its place in line on
//! arrival: 0 when a slot was free, n when n - 1 requests were already
//! waiting) and `x-queue-wait-ms`; a request that finds the queue full gets
//! 503 with `Retry-After: 1` and `x-queue-depth` (the requests waiting).

mod cache;
mod config;
mod dist;
mod generate;
mod profile;
mod slots;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cache::{Ask, PrefixCache};
use fastrand::Rng;
use tokio::time::Instant;

use crate::Replica;

pub use config::{ConfigError, FakeConfig, FakeReplica, MAX_REPLICAS, ReplicaSpec};
pub use dist::{Dist, InvalidDist};
pub(crate) use generate::{metrics, predict, stream};
use profile::Plan;
pub use profile::{
    Hang, HeadersAt, InvalidProfile, MAX_DELAY_MS, MAX_QUEUE, MAX_SLOTS, MAX_TOKENS,
    PrefixCacheProfile, Profile, Stuck,
};
use slots::Slot;
use slots::{Admitted, QueueFull, Slots};

/// A fake replica's state: its profile, slots, random source and counts.
#[derive(Debug)]
pub(crate) struct Engine {
    profile: Profile,
    slots: Slots,
    /// Draws plans; locked only to draw, never across an await.
    rng: Mutex<Rng>,
    /// When the replica was bound: the origin of the stuck window.
    bound: Instant,
    /// Requests that got a slot.
    admitted: AtomicU64,
    /// Requests refused because the queue was full.
    rejected: AtomicU64,
    /// Requests that arrived (predictions and streams).
    arrivals: AtomicU64,
    /// Requests being handled: waiting, generating or streaming.
    active: AtomicU64,
    /// Tokens held in the KV cache: prompts and tokens generated so far.
    kv_tokens: AtomicU64,
    /// The simulated prefix cache, if the profile has one.
    prefix: Option<Mutex<PrefixCache>>,
    /// Prompt blocks looked up, and found, in the prefix cache.
    prefix_blocks: AtomicU64,
    prefix_hits: AtomicU64,
    /// Requests being handled when the hang began (-1 before).
    hang_in_flight: AtomicI64,
    /// Requests that arrived during the hang, and the last one's offset
    /// into it (ms).
    hang_arrivals: AtomicU64,
    hang_last_arrival_ms: AtomicU64,
}

impl Engine {
    /// A replica with this (checked) profile and seed.
    pub(crate) fn new(profile: Profile, seed: u64) -> Result<Self, InvalidProfile> {
        profile.check()?;
        Ok(Self {
            slots: Slots::new(profile.slots, profile.max_queue),
            rng: Mutex::new(Rng::with_seed(seed)),
            bound: Instant::now(),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
            active: AtomicU64::new(0),
            kv_tokens: AtomicU64::new(0),
            prefix: profile
                .prefix_cache
                .map(|p| Mutex::new(PrefixCache::new(p))),
            prefix_blocks: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            hang_in_flight: AtomicI64::new(-1),
            hang_arrivals: AtomicU64::new(0),
            hang_last_arrival_ms: AtomicU64::new(0),
            profile,
        })
    }

    /// The end of the hang, if the replica is hung now.
    pub(crate) fn frozen_until(&self) -> Option<Instant> {
        let (start, end) = self.profile.hang?.window();
        let since = self.bound.elapsed();
        (start..end).contains(&since).then(|| self.bound + end)
    }

    /// Waits out the hang, if the replica is hung now.
    async fn thaw(&self) {
        if let Some(end) = self.frozen_until() {
            tokio::time::sleep_until(end).await;
        }
    }

    /// Records the hang's start: the requests being handled then. Runs
    /// beside the server when the profile has a hang.
    pub(crate) async fn watch_hang(replica: Arc<Replica>) {
        let Some(engine) = &replica.fake else {
            return;
        };
        let Some(hang) = engine.profile.hang else {
            return;
        };
        tokio::time::sleep_until(engine.bound + hang.window().0).await;
        let active = engine.active.load(Ordering::SeqCst);
        engine
            .hang_in_flight
            .store(i64::try_from(active).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// KV-cache utilisation, reported or computed.
    fn kv_usage(&self) -> f64 {
        self.profile.kv_cache_usage.unwrap_or_else(|| {
            let held = self.kv_tokens.load(Ordering::Relaxed) as f64;
            (held / self.profile.kv_cache_tokens as f64).min(1.0)
        })
    }

    /// Waits for a slot (FIFO), or reports the queue full.
    async fn admit(&self) -> Result<Admitted, QueueFull> {
        let admitted = self.slots.acquire().await;
        let counter = match admitted {
            Ok(_) => &self.admitted,
            Err(_) => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        admitted
    }

    /// Draws the plan of a request that just got its slot: its prefill
    /// of the blocks the prefix cache does not hold comes first.
    fn plan(&self, ask: &Ask) -> Plan {
        let since_bound = self.bound.elapsed();
        let mut plan = {
            // A poisoned lock only means a panic elsewhere; the Rng is fine.
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            self.profile.plan(&mut rng, since_bound, ask.max_tokens)
        };
        if let Some(cache) = &self.prefix {
            let found = cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .lookup(&ask.prompt);
            self.prefix_blocks
                .fetch_add(found.blocks, Ordering::Relaxed);
            self.prefix_hits.fetch_add(found.hits, Ordering::Relaxed);
            let prefill = found.prefill.mul_f64(self.profile.slow_factor);
            plan.ttft = plan.ttft.saturating_add(prefill);
        }
        plan
    }
}

/// One request on a fake replica, from arrival to its last byte: counted
/// as active, and holding its slot and KV-cache tokens once admitted.
#[derive(Debug)]
pub(crate) struct Lease {
    replica: Arc<Replica>,
    slot: Option<Slot>,
    kv_tokens: u64,
}

impl Lease {
    /// A request arrived (during the hang, it is counted as such).
    pub(crate) fn arrive(replica: &Arc<Replica>, engine: &Engine) -> Self {
        engine.arrivals.fetch_add(1, Ordering::Relaxed);
        engine.active.fetch_add(1, Ordering::SeqCst);
        if let Some(hang) = engine.profile.hang
            && engine.frozen_until().is_some()
        {
            let into = engine.bound.elapsed().saturating_sub(hang.window().0);
            engine.hang_arrivals.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(into.as_millis()).unwrap_or(u64::MAX);
            engine.hang_last_arrival_ms.fetch_max(ms, Ordering::Relaxed);
        }
        Self {
            replica: replica.clone(),
            slot: None,
            kv_tokens: 0,
        }
    }

    /// The request got its slot; its prompt enters the KV cache.
    fn admitted(&mut self, slot: Slot, prompt_tokens: u64) {
        self.slot = Some(slot);
        self.hold(prompt_tokens);
    }

    /// `tokens` more enter the KV cache.
    fn hold(&mut self, tokens: u64) {
        if let Some(engine) = &self.replica.fake {
            engine.kv_tokens.fetch_add(tokens, Ordering::Relaxed);
            self.kv_tokens += tokens;
        }
    }

    /// A token was generated.
    pub(crate) fn token(&mut self) {
        self.hold(1);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(engine) = &self.replica.fake {
            engine
                .kv_tokens
                .fetch_sub(self.kv_tokens, Ordering::Relaxed);
            engine.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// How long a stream event waits while the replica is hung: until the
/// hang ends, from `due`.
pub(crate) fn hung_until(replica: &Replica) -> Option<Instant> {
    replica.fake.as_ref()?.frozen_until()
}
