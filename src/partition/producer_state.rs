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
//! A backend whose records outlive tidegate (SMQ) also keeps every producer's stored
//! batches ([`ProducerSnapshot`]), written after the backend stored a batch and before the
//! producer is answered, and read back at start-up: a producer that retries a batch across
//! a restart, because its answer was lost with the old process, is still answered with the
//! batch's offset instead of getting its records stored twice. Kafka keeps this state in
//! its log's batch headers; SMQ's messages have no room for it (see `backend::smq::codec`).

use crate::error::{Error, Result};
use crate::record_batch::BatchHeader;
use crate::TopicPartition;
use futures::channel::oneshot;
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
    /// When it was taken, ms since the epoch: producers idle for longer than Kafka's
    /// `producer.id.expiration.ms` are forgotten.
    pub taken_at_ms: i64,
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

#[derive(Default)]
pub struct ProducerStates {
    producers: HashMap<(TopicPartition, i64), ProducerEntry>,
}

struct ProducerEntry {
    epoch: i16,
    /// Its latest batches here, oldest first.
    batches: VecDeque<SentBatch>,
    /// When it last sent a batch here, ms since the epoch.
    last_used_ms: i64,
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
    /// Checks the batches of one produce request for one partition, in order.
    pub fn check(&self, tp: &TopicPartition, headers: &[BatchHeader]) -> Result<SequenceCheck> {
        let Some(first) = headers.first() else {
            return Ok(SequenceCheck::Append);
        };
        if first.producer_id <= NO_PRODUCER_ID {
            return Ok(SequenceCheck::Append);
        }
        let entry = self.producers.get(&(tp.clone(), first.producer_id));
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

    /// Records batches whose append was queued; their offsets come with `stored`.
    pub fn record(&mut self, tp: &TopicPartition, headers: &[BatchHeader]) {
        let now_ms = crate::unix_time().as_millis() as i64;
        for header in headers {
            if header.producer_id > NO_PRODUCER_ID {
                let entry = self
                    .producers
                    .entry((tp.clone(), header.producer_id))
                    .or_insert_with(|| ProducerEntry {
                        epoch: header.producer_epoch,
                        batches: VecDeque::with_capacity(BATCHES_KEPT),
                        last_used_ms: now_ms,
                    });
                entry.last_used_ms = now_ms;
                if entry.epoch != header.producer_epoch {
                    entry.epoch = header.producer_epoch;
                    entry.batches.clear();
                }
                if entry.batches.len() == BATCHES_KEPT {
                    entry.batches.pop_front();
                }
                entry.batches.push_back(SentBatch {
                    first_sequence: header.base_sequence,
                    last_sequence: header.last_sequence(),
                    base_offset: None,
                });
            }
        }
    }

    /// The recorded batches were stored, the first at `base_offset`.
    pub fn stored(&mut self, tp: &TopicPartition, headers: &[BatchHeader], base_offset: i64) {
        let mut offset = base_offset;
        for header in headers {
            if let Some(entry) = self.producers.get_mut(&(tp.clone(), header.producer_id)) {
                if let Some(batch) = entry.batches.iter_mut().find(|b| b.is(header)) {
                    batch.base_offset.get_or_insert(offset);
                }
            }
            offset += header.offset_count();
        }
    }

    /// What to keep of a producer's state on a partition: its stored batches.
    pub fn snapshot(&self, tp: &TopicPartition, producer_id: i64) -> Option<ProducerSnapshot> {
        let entry = self.producers.get(&(tp.clone(), producer_id))?;
        let batches = entry
            .batches
            .iter()
            .filter_map(|b| Some((b.first_sequence, b.last_sequence, b.base_offset?)))
            .collect();
        Some(ProducerSnapshot {
            epoch: entry.epoch,
            batches,
            taken_at_ms: crate::unix_time().as_millis() as i64,
        })
    }

    /// The idempotent producers known on a partition, by id, for DescribeProducers.
    pub fn active_on(&self, tp: &TopicPartition) -> Vec<ActiveProducer> {
        let mut active: Vec<ActiveProducer> = self
            .producers
            .iter()
            .filter(|((on, _), _)| on == tp)
            .map(|((_, producer_id), entry)| ActiveProducer {
                producer_id: *producer_id,
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

    /// Takes back a producer's state kept by an earlier run, unless it is known here already.
    pub fn restore(&mut self, tp: TopicPartition, producer_id: i64, snapshot: ProducerSnapshot) {
        self.producers
            .entry((tp, producer_id))
            .or_insert_with(|| ProducerEntry {
                epoch: snapshot.epoch,
                batches: snapshot
                    .batches
                    .iter()
                    .rev()
                    .take(BATCHES_KEPT)
                    .rev()
                    .map(|&(first_sequence, last_sequence, offset)| SentBatch {
                        first_sequence,
                        last_sequence,
                        base_offset: Some(offset),
                    })
                    .collect(),
                last_used_ms: snapshot.taken_at_ms,
            });
    }

    /// Forgets producers idle for longer than [`EXPIRATION`] (none with a batch still being
    /// written), as Kafka does, so that short-lived producers do not pile up.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let before = self.producers.len();
        let oldest = now_ms - EXPIRATION.as_millis() as i64;
        self.producers.retain(|_, entry| {
            entry.last_used_ms >= oldest || entry.batches.iter().any(|b| b.base_offset.is_none())
        });
        before - self.producers.len()
    }

    /// The batches were stored, but the backend lost them: forget them and the producer's
    /// later batches there (lost with them, or out of sequence without them), so its
    /// retries are appended again, in sequence.
    pub fn lost(&mut self, tp: &TopicPartition, headers: &[BatchHeader]) {
        for header in headers {
            if let Some(entry) = self.producers.get_mut(&(tp.clone(), header.producer_id)) {
                if let Some(at) = entry.batches.iter().position(|b| b.is(header)) {
                    entry.batches.truncate(at);
                }
            }
        }
    }

    /// The recorded batches were not stored: forget them, so a retry is in sequence.
    pub fn failed(&mut self, tp: &TopicPartition, headers: &[BatchHeader]) {
        for header in headers {
            if let Some(entry) = self.producers.get_mut(&(tp.clone(), header.producer_id)) {
                entry
                    .batches
                    .retain(|b| !b.is(header) || b.base_offset.is_some());
            }
        }
    }
}

/// Producer states waiting to be written to the backend, and the appends waiting for that
/// write. One write at a time covers everything that changed while the previous one ran.
#[derive(Default)]
pub struct PendingWrites {
    changed: HashSet<(TopicPartition, i64)>,
    waiting: Vec<oneshot::Sender<()>>,
    /// The writer, when it sleeps for lack of work.
    writer: Option<oneshot::Sender<()>>,
    /// Whether a write is under way.
    writing: bool,
    /// Told when the writer next runs out of work (see `flushed`).
    idle_waiters: Vec<oneshot::Sender<()>>,
}

impl PendingWrites {
    /// Marks the idempotent producers of `headers` as changed on `tp`; the receiver
    /// completes once a write covering them is done. `None` if there are none.
    pub fn changed(
        &mut self,
        tp: &TopicPartition,
        headers: &[BatchHeader],
    ) -> Option<oneshot::Receiver<()>> {
        let mut any = false;
        for header in headers.iter().filter(|h| h.producer_id > NO_PRODUCER_ID) {
            self.changed.insert((tp.clone(), header.producer_id));
            any = true;
        }
        if !any {
            return None;
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.send(());
        }
        let (done, receiver) = oneshot::channel();
        self.waiting.push(done);
        Some(receiver)
    }

    /// States whose write failed, to be written with the next.
    pub fn retry(&mut self, changed: Vec<(TopicPartition, i64)>) {
        self.changed.extend(changed);
    }

    /// `None` if every change is written; otherwise a receiver that completes once the
    /// writer has none left (a failed write is retried first).
    pub fn flushed(&mut self) -> Option<oneshot::Receiver<()>> {
        if self.changed.is_empty() && !self.writing {
            return None;
        }
        let (idle, receiver) = oneshot::channel();
        self.idle_waiters.push(idle);
        Some(receiver)
    }

    /// The next write's work, or a receiver that completes when there is some.
    #[allow(clippy::type_complexity)]
    pub fn take(
        &mut self,
    ) -> std::result::Result<
        (Vec<(TopicPartition, i64)>, Vec<oneshot::Sender<()>>),
        oneshot::Receiver<()>,
    > {
        if self.changed.is_empty() {
            self.writing = false;
            for idle in self.idle_waiters.drain(..) {
                let _ = idle.send(());
            }
            let (wake, receiver) = oneshot::channel();
            self.writer = Some(wake);
            return Err(receiver);
        }
        self.writing = true;
        Ok((
            self.changed.drain().collect(),
            std::mem::take(&mut self.waiting),
        ))
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

    #[test]
    fn in_sequence_batches_append_and_retries_are_duplicates() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let first = [batch(9, 0, 0, 10)];
        assert_eq!(states.check(&tp, &first).ok(), Some(SequenceCheck::Append));
        states.record(&tp, &first);
        states.stored(&tp, &first, 100);
        let second = [batch(9, 0, 10, 5)];
        assert_eq!(states.check(&tp, &second).ok(), Some(SequenceCheck::Append));
        states.record(&tp, &second);
        assert!(states.check(&tp, &second).is_err(), "retry while in flight");
        states.stored(&tp, &second, 110);
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
        states.record(&tp, &[batch(9, 1, 0, 10)]);
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
        let states = ProducerStates::default();
        assert!(states.check(&tp, &[batch(-1, -1, -1, 3)]).is_ok());
        assert!(states.check(&tp, &[batch(4, 0, 77, 3)]).is_ok());
        // Several batches in one request must follow each other.
        assert!(states
            .check(&tp, &[batch(4, 0, 0, 3), batch(4, 0, 3, 1)])
            .is_ok());
        assert!(states
            .check(&tp, &[batch(4, 0, 0, 3), batch(4, 0, 4, 1)])
            .is_err());
    }

    #[test]
    fn a_restored_snapshot_answers_retries_and_checks_sequences() {
        let tp = TopicPartition::new("t", 3);
        let mut states = ProducerStates::default();
        for (seq, offset) in [
            (0, 100),
            (10, 110),
            (20, 120),
            (30, 130),
            (40, 140),
            (50, 150),
        ] {
            let batch = [batch(9, 2, seq, 10)];
            states.record(&tp, &batch);
            states.stored(&tp, &batch, offset);
        }
        states.record(&tp, &[batch(9, 2, 60, 10)]); // in flight: not kept
        let snapshot = states.snapshot(&tp, 9).expect("known producer");
        assert_eq!(snapshot.epoch, 2);
        assert_eq!(snapshot.batches.first(), Some(&(20, 29, 120)));
        assert_eq!(snapshot.batches.len(), 4);

        let mut restarted = ProducerStates::default();
        restarted.restore(tp.clone(), 9, snapshot);
        assert_eq!(
            restarted.check(&tp, &[batch(9, 2, 40, 10)]).ok(),
            Some(SequenceCheck::Duplicate { base_offset: 140 })
        );
        assert_eq!(
            restarted.check(&tp, &[batch(9, 2, 60, 10)]).ok(),
            Some(SequenceCheck::Append)
        );
        let gap = restarted.check(&tp, &[batch(9, 2, 70, 10)]);
        assert_eq!(gap.map_err(|e| e.code()), Err(45));
        assert_eq!(restarted.snapshot(&tp, 8), None);
    }

    #[test]
    fn idle_producers_expire() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let stored = [batch(1, 0, 0, 1)];
        states.record(&tp, &stored);
        states.stored(&tp, &stored, 0);
        states.record(&tp, &[batch(2, 0, 0, 1)]); // still being written
        let now_ms = crate::unix_time().as_millis() as i64;
        assert_eq!(states.expire(now_ms), 0, "both were just used");
        let day_later = now_ms + EXPIRATION.as_millis() as i64 + 1;
        assert_eq!(states.expire(day_later), 1);
        assert_eq!(states.snapshot(&tp, 1), None);
        assert!(
            states.snapshot(&tp, 2).is_some(),
            "a batch in flight keeps it"
        );
    }

    #[test]
    fn pending_writes_cover_what_changed_and_wake_the_writer() {
        let tp = TopicPartition::new("t", 0);
        let mut pending = PendingWrites::default();
        let mut writer = pending.take().expect_err("nothing to write yet");
        assert!(pending.changed(&tp, &[batch(-1, -1, -1, 1)]).is_none());
        let mut done = pending
            .changed(&tp, &[batch(7, 0, 0, 1)])
            .expect("idempotent");
        pending.changed(&tp, &[batch(7, 0, 1, 1)]);
        assert_eq!(writer.try_recv(), Ok(Some(())), "the writer is woken");
        let (changed, waiting) = pending.take().expect("work");
        assert_eq!(changed, vec![(tp, 7)]);
        assert_eq!(waiting.len(), 2);
        for done in waiting {
            let _ = done.send(());
        }
        assert_eq!(done.try_recv(), Ok(Some(())));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        states.record(&tp, &[batch(1, 0, i32::MAX - 1, 2)]);
        assert!(states.check(&tp, &[batch(1, 0, 0, 1)]).is_ok());
    }

    #[test]
    fn pipelined_batches_are_checked_against_those_in_flight() {
        let tp = TopicPartition::new("t", 0);
        let mut states = ProducerStates::default();
        let first = [batch(3, 0, 0, 5)];
        states.record(&tp, &first);
        let second = [batch(3, 0, 5, 5)];
        assert_eq!(states.check(&tp, &second).ok(), Some(SequenceCheck::Append));
        states.record(&tp, &second);
        // The first fails: the second's entry stays, the first may be retried.
        states.failed(&tp, &first);
        states.stored(&tp, &second, 40);
        assert_eq!(
            states.check(&tp, &second).ok(),
            Some(SequenceCheck::Duplicate { base_offset: 40 })
        );
    }
}
