//! Per-shard caches in front of the broker, for the partitions the shard owns.
//!
//! - [`BatchCache`]: Kafka batches recently appended (as the producer sent them, re-based
//!   as they are read: [`RecordBatch::kept_at`](crate::record_batch::RecordBatch::kept_at))
//!   or fetched (as encoded here), by offset. A consumer that follows its producers closely
//!   is answered from it: no FetchMessage round trip and no re-encoding. Bounded in bytes;
//!   batches already read go first, then the oldest: a tailing consumer reads the oldest
//!   first anyway, and one catching up keeps what it has not reached (read_ahead.rs). The producer's
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
    /// Served to a consumer at least once.
    read: bool,
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
    /// Batches in the order they were cached, and in the order they were first read: a
    /// batch read goes before one no consumer has reached yet (a file read ahead, the rest
    /// of one a consumer is reading), then the oldest. Entries of batches gone since stay
    /// behind, skipped when they come up, until `compact` drops them.
    order: VecDeque<(TopicPartition, i64)>,
    read_order: VecDeque<(TopicPartition, i64)>,
    batches: usize,
    bytes: usize,
    /// Of `bytes`, those of batches never read.
    unread: usize,
    capacity: usize,
}

impl BatchCache {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            partitions: HashMap::new(),
            order: VecDeque::new(),
            read_order: VecDeque::new(),
            batches: 0,
            bytes: 0,
            unread: 0,
            capacity: capacity_bytes,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes of cached batches no read has reached.
    pub fn unread_bytes(&self) -> usize {
        self.unread
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
            self.remove(tp, start);
        }
        self.bytes += bytes.len();
        self.unread += bytes.len();
        self.batches += 1;
        self.partitions.entry(tp.clone()).or_default().insert(
            base,
            CachedBatch {
                last_offset: last,
                bytes,
                source,
                read: false,
            },
        );
        self.order.push_back((tp.clone(), base));
        while self.bytes > self.capacity {
            self.evict();
        }
        self.compact();
    }

    /// Evicts the batch read first, else the oldest.
    fn evict(&mut self) {
        while let Some((tp, base)) = self.read_order.pop_front() {
            let read = self
                .partitions
                .get(&tp)
                .and_then(|batches| batches.get(&base))
                .is_some_and(|batch| batch.read);
            if read {
                self.remove(&tp, base);
                return;
            }
        }
        while let Some((tp, base)) = self.order.pop_front() {
            if self.remove(&tp, base) {
                return;
            }
        }
    }

    /// Removes the batch beginning at `base`, if one does.
    fn remove(&mut self, tp: &TopicPartition, base: i64) -> bool {
        let Some(batches) = self.partitions.get_mut(tp) else {
            return false;
        };
        let Some(removed) = batches.remove(&base) else {
            return false;
        };
        if batches.is_empty() {
            self.partitions.remove(tp);
        }
        self.batches -= 1;
        self.bytes -= removed.bytes.len();
        if !removed.read {
            self.unread -= removed.bytes.len();
        }
        true
    }

    /// Drops the entries of batches gone from `order` and `read_order` once they outnumber
    /// the batches: replaced, forgotten and read-first evictions leave them behind.
    fn compact(&mut self) {
        let bound = 2 * self.batches + 64;
        if self.order.len() + self.read_order.len() <= bound {
            return;
        }
        let partitions = &self.partitions;
        let present = |(tp, base): &(TopicPartition, i64)| {
            partitions.get(tp).is_some_and(|b| b.contains_key(base))
        };
        self.order.retain(present);
        self.read_order
            .retain(|entry| present(entry) && partitions[&entry.0][&entry.1].read);
    }

    /// Drops the partition's batches holding offsets from `offset` on: SMQ lost them, and
    /// may give their offsets to other records.
    pub fn forget_from(&mut self, tp: &TopicPartition, offset: i64) {
        let Some(batches) = self.partitions.get(tp) else {
            return;
        };
        let doomed: Vec<i64> = batches
            .iter()
            .filter(|(_, b)| b.last_offset >= offset)
            .map(|(base, _)| *base)
            .collect();
        for base in doomed {
            self.remove(tp, base);
        }
    }

    /// Whether a cached batch holds `offset`.
    pub fn holds(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.holding(tp, offset).is_some()
    }

    /// How far consecutive cached batches reach from `offset`: the offset after the last
    /// of them and their bytes, counted up to `enough`; (`offset`, 0) if it is not cached.
    pub fn cached_from(&self, tp: &TopicPartition, offset: i64, enough: usize) -> (i64, usize) {
        let Some(first) = self.holding(tp, offset) else {
            return (offset, 0);
        };
        let batches = &self.partitions[tp];
        let mut size = first.bytes.len();
        let mut next = first.last_offset + 1;
        while let Some(batch) = batches.get(&next).filter(|_| size < enough) {
            size += batch.bytes.len();
            next = batch.last_offset + 1;
        }
        (next, size)
    }

    /// The cached batch holding `offset`.
    fn holding(&self, tp: &TopicPartition, offset: i64) -> Option<&CachedBatch> {
        let (_, batch) = self
            .partitions
            .get(tp)?
            .range(..=offset)
            .next_back()
            .filter(|(_, b)| b.last_offset >= offset)?;
        Some(batch)
    }

    /// Consecutive cached batches from the one holding `offset`, up to about `max_bytes`
    /// (always the first), with the offset after the last; `None` if `offset` is not
    /// cached. They count as read from now on.
    pub fn read(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Option<(Vec<LogBatch>, i64)> {
        let base = *self
            .partitions
            .get(tp)?
            .range(..=offset)
            .next_back()
            .filter(|(_, b)| b.last_offset >= offset)?
            .0;
        let batches = self.partitions.get_mut(tp)?;
        let mut found = Vec::new();
        let mut size = 0;
        let mut next = base;
        while let Some(batch) = batches.get_mut(&next) {
            if !found.is_empty() && size + batch.bytes.len() > max_bytes {
                break;
            }
            size += batch.bytes.len();
            found.push(batch.bytes.clone());
            if !batch.read {
                batch.read = true;
                self.unread -= batch.bytes.len();
                self.read_order.push_back((tp.clone(), next));
            }
            next = batch.last_offset + 1;
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
    fn how_far_the_cache_reaches_counts_consecutive_batches_up_to_enough() {
        let mut cache = BatchCache::new(1 << 20);
        cache.insert(&tp(), 0, 9, served(vec![0; 100]), Source::Fetched);
        cache.insert(&tp(), 10, 19, served(vec![1; 100]), Source::Fetched);
        cache.insert(&tp(), 20, 29, served(vec![2; 100]), Source::Fetched);
        cache.insert(&tp(), 40, 49, served(vec![4; 100]), Source::Fetched);
        assert_eq!(
            cache.cached_from(&tp(), 5, 1000),
            (30, 300),
            "up to the gap"
        );
        assert_eq!(cache.cached_from(&tp(), 5, 150), (20, 200), "enough");
        assert_eq!(cache.cached_from(&tp(), 30, 1000), (30, 0), "not cached");
        assert!(cache.holds(&tp(), 45) && !cache.holds(&tp(), 35));
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
    fn batches_read_go_before_unread_ones_and_unread_bytes_are_counted() {
        let mut cache = BatchCache::new(300);
        cache.insert(&tp(), 0, 9, served(vec![0; 100]), Source::Fetched);
        cache.insert(&tp(), 10, 19, served(vec![1; 100]), Source::Fetched);
        cache.insert(&tp(), 20, 29, served(vec![2; 100]), Source::Fetched);
        assert_eq!(cache.unread_bytes(), 300);
        assert_eq!(cache.read(&tp(), 10, 50).map(|r| r.1), Some(20));
        assert_eq!(cache.unread_bytes(), 200);
        // Full: the batch read goes, though 0..9 is older.
        cache.insert(&tp(), 30, 39, served(vec![3; 100]), Source::Fetched);
        assert!(cache.holds(&tp(), 5) && !cache.holds(&tp(), 15));
        assert_eq!(cache.unread_bytes(), 300);
        // None read: the oldest goes.
        cache.insert(&tp(), 40, 49, served(vec![4; 100]), Source::Fetched);
        assert!(!cache.holds(&tp(), 5) && cache.holds(&tp(), 25));
        // Read twice, counted once; forgotten unread, no longer counted.
        cache.read(&tp(), 20, 1000);
        cache.read(&tp(), 20, 1000);
        assert_eq!(cache.unread_bytes(), 0);
        cache.insert(&tp(), 50, 59, served(vec![5; 100]), Source::Fetched);
        assert_eq!(cache.unread_bytes(), 100);
        cache.forget_from(&tp(), 50);
        assert_eq!(cache.unread_bytes(), 0);
    }

    #[test]
    fn eviction_queues_stay_bounded_by_the_batches_cached() {
        let mut cache = BatchCache::new(1000);
        for round in 0..10_000i64 {
            let base = round * 10;
            cache.insert(&tp(), base, base + 9, served(vec![0; 100]), Source::Fetched);
            cache.read(&tp(), base, 1000);
            if round % 3 == 0 {
                cache.forget_from(&tp(), base);
            }
        }
        assert!(cache.batches <= 10);
        assert!(cache.order.len() + cache.read_order.len() <= 2 * cache.batches + 64);
    }

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
