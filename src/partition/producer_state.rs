//! Idempotent-producer state of the partitions a shard owns: the producer epoch and the
//! last few batches of every producer, to spot duplicates and gaps as Kafka does.
//!
//! Kafka keeps the last five batches per producer and partition because a producer has at
//! most five requests in flight (`max.in.flight.requests.per.connection` with idempotence):
//! a retry can only repeat one of those.
//!
//! A batch is recorded when its append is queued, before the backend confirms it, so that a
//! producer's next pipelined batch is checked against it; the offset is filled in on
//! success, and the entry removed on failure.
//!
//! A backend whose records outlive tidegate (SMQ) keeps this state with the records, as
//! Kafka keeps it in its batch headers: the last record of every idempotent batch carries
//! the batch's producer id, epoch and sequences (`backend::smq::codec`, its "mark"), so a
//! batch is never acknowledged without what recognises its retry. Each partition's state
//! is also snapshotted now and then ([`PartitionSnapshot`], with the offset it covers), so
//! that a restarted shard reads only the marks after it (`recover`). A producer that
//! retries a batch across a restart, because its answer was lost with the old process, is
//! still answered with the batch's offset instead of getting its records stored twice.

use crate::error::{Error, Result};
use crate::record_batch::BatchHeader;
use crate::TopicPartition;
use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

const BATCHES_KEPT: usize = 5;
/// Kafka's `producer.id.expiration.ms` default: a producer idle for longer is forgotten.
pub const EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Producer ids below zero mean "not idempotent".
const NO_PRODUCER_ID: i64 = -1;

/// Producer ids this shard hands out (InitProducerId): unique across shards, since each
/// takes every `nr_shards`-th id from its own, and across runs, since the start time sits
/// in the high bits while old producers may still be around.
pub struct ProducerIds {
    base: i64,
    issued: std::cell::Cell<i64>,
    shard_id: i64,
    nr_shards: i64,
}

impl ProducerIds {
    pub fn new(shard_id: usize, nr_shards: usize) -> Self {
        let started_secs = crate::unix_time().as_secs() as i64;
        Self {
            base: (started_secs & 0x7fff_ffff) << 22,
            issued: std::cell::Cell::new(0),
            shard_id: shard_id as i64,
            nr_shards: nr_shards.max(1) as i64,
        }
    }

    /// A producer id no other shard or earlier run hands out.
    pub fn next(&self) -> i64 {
        let issued = self.issued.get();
        self.issued.set(issued + 1);
        self.base + issued * self.nr_shards + self.shard_id
    }
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in sequence (or not idempotent): store it.
    Append,
    /// Already stored at this base offset: answer with it, store nothing.
    Duplicate { base_offset: i64 },
}

/// One producer's state on one partition, as kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    pub epoch: i16,
    /// (first sequence, last sequence, base offset) of its last stored batches, oldest first.
    pub batches: Vec<(i32, i32, i64)>,
    /// When it last sent a batch here, ms since the epoch: producers idle for longer than
    /// Kafka's `producer.id.expiration.ms` are forgotten.
    pub last_used_ms: i64,
}

/// Every producer's state on one partition, and the offset up to which the records' marks
/// are in it: a restarted shard takes the snapshot and the marks from that offset on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    /// Every batch whose mark lies before this offset is in `producers` (or was older than
    /// the batches kept there).
    pub covered_until: i64,
    /// By producer id.
    pub producers: std::collections::BTreeMap<i64, ProducerSnapshot>,
}

/// An idempotent producer's batch as the backend stored it, as its mark in the records
/// tells it (`backend::smq::codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    /// Its last record's offset (where its closing mark is).
    pub last_offset: i64,
}

/// An idempotent producer as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// Of its last stored batch; -1 before one is stored.
    pub last_sequence: i32,
    /// When it last sent a batch here, ms since the epoch.
    pub last_used_ms: i64,
}

/// An append of idempotent batches between `record` and `stored` (or `failed`): its marks
/// are not in the producers' state yet, so snapshots cover only what lies before it.
#[derive(Debug)]
#[must_use]
pub struct InFlight {
    /// Its records land at this offset or later.
    from: i64,
}

#[derive(Default)]
pub struct ProducerStates {
    partitions: HashMap<TopicPartition, PartitionProducers>,
    /// Partitions whose producers changed since their last snapshot.
    changed: HashSet<TopicPartition>,
}

