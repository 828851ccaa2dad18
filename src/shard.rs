//! A shard's state, and the partition work that runs on the partition's owner.
//!
//! Every piece of partition work (append, read, list offsets, wait for data) is a
//! [`ShardRequest`] executed by the owning shard. A handler calls [`Shard::invoke`]; when
//! the owner is another shard the request crosses the mesh, otherwise it runs in place.
//! One code path either way, so a request that reached the "wrong" core is served exactly
//! like one that reached the right one.

use crate::backend::{Backend, OffsetSpec, ReadResult, StoredProducer};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::Coordinator;
use crate::producer_state::{ActiveProducer, PendingWrites, ProducerStates, SequenceCheck};
use crate::record_batch::{BatchHeader, RecordBatch};
use crate::TopicPartition;
use futures::channel::oneshot;
use futures::future::{join_all, select, select_all, Either};
use hashbrown::HashMap;
use shards::{Mesh, MeshInbox, ShardId, ShardMap};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

/// Records for one partition, validated.
#[derive(Debug, Clone)]
pub struct PartitionAppend {
    pub tp: TopicPartition,
    pub batches: Vec<RecordBatch>,
}

/// A read of one partition from `offset`, up to about `max_bytes`.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    pub tp: TopicPartition,
    pub offset: i64,
    pub max_bytes: usize,
}

/// Work for the shard that owns the partitions named in it.
#[derive(Debug)]
pub enum ShardRequest {
    Append(Vec<PartitionAppend>),
    Read(Vec<PartitionRead>),
    ListOffsets(Vec<(TopicPartition, OffsetSpec)>),
    /// Resolve once any partition's high watermark differs from the given offset.
    Watch(Vec<(TopicPartition, i64)>),
    /// Move each partition's log start to the offset (-1: its high watermark).
    DeleteRecords(Vec<(TopicPartition, i64)>),
    /// The idempotent producers each partition knows.
    DescribeProducers(Vec<TopicPartition>),
    /// A topic's configs changed: forget what is cached about it. Not partition work: sent
    /// to every shard.
    TopicChanged(Arc<str>),
}

/// The answer to a [`ShardRequest`], one entry per partition in request order.
#[derive(Debug)]
pub enum ShardReply {
    /// Base offset of each append.
    Append(Vec<Result<i64>>),
    Read(Vec<Result<ReadResult>>),
    ListOffsets(Vec<Result<(i64, i64)>>),
    Watch,
    /// The new log start of each partition.
    DeleteRecords(Vec<Result<i64>>),
    DescribeProducers(Vec<Result<Vec<ActiveProducer>>>),
    TopicChanged,
}

impl ShardReply {
    pub fn appended(self) -> Option<Vec<Result<i64>>> {
        match self {
            ShardReply::Append(results) => Some(results),
            _ => None,
        }
    }

    pub fn read(self) -> Option<Vec<Result<ReadResult>>> {
        match self {
            ShardReply::Read(results) => Some(results),
            _ => None,
        }
    }

    pub fn offsets(self) -> Option<Vec<Result<(i64, i64)>>> {
        match self {
            ShardReply::ListOffsets(results) => Some(results),
            _ => None,
        }
    }

    pub fn log_starts(self) -> Option<Vec<Result<i64>>> {
        match self {
            ShardReply::DeleteRecords(results) => Some(results),
            _ => None,
        }
    }

    pub fn producers(self) -> Option<Vec<Result<Vec<ActiveProducer>>>> {
        match self {
            ShardReply::DescribeProducers(results) => Some(results),
            _ => None,
        }
    }
}

/// A request from another shard with the channel its answer goes back on.
pub type ShardMessage = (ShardRequest, oneshot::Sender<ShardReply>);

