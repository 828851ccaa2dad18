//! Partitions on the shard that owns them: append (with the idempotent producers' sequence
//! checks), read, list offsets, move the log start, and wake the fetches waiting for data.
//! Only the owning shard calls in here for a partition (`Shard::scatter` sends the work
//! there), so per-partition state needs no lock.
//!
//! # Produce ordering: the one home of the invariant
//!
//! Kafka promises that the batches of one connection land in a partition in the order they
//! were sent, and a producer pipelines up to five requests (more without idempotence). The
//! rule that keeps it: **an append's position in the partition is fixed in the first poll
//! of its request, before anything is awaited**; only the waiting for the storage's
//! acknowledgement overlaps with later requests. Each layer keeps its part of it:
//!
//! 1. the connection (`handlers::ConnectionState::produce_order`) lets one Produce at a
//!    time through to its first poll, in the order the requests were read (turns are
//!    handed out in order, never to whichever task polls first), and the produce handler
//!    releases its turn only once that poll has queued every partition's append;
//! 2. `Shard::scatter` sends each owner its share before awaiting any answer; locally the
//!    work starts in that first poll, across the mesh the messages are FIFO per sender and
//!    the owner starts each in arrival order;
//! 3. [`Partitions::append_all`] starts every partition's append in its own first poll
//!    (`join_all`), and [`Partitions::append`] checks and records the sequence before its
//!    first `.await`;
//! 4. the log fixes the position before its first `.await` (`PartitionLog::append`): the
//!    memory log appends at once, SMQ queues the messages on the partition's one publish
//!    stream synchronously.
//!
//! An `.await` added before any of these points lets a later request overtake an earlier
//! one. `tests/routing.rs` (`pipelined_produces_are_stored_and_acknowledged_in_order`)
//! pipelines produce requests on one connection to partitions owned by both shards and
//! checks each batch is stored and acknowledged at the offset its place in the pipeline
//! gives it.

pub mod leader_epochs;
pub mod producer_state;

use crate::backend::{
    FoundOffset, OffsetSpec, PartitionLog, ProducerStore, ReadResult, StoredProducer,
};
use crate::error::{Error, Result};
use crate::record_batch::{BatchHeader, RecordBatch};
use crate::TopicPartition;
use futures::channel::oneshot;
use futures::future::{join_all, select, select_all};
use hashbrown::HashMap;
use leader_epochs::{EndOffset, NO_EPOCH};
use producer_state::{ActiveProducer, PendingWrites, ProducerIds, ProducerStates, SequenceCheck};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Records for one partition, validated.
#[derive(Debug, Clone)]
pub struct PartitionAppend {
    pub tp: TopicPartition,
    pub batches: Vec<RecordBatch>,
    /// acks=all: how long the append may wait for the records to be durable.
    pub durable_within: Option<std::time::Duration>,
}

/// A read of one partition from `offset`, up to about `max_bytes`.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
    /// The leader epoch the client believes current (Fetch v9+), checked before reading;
    /// -1: not checked.
    pub current_leader_epoch: i32,
}

/// An OffsetForLeaderEpoch query of one partition.
#[derive(Debug, Clone, Copy)]
pub struct EpochQuery {
    /// The epoch the client believes current, checked first; -1: not checked.
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: i32,
}

/// The partitions one shard owns.
pub struct Partitions {
    /// The ids this shard gives idempotent producers.
    pub producer_ids: ProducerIds,
    log: PartitionLog,
    /// Where idempotent producers' states outlive the process, if the backend keeps them.
    producer_store: ProducerStore,
    producers: RefCell<ProducerStates>,
    /// Producer states to store before their appends are answered (backends that keep them).
    producer_writes: RefCell<PendingWrites>,
    /// Fetches waiting for data, by partition; woken by this shard's appends.
    waiters: RefCell<HashMap<TopicPartition, Vec<oneshot::Sender<()>>>>,
}

