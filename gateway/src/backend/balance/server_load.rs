//! What an endpoint's model server says about itself, scraped from its
//! Prometheus metrics by the `scrape` task: requests waiting and running,
//! KV-cache utilisation, the LoRA adapters it has loaded.
//!
//! The scraper writes, the pickers read, both through atomics on the
//! endpoint; a pick never waits for a scrape. Values count only while
//! fresh: scraped successfully within the backend's
//! `endpoint-metrics-max-age`. A failed scrape withdraws them at once, a
//! stale one by age, and the pickers fall back to the gateway's own view
//! (its in-flight counts and outstanding-work signals).
//!
//! Internal: the values and their stamp are separate words, so a pick
//! racing a scrape may pair new values with the previous stamp; the error
//! is one scrape interval, which balancing tolerates.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::decay::Stamp;

/// The most adapters remembered per endpoint (vLLM's `max_loras` is
/// usually far below); further ones are not matched.
pub const MAX_ADAPTERS: usize = 16;

/// Not reported by the server.
const UNKNOWN: u32 = u32::MAX;

/// When an endpoint's model server is saturated: this many requests
/// waiting, or this much of its KV cache used (GIE's defaults: 5, 0.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saturation {
    /// `saturation-queue`: requests waiting (the server's queue, or the
    /// gateway's unanswered attempts when metrics are stale).
    pub queue: u32,
    /// `saturation-kv-cache`, in thousandths (800 = 0.8).
    pub kv_cache_permille: u32,
}

impl Default for Saturation {
    fn default() -> Self {
        Self {
            queue: 5,
            kv_cache_permille: 800,
        }
    }
}

/// One scrape's findings, before they are stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Requests waiting in the server's queue.
    pub waiting: Option<f64>,
    /// Requests the server is generating.
    pub running: Option<f64>,
    /// KV-cache utilisation, 0 to 1.
    pub kv_cache: Option<f64>,
    /// Hashes ([`adapter_hash`]) of the adapters loaded or waiting.
    pub adapters: Vec<u64>,
}

/// The scraped values of one endpoint, and its scrape schedule.
#[derive(Debug)]
pub(crate) struct ServerLoad {
    waiting: AtomicU32,
    running: AtomicU32,
    kv_permille: AtomicU32,
    adapters: [AtomicU64; MAX_ADAPTERS],
    /// When the values were scraped; never (0) after a failed scrape.
    scraped: Stamp,
    /// How long they stay fresh, in nanoseconds.
    max_age: AtomicU64,
    /// When the next scrape is due.
    pub(crate) due: Stamp,
    /// A scrape is running.
    pub(crate) busy: AtomicBool,
}

impl Default for ServerLoad {
    fn default() -> Self {
        Self {
            waiting: AtomicU32::new(UNKNOWN),
            running: AtomicU32::new(UNKNOWN),
            kv_permille: AtomicU32::new(UNKNOWN),
            adapters: Default::default(),
            scraped: Stamp::default(),
            max_age: AtomicU64::new(0),
            due: Stamp::default(),
            busy: AtomicBool::new(false),
        }
    }
}

impl ServerLoad {
    /// Stores a successful scrape at `now`, fresh for `max_age` ns.
    pub(crate) fn store(&self, report: &Report, max_age: u64, now: u64) {
        let count = |v: Option<f64>| v.map_or(UNKNOWN, |v| v.clamp(0.0, 1e9) as u32);
        self.waiting.store(count(report.waiting), Ordering::Relaxed);
        self.running.store(count(report.running), Ordering::Relaxed);
        let kv = report
            .kv_cache
            .map_or(UNKNOWN, |v| (v.clamp(0.0, 1.0) * 1000.0).round() as u32);
        self.kv_permille.store(kv, Ordering::Relaxed);
        for (i, slot) in self.adapters.iter().enumerate() {
            slot.store(
                report.adapters.get(i).copied().unwrap_or(0),
                Ordering::Relaxed,
            );
        }
        self.max_age.store(max_age, Ordering::Relaxed);
        self.scraped.set(now);
    }

    /// A scrape failed: the values no longer count.
    pub(crate) fn failed(&self) {
        self.scraped.set(0);
    }