/// Everything one shard owns.
pub struct Shard {
    pub id: ShardId,
    pub config: Arc<Config>,
    pub cluster: Arc<Cluster>,
    pub backend: Backend,
    /// The consumer groups this shard coordinates.
    pub groups: Coordinator,
    shard_map: ShardMap,
    mesh: Mesh<ShardMessage>,
    producers: RefCell<ProducerStates>,
    /// Producer states to store before their appends are answered (backends that keep them).
    producer_writes: RefCell<PendingWrites>,
    /// Fetches waiting for data, by partition; woken by this shard's appends.
    waiters: RefCell<HashMap<TopicPartition, Vec<oneshot::Sender<()>>>>,
    producer_ids_issued: Cell<i64>,
    producer_id_base: i64,
}

impl Shard {
    pub fn new(
        id: ShardId,
        config: Arc<Config>,
        cluster: Arc<Cluster>,
        backend: Backend,
        mesh: Mesh<ShardMessage>,
    ) -> Self {
        let started_secs = crate::unix_time().as_secs() as i64;
        Self {
            id,
            shard_map: ShardMap::new(mesh.nr_shards()),
            groups: Coordinator::new(&config),
            config,
            cluster,
            backend,
            mesh,
            producers: RefCell::default(),
            producer_writes: RefCell::default(),
            waiters: RefCell::default(),
            producer_ids_issued: Cell::new(0),
            // Ids from different runs must not collide while old producers may still be
            // around: the start time in the high bits keeps runs apart.
            producer_id_base: (started_secs & 0x7fff_ffff) << 22,
        }
    }

    pub fn nr_shards(&self) -> usize {
        self.shard_map.nr_shards()
    }

    /// The shard that owns a partition.
    pub fn owner(&self, tp: &TopicPartition) -> ShardId {
        self.shard_map
            .owner(tp.topic.as_bytes(), tp.partition.max(0) as u32)
    }

    /// The shard that coordinates a consumer group.
    pub fn group_owner(&self, group: &str) -> ShardId {
        self.shard_map.owner(group.as_bytes(), 0)
    }

    /// Whether this shard coordinates the group; the others answer NOT_COORDINATOR.
    pub fn coordinates(&self, group: &str) -> bool {
        self.group_owner(group) == self.id
    }

