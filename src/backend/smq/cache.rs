//! Per-shard caches in front of the broker, for the partitions the shard owns.
//!
//! - [`BatchCache`]: Kafka batches recently appended (as the producer sent them, re-based
//!   as they are read: [`RecordBatch::kept_at`](crate::record_batch::RecordBatch::kept_at))
//!   or fetched (as encoded here), by offset. A consumer that follows its producers closely
//!   is answered from it: no FetchMessage round trip and no re-encoding. Bounded in bytes;
//!   the oldest batches go first, which is what a tailing consumer wants. The producer's
//!   own batch always wins: a fetch that read SMQ while the append was being acknowledged
//!   may cache its re-encoded copy first (uncompressed, without producer id and sequences),
//!   and the append then replaces it.
//! - [`TimestampIndex`]: offset → timestamp points learned by ListOffsets' binary search,
//!   so repeated lookups by time cost no broker calls. Bounded in entries.

use crate::record_batch::LogBatch;
use crate::TopicPartition;
use hashbrown::HashMap;
use std::collections::{BTreeMap, VecDeque};

struct CachedBatch {
    last_offset: i64,
    bytes: LogBatch,
    source: Source,
}

/// Where a cached batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// As the producer sent it: what every consumer of these offsets must get.
    Appended,
    /// Re-encoded here from SMQ's records: a stand-in until something better is known.
    Fetched,
}

pub struct BatchCache {
    partitions: HashMap<TopicPartition, BTreeMap<i64, CachedBatch>>,
    /// Insertion order, for eviction.
    order: VecDeque<(TopicPartition, i64)>,
    bytes: usize,
    capacity: usize,
}

impl BatchCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            partitions: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            capacity: capacity_bytes,
        }
    }

    /// Remembers the batch holding offsets `base..=last`. An appended batch replaces fetched
    /// copies of any of its offsets; otherwise a batch overlapping a cached one is not
    /// kept (the two copies would have to agree; keeping one is simpler).
    pub fn insert(
        &mut self,
        tp: &TopicPartition,
        base: i64,
        last: i64,
        bytes: LogBatch,
        source: Source,
    ) {
        if bytes.len() > self.capacity || last < base {
            return;
        }
        let batches = self.partitions.entry(tp.clone()).or_default();
        let first_overlap = batches
            .range(..=base)
            .next_back()
            .filter(|(_, b)| b.last_offset >= base)
            .map_or(base, |(start, _)| *start);
        let overlapping: Vec<(i64, Source)> = batches
            .range(first_overlap..=last)
            .map(|(start, b)| (*start, b.source))
            .collect();
        let replaceable = |other: Source| source == Source::Appended && other == Source::Fetched;
        if !overlapping.iter().all(|(_, other)| replaceable(*other)) {
            return;
        }
        for (start, _) in overlapping {
            if let Some(replaced) = batches.remove(&start) {
                // Its entry in `order` stays behind and is skipped when it comes up.
                self.bytes -= replaced.bytes.len();
            }
        }
        self.bytes += bytes.len();
        batches.insert(
            base,
            CachedBatch {
                last_offset: last,
                bytes,
                source,
            },
        );
        self.order.push_back((tp.clone(), base));
        while self.bytes > self.capacity {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        let Some((tp, base)) = self.order.pop_front() else {
            return;
        };
        if let Some(batches) = self.partitions.get_mut(&tp) {
            if let Some(evicted) = batches.remove(&base) {
                self.bytes -= evicted.bytes.len();
            }
            if batches.is_empty() {
                self.partitions.remove(&tp);
            }
        }
    }

    /// Drops the partition's batches holding offsets from `offset` on: SMQ lost them, and
    /// may give their offsets to other records.
    pub fn forget_from(&mut self, tp: &TopicPartition, offset: i64) {
        let Some(batches) = self.partitions.get_mut(tp) else {
            return;
        };
        let doomed: Vec<i64> = batches
            .iter()
            .filter(|(_, b)| b.last_offset >= offset)
            .map(|(base, _)| *base)
            .collect();
        for base in doomed {
            if let Some(dropped) = batches.remove(&base) {
                // Its entry in `order` stays behind and is skipped when it comes up.
                self.bytes -= dropped.bytes.len();
            }
        }
    }

    /// Consecutive cached batches from the one holding `offset`, up to about `max_bytes`
    /// (always the first), with the offset after the last; `None` if `offset` is not
    /// cached.
    pub fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Option<(Vec<LogBatch>, i64)> {
        let batches = self.partitions.get(tp)?;
        let (_, first) = batches
            .range(..=offset)
            .next_back()
            .filter(|(_, b)| b.last_offset >= offset)?;
        let mut size = first.bytes.len();
        let mut next = first.last_offset + 1;
        let mut found = vec![first.bytes.clone()];
        while let Some(batch) = batches.get(&next) {
            if size + batch.bytes.len() > max_bytes {
                break;
            }
            size += batch.bytes.len();
            next = batch.last_offset + 1;
            found.push(batch.bytes.clone());
        }
        Some((found, next))
    }
}

pub struct TimestampIndex {
    points: HashMap<(TopicPartition, i64), (i64, u64)>,
    clock: u64,
    capacity: usize,
}

impl TimestampIndex {
    pub fn new(capacity: usize) -> Self {
        Self {
            points: HashMap::new(),
            clock: 0,
            capacity: capacity.max(2),
        }
    }

