//! Read-ahead for consumers catching up on what SMQ flushed. A consumer keeps one fetch in
//! flight per broker, so without it the consumer and the shard take turns: the consumer
//! reads what one fetch brought while the shard idles, then its next fetch waits while the
//! shard reads a whole log file from the volume server. With it, while a consumer reads a
//! partition's file from the batch cache, the shard reads the next one into the cache.
//!
//! Bounded by the batch cache itself, which evicts batches already read before those no
//! read has reached: a partition is read ahead only while less than half the cache is
//! unread, so reading ahead for many partitions cannot push out what their consumers are
//! about to read. One read ahead per partition at a time, at most `MAX_READING` per shard.

use crate::TopicPartition;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use hashbrown::HashMap;

/// A partition is read ahead once less than this is cached past what a read answered.
pub const LOW_WATER_BYTES: usize = 4 << 20;
/// Reads ahead under way at once, per shard.
const MAX_READING: usize = 4;

/// Resolves when a read ahead ends (its [`Reading`] dropped), however it ends.
pub type Finished = Shared<oneshot::Receiver<()>>;

/// A read ahead under way: ends it for those waiting on it when dropped.
pub struct Reading {
    _done: oneshot::Sender<()>,
}

#[derive(Default)]
pub struct ReadAheads {
    /// Per partition under way, where it reads from.
    reading: HashMap<TopicPartition, (i64, Finished)>,
    started: u64,
}

impl ReadAheads {
    /// The read ahead under way that will bring `offset` of `tp`, to wait for rather than
    /// read the same file twice.
    pub fn bringing(&self, tp: &TopicPartition, offset: i64) -> Option<Finished> {
        match self.reading.get(tp)? {
            (from, finished) if *from <= offset => Some(finished.clone()),
            _ => None,
        }
    }

    /// Starts a read ahead of `tp` from `from`, unless one of the partition's is under way
    /// or `MAX_READING` of the shard's are.
    pub fn start(&mut self, tp: &TopicPartition, from: i64) -> Option<Reading> {
        if self.reading.len() >= MAX_READING || self.reading.contains_key(tp) {
            return None;
        }
        let (done, finished) = oneshot::channel();
        self.reading.insert(tp.clone(), (from, finished.shared()));
        self.started += 1;
        Some(Reading { _done: done })
    }

    /// The read ahead of `tp` ended.
    pub fn finished(&mut self, tp: &TopicPartition) {
        self.reading.remove(tp);
    }

    /// Reads ahead started since the shard started.
    pub fn started(&self) -> u64 {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    #[test]
    fn one_read_ahead_per_partition_and_a_few_per_shard() {
        let mut aheads = ReadAheads::default();
        let first = aheads.start(&tp(0), 100);
        assert!(first.is_some());
        assert!(aheads.start(&tp(0), 200).is_none(), "one per partition");
        let others: Vec<_> = (1..10).filter_map(|p| aheads.start(&tp(p), 0)).collect();
        assert_eq!(
            others.len(),
            MAX_READING - 1,
            "at most MAX_READING under way"
        );
        aheads.finished(&tp(1));
        assert!(aheads.start(&tp(7), 0).is_some(), "once one ended");
        assert_eq!(aheads.started(), MAX_READING as u64 + 1);
    }

    #[test]
    fn a_read_waits_for_the_read_ahead_bringing_its_offset() {
        let mut aheads = ReadAheads::default();
        let reading = aheads.start(&tp(0), 100);
        assert!(aheads.bringing(&tp(0), 99).is_none(), "before it");
        let finished = aheads.bringing(&tp(0), 150).expect("under way");
        assert!(finished.clone().now_or_never().is_none());
        drop(reading);
        assert!(finished.now_or_never().is_some(), "ends when dropped");
        aheads.finished(&tp(0));
        assert!(aheads.bringing(&tp(0), 150).is_none());
    }
}