impl Partitions {
    pub fn new(
        log: PartitionLog,
        producer_store: ProducerStore,
        producer_ids: ProducerIds,
    ) -> Self {
        Self {
            producer_ids,
            log,
            producer_store,
            producers: RefCell::default(),
            producer_writes: RefCell::default(),
            waiters: RefCell::default(),
        }
    }

    /// Appends to every partition, each started in this future's first poll (see the
    /// module comment); one result per append, in order.
    pub async fn append_all(&self, appends: Vec<PartitionAppend>) -> Vec<Result<i64>> {
        join_all(appends.into_iter().map(|a| self.append(a))).await
    }

    /// Sequence check, append, wake fetchers. The check and the append's position are
    /// settled before the first `.await`, so pipelined requests keep their order.
    async fn append(&self, append: PartitionAppend) -> Result<i64> {
        let headers: Vec<BatchHeader> = append.batches.iter().map(|b| b.header).collect();
        let check = self.producers.borrow().check(&append.tp, &headers)?;
        if let SequenceCheck::Duplicate { base_offset } = check {
            // A retry of records acknowledged, or still waiting to be durable.
            self.durable(&append, base_offset).await?;
            return Ok(base_offset);
        }
        self.producers.borrow_mut().record(&append.tp, &headers);
        let appended = self.log.append(&append.tp, &append.batches).await;
        let base_offset = match appended {
            Ok(base_offset) => base_offset,
            Err(error) => {
                self.producers.borrow_mut().failed(&append.tp, &headers);
                return Err(error);
            }
        };
        self.producers
            .borrow_mut()
            .stored(&append.tp, &headers, base_offset);
        self.wake_fetchers(&append.tp);
        if self.producer_store.keeps_producers() {
            // Answered only once a retry across a restart would be recognised.
            let written = self
                .producer_writes
                .borrow_mut()
                .changed(&append.tp, &headers);
            if let Some(written) = written {
                let _ = written.await;
            }
        }
        self.durable(&append, base_offset).await?;
        Ok(base_offset)
    }

    /// With acks=all, waits until the backend keeps the batches stored at `base_offset`
    /// durably (SMQ: flushed to the filer); retriable REQUEST_TIMED_OUT past the request's
    /// timeout, as Kafka answers when its replicas are late.
    async fn durable(&self, append: &PartitionAppend, base_offset: i64) -> Result<()> {
        let Some(within) = append.durable_within else {
            return Ok(());
        };
        let durable = self
            .log
            .wait_durable(&append.tp, base_offset, &append.batches, within)
            .await;
        if let Err(Error::Lost(_)) = &durable {
            // Not stored after all: a retry must be appended again, not answered as a
            // duplicate of what is gone.
            let headers: Vec<BatchHeader> = append.batches.iter().map(|b| b.header).collect();
            self.producers.borrow_mut().lost(&append.tp, &headers);
        }
        durable
    }

    /// Reads every partition, concurrently (SMQ: one broker round trip each).
    pub async fn read_all(&self, reads: Vec<PartitionRead>) -> Vec<Result<ReadResult>> {
        join_all(reads.iter().map(|r| self.read(r))).await
    }

    async fn read(&self, read: &PartitionRead) -> Result<ReadResult> {
        if read.current_leader_epoch != NO_EPOCH {
            let epochs = self.log.leader_epochs(&read.tp).await?;
            epochs.check_current(read.current_leader_epoch)?;
        }
        self.log.read(&read.tp, read.offset, read.max_bytes).await
    }

    /// OffsetForLeaderEpoch: for each partition, the largest epoch at or below the one
    /// asked for and the offset where it ends (`LeaderEpochs::end_offset`), concurrently.
    pub async fn epoch_end_offsets(
        &self,
        queries: Vec<(TopicPartition, EpochQuery)>,
    ) -> Vec<Result<(i32, i64)>> {
        join_all(queries.iter().map(|(tp, q)| self.epoch_end_offset(tp, *q))).await
    }

