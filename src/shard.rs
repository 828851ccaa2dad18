//! A shard: what it owns (its partitions, the groups it coordinates) and the routing of
//! work to the shard that owns it.
//!
//! Partition work runs on the partition's owner. A handler calls [`Shard::scatter`] (or
//! [`Shard::invoke`] for one shard); when the owner is another shard the work crosses the
//! mesh (bounded: a full inbox makes the sender wait) as a closure carrying its own reply
//! channel, otherwise it runs in place. One code
//! path either way, so a request that reached the "wrong" core is served exactly like one
//! that reached the right one, and every kind of work has its own typed answer.

use crate::backend::{SecurityStore, ShardStores, TopicCatalogue};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::group::Coordinator;
use crate::metrics::{ShardMetrics, Snapshot};
use crate::partition::producer_state::ProducerIds;
use crate::partition::{unreachable, Partitions};
use crate::protocol::budget::MemoryBudget;
use crate::protocol::close_log::CloseLog;
use crate::security::access::Access;
use crate::security::Security;
use crate::TopicPartition;
use futures::channel::oneshot;
use futures::future::{join_all, select, select_all, Either, LocalBoxFuture};
use shards::{Mesh, MeshInbox, ShardId, ShardMap};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

/// Work sent to another shard: run there with that shard, it answers on the reply channel
/// it carries.
pub type ShardMessage = Box<dyn FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, ()> + Send>;

/// Per-partition work for [`Shard::scatter`], run on the owner with its partitions.
pub type PartitionWork<T, R> =
    fn(Rc<Partitions>, Vec<T>) -> LocalBoxFuture<'static, Vec<Result<R>>>;

/// Everything one shard owns.
pub struct Shard {
    pub id: ShardId,
    pub config: Arc<Config>,
    pub cluster: Arc<Cluster>,
    /// Users, SASL mechanisms and the rest of what clients authenticate against.
    pub security: Arc<Security>,
    /// The ACLs as this shard checks them, with its cache of answers.
    pub access: Access,
    /// Where this shard stores changes to the users and ACLs (see `security::stored`).
    pub security_store: SecurityStore,
    /// The topics, as this shard's catalogue sees them.
    pub topics: TopicCatalogue,
    /// The partitions this shard owns.
    pub partitions: Rc<Partitions>,
    /// The consumer groups this shard coordinates; reached through [`Shard::coordinator`].
    groups: Rc<Coordinator>,
    /// What this shard has done, for `--metrics-addr`.
    pub metrics: ShardMetrics,
    /// What this shard's connections hold in requests and unwritten answers
    /// (`--shard-memory-bytes`); each connection's budget has it as parent.
    pub memory: Rc<MemoryBudget>,
    /// How many connections closed for protocol errors this shard still logs this second.
    pub close_log: CloseLog,
    shard_map: ShardMap,
    mesh: Mesh<ShardMessage>,
}

impl Shard {
    pub fn new(
        id: ShardId,
        config: Arc<Config>,
        cluster: Arc<Cluster>,
        security: Arc<Security>,
        stores: ShardStores,
        mesh: Mesh<ShardMessage>,
    ) -> Self {
        let producer_ids = ProducerIds::new(id, mesh.nr_shards());
        let shard_memory_bytes = config.shard_memory_bytes();
        let metrics = ShardMetrics::new(config.metrics_topic_limit);
        Self {
            id,
            shard_map: ShardMap::new(mesh.nr_shards()),
            groups: Rc::new(Coordinator::new(&config, stores.offsets)),
            partitions: Rc::new(Partitions::new(stores.log, stores.producers, producer_ids)),
            topics: stores.topics,
            config,
            cluster,
            access: Access::new(security.clone()),
            security_store: stores.security,
            security,
            mesh,
            metrics,
            memory: MemoryBudget::new(shard_memory_bytes, None),
            close_log: CloseLog::default(),
        }
    }

