//! The fixed-bucket histogram both the request series and the inference
//! series record into: atomics only, so a request never takes a lock, and
//! the bucket bounds kept by the caller (one copy per family, not per
//! series).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::proto::{Bucket, Histogram as ProtoHistogram};

/// A fixed-bucket histogram: per-bucket counts (the last is +Inf) and the
/// sum, as f64 bits.
#[derive(Debug)]
pub(super) struct Histogram {
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub(super) fn new(buckets: usize) -> Self {
        Self {
            counts: (0..=buckets).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, bounds: &[f64], value: f64) {
        let i = bounds.partition_point(|b| *b < value);
        if let Some(count) = self.counts.get(i) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// The number of observations and their sum.
    pub(super) fn totals(&self) -> (u64, f64) {
        let count = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        (count, f64::from_bits(self.sum.load(Ordering::Relaxed)))
    }

    pub(super) fn export(&self, bounds: &[f64]) -> ProtoHistogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(bounds.len());
        for (bound, count) in bounds.iter().zip(self.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            buckets.push(bucket);
        }
        let total = cumulative + self.counts.last().map_or(0, |c| c.load(Ordering::Relaxed));
        let mut histogram = ProtoHistogram::default();
        histogram.set_sample_count(total);
        histogram.set_sample_sum(f64::from_bits(self.sum.load(Ordering::Relaxed)));
        histogram.set_bucket(buckets);
        histogram
    }
}