    async fn epoch_end_offset(&self, tp: &TopicPartition, query: EpochQuery) -> Result<(i32, i64)> {
        let epochs = self.log.leader_epochs(tp).await?;
        epochs.check_current(query.current_leader_epoch)?;
        if let EndOffset::Known(epoch, end) = epochs.end_offset(query.leader_epoch) {
            return Ok((epoch, end));
        }
        // The current epoch ends at the log's end. Asking for it may find a truncation,
        // which ends that epoch: the history is read again.
        let log_end = self.log.list_offset(tp, OffsetSpec::Latest).await?.offset;
        match self
            .log
            .leader_epochs(tp)
            .await?
            .end_offset(query.leader_epoch)
        {
            EndOffset::Known(epoch, end) => Ok((epoch, end)),
            EndOffset::LogEnd(epoch) => Ok((epoch, log_end)),
        }
    }

    /// The offset each ListOffsets query names, concurrently.
    pub async fn list_offsets(
        &self,
        queries: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Vec<Result<FoundOffset>> {
        let queries = queries
            .iter()
            .map(|(tp, spec)| self.log.list_offset(tp, *spec));
        join_all(queries).await
    }

    /// Moves each partition's log start to the offset (-1: its high watermark); the new
    /// log start of each.
    pub async fn delete_records(&self, deletions: Vec<(TopicPartition, i64)>) -> Vec<Result<i64>> {
        let deletions = deletions
            .iter()
            .map(|(tp, offset)| self.log.delete_records(tp, *offset));
        join_all(deletions).await
    }

    /// Bytes the backend holds for each partition, concurrently.
    pub async fn sizes(&self, partitions: Vec<TopicPartition>) -> Vec<Result<i64>> {
        join_all(partitions.iter().map(|tp| self.log.size(tp))).await
    }

    /// Returns the topic of the next partition here whose leader epoch changed, once its
    /// history is stored (see `PartitionLog::leader_epoch_changed`).
    pub async fn leader_epoch_changed(&self) -> std::sync::Arc<str> {
        self.log.leader_epoch_changed().await
    }

    /// Reads the backend answered from its batch cache, and not (`None`: it has none).
    pub fn smq_counts(&self) -> Option<crate::metrics::SmqCounts> {
        self.log.smq_counts()
    }

    /// The idempotent producers each partition knows.
    pub fn producers_on(&self, partitions: &[TopicPartition]) -> Vec<Result<Vec<ActiveProducer>>> {
        let producers = self.producers.borrow();
        partitions
            .iter()
            .map(|tp| Ok(producers.active_on(tp)))
            .collect()
    }

    fn wake_fetchers(&self, tp: &TopicPartition) {
        let waiting = self.waiters.borrow_mut().remove(tp);
        for waiter in waiting.into_iter().flatten() {
            let _ = waiter.send(());
        }
    }

    /// Returns once any partition has data past its position (or vanished). Appends here
    /// wake it; a backend others append to as well (SMQ) is re-read every poll interval.
    pub async fn watch(&self, positions: Vec<(TopicPartition, i64)>) {
        let moved =
            |(tp, offset): &(TopicPartition, i64)| self.log.high_watermark(tp) != Some(*offset);
        if positions.is_empty() || positions.iter().any(moved) {
            return;
        }
        let mut woken = Vec::with_capacity(positions.len());
        {
            let mut waiters = self.waiters.borrow_mut();
            for (tp, _) in positions {
                let (sender, receiver) = oneshot::channel();
                let list = waiters.entry(tp).or_default();
                list.retain(|w| !w.is_canceled());
                list.push(sender);
                woken.push(receiver);
            }
        }
        match self.log.poll_interval() {
            None => drop(select_all(woken).await),
            Some(interval) => {
                let timer = std::pin::pin!(glommio::timer::sleep(interval));
                drop(select(select_all(woken), timer).await);
            }
        }
    }

    /// Restores producer states an earlier run stored for partitions this shard owns.
    pub fn restore_producers(&self, mine: Vec<StoredProducer>) {
        let mut producers = self.producers.borrow_mut();
        for stored in mine {
            producers.restore(stored.tp, stored.producer_id, stored.state);
        }
    }

    /// Starts the partitions' background work: producer expiry, retention, and the
    /// producer-state writer where the backend keeps producers.
    pub fn start_background(self: &Rc<Self>, retention_check_interval: Duration) {
        let partitions = self.clone();
        glommio::spawn_local(async move { partitions.expire_producers().await }).detach();
        let partitions = self.clone();
        glommio::spawn_local(async move {
            partitions.enforce_retention(retention_check_interval).await
        })
        .detach();
        if self.producer_store.keeps_producers() {
            let partitions = self.clone();
            glommio::spawn_local(async move { partitions.write_producer_states().await }).detach();
        }
    }

    /// Finishes what must outlive the process before it exits: producer states still to be
    /// stored, and the backend's open streams. Appends must have stopped.
    pub async fn close(&self) {
        let flushed = self.producer_writes.borrow_mut().flushed();
        if let Some(flushed) = flushed {
            let _ = flushed.await;
        }
        self.log.close().await;
    }

    /// Stores changed producer states, one write at a time, each covering everything that
    /// changed while the previous one ran. A failed write is logged and its states are
    /// written again with the next; the appends waiting for it are answered anyway (their
    /// records are stored; only a retry across a restart would go unrecognised). Runs for
    /// backends that keep producer state.
    async fn write_producer_states(&self) {
        loop {
            let next = self.producer_writes.borrow_mut().take();
            let (changed, waiting) = match next {
                Ok(work) => work,
                Err(wake) => {
                    let _ = wake.await;
                    continue;
                }
            };
            let snapshots: Vec<_> = {
                let producers = self.producers.borrow();
                changed
                    .iter()
                    .filter_map(|(tp, id)| {
                        Some(StoredProducer {
                            tp: tp.clone(),
                            producer_id: *id,
                            state: producers.snapshot(tp, *id)?,
                        })
                    })
                    .collect()
            };
            let started = std::time::Instant::now();
            let written = self.producer_store.store(&snapshots).await;
            tracing::debug!(
                states = snapshots.len(),
                waiting = waiting.len(),
                took_us = started.elapsed().as_micros() as u64,
                "producer states written"
            );
            for done in waiting {
                let _ = done.send(());
            }
            if let Err(error) = written {
                tracing::warn!(%error, "producer states not stored; retrying");
                self.producer_writes.borrow_mut().retry(changed);
                glommio::timer::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Forgets idle producers now and then (see `ProducerStates::expire`).
    async fn expire_producers(&self) {
        loop {
            glommio::timer::sleep(Duration::from_secs(60)).await;
            let now_ms = crate::unix_time().as_millis() as i64;
            let expired = self.producers.borrow_mut().expire(now_ms);
            if expired > 0 {
                tracing::debug!(expired, "idle producers forgotten");
            }
        }
    }

    /// Drops what the partitions keep past their topics' `retention.ms`, every `interval`
    /// (`--log-retention-check-interval-ms`), as Kafka's log manager does.
    async fn enforce_retention(&self, interval: Duration) {
        loop {
            glommio::timer::sleep(interval).await;
            let now_ms = crate::unix_time().as_millis() as i64;
            let dropped = self.log.enforce_retention(now_ms);
            if dropped > 0 {
                tracing::debug!(dropped, "batches past retention.ms dropped");
            }
        }
    }
}

/// What an unreachable owner answers for each item it was sent.
pub fn unreachable<R>(count: usize) -> Vec<Result<R>> {
    (0..count).map(|_| Err(Error::ShardUnreachable)).collect()
}
