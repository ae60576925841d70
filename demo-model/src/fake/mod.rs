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

mod config;
mod dist;
mod generate;
mod profile;
mod slots;
#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use fastrand::Rng;
use tokio::time::Instant;

pub use config::{ConfigError, FakeConfig, FakeReplica, MAX_REPLICAS, ReplicaSpec};
pub use dist::{Dist, InvalidDist};
pub(crate) use generate::{metrics, predict, stream};
use profile::Plan;
pub use profile::{
    HeadersAt, InvalidProfile, MAX_DELAY_MS, MAX_QUEUE, MAX_SLOTS, MAX_TOKENS, Profile, Stuck,
};
pub(crate) use slots::Slot;
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
}

impl Engine {
    /// A replica with this (checked) profile and seed.
    pub(crate) fn new(profile: Profile, seed: u64) -> Result<Self, InvalidProfile> {
        profile.check()?;
        Ok(Self {
            slots: Slots::new(profile.slots, profile.max_queue),
            profile,
            rng: Mutex::new(Rng::with_seed(seed)),
            bound: Instant::now(),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
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

    /// Draws the plan of a request that just got its slot.
    fn plan(&self) -> Plan {
        let since_bound = self.bound.elapsed();
        // A poisoned lock only means a panic elsewhere; the Rng is fine.
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        self.profile.plan(&mut rng, since_bound)
    }
}
