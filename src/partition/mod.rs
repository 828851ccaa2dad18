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
//! A partition whose idempotent producers are still being recovered after a start (see
//! [`Partitions::recover_producers`]) holds its appends back until they are, and then lets
//! them through one at a time in arrival order, each once its position is fixed
//! (`RecoveryQueue`).
//!
//! An `.await` added before any of these points lets a later request overtake an earlier
//! one. `tests/routing.rs` (`pipelined_produces_are_stored_and_acknowledged_in_order`)
//! pipelines produce requests on one connection to partitions owned by both shards and
//! checks each batch is stored and acknowledged at the offset its place in the pipeline
//! gives it.

pub mod leader_epochs;
pub mod producer_state;

use crate::backend::{FoundOffset, OffsetSpec, PartitionLog, ProducerStore, ReadResult};
use crate::error::{Error, Result};
use crate::record_batch::{BatchHeader, RecordBatch};
use crate::TopicPartition;
use futures::channel::{mpsc, oneshot};
use futures::future::{join_all, select, select_all};
use futures::StreamExt;
use hashbrown::HashMap;
use leader_epochs::{EndOffset, NO_EPOCH};
use producer_state::{
    ActiveProducer, PartitionSnapshot, ProducerIds, ProducerStates, SequenceCheck,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;
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

/// A ListOffsets query of one partition.
#[derive(Debug, Clone, Copy)]
pub struct OffsetQuery {
    pub spec: OffsetSpec,
    /// The leader epoch the client believes current (ListOffsets v4+), checked before and
    /// after the lookup; -1: not checked.
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
    /// Where idempotent producers' snapshots outlive the process, if the backend keeps them.
    producer_store: ProducerStore,
    producers: RefCell<ProducerStates>,
    /// Partitions whose producers are being recovered, with the appends waiting for that.
    recovering: RefCell<HashMap<TopicPartition, RecoveryQueue>>,
    /// Partitions to recover, for the task that does it (`start_background`).
    to_recover: mpsc::UnboundedSender<TopicPartition>,
    to_recover_receiver: RefCell<Option<mpsc::UnboundedReceiver<TopicPartition>>>,
    /// Fetches waiting for data, by partition; woken by this shard's appends.
    waiters: RefCell<HashMap<TopicPartition, Vec<oneshot::Sender<()>>>>,
}

/// The appends waiting for a partition's producers to be recovered, in arrival order: each
/// is told when its turn comes (or that recovery failed), and gives the turn on once its
/// position is fixed.
type RecoveryQueue = VecDeque<oneshot::Sender<Result<()>>>;

impl Partitions {
    pub fn new(
        log: PartitionLog,
        producer_store: ProducerStore,
        producer_ids: ProducerIds,
    ) -> Self {
        let (to_recover, to_recover_receiver) = mpsc::unbounded();
        Self {
            producer_ids,
            log,
            producer_store,
            producers: RefCell::default(),
            recovering: RefCell::default(),
            to_recover,
            to_recover_receiver: RefCell::new(Some(to_recover_receiver)),
            waiters: RefCell::default(),
        }
    }

    /// Appends to every partition, each started in this future's first poll (see the
    /// module comment); one result per append, in order.
    pub async fn append_all(&self, appends: Vec<PartitionAppend>) -> Vec<Result<i64>> {
        join_all(appends.into_iter().map(|a| self.append(a))).await
    }

    /// Appends once the partition's producers are known (see the module comment).
    async fn append(&self, append: PartitionAppend) -> Result<i64> {
        let tp = append.tp.clone();
        let Some(turn) = self.producers_known(&tp).await? else {
            return self.append_known(append).await;
        };
        let mut appending = std::pin::pin!(self.append_known(append));
        let first = futures::poll!(appending.as_mut());
        // Its position is fixed: the next may go.
        drop(turn);
        match first {
            Poll::Ready(result) => result,
            Poll::Pending => appending.await,
        }
    }

    /// Sequence check, append, wake fetchers. The check and the append's position are
    /// settled before the first `.await`, so pipelined requests keep their order.
    async fn append_known(&self, append: PartitionAppend) -> Result<i64> {
        let headers: Vec<BatchHeader> = append.batches.iter().map(|b| b.header).collect();
        let check = self.producers.borrow().check(&append.tp, &headers)?;
        if let SequenceCheck::Duplicate { base_offset } = check {
            // A retry of records acknowledged, or still waiting to be durable.
            self.durable(&append, base_offset).await?;
            return Ok(base_offset);
        }
        let in_flight = self.producers.borrow_mut().record(&append.tp, &headers);
        let appended = self.log.append(&append.tp, &append.batches).await;
        let base_offset = match appended {
            Ok(base_offset) => base_offset,
            Err(error) => {
                self.producers
                    .borrow_mut()
                    .failed(&append.tp, &headers, in_flight);
                return Err(error);
            }
        };
        // The records carry their producers' marks (a backend that keeps producers): a
        // retry across a restart is recognised from them, with nothing more to wait for.
        self.producers
            .borrow_mut()
            .stored(&append.tp, &headers, base_offset, in_flight);
        self.wake_fetchers(&append.tp);
        self.durable(&append, base_offset).await?;
        Ok(base_offset)
    }

    /// Returns once the partition's producers are known, in its queue of appends: `None` if
    /// they were and no append waited, otherwise the turn this caller holds (passed on to
    /// the next when dropped).
    async fn producers_known(&self, tp: &TopicPartition) -> Result<Option<RecoveryTurn<'_>>> {
        let Some(mut turn) = self.recovery_turn(tp) else {
            return Ok(None);
        };
        (&mut turn.receiver)
            .await
            .map_err(|_| Error::Unavailable("producer recovery stopped".into()))??;
        turn.held = true;
        Ok(Some(turn))
    }

    /// `None` if the partition's producers are known and no append waits for them;
    /// otherwise this append's place in the queue, the recovery asked for if it is the
    /// first.
    fn recovery_turn(&self, tp: &TopicPartition) -> Option<RecoveryTurn<'_>> {
        if !self.producer_store.keeps_producers() {
            return None;
        }
        let mut recovering = self.recovering.borrow_mut();
        let queue = match recovering.get_mut(tp) {
            Some(queue) => queue,
            None if self.producers.borrow().knows(tp) => return None,
            None => {
                let _ = self.to_recover.unbounded_send(tp.clone());
                recovering.entry(tp.clone()).or_default()
            }
        };
        let (sender, receiver) = oneshot::channel();
        queue.push_back(sender);
        Some(RecoveryTurn {
            partitions: self,
            tp: tp.clone(),
            receiver,
            held: false,
        })
    }

    /// Gives the partition's turn to the next append still waiting; with none left, the
    /// partition's appends go straight through again.
    fn pass_turn(&self, tp: &TopicPartition) {
        let mut recovering = self.recovering.borrow_mut();
        let Some(queue) = recovering.get_mut(tp) else {
            return;
        };
        while let Some(next) = queue.pop_front() {
            if next.send(Ok(())).is_ok() {
                return;
            }
        }
        recovering.remove(tp);
    }

    /// Recovers a partition's producers after a start: its last snapshot, then the marks
    /// of the records written since. A partition without a snapshot has no marks (it gets
    /// its first snapshot here, before any append there can write one): its producers
    /// start where its records end. On failure the waiting appends are answered with it,
    /// and the next append tries again.
    async fn recover_producers(&self, tp: TopicPartition) {
        match self.read_producers(&tp).await {
            Ok((snapshot, marks, end)) => {
                tracing::debug!(%tp, from = snapshot.covered_until, end, marks = marks.len(),
                    producers = snapshot.producers.len(), "producers recovered");
                self.producers
                    .borrow_mut()
                    .recover(&tp, snapshot, &marks, end);
                self.pass_turn(&tp);
            }
            Err(error) => {
                tracing::warn!(%tp, %error, "producers not recovered; appends there fail until they are");
                let waiting = self.recovering.borrow_mut().remove(&tp);
                for append in waiting.into_iter().flatten() {
                    let error =
                        Error::Unavailable(format!("{tp}: producers not recovered: {error}"));
                    let _ = append.send(Err(error));
                }
            }
        }
    }

    async fn read_producers(
        &self,
        tp: &TopicPartition,
    ) -> Result<(PartitionSnapshot, Vec<producer_state::StoredBatch>, i64)> {
        if let Some(snapshot) = self.producer_store.load(tp).await? {
            let (marks, end) = self.log.producer_marks(tp, snapshot.covered_until).await?;
            return Ok((snapshot, marks, end));
        }
        let end = self.log.list_offset(tp, OffsetSpec::Latest).await?.offset;
        let snapshot = PartitionSnapshot {
            covered_until: end,
            producers: Default::default(),
        };
        self.producer_store
            .store(&[(tp.clone(), snapshot.clone())])
            .await?;
        Ok((snapshot, Vec::new(), end))
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
        if read.current_leader_epoch == NO_EPOCH {
            return self.log.read(&read.tp, read.offset, read.max_bytes).await;
        }
        self.check_epoch(&read.tp, read.current_leader_epoch)
            .await?;
        let result = self.log.read(&read.tp, read.offset, read.max_bytes).await;
        if let Err(Error::OffsetOutOfRange) = result {
            // The read may itself have found the log truncated under the client's position
            // (SMQ lost records and its high-water mark fell) and begun a new epoch. The
            // position belongs to the old one: fenced, the client asks OffsetForLeaderEpoch
            // where its epoch ended (KIP-320), as after Kafka's unclean leader election;
            // out of range, it would apply its reset policy and skip or re-read records.
            self.check_epoch(&read.tp, read.current_leader_epoch)
                .await?;
        }
        result
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
        queries: Vec<(TopicPartition, OffsetQuery)>,
    ) -> Vec<Result<FoundOffset>> {
        join_all(queries.iter().map(|(tp, q)| self.list_offset(tp, *q))).await
    }

    async fn list_offset(&self, tp: &TopicPartition, query: OffsetQuery) -> Result<FoundOffset> {
        if query.current_leader_epoch == NO_EPOCH {
            return self.log.list_offset(tp, query.spec).await;
        }
        self.check_epoch(tp, query.current_leader_epoch).await?;
        let found = self.log.list_offset(tp, query.spec).await;
        // As in `read`: the lookup may itself find the log truncated and begin a new epoch,
        // in which the client's is fenced.
        self.check_epoch(tp, query.current_leader_epoch).await?;
        found
    }

    /// Checks the epoch a client believes current against the partition's
    /// (`LeaderEpochs::check_current`).
    async fn check_epoch(&self, tp: &TopicPartition, client_epoch: i32) -> Result<()> {
        self.log
            .leader_epochs(tp)
            .await?
            .check_current(client_epoch)
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

    /// The idempotent producers of each partition, recovered first after a start as for an
    /// append: a partition no one has appended to since is not without producers.
    pub async fn producers_on(
        &self,
        partitions: &[TopicPartition],
    ) -> Vec<Result<Vec<ActiveProducer>>> {
        join_all(partitions.iter().map(|tp| self.producers_of(tp))).await
    }

    async fn producers_of(&self, tp: &TopicPartition) -> Result<Vec<ActiveProducer>> {
        let _turn = self.producers_known(tp).await?;
        Ok(self.producers.borrow().active_on(tp))
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

    /// Starts the partitions' background work: producer expiry, retention, and where the
    /// backend keeps producers, their recovery and the snapshot writer.
    pub fn start_background(
        self: &Rc<Self>,
        retention_check_interval: Duration,
        snapshot_interval: Duration,
    ) {
        let partitions = self.clone();
        glommio::spawn_local(async move { partitions.expire_producers().await }).detach();
        let partitions = self.clone();
        glommio::spawn_local(async move {
            partitions.enforce_retention(retention_check_interval).await
        })
        .detach();
        let to_recover = self.to_recover_receiver.borrow_mut().take();
        if let (true, Some(mut to_recover)) = (self.producer_store.keeps_producers(), to_recover) {
            let partitions = self.clone();
            glommio::spawn_local(async move {
                while let Some(tp) = to_recover.next().await {
                    let partitions = partitions.clone();
                    glommio::spawn_local(async move { partitions.recover_producers(tp).await })
                        .detach();
                }
            })
            .detach();
            let partitions = self.clone();
            glommio::spawn_local(async move {
                loop {
                    glommio::timer::sleep(snapshot_interval).await;
                    partitions.write_producer_snapshots().await;
                }
            })
            .detach();
        }
    }

    /// Finishes what must outlive the process before it exits: the backend's open streams
    /// (each once what was sent on it is acknowledged), then the producers' snapshots, so a
    /// restart has no marks to read. Appends must have stopped.
    pub async fn close(&self) {
        self.log.close().await;
        self.write_producer_snapshots().await;
    }

    /// Writes the snapshots of the partitions whose producers changed since the last
    /// write, in one write; a failed one is logged and taken again with the next. Nothing
    /// waits for it: the records carry their marks, and a snapshot only shortens what a
    /// restarted shard reads.
    async fn write_producer_snapshots(&self) {
        let snapshots = self.producers.borrow_mut().take_changed();
        if snapshots.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        match self.producer_store.store(&snapshots).await {
            Ok(()) => tracing::debug!(
                partitions = snapshots.len(),
                took_us = started.elapsed().as_micros() as u64,
                "producer snapshots written"
            ),
            Err(error) => {
                tracing::warn!(%error, "producer snapshots not written; retrying");
                let partitions = snapshots.into_iter().map(|(tp, _)| tp);
                self.producers.borrow_mut().changed_again(partitions);
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

/// An append's place in a partition's `RecoveryQueue`. Dropped holding the turn (its
/// position fixed, or the append given up), it gives the turn on; dropped with the turn
/// given to it but not taken (the append given up meanwhile), too.
struct RecoveryTurn<'a> {
    partitions: &'a Partitions,
    tp: TopicPartition,
    receiver: oneshot::Receiver<Result<()>>,
    held: bool,
}

impl Drop for RecoveryTurn<'_> {
    fn drop(&mut self) {
        let given = self.held || matches!(self.receiver.try_recv(), Ok(Some(Ok(()))));
        if given {
            self.partitions.pass_turn(&self.tp);
        }
    }
}

/// What an unreachable owner answers for each item it was sent.
pub fn unreachable<R>(count: usize) -> Vec<Result<R>> {
    (0..count).map(|_| Err(Error::ShardUnreachable)).collect()
}