#[derive(Default)]
struct PartitionProducers {
    producers: HashMap<i64, ProducerEntry>,
    /// The offset after the last stored idempotent batch (or after what recovery read).
    applied_end: i64,
    /// Where the appends in flight start at the earliest (`InFlight::from`).
    in_flight: Vec<i64>,
}

impl PartitionProducers {
    /// The offset before which every mark is in the state.
    fn covered_until(&self) -> i64 {
        self.in_flight
            .iter()
            .copied()
            .min()
            .unwrap_or(self.applied_end)
    }

    fn done(&mut self, in_flight: InFlight) {
        if let Some(at) = self.in_flight.iter().position(|&f| f == in_flight.from) {
            self.in_flight.swap_remove(at);
        }
    }
}

struct ProducerEntry {
    epoch: i16,
    /// Its latest batches here, oldest first.
    batches: VecDeque<SentBatch>,
    /// When it last sent a batch here, ms since the epoch.
    last_used_ms: i64,
}

impl ProducerEntry {
    fn new(epoch: i16, last_used_ms: i64) -> Self {
        Self {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_KEPT),
            last_used_ms,
        }
    }

    fn push(&mut self, batch: SentBatch) {
        if self.batches.len() == BATCHES_KEPT {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

/// A batch an idempotent producer sent, known by its sequence numbers.
#[derive(Debug, Clone, Copy)]
struct SentBatch {
    first_sequence: i32,
    last_sequence: i32,
    /// Where it was stored; `None` while its append is still being written.
    base_offset: Option<i64>,
}

impl SentBatch {
    fn is(&self, header: &BatchHeader) -> bool {
        (self.first_sequence, self.last_sequence) == (header.base_sequence, header.last_sequence())
    }
}

impl ProducerStates {
    /// The partition's producers, made empty if it has none. Appends call this: the lookup
    /// comes first so that the common case clones no name.
    fn partition_mut(&mut self, tp: &TopicPartition) -> &mut PartitionProducers {
        self.partitions.entry_ref(tp).or_default()
    }

    fn mark_changed(&mut self, tp: &TopicPartition) {
        self.changed.get_or_insert_with(tp, TopicPartition::clone);
    }

    fn entry(&self, tp: &TopicPartition, producer_id: i64) -> Option<&ProducerEntry> {
        self.partitions.get(tp)?.producers.get(&producer_id)
    }

    /// Checks the batches of one produce request for one partition, in order.
    pub fn check(&self, tp: &TopicPartition, headers: &[BatchHeader]) -> Result<SequenceCheck> {
        let Some(first) = headers.first() else {
            return Ok(SequenceCheck::Append);
        };
        if first.producer_id <= NO_PRODUCER_ID {
            return Ok(SequenceCheck::Append);
        }
        let entry = self.entry(tp, first.producer_id);
        if let (Some(entry), [only]) = (entry, headers) {
            if only.producer_epoch == entry.epoch {
                if let Some(sent) = entry.batches.iter().find(|b| b.is(only)) {
                    // A retry of a batch still being written: ask again once it is.
                    let base_offset = sent.base_offset.ok_or_else(|| {
                        Error::Unavailable("the same batch is still being written".into())
                    })?;
                    return Ok(SequenceCheck::Duplicate { base_offset });
                }
            }
        }
        let mut expected = entry.map(|e| (e.epoch, e.batches.back().map(|b| b.last_sequence)));
        for header in headers {
            check_one(header, expected)?;
            expected = Some((header.producer_epoch, Some(header.last_sequence())));
        }
        Ok(SequenceCheck::Append)
    }

    /// Records batches whose append was queued; their offsets come with `stored`, and the
    /// `InFlight` returned (for idempotent batches) goes back with it or with `failed`.
    pub fn record(&mut self, tp: &TopicPartition, headers: &[BatchHeader]) -> Option<InFlight> {
        let now_ms = crate::unix_time().as_millis() as i64;
        let mut idempotent = headers
            .iter()
            .filter(|h| h.producer_id > NO_PRODUCER_ID)
            .peekable();
        idempotent.peek()?;
        let partition = self.partition_mut(tp);
        for header in idempotent {
            let entry = partition
                .producers
                .entry(header.producer_id)
                .or_insert_with(|| ProducerEntry::new(header.producer_epoch, now_ms));
            entry.last_used_ms = now_ms;
            if entry.epoch != header.producer_epoch {
                entry.epoch = header.producer_epoch;
                entry.batches.clear();
            }
            entry.push(SentBatch {
                first_sequence: header.base_sequence,
                last_sequence: header.last_sequence(),
                base_offset: None,
            });
        }
        let from = partition.applied_end;
        partition.in_flight.push(from);
        Some(InFlight { from })
    }

    /// The batches were stored, the first at `base_offset`: the idempotent ones recorded
    /// get their offsets. Any append moves where the partition's snapshot covers to, so
    /// that a restart reads no further back than the last snapshot, idempotent or not.
    pub fn stored(
        &mut self,
        tp: &TopicPartition,
        headers: &[BatchHeader],
        base_offset: i64,
        in_flight: Option<InFlight>,
    ) {
        let partition = self.partition_mut(tp);
        let mut offset = base_offset;
        for header in headers {
            if let Some(entry) = partition.producers.get_mut(&header.producer_id) {
                if let Some(batch) = entry.batches.iter_mut().find(|b| b.is(header)) {
                    batch.base_offset.get_or_insert(offset);
                }
            }
            offset += header.offset_count();
        }
        partition.applied_end = partition.applied_end.max(offset);
        if let Some(in_flight) = in_flight {
            partition.done(in_flight);
        }
        self.mark_changed(tp);
    }

    /// The recorded batches were not stored: forget them, so a retry is in sequence.
    pub fn failed(
        &mut self,
        tp: &TopicPartition,
        headers: &[BatchHeader],
        in_flight: Option<InFlight>,
    ) {
        let Some(partition) = self.partitions.get_mut(tp) else {
            return;
        };
        for header in headers {
            if let Some(entry) = partition.producers.get_mut(&header.producer_id) {
                entry
                    .batches
                    .retain(|b| !b.is(header) || b.base_offset.is_some());
            }
        }
        if let Some(in_flight) = in_flight {
            partition.done(in_flight);
        }
    }

    /// The batches were stored, but the backend lost them: forget them and the producer's
    /// later batches there (lost with them, or out of sequence without them), so its
    /// retries are appended again, in sequence.
    pub fn lost(&mut self, tp: &TopicPartition, headers: &[BatchHeader]) {
        let Some(partition) = self.partitions.get_mut(tp) else {
            return;
        };
        for header in headers {
            if let Some(entry) = partition.producers.get_mut(&header.producer_id) {
                if let Some(at) = entry.batches.iter().position(|b| b.is(header)) {
                    // Their offsets are handed out again: marks there are new ones.
                    if let Some(lost_from) = entry.batches[at].base_offset {
                        partition.applied_end = partition.applied_end.min(lost_from);
                    }
                    entry.batches.truncate(at);
                }
            }
        }
        self.mark_changed(tp);
    }

    /// Whether the partition's producers are known here: restored (`recover`), or any
    /// appended since the start (a backend that keeps no producers).
    pub fn knows(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    /// Takes back a partition's producers as a restarted shard finds them: the last
    /// snapshot, then the batches whose marks the records hold from its `covered_until`
    /// to `end`, in offset order. Producers idle past [`EXPIRATION`] are left out.
    pub fn recover(
        &mut self,
        tp: &TopicPartition,
        snapshot: PartitionSnapshot,
        marks: &[StoredBatch],
        end: i64,
    ) {
        let now_ms = crate::unix_time().as_millis() as i64;
        let oldest = now_ms - EXPIRATION.as_millis() as i64;
        let moved = !marks.is_empty() || end > snapshot.covered_until;
        let partition = self.partition_mut(tp);
        for (producer_id, kept) in snapshot.producers {
            if kept.last_used_ms < oldest || partition.producers.contains_key(&producer_id) {
                continue;
            }
            let mut entry = ProducerEntry::new(kept.epoch, kept.last_used_ms);
            for (first_sequence, last_sequence, offset) in kept.batches {
                entry.push(SentBatch {
                    first_sequence,
                    last_sequence,
                    base_offset: Some(offset),
                });
            }
            partition.producers.insert(producer_id, entry);
        }
        for mark in marks {
            let entry = partition
                .producers
                .entry(mark.producer_id)
                .or_insert_with(|| ProducerEntry::new(mark.epoch, now_ms));
            if mark.epoch < entry.epoch {
                continue;
            }
            if mark.epoch > entry.epoch {
                entry.epoch = mark.epoch;
                entry.batches.clear();
            }
            let known = entry
                .batches
                .back()
                .and_then(|b| b.base_offset)
                .is_some_and(|offset| offset >= mark.base_offset);
            if !known {
                entry.push(SentBatch {
                    first_sequence: mark.first_sequence,
                    last_sequence: mark.last_sequence,
                    base_offset: Some(mark.base_offset),
                });
                entry.last_used_ms = now_ms;
            }
        }
        partition.applied_end = partition.applied_end.max(end).max(snapshot.covered_until);
        if moved {
            self.mark_changed(tp);
        }
    }

    /// The partitions whose producers changed since this was last asked, with what to
    /// keep of each: every producer's stored batches, and how far that covers the marks.
    pub fn take_changed(&mut self) -> Vec<(TopicPartition, PartitionSnapshot)> {
        let changed: Vec<TopicPartition> = self.changed.drain().collect();
        changed
            .into_iter()
            .filter_map(|tp| {
                let partition = self.partitions.get(&tp)?;
                let producers = partition
                    .producers
                    .iter()
                    .map(|(&producer_id, entry)| {
                        let batches = entry
                            .batches
                            .iter()
                            .filter_map(|b| {
                                Some((b.first_sequence, b.last_sequence, b.base_offset?))
                            })
                            .collect();
                        let kept = ProducerSnapshot {
                            epoch: entry.epoch,
                            batches,
                            last_used_ms: entry.last_used_ms,
                        };
                        (producer_id, kept)
                    })
                    .collect();
                let snapshot = PartitionSnapshot {
                    covered_until: partition.covered_until(),
                    producers,
                };
                Some((tp, snapshot))
            })
            .collect()
    }

    /// Snapshots whose write failed: to be taken again with the next.
    pub fn changed_again(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.changed.extend(partitions);
    }

    /// The idempotent producers known on a partition, by id, for DescribeProducers.
    pub fn active_on(&self, tp: &TopicPartition) -> Vec<ActiveProducer> {
        let Some(partition) = self.partitions.get(tp) else {
            return Vec::new();
        };
        let mut active: Vec<ActiveProducer> = partition
            .producers
            .iter()
            .map(|(&producer_id, entry)| ActiveProducer {
                producer_id,
                epoch: entry.epoch,
                last_sequence: entry
                    .batches
                    .iter()
                    .rev()
                    .find(|b| b.base_offset.is_some())
                    .map_or(-1, |b| b.last_sequence),
                last_used_ms: entry.last_used_ms,
            })
            .collect();
        active.sort_by_key(|p| p.producer_id);
        active
    }

    /// Forgets producers idle for longer than [`EXPIRATION`] (none with a batch still being
    /// written), as Kafka does, so that short-lived producers do not pile up.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let oldest = now_ms - EXPIRATION.as_millis() as i64;
        let mut expired = 0;
        for (tp, partition) in &mut self.partitions {
            let before = partition.producers.len();
            partition.producers.retain(|_, entry| {
                entry.last_used_ms >= oldest
                    || entry.batches.iter().any(|b| b.base_offset.is_none())
            });
            if partition.producers.len() < before {
                expired += before - partition.producers.len();
                self.changed.insert(tp.clone());
            }
        }
        expired
    }
}

/// `expected`: the producer's epoch and last sequence so far, if it is known here.
fn check_one(header: &BatchHeader, expected: Option<(i16, Option<i32>)>) -> Result<()> {
    let Some((epoch, last_sequence)) = expected else {
        // A producer this partition has no state for (new, or its state was lost) may start
        // anywhere, as in Kafka since 2.5.
        return Ok(());
    };
    if header.producer_epoch < epoch {
        return Err(Error::InvalidProducerEpoch);
    }
    if header.producer_epoch > epoch {
        return match header.base_sequence {
            0 => Ok(()),
            seq => Err(Error::OutOfOrderSequence(format!(
                "new epoch {} must start at sequence 0, not {seq}",
                header.producer_epoch
            ))),
        };
    }
    let Some(last) = last_sequence else {
        return Ok(());
    };
    let next = if last == i32::MAX { 0 } else { last + 1 };
    match header.base_sequence == next {
        true => Ok(()),
        false => Err(Error::OutOfOrderSequence(format!(
            "expected sequence {next}, got {}",
            header.base_sequence
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, base_sequence: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    fn append(states: &mut ProducerStates, tp: &TopicPartition, header: BatchHeader, at: i64) {
        let in_flight = states.record(tp, &[header]);
        states.stored(tp, &[header], at, in_flight);
    }

    #[test]
    fn in_sequence_batches_append_and_retries_are_duplicates() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let first = [batch(9, 0, 0, 10)];
        assert_eq!(states.check(&tp, &first).ok(), Some(SequenceCheck::Append));
        append(&mut states, &tp, first[0], 100);
        let second = [batch(9, 0, 10, 5)];
        assert_eq!(states.check(&tp, &second).ok(), Some(SequenceCheck::Append));
        let in_flight = states.record(&tp, &second);
        assert!(states.check(&tp, &second).is_err(), "retry while in flight");
        states.stored(&tp, &second, 110, in_flight);
        assert_eq!(
            states.check(&tp, &first).ok(),
            Some(SequenceCheck::Duplicate { base_offset: 100 })
        );
        assert_eq!(
            states.check(&tp, &second).ok(),
            Some(SequenceCheck::Duplicate { base_offset: 110 })
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let _in_flight = states.record(&tp, &[batch(9, 1, 0, 10)]);
        let gap = states.check(&tp, &[batch(9, 1, 11, 1)]);
        assert_eq!(gap.map_err(|e| e.code()), Err(45));
        let stale = states.check(&tp, &[batch(9, 0, 10, 1)]);
        assert_eq!(stale.map_err(|e| e.code()), Err(47));
        assert!(states.check(&tp, &[batch(9, 2, 0, 1)]).is_ok());
        assert!(states.check(&tp, &[batch(9, 2, 5, 1)]).is_err());
    }

    #[test]
    fn plain_producers_and_unknown_producers_are_not_checked() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        assert!(states.check(&tp, &[batch(-1, -1, -1, 3)]).is_ok());
        assert!(states.record(&tp, &[batch(-1, -1, -1, 3)]).is_none());
        assert!(states.check(&tp, &[batch(4, 0, 77, 3)]).is_ok());
        // Several batches in one request must follow each other.
        assert!(states
            .check(&tp, &[batch(4, 0, 0, 3), batch(4, 0, 3, 1)])
            .is_ok());
        assert!(states
            .check(&tp, &[batch(4, 0, 0, 3), batch(4, 0, 4, 1)])
            .is_err());
    }

    fn mark(producer_id: i64, epoch: i16, first_sequence: i32, count: i32, at: i64) -> StoredBatch {
        StoredBatch {
            producer_id,
            epoch,
            first_sequence,
            last_sequence: first_sequence + count - 1,
            base_offset: at,
            last_offset: at + i64::from(count) - 1,
        }
    }

    #[test]
    fn a_snapshot_and_the_marks_after_it_answer_retries_and_check_sequences() {
        let tp = TopicPartition::new("t", 3);
        let mut states = ProducerStates::default();
        for (seq, offset) in [(0, 100), (10, 110), (20, 120), (30, 130), (40, 140)] {
            append(&mut states, &tp, batch(9, 2, seq, 10), offset);
        }
        let in_flight = states.record(&tp, &[batch(9, 2, 50, 10)]); // not in the snapshot
        let mut taken = states.take_changed();
        assert!(states.take_changed().is_empty(), "taken once");
        let (snapshot_of, snapshot) = taken.pop().expect("changed");
        assert_eq!(snapshot_of, tp);
        assert_eq!(snapshot.covered_until, 150, "up to the append in flight");
        assert_eq!(snapshot.producers[&9].epoch, 2);
        assert_eq!(
            snapshot.producers[&9].batches.first(),
            Some(&(10, 19, 110)),
            "the last five"
        );
        states.stored(&tp, &[batch(9, 2, 50, 10)], 150, in_flight);

        // Restarted: the snapshot, then the marks from where it covers (the last one
        // again, as a snapshot taken later may hold it).
        let marks = [
            mark(9, 2, 40, 10, 140),
            mark(9, 2, 50, 10, 150),
            mark(7, 0, 0, 5, 160),
        ];
        let mut restarted = ProducerStates::default();
        assert!(!restarted.knows(&tp));
        restarted.recover(&tp, snapshot, &marks[1..], 165);
        assert!(restarted.knows(&tp));
        for (producer, seq, count, offset) in [(9, 10, 10, 110), (9, 50, 10, 150), (7, 0, 5, 160)] {
            assert_eq!(
                restarted
                    .check(
                        &tp,
                        &[batch(producer, 2 * (producer == 9) as i16, seq, count)]
                    )
                    .ok(),
                Some(SequenceCheck::Duplicate {
                    base_offset: offset
                }),
                "producer {producer} sequence {seq}"
            );
        }
        assert_eq!(
            restarted.check(&tp, &[batch(9, 2, 60, 10)]).ok(),
            Some(SequenceCheck::Append)
        );
        let gap = restarted.check(&tp, &[batch(9, 2, 70, 10)]);
        assert_eq!(gap.map_err(|e| e.code()), Err(45));
        let in_flight = restarted.record(&tp, &[batch(9, 2, 60, 10)]);
        assert_eq!(
            in_flight.as_ref().map(|f| f.from),
            Some(165),
            "new marks after what was read"
        );
        // A mark already in the snapshot, or older, changes nothing.
        let mut again = ProducerStates::default();
        let (_, snapshot) = restarted.take_changed().pop().expect("recovered marks");
        again.recover(&tp, snapshot.clone(), &marks[..1], 150);
        let (_, same) = again.take_changed().pop().expect("changed");
        assert_eq!(same.producers, snapshot.producers);
    }

    #[test]
    fn idle_producers_expire() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        append(&mut states, &tp, batch(1, 0, 0, 1), 0);
        let _in_flight = states.record(&tp, &[batch(2, 0, 0, 1)]); // still being written
        let now_ms = crate::unix_time().as_millis() as i64;
        assert_eq!(states.expire(now_ms), 0, "both were just used");
        let day_later = now_ms + EXPIRATION.as_millis() as i64 + 1;
        assert_eq!(states.expire(day_later), 1);
        let ids: Vec<i64> = states
            .active_on(&tp)
            .iter()
            .map(|p| p.producer_id)
            .collect();
        assert_eq!(ids, [2], "a batch in flight keeps it");
        // Nor does a restarted shard take back a producer idle for that long.
        let (_, mut snapshot) = states.take_changed().pop().expect("changed");
        snapshot.producers.get_mut(&2).expect("kept").last_used_ms -=
            EXPIRATION.as_millis() as i64 + 1;
        let mut restarted = ProducerStates::default();
        restarted.recover(&tp, snapshot, &[], 1);
        assert!(restarted.active_on(&tp).is_empty());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let _in_flight = states.record(&tp, &[batch(1, 0, i32::MAX - 1, 2)]);
        assert!(states.check(&tp, &[batch(1, 0, 0, 1)]).is_ok());
    }

    #[test]
    fn pipelined_batches_are_checked_against_those_in_flight() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let first = [batch(3, 0, 0, 5)];
        let first_in_flight = states.record(&tp, &first);
        let second = [batch(3, 0, 5, 5)];
        assert_eq!(states.check(&tp, &second).ok(), Some(SequenceCheck::Append));
        let second_in_flight = states.record(&tp, &second);
        // The first fails: the second's entry stays, the first may be retried.
        states.failed(&tp, &first, first_in_flight);
        states.stored(&tp, &second, 40, second_in_flight);
        assert_eq!(
            states.check(&tp, &second).ok(),
            Some(SequenceCheck::Duplicate { base_offset: 40 })
        );
        let (_, snapshot) = states.take_changed().pop().expect("changed");
        assert_eq!(snapshot.covered_until, 45, "nothing in flight");
        // Records of a producer without idempotence move it too.
        states.stored(&tp, &[batch(-1, -1, -1, 3)], 45, None);
        let (_, snapshot) = states.take_changed().pop().expect("changed");
        assert_eq!(snapshot.covered_until, 48);
    }
}
