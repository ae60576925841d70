//! A time-decayed moving average that many threads update without a lock,
//! as ingress-nginx's `ewma.lua` computes it: a sample `r` arriving `t`
//! after the previous one moves the average `v` to `v·w + r·(1−w)` with
//! `w = e^(−t/τ)`, and a score read `t` after the last sample is `v·w`
//! (an endpoint left alone drifts back to zero and gets tried again).

use std::sync::atomic::{AtomicU64, Ordering};

/// ingress-nginx's `DECAY_TIME` (10 s), in nanoseconds.
const DECAY_NANOS: f64 = 10e9;

/// The average (seconds, as f64 bits) and when it last moved (0: never).
///
/// Internal: the two words are updated one after the other, so a reader
/// racing a writer may pair a new stamp with an old value. The error is
/// one sample's weight, which balancing tolerates; a lock would not be.
#[derive(Debug, Default)]
pub(crate) struct Decayed {
    value: AtomicU64,
    stamp: AtomicU64,
}

impl Decayed {
    /// An average that starts at `value` seconds at `now`.
    pub(crate) fn starting_at(value: f64, now: u64) -> Self {
        Self {
            value: AtomicU64::new(value.to_bits()),
            stamp: AtomicU64::new(now),
        }
    }

    /// The stored average, if it ever had a value.
    pub(crate) fn raw(&self) -> Option<f64> {
        (self.stamp.load(Ordering::Relaxed) != 0)
            .then(|| f64::from_bits(self.value.load(Ordering::Relaxed)))
    }

    /// The average decayed for the time since it last moved.
    pub(crate) fn decayed(&self, now: u64) -> f64 {
        let stamp = self.stamp.load(Ordering::Relaxed);
        f64::from_bits(self.value.load(Ordering::Relaxed)) * weight(now, stamp)
    }

    /// Folds `sample` (seconds) in at `now`. With `peak`, a sample above
    /// the stored average replaces it at once.
    pub(crate) fn observe(&self, sample: f64, now: u64, peak: bool) {
        let w = weight(now, self.stamp.swap(now, Ordering::Relaxed));
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let value = f64::from_bits(bits);
                let next = if peak && sample > value {
                    sample
                } else {
                    value * w + sample * (1.0 - w)
                };
                Some(next.to_bits())
            });
    }
}

/// A moment on the balancer clock ([`super::now`]), shared without a
/// lock; 0 means never.
#[derive(Debug, Default)]
pub(crate) struct Stamp(AtomicU64);

impl Stamp {
    /// Records `now`.
    pub(crate) fn set(&self, now: u64) {
        self.0.store(now, Ordering::Relaxed);
    }

    /// The moment recorded, if any.
    pub(crate) fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    /// Seconds from the recorded moment to `now` (0 if never recorded or
    /// later than `now`).
    pub(crate) fn seconds_until(&self, now: u64) -> f64 {
        self.get()
            .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1e9)
    }
}

/// The weight of the old average `now − stamp` nanoseconds later; a
/// never-touched average (stamp 0) has none.
fn weight(now: u64, stamp: u64) -> f64 {
    if stamp == 0 {
        return 0.0;
    }
    (-(now.saturating_sub(stamp) as f64) / DECAY_NANOS).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_first_sample_is_the_average() {
        let d = Decayed::default();
        assert_eq!(d.raw(), None);
        assert_eq!(d.decayed(5 * SECOND), 0.0);
        d.observe(0.2, 5 * SECOND, false);
        assert_eq!(d.raw(), Some(0.2));
        assert!(close(d.decayed(5 * SECOND), 0.2));
    }

    #[test]
    fn samples_weigh_by_the_time_since_the_last() {
        let d = Decayed::starting_at(1.0, SECOND);
        // Ten seconds later the old average keeps e^-1 of its weight.
        d.observe(0.0, 11 * SECOND, false);
        assert!(close(d.raw().unwrap(), (-1.0f64).exp()));
        // Idle time decays the score, not the stored average.
        let before = d.raw().unwrap();
        assert!(close(d.decayed(21 * SECOND), before * (-1.0f64).exp()));
        assert_eq!(d.raw(), Some(before));
    }

    #[test]
    fn peaks_count_at_once() {
        let d = Decayed::starting_at(0.1, SECOND);
        d.observe(2.0, SECOND + 1, true);
        assert_eq!(d.raw(), Some(2.0));
        // A lower sample only pulls it down by its weight.
        d.observe(0.1, SECOND + 2, true);
        assert!(d.raw().unwrap() > 1.99);
        let plain = Decayed::starting_at(0.1, SECOND);
        plain.observe(2.0, SECOND + 1, false);
        assert!(plain.raw().unwrap() < 0.11);
    }
}