    pub fn get(&mut self, tp: &TopicPartition, offset: i64) -> Option<i64> {
        self.clock += 1;
        let clock = self.clock;
        let point = self.points.get_mut(&(tp.clone(), offset))?;
        point.1 = clock;
        Some(point.0)
    }

    pub fn insert(&mut self, tp: &TopicPartition, offset: i64, timestamp: i64) {
        self.clock += 1;
        if self.points.len() >= self.capacity {
            // Drop the least recently used half in one sweep: amortised O(1) per insert.
            let mut ages: Vec<u64> = self.points.values().map(|p| p.1).collect();
            let middle = ages.len() / 2;
            let (_, cutoff, _) = ages.select_nth_unstable(middle);
            let cutoff = *cutoff;
            self.points.retain(|_, p| p.1 > cutoff);
        }
        self.points
            .insert((tp.clone(), offset), (timestamp, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn served(bytes: impl Into<Bytes>) -> LogBatch {
        LogBatch::as_served(bytes.into())
    }

    #[test]
    fn forgetting_drops_every_batch_reaching_the_offset() {
        let mut cache = BatchCache::new(1 << 20);
        cache.insert(&tp(), 0, 9, served(vec![0; 100]), Source::Appended);
        cache.insert(&tp(), 10, 19, served(vec![1; 100]), Source::Appended);
        cache.insert(&tp(), 20, 29, served(vec![2; 100]), Source::Appended);
        cache.forget_from(&tp(), 15);
        assert_eq!(cache.read(&tp(), 0, 1000).map(|r| r.1), Some(10));
        assert!(cache.read(&tp(), 15, 1000).is_none());
        assert!(cache.read(&tp(), 25, 1000).is_none());
        // Its bytes are free again: as much as fits fits.
        cache.insert(&tp(), 10, 19, served(vec![9; 100]), Source::Appended);
        assert_eq!(cache.read(&tp(), 10, 1000).map(|r| r.1), Some(20));
    }

    #[test]
    fn reads_follow_consecutive_batches_within_the_byte_budget() {
        let mut cache = BatchCache::new(1 << 20);
        cache.insert(&tp(), 0, 9, served(vec![0; 100]), Source::Appended);
        cache.insert(&tp(), 10, 19, served(vec![1; 100]), Source::Fetched);
        cache.insert(&tp(), 30, 39, served(vec![3; 100]), Source::Appended);
        let (batches, next) = cache.read(&tp(), 5, 1000).expect("cached");
        assert_eq!((batches.len(), next), (2, 20), "stops at the gap");
        let (batches, next) = cache.read(&tp(), 5, 150).expect("cached");
        assert_eq!(
            (batches.len(), next),
            (1, 10),
            "at least one, then the budget"
        );
        assert!(cache.read(&tp(), 20, 1000).is_none());
        assert!(cache.read(&TopicPartition::new("t", 1), 0, 1000).is_none());
    }

    #[test]
    fn overlapping_batches_are_not_cached_twice_and_the_oldest_go_first() {
        let mut cache = BatchCache::new(250);
        cache.insert(&tp(), 0, 9, served(vec![0; 100]), Source::Appended);
        cache.insert(&tp(), 5, 14, served(vec![9; 100]), Source::Fetched);
        assert_eq!(cache.read(&tp(), 12, 1000), None);
        cache.insert(&tp(), 10, 19, served(vec![1; 100]), Source::Fetched);
        cache.insert(&tp(), 20, 29, served(vec![2; 100]), Source::Fetched);
        assert!(cache.read(&tp(), 0, 1000).is_none(), "evicted");
        assert_eq!(cache.read(&tp(), 10, 1000).map(|r| r.1), Some(30));
    }

    /// A fetch that read SMQ while the append was being acknowledged cached its re-encoded
    /// copy first; the producer's own batch must still be what later consumers get.
    #[test]
    fn the_producers_batch_replaces_a_fetched_copy_and_never_the_other_way() {
        let mut cache = BatchCache::new(1 << 20);
        let fetched = served(&b"re-encoded by a racing fetch"[..]);
        let appended = served(&b"as the producer sent it"[..]);
        cache.insert(&tp(), 0, 4, fetched.clone(), Source::Fetched);
        cache.insert(&tp(), 5, 9, fetched.clone(), Source::Fetched);
        cache.insert(&tp(), 0, 9, appended.clone(), Source::Appended);
        assert_eq!(
            cache.read(&tp(), 3, 1000),
            Some((vec![appended.clone()], 10))
        );
        assert_eq!(
            cache.read(&tp(), 7, 1000),
            Some((vec![appended.clone()], 10))
        );
        cache.insert(&tp(), 0, 9, fetched.clone(), Source::Fetched);
        cache.insert(&tp(), 2, 3, fetched, Source::Appended);
        assert_eq!(cache.read(&tp(), 0, 1000), Some((vec![appended], 10)));
        assert_eq!(cache.bytes, b"as the producer sent it".len());
    }

    #[test]
    fn the_timestamp_index_keeps_recently_used_points() {
        let mut index = TimestampIndex::new(4);
        for offset in 0..4 {
            index.insert(&tp(), offset, 1000 + offset);
        }
        assert_eq!(index.get(&tp(), 0), Some(1000));
        index.insert(&tp(), 4, 1004);
        assert_eq!(index.get(&tp(), 0), Some(1000), "recently used");
        assert_eq!(index.get(&tp(), 4), Some(1004));
        assert_eq!(index.get(&tp(), 1), None, "least recently used");
    }
}