    /// Whether the values count at `now`.
    pub(crate) fn fresh(&self, now: u64) -> bool {
        self.scraped
            .get()
            .is_some_and(|at| now.saturating_sub(at) <= self.max_age.load(Ordering::Relaxed))
    }

    fn value(&self, word: &AtomicU32, now: u64) -> Option<u32> {
        Some(word.load(Ordering::Relaxed)).filter(|v| *v != UNKNOWN && self.fresh(now))
    }

    /// Requests waiting and running on the server, when fresh and reported.
    pub(crate) fn requests(&self, now: u64) -> Option<u32> {
        let waiting = self.value(&self.waiting, now);
        let running = self.value(&self.running, now);
        match (waiting, running) {
            (None, None) => None,
            (w, r) => Some(w.unwrap_or(0).saturating_add(r.unwrap_or(0))),
        }
    }

    /// Whether fresh values show the server saturated.
    pub(crate) fn saturated(&self, limits: Saturation, now: u64) -> bool {
        self.value(&self.waiting, now)
            .is_some_and(|w| w >= limits.queue)
            || self
                .value(&self.kv_permille, now)
                .is_some_and(|kv| kv >= limits.kv_cache_permille)
    }

    /// Whether fresh values list the adapter hashed as `adapter`.
    pub(crate) fn has_adapter(&self, adapter: u64, now: u64) -> bool {
        adapter != 0
            && self.fresh(now)
            && self
                .adapters
                .iter()
                .any(|a| a.load(Ordering::Relaxed) == adapter)
    }

    /// KV-cache utilisation, when fresh and reported (for tests and logs).
    #[cfg(test)]
    pub(crate) fn kv_cache(&self, now: u64) -> Option<f64> {
        self.value(&self.kv_permille, now)
            .map(|v| f64::from(v) / 1000.0)
    }
}

/// The hash an adapter (or model) name is matched by; never 0.
pub fn adapter_hash(name: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6c6f_7261).hash_one(name) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn report() -> Report {
        Report {
            waiting: Some(2.0),
            running: Some(3.0),
            kv_cache: Some(0.85),
            adapters: vec![adapter_hash(b"sql-lora")],
        }
    }

    #[test]
    fn values_count_while_fresh_and_not_after_a_failure() {
        let load = ServerLoad::default();
        assert_eq!(load.requests(SECOND), None);
        load.store(&report(), 2 * SECOND, SECOND);
        assert_eq!(load.requests(2 * SECOND), Some(5));
        assert_eq!(load.kv_cache(2 * SECOND), Some(0.85));
        assert!(load.has_adapter(adapter_hash(b"sql-lora"), 2 * SECOND));
        assert!(!load.has_adapter(adapter_hash(b"other"), 2 * SECOND));
        // Stale after max-age.
        assert_eq!(load.requests(4 * SECOND), None);
        assert!(!load.has_adapter(adapter_hash(b"sql-lora"), 4 * SECOND));
        load.store(&report(), 2 * SECOND, 4 * SECOND);
        assert_eq!(load.requests(4 * SECOND), Some(5));
        load.failed();
        assert_eq!(load.requests(4 * SECOND), None);
    }

    #[test]
    fn saturation_by_queue_or_kv_cache() {
        let load = ServerLoad::default();
        let limits = Saturation::default();
        assert!(!load.saturated(limits, SECOND));
        load.store(&report(), SECOND, SECOND);
        assert!(load.saturated(limits, SECOND), "kv 0.85 >= 0.8");
        let calm = Report {
            kv_cache: Some(0.5),
            ..report()
        };
        load.store(&calm, SECOND, SECOND);
        assert!(!load.saturated(limits, SECOND));
        let queued = Report {
            waiting: Some(5.0),
            ..calm
        };
        load.store(&queued, SECOND, SECOND);
        assert!(load.saturated(limits, SECOND));
        assert!(!load.saturated(limits, 3 * SECOND), "stale");
    }

    #[test]
    fn unreported_values_are_unknown() {
        let load = ServerLoad::default();
        let only_running = Report {
            running: Some(4.0),
            ..Report::default()
        };
        load.store(&only_running, SECOND, SECOND);
        assert_eq!(load.requests(SECOND), Some(4));
        assert_eq!(load.kv_cache(SECOND), None);
        assert!(!load.saturated(Saturation::default(), SECOND));
    }
}
