//! Request latency, counted in buckets whose upper bounds double: 16 µs, 32 µs, … 16.8 s,
//! then everything slower. Finding a bucket is one leading-zeros count, so recording a
//! request costs a few instructions; the scrape turns them into Prometheus's cumulative
//! `le` buckets.

use std::cell::Cell;
use std::time::Duration;

/// Buckets with an upper bound; one more holds what is slower than the last.
pub const BOUNDED: usize = 21;
/// The first bucket's upper bound is 2^FIRST_SHIFT µs.
const FIRST_SHIFT: u32 = 4;

/// A shard's latency counts for one API.
#[derive(Default)]
pub struct Histogram {
    counts: [Cell<u64>; BOUNDED + 1],
    sum_micros: Cell<u64>,
}

/// What a scrape reads of a [`Histogram`]: counts per bucket (not cumulative) and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyBuckets {
    pub counts: Vec<u64>,
    pub sum_micros: u64,
}

impl Histogram {
    pub fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let count = &self.counts[bucket(micros)];
        count.set(count.get() + 1);
        self.sum_micros
            .set(self.sum_micros.get().saturating_add(micros));
    }

    pub fn buckets(&self) -> LatencyBuckets {
        LatencyBuckets {
            counts: self.counts.iter().map(Cell::get).collect(),
            sum_micros: self.sum_micros.get(),
        }
    }
}

/// The first bucket whose bound is at least `micros`: ⌈log2(micros)⌉ − FIRST_SHIFT, within
/// range.
fn bucket(micros: u64) -> usize {
    let log2_ceiling = u64::BITS - micros.saturating_sub(1).leading_zeros();
    (log2_ceiling.saturating_sub(FIRST_SHIFT) as usize).min(BOUNDED)
}

/// Bucket `index`'s upper bound in seconds, as Prometheus's `le` label; `None` for the last.
pub fn upper_bound_seconds(index: usize) -> Option<f64> {
    (index < BOUNDED).then(|| (1u64 << (index as u32 + FIRST_SHIFT)) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_lands_in_the_first_bucket_that_holds_it() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(16), 0);
        assert_eq!(bucket(17), 1);
        assert_eq!(bucket(32), 1);
        assert_eq!(bucket(33), 2);
        assert_eq!(bucket(1 << 24), BOUNDED - 1);
        assert_eq!(bucket((1 << 24) + 1), BOUNDED);
        assert_eq!(bucket(u64::MAX), BOUNDED);
        assert_eq!(upper_bound_seconds(0), Some(0.000016));
        assert_eq!(upper_bound_seconds(BOUNDED), None);
        let histogram = Histogram::default();
        histogram.record(Duration::from_micros(20));
        histogram.record(Duration::from_secs(60));
        let read = histogram.buckets();
        assert_eq!((read.counts[1], read.counts[BOUNDED]), (1, 1));
        assert_eq!(read.sum_micros, 60_000_020);
    }
}