    /// Keeps the groups' clocks running: session expiry and rebalance deadlines.
    pub async fn run_group_timers(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(crate::group::TICK).await;
            self.groups.tick();
        }
    }

    /// Takes the producer states of the partitions this shard owns out of `stored` (what
    /// earlier runs stored, read once at start-up for every shard) and restores them.
    pub fn restore_producers(&self, stored: &mut Vec<StoredProducer>) {
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(stored)
            .into_iter()
            .partition(|(tp, _, _)| self.owner(tp) == self.id);
        *stored = others;
        let restored = mine.len();
        let mut producers = self.producers.borrow_mut();
        for (tp, producer_id, snapshot) in mine {
            producers.restore(tp, producer_id, snapshot);
        }
        if restored > 0 {
            tracing::info!(shard = self.id, restored, "producer states restored");
        }
    }

    /// Stores changed producer states, one write at a time, each covering everything that
    /// changed while the previous one ran. A failed write is logged and its states are
    /// written again with the next; the appends waiting for it are answered anyway (their
    /// records are stored; only a retry across a restart would go unrecognised).
    pub async fn write_producer_states(self: Rc<Self>) {
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
                    .filter_map(|(tp, id)| Some((tp.clone(), *id, producers.snapshot(tp, *id)?)))
                    .collect()
            };
            let started = std::time::Instant::now();
            let written = self.backend.store_producers(&snapshots).await;
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
                tracing::warn!(shard = self.id, %error, "producer states not stored; retrying");
                self.producer_writes.borrow_mut().retry(changed);
                glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }

    /// Drops what the partitions keep past their topics' `retention.ms`, every
    /// `--log-retention-check-interval-ms`, as Kafka's log manager does.
    pub async fn enforce_retention(self: Rc<Self>) {
        let interval =
            std::time::Duration::from_millis(self.config.log_retention_check_interval_ms);
        loop {
            glommio::timer::sleep(interval).await;
            let now_ms = crate::unix_time().as_millis() as i64;
            let dropped = self.backend.enforce_retention(now_ms);
            if dropped > 0 {
                tracing::debug!(
                    shard = self.id,
                    dropped,
                    "batches past retention.ms dropped"
                );
            }
        }
    }

    /// Tells every shard (this one too) that a topic changed, so none serves it from what it
    /// cached before; returns once all have.
    pub async fn topic_changed(self: &Rc<Self>, name: &str) {
        let name: Arc<str> = Arc::from(name);
        let calls = (0..self.nr_shards())
            .map(|owner| self.invoke(owner, ShardRequest::TopicChanged(name.clone())));
        join_all(calls).await;
    }

    /// Forgets idle producers now and then (see `ProducerStates::expire`).
    pub async fn expire_producers(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(std::time::Duration::from_secs(60)).await;
            let now_ms = crate::unix_time().as_millis() as i64;
            let expired = self.producers.borrow_mut().expire(now_ms);
            if expired > 0 {
                tracing::debug!(shard = self.id, expired, "idle producers forgotten");
            }
        }
    }

    /// A producer id no other shard or earlier run hands out.
    pub fn allocate_producer_id(&self) -> i64 {
        let issued = self.producer_ids_issued.get();
        self.producer_ids_issued.set(issued + 1);
        self.producer_id_base + issued * self.nr_shards() as i64 + self.id as i64
    }

    /// Runs `request` on shard `owner`, here or across the mesh.
    pub async fn invoke(
        self: &Rc<Self>,
        owner: ShardId,
        request: ShardRequest,
    ) -> Option<ShardReply> {
        if owner == self.id {
            return Some(self.clone().execute(request).await);
        }
        self.mesh.call(owner, |reply| (request, reply)).await.ok()
    }

    /// Runs per-partition work where each partition lives: one request per owning shard,
    /// all of them sent before any answer is awaited. Returns each item's index with its
    /// result; items whose owner could not be reached get `ShardUnreachable`.
    pub async fn scatter<T, R>(
        self: &Rc<Self>,
        items: impl IntoIterator<Item = (usize, T)>,
        tp_of: impl Fn(&T) -> &TopicPartition,
        request: fn(Vec<T>) -> ShardRequest,
        answers: fn(ShardReply) -> Option<Vec<Result<R>>>,
    ) -> Vec<(usize, Result<R>)> {
        let calls = group_by_owner(self, items, tp_of).into_iter().map(
            |(owner, indexes, group)| async move {
                let count = group.len();
                let results = self.invoke(owner, request(group)).await.and_then(answers);
                let results = results
                    .filter(|r| r.len() == count)
                    .unwrap_or_else(|| (0..count).map(|_| Err(Error::ShardUnreachable)).collect());
                indexes.into_iter().zip(results)
            },
        );
        join_all(calls).await.into_iter().flatten().collect()
    }

    /// Serves requests other shards send here, each in its own task, started in arrival
    /// order (appends rely on it). A watcher that gives up cancels its watch.
    pub async fn serve_mesh(self: Rc<Self>, mut inbox: MeshInbox<ShardMessage>) {
        while let Some((request, mut reply)) = inbox.recv().await {
            let shard = self.clone();
            glommio::spawn_local(async move {
                let work = std::pin::pin!(shard.execute(request));
                if let Either::Left((answer, _)) = select(work, reply.cancellation()).await {
                    let _ = reply.send(answer);
                }
            })
            .detach();
        }
    }

    async fn execute(self: Rc<Self>, request: ShardRequest) -> ShardReply {
        match request {
            // Every partition's append is queued in the first poll, before any is awaited.
            ShardRequest::Append(appends) => ShardReply::Append(
                join_all(appends.into_iter().map(|a| self.append_local(a))).await,
            ),
            ShardRequest::Read(reads) => {
                let mut results = Vec::with_capacity(reads.len());
                for read in reads {
                    results.push(
                        self.backend
                            .read(&read.tp, read.offset, read.max_bytes)
                            .await,
                    );
                }
                ShardReply::Read(results)
            }
            ShardRequest::ListOffsets(queries) => {
                let mut results = Vec::with_capacity(queries.len());
                for (tp, spec) in queries {
                    results.push(self.backend.list_offset(&tp, spec).await);
                }
                ShardReply::ListOffsets(results)
            }
            ShardRequest::Watch(positions) => {
                self.watch_local(positions).await;
                ShardReply::Watch
            }
            ShardRequest::DeleteRecords(deletions) => {
                let mut results = Vec::with_capacity(deletions.len());
                for (tp, offset) in deletions {
                    results.push(self.backend.delete_records(&tp, offset).await);
                }
                ShardReply::DeleteRecords(results)
            }
            ShardRequest::DescribeProducers(partitions) => {
                let producers = self.producers.borrow();
                let results = partitions.iter().map(|tp| Ok(producers.active_on(tp)));
                ShardReply::DescribeProducers(results.collect())
            }
            ShardRequest::TopicChanged(name) => {
                self.backend.topic_changed(&name);
                ShardReply::TopicChanged
            }
        }
    }

    /// Sequence check, append, wake fetchers. The check and the append's position are
    /// settled before the first `.await`, so pipelined requests keep their order.
    async fn append_local(&self, append: PartitionAppend) -> Result<i64> {
        let headers: Vec<BatchHeader> = append.batches.iter().map(|b| b.header).collect();
        let check = self.producers.borrow().check(&append.tp, &headers)?;
        if let SequenceCheck::Duplicate { base_offset } = check {
            return Ok(base_offset);
        }
        self.producers.borrow_mut().record(&append.tp, &headers);
        let appended = self.backend.append(&append.tp, &append.batches).await;
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
        if self.backend.keeps_producers() {
            // Answered only once a retry across a restart would be recognised.
            let written = self
                .producer_writes
                .borrow_mut()
                .changed(&append.tp, &headers);
            if let Some(written) = written {
                let _ = written.await;
            }
        }
        Ok(base_offset)
    }

    fn wake_fetchers(&self, tp: &TopicPartition) {
        let waiting = self.waiters.borrow_mut().remove(tp);
        for waiter in waiting.into_iter().flatten() {
            let _ = waiter.send(());
        }
    }

    /// Returns once any partition has data past its position (or vanished).
    async fn watch_local(&self, positions: Vec<(TopicPartition, i64)>) {
        let moved =
            |(tp, offset): &(TopicPartition, i64)| self.backend.high_watermark(tp) != Some(*offset);
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
        match self.backend.poll_interval() {
            None => drop(select_all(woken).await),
            Some(interval) => {
                let timer = std::pin::pin!(glommio::timer::sleep(interval));
                drop(select(select_all(woken), timer).await);
            }
        }
    }
}

/// Splits per-partition work by owning shard, keeping each item's original index.
pub fn group_by_owner<T>(
    shard: &Shard,
    items: impl IntoIterator<Item = (usize, T)>,
    tp_of: impl Fn(&T) -> &TopicPartition,
) -> Vec<(ShardId, Vec<usize>, Vec<T>)> {
    let mut groups: Vec<(ShardId, Vec<usize>, Vec<T>)> = Vec::new();
    for (index, item) in items {
        let owner = shard.owner(tp_of(&item));
        match groups.iter_mut().find(|(s, _, _)| *s == owner) {
            Some((_, indexes, group)) => {
                indexes.push(index);
                group.push(item);
            }
            None => groups.push((owner, vec![index], vec![item])),
        }
    }
    groups
}