    /// The shard's counters and gauges, as a scrape sends them.
    pub fn metrics_snapshot(&self) -> Snapshot {
        let mut snapshot = self.metrics.snapshot(self.id);
        snapshot.memory_used = self.memory.used();
        snapshot.memory_limit = self.memory.capacity();
        snapshot.reading_paused = self.memory.waited();
        snapshot.smq_counts = self.partitions.smq_counts();
        snapshot.groups = self.groups.group_counts();
        snapshot
    }

    /// The committed offsets of the groups this shard coordinates, for the lag metric.
    pub async fn committed_offsets(&self) -> Vec<(String, TopicPartition, i64)> {
        self.groups
            .committed_offsets(|group| self.coordinates(group))
            .await
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

    /// The coordinator of a group, if it is this shard: INVALID_GROUP_ID for an id Kafka
    /// refuses, NOT_COORDINATOR (the client asks FindCoordinator again) if another shard
    /// coordinates it.
    pub fn coordinator(&self, group: &str) -> Result<&Coordinator> {
        if !crate::group::valid_group_id(group) {
            return Err(Error::InvalidGroupId("a group id cannot be empty".into()));
        }
        match self.coordinates(group) {
            true => Ok(&*self.groups),
            false => Err(Error::NotCoordinator),
        }
    }

    /// This shard's coordinator, for what concerns all its groups (ListGroups, settings).
    pub fn all_groups(&self) -> &Coordinator {
        &self.groups
    }

    /// Starts the shard's background work: serving other shards, group timers, producer
    /// expiry and state writes, retention.
    pub fn start_background(self: &Rc<Self>, inbox: MeshInbox<ShardMessage>) {
        glommio::spawn_local(self.clone().serve_mesh(inbox)).detach();
        let groups = self.groups.clone();
        glommio::spawn_local(async move { groups.run_timers().await }).detach();
        let interval =
            std::time::Duration::from_millis(self.config.log_retention_check_interval_ms);
        let snapshot_interval =
            std::time::Duration::from_millis(self.config.smq_producer_snapshot_interval_ms);
        self.partitions
            .start_background(interval, snapshot_interval);
        // A truncation bumps a partition's leader epoch, which Metadata answers on every
        // shard from what each looked up: all look the topic up again.
        let shard = self.clone();
        glommio::spawn_local(async move {
            loop {
                let topic = shard.partitions.leader_epoch_changed().await;
                shard.topic_changed(&topic).await;
            }
        })
        .detach();
        // One shard reads what other gateways stored, for all: the state is shared.
        let refresh = self.config.security_refresh_ms;
        if self.id == 0 && refresh > 0 && self.security_store.keeps_security() {
            let shard = self.clone();
            glommio::spawn_local(async move {
                loop {
                    glommio::timer::sleep(std::time::Duration::from_millis(refresh)).await;
                    shard.security.refresh(&shard.security_store).await;
                }
            })
            .detach();
        }
    }

    /// Tells every shard (this one too) that a topic changed, so none serves it from what it
    /// cached before; returns once all have.
    pub async fn topic_changed(self: &Rc<Self>, name: &str) {
        let calls = (0..self.nr_shards()).map(|owner| {
            let name = name.to_string();
            self.invoke(owner, move |shard| async move {
                shard.topics.forget(&name);
            })
        });
        join_all(calls).await;
    }

    /// Runs `work` on shard `owner`, here or across the mesh, and returns its answer;
    /// ShardUnreachable if that shard is gone.
    pub async fn invoke<R, F, Fut>(self: &Rc<Self>, owner: ShardId, work: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        if owner == self.id {
            return Ok(work(self.clone()).await);
        }
        let answer = self.send(owner, work).await?;
        answer.await.map_err(|_| Error::ShardUnreachable)
    }

    /// Puts `work` in shard `owner`'s mesh inbox (waiting while it is full) and returns
    /// where its answer will arrive. The owner starts its messages in arrival order.
    async fn send<R, F, Fut>(&self, owner: ShardId, work: F) -> Result<oneshot::Receiver<R>>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let (reply, answer) = oneshot::channel::<R>();
        let message: ShardMessage = Box::new(move |shard| {
            Box::pin(async move {
                let mut reply = reply;
                let work = std::pin::pin!(work(shard));
                // A caller that gave up (a fetch's watch past its deadline) cancels the work.
                if let Either::Left((answer, _)) = select(work, reply.cancellation()).await {
                    let _ = reply.send(answer);
                }
            })
        });
        self.mesh
            .send(owner, message)
            .await
            .map_err(|_| Error::ShardUnreachable)?;
        Ok(answer)
    }

    /// Runs per-partition work where each partition lives: one call per owning shard, all
    /// of them started before any answer is awaited. Returns each item's index with its
    /// result; items whose owner could not be reached get `ShardUnreachable`.
    pub async fn scatter<T, R>(
        self: &Rc<Self>,
        items: impl IntoIterator<Item = (usize, T)>,
        tp_of: impl Fn(&T) -> &TopicPartition,
        work: PartitionWork<T, R>,
    ) -> Vec<(usize, Result<R>)>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        self.scatter_queued(items, tp_of, work, || ()).await
    }

    /// [`Shard::scatter`], calling `queued` once every owner has its share: this shard's
    /// started up to its first `.await`, the others' in their owners' inboxes. Work
    /// scattered after `queued` is queued after this (the produce-ordering point).
    pub async fn scatter_queued<T, R>(
        self: &Rc<Self>,
        items: impl IntoIterator<Item = (usize, T)>,
        tp_of: impl Fn(&T) -> &TopicPartition,
        work: PartitionWork<T, R>,
        queued: impl FnOnce(),
    ) -> Vec<(usize, Result<R>)>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        let mut answers = Vec::new();
        for (owner, indexes, group) in group_by_owner(self, items, tp_of) {
            let count = group.len();
            let answer = if owner == self.id {
                let mut running = work(self.partitions.clone(), group);
                match futures::poll!(running.as_mut()) {
                    Poll::Ready(results) => Answer::Here(results),
                    Poll::Pending => Answer::Running(running),
                }
            } else {
                let sent = self.send(owner, move |shard| work(shard.partitions.clone(), group));
                match sent.await {
                    Ok(answer) => Answer::Remote(answer),
                    Err(_) => Answer::Here(unreachable(count)),
                }
            };
            answers.push((indexes, count, answer));
        }
        queued();
        let answers = answers
            .into_iter()
            .map(|(indexes, count, answer)| async move {
                let results = answer
                    .wait()
                    .await
                    .filter(|r| r.len() == count)
                    .unwrap_or_else(|| unreachable(count));
                indexes.into_iter().zip(results)
            });
        join_all(answers).await.into_iter().flatten().collect()
    }

    /// Returns once any of the partitions has data past its position, wherever it lives:
    /// each owner watches its own, the first to report ends the wait (and cancels the rest).
    pub async fn watch(self: &Rc<Self>, positions: Vec<(TopicPartition, i64)>) {
        let positions = positions.into_iter().enumerate();
        let watches: Vec<_> = group_by_owner(self, positions, |(tp, _)| tp)
            .into_iter()
            .map(|(owner, _, group)| {
                Box::pin(self.invoke(owner, move |shard| async move {
                    shard.partitions.watch(group).await
                }))
            })
            .collect();
        if !watches.is_empty() {
            drop(select_all(watches).await);
        }
    }

    /// Serves work other shards send here, each in its own task, started in arrival order
    /// (appends rely on it).
    pub async fn serve_mesh(self: Rc<Self>, mut inbox: MeshInbox<ShardMessage>) {
        while let Some(work) = inbox.recv().await {
            glommio::spawn_local(work(self.clone())).detach();
        }
    }
}

/// Where one owner's share of scattered work will answer.
enum Answer<R> {
    /// Finished in its first poll, here.
    Here(Vec<Result<R>>),
    /// Started here, still running.
    Running(LocalBoxFuture<'static, Vec<Result<R>>>),
    /// Queued on another shard.
    Remote(oneshot::Receiver<Vec<Result<R>>>),
}

impl<R> Answer<R> {
    /// The results; `None` if the owner stopped before answering.
    async fn wait(self) -> Option<Vec<Result<R>>> {
        match self {
            Answer::Here(results) => Some(results),
            Answer::Running(running) => Some(running.await),
            Answer::Remote(answer) => answer.await.ok(),
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
