//! The SeaweedMQ backend: topics are SMQ topics in one namespace, Kafka partition k is the
//! k-th SMQ partition range, and a Kafka offset is the broker's own offset.
//!
//! Per shard: one HTTP/2 connection per broker, a cache of topic assignments (refreshed when
//! a broker says it does not lead a partition), one publish stream per owned partition, and
//! the last high-water mark seen per partition for long-polls. See `proto/README.md` for
//! the broker and filer behaviour this relies on.
//!
//! What this backend keeps where, and what it refuses, all decided here:
//! - records: SMQ topics `<namespace>/<topic>`, one publish stream per partition, which
//!   queues synchronously (the append's place is fixed before its first `.await`);
//! - Kafka topic configs, committed offsets (`offsets`, the Go gateway's layout),
//!   idempotent producers' states (`producers`), users and ACLs (`security`): small files
//!   in the filer;
//! - refused: deleting a topic (TOPIC_DELETION_DISABLED), adding partitions
//!   (INVALID_PARTITIONS: it would orphan the data), DeleteRecords (POLICY_VIOLATION);
//! - not enforced: `retention.ms` and `retention.bytes` (stored, shown, never acted on);
//! - waiting fetches re-read every `--smq-fetch-poll-ms` (500 ms), since others may append,
//!   sharing one FetchMessage per partition and interval; appends through this gateway wake
//!   them at once.

pub mod cache;
pub mod channel;
pub mod codec;
pub mod discovery;
pub mod filer;
pub mod leader_epochs;
pub mod log_files;
pub mod offsets;
pub mod producers;
pub mod proto;
pub mod publisher;
pub mod read_ahead;
pub mod security;
pub mod tls;
pub mod topic_configs;
pub mod volume;

use super::{OffsetSpec, ReadResult, TopicMeta};
use crate::config::SmqAcksAll;
use crate::error::{Error, Result};
use crate::partition::leader_epochs::LeaderEpochs;
use crate::partition::producer_state::StoredBatch;
use crate::record_batch::{LogBatch, RecordBatch};
use crate::records::{decode_records, encode_records, Record};
use crate::TopicPartition;
use cache::{BatchCache, Source, TimestampIndex};
use channel::{ConnectError, GrpcChannel, SmqClient};
use codec::{Decoded, MarkedRecord};
pub use discovery::Endpoints;
use filer::Filer;
use futures::channel::oneshot;
use hashbrown::HashMap;
use leader_epochs::LeaderEpochStore;
use log_files::LogFiles;
use proto::messaging_pb::{
    BrokerPartitionAssignment, ConfigureTopicRequest, FetchMessageRequest, FetchMessageResponse,
    FindBrokerLeaderRequest, GetPartitionRangeInfoRequest, ListTopicsRequest,
    LookupTopicBrokersRequest, OffsetRangeInfo,
};
use proto::schema_pb::Topic;
use publisher::{FilesEnd, Publisher, Target};
use read_ahead::ReadAheads;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use tls::ClientTls;
use topic_configs::TopicConfigStore;
use uuid::Uuid;

/// How far before a new publish stream's start its records' own timestamps may lie and
/// still be stored as the broker's timestamp.
const PLAIN_MARGIN_NS: i64 = 1_000_000_000;

/// Most messages one FetchMessage may return (the broker's own cap).
const MAX_FETCH_MESSAGES: i32 = 10_000;
/// Most bytes of records one FetchMessage asks for, whatever the Kafka fetch allows: the
/// answer is held whole in memory.
const MAX_FETCH_MESSAGE_BYTES: usize = 8 << 20;
/// What a FetchMessage answer may hold beyond its records' bytes (each message's framing).
const FETCH_ANSWER_OVERHEAD: usize = 1 << 20;
/// Bytes of records per batch made from what SMQ answered (a catch-up read of a flushed
/// file can bring megabytes at once: cached in pieces, answered as the fetch asks).
const FETCHED_BATCH_BYTES: usize = 256 << 10;
/// Bytes of records each read asks for while a restarted shard recovers a partition's
/// producers from the records' marks.
const RECOVERY_READ_BYTES: usize = 4 << 20;
/// How long a restarted shard tries to read records SMQ does not serve before it recovers
/// a partition's producers without their marks.
const RECOVERY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the log of a restarted shard's partition must stay still to be taken as ending
/// inside a batch (`producer_marks`), and how many times it is looked at.
const TORN_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);
const TORN_SETTLE_ROUNDS: u32 = 10;
/// Offset → timestamp points each shard keeps for ListOffsets by time.
const TIMESTAMP_POINTS: usize = 100_000;
/// How often a restarted shard tries again to read records SMQ cannot serve yet.
const REREAD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long a live broker may take to checkpoint the offsets it handed out: its offset
/// manager checkpoints every 2 s (`mq/offset/manager.go`), plus its write to the filer.
const CHECKPOINT_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(3);
/// How often a stream that waits for that checkpoint lists the partition again.
const CHECKPOINT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A topic with where its partitions live, sorted by range start.
struct SmqTopic {
    meta: Arc<TopicMeta>,
    assignments: Vec<BrokerPartitionAssignment>,
}

pub struct SmqBackend {
    /// Broker for control-plane calls (it proxies them to the balancer).
    bootstrap: String,
    namespace: String,
    shard_name: String,
    /// One connection per broker; a closed one (the broker restarted) is replaced.
    clients: RefCell<HashMap<String, GrpcChannel>>,
    /// `--smq-tls-*`, when SeaweedFS's gRPC is TLS.
    tls: Option<Arc<ClientTls>>,
    topics: RefCell<HashMap<Arc<str>, Rc<SmqTopic>>>,
    /// Topics forgotten since they were looked up (to be asked again), as last known: while
    /// SeaweedMQ cannot be asked they are answered from here, as Kafka answers Metadata from
    /// its cache whatever its disks do. A consumer group told "no partitions" in an outage
    /// would assign none and not look again for minutes.
    last_known: RefCell<HashMap<Arc<str>, Rc<SmqTopic>>>,
    publishers: RefCell<HashMap<TopicPartition, Rc<Publisher>>>,
    high_watermarks: RefCell<HashMap<TopicPartition, i64>>,
    batch_cache: RefCell<BatchCache>,
    /// Reads answered from `batch_cache`, reads that were not, and of those the ones
    /// answered from `log_files`.
    batch_cache_hits: Cell<u64>,
    batch_cache_misses: Cell<u64>,
    reads_from_files: Cell<u64>,
    /// Flushed files being read into `batch_cache` ahead of consumers catching up.
    read_aheads: RefCell<ReadAheads>,
    /// Truncations found (`truncated`), and batches torn by a crash skipped
    /// (`skip_torn_batch`).
    truncations: Cell<u64>,
    torn_batches: Cell<u64>,
    timestamps: RefCell<TimestampIndex>,
    /// Kafka topic configs, in the filer.
    topic_configs: TopicConfigStore,
    /// For what SMQ itself keeps there (partition sizes).
    filer: Rc<Filer>,
    /// The records SMQ has flushed, read where it stores them.
    log_files: Rc<LogFiles>,
    /// Per partition, the first offset the broker last said it still holds in memory
    /// (FetchMessage's `log_start_offset`): offsets before it are read from `log_files`.
    in_memory_from: RefCell<HashMap<TopicPartition, i64>>,
    /// When a failed read of `log_files` was last logged (one line a minute at most).
    log_files_warned: Cell<Option<std::time::Instant>>,
    /// Most bytes a produced batch may decompress to (`--max-decompressed-batch-bytes`).
    decompressed_limit: usize,
    /// `--smq-acks-all`.
    acks_all: SmqAcksAll,
    /// `--smq-fetch-poll-ms`.
    fetch_poll: std::time::Duration,
    /// Per partition, the last read at the high-water mark: the offset it read at and when
    /// it asked. Reads there within `fetch_poll` of it are answered that nothing is past
    /// it: fetches waiting at the end of a partition (one per consumer group) share one
    /// FetchMessage per interval rather than each asking.
    tail_checks: RefCell<HashMap<TopicPartition, (i64, std::time::Instant)>>,
    /// Per partition, the offset after the last record a publish stream acknowledged
    /// (lowered to the truncation point when SMQ lost some).
    acked_end: RefCell<HashMap<TopicPartition, i64>>,
    /// Leader-epoch histories of the truncated partitions this shard knows of: its own,
    /// authoritative (kept here even if storing them failed), and others' as stored.
    leader_epochs: RefCell<HashMap<TopicPartition, LeaderEpochs>>,
    /// Where the histories outlive tidegate.
    epoch_store: LeaderEpochStore,
    /// Partitions whose history changed and is still to be stored (`leader_epoch_changed`).
    epoch_writes: RefCell<EpochWrites>,
    /// Per partition, offsets (first, last) acknowledged from the broker's memory by a
    /// publish stream that broke before they were known flushed: SMQ may have lost them
    /// and given the offsets to other records, so what is stored there must be checked
    /// before it is called durable.
    in_doubt: RefCell<HashMap<TopicPartition, Vec<Doubt>>>,
    /// Per partition, the offsets (first, last) of batches `wait_durable` is waiting on:
    /// their waiter knows where each begins, so it, not `check_high_watermark`, says where
    /// SMQ lost part of one.
    awaited: AwaitedBatches,
}

/// What every shard's SMQ backend is told at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--smq-namespace`.
    pub namespace: String,
    /// `--max-decompressed-batch-bytes`.
    pub decompressed_limit: usize,
    /// `--smq-tls-*`: how connections to SeaweedFS are made when its gRPC is TLS.
    pub tls: Option<Arc<ClientTls>>,
    /// `--smq-acks-all`: what acks=all waits for.
    pub acks_all: SmqAcksAll,
    /// `--smq-fetch-poll-ms`: how often a waiting fetch reads its partitions again.
    pub fetch_poll: std::time::Duration,
    /// `--smq-batch-cache-bytes`: the shard's `BatchCache`.
    pub batch_cache_bytes: usize,
}

fn unavailable(status: tonic::Status) -> Error {
    Error::Unavailable(format!("SeaweedMQ: {}", status.message()))
}

impl SmqBackend {
    /// A shard's catalogue and log: control-plane calls go to `bootstrap`, topic configs
    /// and partition sizes to `filer`.
    pub fn new(bootstrap: String, filer: Rc<Filer>, settings: &Settings, shard_id: usize) -> Self {
        let namespace = settings.namespace.clone();
        Self {
            bootstrap,
            decompressed_limit: settings.decompressed_limit,
            acks_all: settings.acks_all,
            fetch_poll: settings.fetch_poll,
            tail_checks: RefCell::default(),
            acked_end: RefCell::default(),
            in_doubt: RefCell::default(),
            awaited: Rc::default(),
            topic_configs: TopicConfigStore::new(filer.clone(), &namespace),
            leader_epochs: RefCell::default(),
            epoch_store: LeaderEpochStore::new(filer.clone(), &namespace),
            epoch_writes: RefCell::default(),
            log_files: Rc::new(LogFiles::new(filer.clone(), &namespace)),
            in_memory_from: RefCell::default(),
            log_files_warned: Cell::new(None),
            filer,
            namespace,
            shard_name: format!("tidegate-{}-shard-{shard_id}", std::process::id()),
            clients: RefCell::default(),
            tls: settings.tls.clone(),
            topics: RefCell::default(),
            last_known: RefCell::default(),
            publishers: RefCell::default(),
            high_watermarks: RefCell::default(),
            batch_cache: RefCell::new(BatchCache::new(settings.batch_cache_bytes)),
            batch_cache_hits: Cell::new(0),
            batch_cache_misses: Cell::new(0),
            reads_from_files: Cell::new(0),
            read_aheads: RefCell::default(),
            truncations: Cell::new(0),
            torn_batches: Cell::new(0),
            timestamps: RefCell::new(TimestampIndex::new(TIMESTAMP_POINTS)),
        }
    }

    async fn client(&self, broker: &str) -> Result<SmqClient> {
        let cached = self.clients.borrow().get(broker).cloned();
        if let Some(channel) = cached.filter(|c| !c.is_closed()) {
            return Ok(channel.broker());
        }
        let channel = connect_broker(broker, self.tls.as_deref()).await?;
        self.clients
            .borrow_mut()
            .insert(broker.to_string(), channel.clone());
        Ok(channel.broker())
    }

    fn smq_topic(&self, name: &str) -> Topic {
        Topic {
            namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }

    /// The topic's assignments, from the cache or the broker; `None` if it does not exist.
    /// While the broker or filer cannot be asked, a topic known before is answered as last
    /// known, with the leader epochs this shard knows now.
    async fn lookup(&self, name: &str) -> Result<Option<Rc<SmqTopic>>> {
        if let Some(topic) = self.topics.borrow().get(name) {
            return Ok(Some(topic.clone()));
        }
        let looked_up = match self.look_up_in_seaweedfs(name).await {
            Err(error) => {
                let last_known = self.last_known.borrow().get(name).cloned();
                let Some(last_known) = last_known else {
                    return Err(error);
                };
                let meta = TopicMeta {
                    leader_epochs: self.merge_leader_epochs(name, BTreeMap::new()),
                    ..(*last_known.meta).clone()
                };
                return Ok(Some(Rc::new(SmqTopic {
                    meta: Arc::new(meta),
                    assignments: last_known.assignments.clone(),
                })));
            }
            Ok(looked_up) => looked_up,
        };
        self.last_known.borrow_mut().remove(name);
        if let Some(topic) = &looked_up {
            // A restarted SeaweedFS answers partitions without a leader until its balancer
            // assigns them: asked again next time, not kept.
            let leaderless = topic.assignments.iter().any(|a| a.leader_broker.is_empty());
            let known = if leaderless {
                &self.last_known
            } else {
                &self.topics
            };
            known.borrow_mut().insert(Arc::from(name), topic.clone());
        }
        Ok(looked_up)
    }

    async fn look_up_in_seaweedfs(&self, name: &str) -> Result<Option<Rc<SmqTopic>>> {
        let mut client = self.client(&self.bootstrap).await?;
        let assignments = lookup_assignments(&mut client, self.smq_topic(name)).await?;
        if assignments.is_empty() {
            return Ok(None);
        }
        let generation = assignments[0]
            .partition
            .as_ref()
            .map_or(0, |p| p.unix_time_ns);
        let meta = Arc::new(TopicMeta {
            name: Arc::from(name),
            id: topic_id(name, generation),
            partitions: assignments.len() as i32,
            configs: self.topic_configs.load(name).await?,
            leader_epochs: self.merge_leader_epochs(name, self.epoch_store.load(name).await?),
        });
        Ok(Some(Rc::new(SmqTopic { meta, assignments })))
    }

    /// Leader client and full partition of a Kafka partition.
    async fn target(&self, tp: &TopicPartition) -> Result<Target> {
        let topic = self
            .lookup(&tp.topic)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        let (leader, partition) = leader_of(&topic.assignments, tp.partition)?;
        let client = self.client(named_leader(tp, leader)?).await?;
        Ok((client, self.smq_topic(&tp.topic), partition))
    }

    /// Forgets a topic's assignments and configs, so the next call looks them up again.
    pub fn forget(&self, name: &str) {
        if let Some(topic) = self.topics.borrow_mut().remove(name) {
            self.last_known.borrow_mut().insert(Arc::from(name), topic);
        }
    }

    /// The topic's leader-epoch histories: `stored` ones merged into what this shard knows
    /// (a history of its own that is ahead of the stored one wins: storing it may have
    /// failed, or be under way).
    fn merge_leader_epochs(
        &self,
        topic: &str,
        stored: BTreeMap<i32, LeaderEpochs>,
    ) -> BTreeMap<i32, LeaderEpochs> {
        let mut known = self.leader_epochs.borrow_mut();
        for (partition, epochs) in stored {
            let mine = known
                .entry(TopicPartition::new(topic, partition))
                .or_insert_with(|| epochs.clone());
            if epochs.current() > mine.current() {
                *mine = epochs;
            }
        }
        known
            .iter()
            .filter(|(tp, _)| &*tp.topic == topic)
            .map(|(tp, epochs)| (tp.partition, epochs.clone()))
            .collect()
    }

    /// The partition's leader-epoch history (the topic looked up first, so that what
    /// earlier runs stored is known).
    pub async fn leader_epochs(&self, tp: &TopicPartition) -> Result<LeaderEpochs> {
        self.lookup(&tp.topic)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        Ok(self.epochs_of(tp))
    }

    fn epochs_of(&self, tp: &TopicPartition) -> LeaderEpochs {
        let known = self.leader_epochs.borrow();
        known.get(tp).cloned().unwrap_or_default()
    }

    /// The epoch the record at `offset` was written in.
    fn epoch_at(&self, tp: &TopicPartition, offset: i64) -> i32 {
        let known = self.leader_epochs.borrow();
        known.get(tp).map_or(0, |epochs| epochs.epoch_at(offset))
    }

    /// What was acknowledged of the partition, and in which epoch, before a call to the
    /// broker: a high-water mark it answers is compared with this (acks that arrive while
    /// the call is under way are not a truncation the answer could show).
    fn seen(&self, tp: &TopicPartition) -> Seen {
        Seen {
            acked_end: self.acked_end.borrow().get(tp).copied().unwrap_or(0),
            epoch: self.epoch_at(tp, i64::MAX),
        }
    }

    /// A high-water mark below what was acknowledged, from the broker: a truncation unless
    /// the flushed files or the broker's offset manager (GetPartitionRangeInfo) account
    /// for more. A reloaded partition's FetchMessage may count from the end of a flush
    /// window it lost track of while its offset manager hands out the right offsets
    /// (proto/README.md "Partition unloading"): nothing was lost there. When either cannot
    /// be asked, nothing is concluded: the next answer is checked again.
    async fn check_high_watermark(
        &self,
        tp: &TopicPartition,
        partition: &proto::schema_pb::Partition,
        high_watermark: i64,
        seen: Seen,
        how: &str,
    ) {
        if high_watermark >= seen.acked_end {
            return;
        }
        let Ok(flushed) = self.log_files.flushed_end(tp, partition).await else {
            return;
        };
        let Ok(range) = self.partition_range(tp).await else {
            return;
        };
        let mut held = high_watermark.max(flushed).max(range.high_water_mark);
        if held < seen.acked_end {
            // About to conclude a loss: listed afresh, as the watch may not have reported a
            // flush from just before SeaweedFS stopped yet (seen: 975 records flushed, taken
            // for lost, and stored again by their producer).
            let Ok(flushed) = self.log_files.flushed_end_now(tp, partition).await else {
                return;
            };
            held = held.max(flushed);
        }
        let awaited = self.awaited.borrow();
        let batches = awaited.get(tp).map_or(&[][..], Vec::as_slice);
        if batches
            .iter()
            .any(|&(first, last)| first < held && held <= last)
        {
            // SMQ kept part of a batch: the batch's waiter finds the loss from its start.
            return;
        }
        drop(awaited);
        self.truncated(tp, held, held, seen, how);
    }

    /// The partition's offset range as its broker's offset manager says it
    /// (GetPartitionRangeInfo).
    async fn partition_range(&self, tp: &TopicPartition) -> Result<OffsetRangeInfo> {
        let (mut client, topic, partition) = self.target(tp).await?;
        let request = GetPartitionRangeInfoRequest {
            topic: Some(topic),
            partition: Some(partition),
        };
        let info = client
            .get_partition_range_info(request)
            .await
            .map_err(unavailable)?
            .into_inner();
        if !info.error.is_empty() {
            return Err(Error::Unavailable(info.error));
        }
        Ok(info.offset_range.unwrap_or_default())
    }

    /// The one place a truncation is noted: SMQ no longer holds the records it acknowledged
    /// from `at` to `seen.acked_end` (it stopped before flushing them, and hands their
    /// offsets out again). Unless a truncation at or before `at` was noted since `seen`, the
    /// partition's next leader epoch starts at `at` (stored, and every shard told, by
    /// `leader_epoch_changed`), the loss is logged once as an error and counted, and what
    /// this shard cached from `at` on is dropped. Its records start at `records_from`:
    /// offsets before it hold what SMQ kept of a batch answered as lost
    /// (`EpochStart::records_from`), which reads skip. Returns whether it was noted.
    fn truncated(
        &self,
        tp: &TopicPartition,
        at: i64,
        records_from: i64,
        seen: Seen,
        how: &str,
    ) -> bool {
        let current_start = {
            let known = self.leader_epochs.borrow();
            let current = known
                .get(tp)
                .and_then(|epochs| epochs.entries().last().copied());
            current
                .filter(|e| e.epoch != seen.epoch)
                .map(|e| e.start_offset)
        };
        // A truncation noted since `seen` already says so, unless this one goes deeper:
        // batches lost together are found lost one by one, in any order.
        if at >= seen.acked_end || current_start.is_some_and(|start| at >= start) {
            return false;
        }
        let epoch = self.begin_epoch(tp, at, records_from);
        self.truncations.set(self.truncations.get() + 1);
        tracing::error!(%tp, first = at, last = seen.acked_end - 1, leader_epoch = epoch, records_from, how,
            "SeaweedMQ lost records it had acknowledged (it stopped before flushing them): the partition's log is truncated there, and its leader epoch bumped so that consumers that check epochs detect it");
        let mut acked_end = self.acked_end.borrow_mut();
        let end = acked_end.entry(tp.clone()).or_insert(at);
        *end = (*end).min(at);
        self.high_watermarks.borrow_mut().insert(tp.clone(), at);
        true
    }

    /// The partition's log is cut at `at`: the next leader epoch starts there, with its
    /// records from `records_from` on (`LeaderEpochs::truncate_at`). What this shard cached
    /// from `at` on is dropped, the history is queued for the filer and every shard told
    /// (`leader_epoch_changed`). Returns the new epoch.
    fn begin_epoch(&self, tp: &TopicPartition, at: i64, records_from: i64) -> i32 {
        let epoch = self
            .leader_epochs
            .borrow_mut()
            .entry(tp.clone())
            .or_default()
            .truncate_at(at, records_from);
        self.batch_cache.borrow_mut().forget_from(tp, at);
        self.forget(&tp.topic);
        self.epoch_writes.borrow_mut().push(tp.clone());
        epoch
    }

    /// Waits for a partition's leader epoch to change (a truncation), stores its history in
    /// the filer (trying again every second while that fails) and returns its topic, which
    /// every shard must then look up again. One caller per shard.
    pub async fn leader_epoch_changed(&self) -> Arc<str> {
        loop {
            let next = self.epoch_writes.borrow_mut().next();
            let tp = match next {
                Ok(tp) => tp,
                Err(wake) => {
                    let _ = wake.await;
                    continue;
                }
            };
            let epochs = self.epochs_of(&tp);
            match self.epoch_store.store(&tp, &epochs).await {
                Ok(()) => return tp.topic,
                Err(error) => {
                    tracing::warn!(%tp, %error, "leader epochs not stored in the filer; retrying");
                    glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
                    self.epoch_writes.borrow_mut().push(tp);
                }
            }
        }
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>> {
        // ConfigureTopic on an existing topic with another count would orphan its data.
        if self.lookup(name).await?.is_some() {
            return Err(Error::TopicAlreadyExists);
        }
        if validate_only {
            return Ok(Arc::new(TopicMeta {
                name: Arc::from(name),
                id: Uuid::nil(),
                partitions,
                configs,
                leader_epochs: BTreeMap::new(),
            }));
        }
        // Configs first: once the topic exists, every shard that looks it up reads them.
        if !configs.is_empty() {
            self.topic_configs.store(name, &configs).await?;
        }
        let mut client = self.client(&self.bootstrap).await?;
        let request = ConfigureTopicRequest {
            topic: Some(self.smq_topic(name)),
            partition_count: partitions,
            retention: None,
        };
        client.configure_topic(request).await.map_err(unavailable)?;
        self.forget(name);
        let topic = self.lookup(name).await?;
        topic
            .map(|t| t.meta.clone())
            .ok_or_else(|| Error::Unavailable(format!("topic {name} vanished after creation")))
    }

    pub async fn topic(&self, name: &str) -> Result<Option<Arc<TopicMeta>>> {
        Ok(self.lookup(name).await?.map(|t| t.meta.clone()))
    }

    /// Replaces the Kafka configs of an existing topic in the filer.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        self.topic(name)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        if !validate_only {
            self.topic_configs.store(name, &configs).await?;
            self.forget(name);
        }
        Ok(())
    }

    /// Bytes of the partition's files in the filer: what the broker has flushed (the last
    /// minute or so of records may still be only in its memory). Layout:
    /// `/topics/<namespace>/<topic>/v<generation>/<range start>-<range stop>/<files>`; the
    /// newest generation is the topic's current one.
    pub async fn partition_size(&self, tp: &TopicPartition) -> Result<i64> {
        let topic = self
            .lookup(&tp.topic)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        let (_, range) = leader_of(&topic.assignments, tp.partition)?;
        let topic_dir = format!("/topics/{}/{}", self.namespace, tp.topic);
        let generation = self
            .filer
            .list(&topic_dir)
            .await?
            .into_iter()
            .filter(|e| e.is_directory && e.name.starts_with('v'))
            .map(|e| e.name)
            .max();
        let Some(generation) = generation else {
            return Ok(0);
        };
        let partition_dir = format!(
            "{topic_dir}/{generation}/{:04}-{:04}",
            range.range_start, range.range_stop
        );
        let files = self.filer.list(&partition_dir).await?;
        Ok(files
            .iter()
            .filter(|e| !e.is_directory)
            .filter_map(|e| e.attributes.as_ref())
            .map(|a| a.file_size as i64)
            .sum())
    }

    /// SeaweedMQ cannot drop the start of a partition: an existing one is refused.
    pub async fn delete_records(&self, tp: &TopicPartition, _offset: i64) -> Result<i64> {
        // Existence only: no broker connection is needed to refuse.
        let topic = self
            .lookup(&tp.topic)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        leader_of(&topic.assignments, tp.partition)?;
        Err(Error::PolicyViolation(
            "SeaweedMQ cannot delete the start of a partition; its records stay".into(),
        ))
    }

    /// SeaweedMQ has no way to delete a topic: an existing one is refused.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>> {
        self.topic(name)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        Err(Error::TopicDeletionDisabled)
    }

    /// Re-configuring an SMQ topic re-allocates every partition under a new generation and
    /// orphans the data: an existing topic is refused.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        _validate_only: bool,
    ) -> Result<()> {
        self.topic(name)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        Err(Error::InvalidPartitions(format!(
            "SeaweedMQ cannot add partitions to {name} (or grow it to {count}) without losing its data"
        )))
    }

    pub async fn topic_by_id(&self, id: Uuid) -> Result<Option<Arc<TopicMeta>>> {
        let cached = self
            .topics
            .borrow()
            .values()
            .find(|t| t.meta.id == id)
            .map(|t| t.meta.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        Ok(self.list_topics().await?.into_iter().find(|t| t.id == id))
    }

    /// Whether the broker and the filer answer now (for /readyz): one ListTopics, and one
    /// filer listing of /topics (one entry per namespace: small).
    pub async fn answers(&self) -> Result<()> {
        let mut client = self.client(&self.bootstrap).await?;
        client
            .list_topics(ListTopicsRequest {})
            .await
            .map_err(unavailable)?;
        self.filer.list("/topics").await?;
        Ok(())
    }

    pub async fn list_topics(&self) -> Result<Vec<Arc<TopicMeta>>> {
        let mut client = self.client(&self.bootstrap).await?;
        let response = client
            .list_topics(ListTopicsRequest {})
            .await
            .map_err(unavailable)?
            .into_inner();
        let mut topics = Vec::new();
        for topic in response
            .topics
            .iter()
            .filter(|t| t.namespace == self.namespace)
        {
            if let Some(found) = self.lookup(&topic.name).await? {
                topics.push(found.meta.clone());
            }
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Where reads were answered from, the truncations found and the torn batches skipped.
    pub fn counts(&self) -> crate::metrics::SmqCounts {
        crate::metrics::SmqCounts {
            cache_hits: self.batch_cache_hits.get(),
            cache_misses: self.batch_cache_misses.get(),
            from_files: self.reads_from_files.get(),
            reads_ahead: self.read_aheads.borrow().started(),
            truncations: self.truncations.get(),
            torn_batches: self.torn_batches.get(),
        }
    }

    /// Queues the records on the partition's publish stream (synchronously, keeping order)
    /// and waits for the broker's acknowledgements.
    pub async fn append(&self, tp: &TopicPartition, batches: &[RecordBatch]) -> Result<i64> {
        let mut decoded = Vec::with_capacity(batches.len());
        for batch in batches {
            decoded.push(decode_records(batch, self.decompressed_limit)?);
        }
        let publisher = self.publisher(tp);
        let seen = self.seen(tp);
        let now_ms = crate::unix_time().as_millis() as i64;
        let mut last_ts_ns = publisher.last_ts_ns.get();
        let mut messages = Vec::with_capacity(decoded.iter().map(Vec::len).sum());
        for (batch, records) in batches.iter().zip(&decoded) {
            // The last record of an idempotent batch carries what recognises its retry, the
            // first what shows it torn (codec.rs).
            let header = &batch.header;
            let mark = |on| codec::ProducerMark {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                base_sequence: header.base_sequence,
                count: records.len() as i32,
                on,
            };
            let idempotent = header.producer_id >= 0;
            let (first, last) = (mark(MarkedRecord::First), mark(MarkedRecord::Last));
            let last_index = records.len().saturating_sub(1);
            for (i, record) in records.iter().enumerate() {
                let mark = match i {
                    _ if !idempotent => None,
                    i if i == last_index => Some(&last),
                    0 => Some(&first),
                    _ => None,
                };
                messages.push(codec::encode(record, mark, &mut last_ts_ns, now_ms));
            }
        }
        let records_count = messages.len() as i64;
        publisher.last_ts_ns.set(last_ts_ns);
        let acked = publisher.publish(messages);
        let acked = acked
            .await
            .map_err(|_| Error::Unavailable("publish stream dropped".into()))??;
        // Offsets only grow on a partition: a new stream given offsets already acknowledged
        // (SMQ restarted) is a truncation where they start.
        let noted = acked.first < seen.acked_end
            && self.truncated(
                tp,
                acked.first,
                acked.first,
                seen,
                "offsets acknowledged before were given again",
            );
        // Acks of a stream older than a truncation noted meanwhile do not count.
        if noted || self.epoch_at(tp, i64::MAX) == seen.epoch {
            let next = acked.last + 1;
            let mut acked_end = self.acked_end.borrow_mut();
            let end = acked_end.entry(tp.clone()).or_insert(next);
            *end = (*end).max(next);
        }
        let next = acked.last + 1;
        let epoch = self.epoch_at(tp, acked.first);
        let mut high_watermarks = self.high_watermarks.borrow_mut();
        let known = high_watermarks.entry(tp.clone()).or_insert(next);
        *known = (*known).max(next);
        if acked.last - acked.first + 1 == records_count {
            // Stored contiguously (nobody else wrote in between): the batches as the
            // producer sent them are what a consumer reading these offsets must get.
            let mut cache = self.batch_cache.borrow_mut();
            let mut base = acked.first;
            for batch in batches {
                let last = base + i64::from(batch.header.last_offset_delta);
                let kept = batch.kept_at(base).in_epoch(epoch);
                cache.insert(tp, base, last, kept, Source::Appended);
                base = last + 1;
            }
        }
        Ok(acked.first)
    }

    /// Drops the partition's publish stream if it broke, and puts what it acknowledged
    /// beyond the last offset known flushed in doubt (see `in_doubt`); the cache forgets
    /// those batches, since SMQ may serve other records there.
    fn doubt_broken_stream(&self, tp: &TopicPartition) {
        let broken = self
            .publishers
            .borrow()
            .get(tp)
            .is_some_and(|p| !p.is_healthy());
        if !broken {
            return;
        }
        self.publishers.borrow_mut().remove(tp);
        self.forget(&tp.topic);
        let flushed_end = self.log_files.known_end(tp);
        let acked_end = self.acked_end.borrow().get(tp).copied().unwrap_or(0);
        if acked_end > flushed_end {
            tracing::warn!(%tp, from = flushed_end, to = acked_end - 1,
                "publish stream broke: records acknowledged from SeaweedMQ's memory and not yet known flushed are checked before they count as durable");
            let mut in_doubt = self.in_doubt.borrow_mut();
            in_doubt.entry(tp.clone()).or_default().push(Doubt {
                first: flushed_end,
                last: acked_end - 1,
                epoch: self.epoch_at(tp, i64::MAX),
            });
            self.batch_cache.borrow_mut().forget_from(tp, flushed_end);
        }
    }

    /// The offset after the longest run of the `batches` appended at `base` that the
    /// flushed files hold as appended (key, value, headers, timestamp, at the same offsets):
    /// past their last offset when all are stored, `base` when none is.
    async fn stored_as_appended_until(
        &self,
        tp: &TopicPartition,
        partition: &proto::schema_pb::Partition,
        base: i64,
        batches: &[RecordBatch],
    ) -> Result<i64> {
        let mut appended = Vec::new();
        let mut batch_base = base;
        for batch in batches {
            for mut record in decode_records(batch, self.decompressed_limit)? {
                record.offset = batch_base + (record.offset - batch.header.base_offset);
                appended.push(record);
            }
            batch_base += batch.header.offset_count();
        }
        let mut matched = 0;
        let mut next = base;
        'reading: while next < batch_base && matched < appended.len() {
            let found = self.log_files.read(tp, partition, next).await?.records;
            let Some(last) = found.last().map(|r| r.offset) else {
                break;
            };
            let stored = found
                .iter()
                .filter(|r| r.offset >= next && r.offset < batch_base);
            for record in stored {
                if appended.get(matched) != Some(record) {
                    break 'reading;
                }
                matched += 1;
            }
            next = last + 1;
        }
        Ok(appended.get(matched).map_or(batch_base, |r| r.offset))
    }

    /// With `--smq-acks-all flushed`, waits until a file the broker flushed to the filer
    /// holds offset `last`, told of new files by the filer (`LogFiles::next_change`);
    /// NotDurableInTime past `within`. A listing that fails is tried again: the filer may
    /// be back before the time is up.
    pub async fn wait_durable(
        &self,
        tp: &TopicPartition,
        base: i64,
        batches: &[RecordBatch],
        within: std::time::Duration,
    ) -> Result<()> {
        if self.acks_all == SmqAcksAll::Memory {
            return Ok(());
        }
        let count: i64 = batches.iter().map(|b| b.header.offset_count()).sum();
        let last = base + count - 1;
        let _awaited = Awaited::enter(&self.awaited, tp, base, last);
        let deadline = std::time::Instant::now() + within;
        let topic = self
            .lookup(&tp.topic)
            .await?
            .ok_or(Error::UnknownTopicOrPartition)?;
        let (_, partition) = leader_of(&topic.assignments, tp.partition)?;
        let mut failure;
        loop {
            self.doubt_broken_stream(tp);
            let seen = self.log_files.changes(tp);
            let flushed = match self.log_files.known_end(tp) {
                end if end > last => Ok(end),
                _ => self.log_files.flushed_end(tp, &partition).await,
            };
            match flushed {
                Ok(end) if end > last => {
                    return self
                        .check_doubtful(tp, &partition, base, last, batches)
                        .await
                }
                Ok(_) => failure = None,
                Err(error) => failure = Some(error),
            }
            if let (None, Some(doubt)) = (&failure, self.doubt(tp, base, last)) {
                // Not in the files: if the broker, answering again, does not hold them in
                // memory either (its mark is at or below `last`), it restarted without
                // them. A broker that lived on through the broken stream holds them.
                let held = self.broker_high_watermark(tp).await;
                if held.is_ok_and(|end| end <= last) {
                    let stored_until = self
                        .stored_as_appended_until(tp, &partition, base, batches)
                        .await?;
                    let how = "neither flushed nor in memory";
                    return Err(self.lost(tp, base, last, stored_until, doubt, how));
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let why = failure.map_or_else(String::new, |e| format!(" (last listing: {e})"));
                return Err(Error::NotDurableInTime(format!(
                    "{tp}: offset {last} not flushed to the filer within {} ms{why}",
                    within.as_millis()
                )));
            }
            self.log_files.next_change(tp, seen, left).await;
        }
    }

    /// Flushed records at `base..=last` that a broken stream had acknowledged are checked
    /// against what was appended: `Lost` if SMQ holds other records there (logged once,
    /// as a truncation of the partition), so that nothing lost is answered as stored.
    async fn check_doubtful(
        &self,
        tp: &TopicPartition,
        partition: &proto::schema_pb::Partition,
        base: i64,
        last: i64,
        batches: &[RecordBatch],
    ) -> Result<()> {
        let Some(doubt) = self.doubt(tp, base, last) else {
            return Ok(());
        };
        let stored_until = self
            .stored_as_appended_until(tp, partition, base, batches)
            .await?;
        if stored_until > last {
            return Ok(());
        }
        let how = "stored others at their offsets";
        Err(self.lost(tp, base, last, stored_until, doubt, how))
    }

    /// The offset after the last record the partition's broker holds (flushed or in
    /// memory), as FetchMessage says it.
    async fn broker_high_watermark(&self, tp: &TopicPartition) -> Result<i64> {
        let target = self.target(tp).await?;
        let partition = target.2;
        let seen = self.seen(tp);
        let response = fetch_message(target, i64::MAX, 1, 1, self.decompressed_limit).await?;
        if response.error_code != 0 {
            return Err(Error::Unavailable(response.error));
        }
        let how = "FetchMessage's high-water mark is below them";
        self.check_high_watermark(tp, &partition, response.high_water_mark, seen, how)
            .await;
        Ok(response.high_water_mark)
    }

    /// How far the broker's high-water mark runs ahead of the partition's records, as its
    /// publish stream learned when it filled offsets (`Publisher::overcount`).
    fn overcount(&self, tp: &TopicPartition) -> i64 {
        self.publishers
            .borrow()
            .get(tp)
            .map_or(0, |publisher| publisher.overcount())
    }

    /// The doubt over offsets `first..=last` of the partition, if any.
    fn doubt(&self, tp: &TopicPartition, first: i64, last: i64) -> Option<Doubt> {
        let in_doubt = self.in_doubt.borrow();
        let doubts = in_doubt.get(tp)?;
        doubts.iter().find(|d| d.overlaps(first, last)).copied()
    }

    /// The records at `first..=last`, put in `doubt` by a broken stream, were lost: a
    /// truncation there unless one was noted since the stream broke; the producer is told,
    /// and sends them again. SMQ may have flushed the first of them (up to `stored_until`)
    /// before it lost the rest: reads skip those, or the batch sent again would be read
    /// twice.
    fn lost(
        &self,
        tp: &TopicPartition,
        first: i64,
        last: i64,
        stored_until: i64,
        doubt: Doubt,
        how: &str,
    ) -> Error {
        let seen = Seen {
            acked_end: last + 1,
            epoch: doubt.epoch,
        };
        self.truncated(tp, first, stored_until, seen, how);
        Error::Lost(format!(
            "{tp}: offsets {first}..={last} were lost by SeaweedMQ before it flushed them"
        ))
    }

    /// The partition's publisher, opened (in the background) if it has none or it broke.
    fn publisher(&self, tp: &TopicPartition) -> Rc<Publisher> {
        self.doubt_broken_stream(tp);
        if let Some(publisher) = self.publishers.borrow().get(tp) {
            return publisher.clone();
        }
        let target = {
            // The stream's target is resolved by a task of its own; this backend outlives
            // every task on the shard, but a 'static future cannot borrow it, so it gets
            // what it needs by value.
            let lookup = SmqLookup {
                bootstrap: self.bootstrap.clone(),
                namespace: self.namespace.clone(),
                tp: tp.clone(),
                cached: self.topics.borrow().get(&*tp.topic).cloned(),
                clients: self.clients.borrow().clone(),
                log_files: self.log_files.clone(),
                tls: self.tls.clone(),
            };
            Box::pin(lookup.resolve())
        };
        // The broker's last timestamp for the partition is unknown here; records stamped up
        // to a second before this stream opened may still go plain (see codec.rs).
        let since = crate::unix_time().as_nanos() as i64 - PLAIN_MARGIN_NS;
        let publisher = Rc::new(Publisher::open(target, self.shard_name.clone(), since));
        self.publishers
            .borrow_mut()
            .insert(tp.clone(), publisher.clone());
        publisher
    }

    /// Ends every publish stream once what was sent on it is acknowledged, so that the
    /// broker sees the publisher leave rather than a broken connection.
    pub async fn close(&self) {
        let publishers: Vec<_> = self.publishers.borrow_mut().drain().collect();
        let closing = publishers
            .into_iter()
            .filter_map(|(_, p)| Rc::into_inner(p));
        futures::future::join_all(closing.map(Publisher::close)).await;
    }

    /// Others than this process may append to an SMQ partition (another gateway, SMQ's own
    /// clients), so no append here wakes every waiting fetch: they re-read this often
    /// (`--smq-fetch-poll-ms`).
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        Some(self.fetch_poll)
    }

    /// SeaweedMQ keeps everything: the pinned version stores a topic's retention setting but
    /// never acts on it (README: retention on SMQ), and tidegate cannot drop records there.
    pub fn enforce_retention(&self, _now_ms: i64) -> usize {
        0
    }

    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.high_watermarks.borrow().get(tp).copied()
    }

    pub async fn read(
        self: &Rc<Self>,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        let offset = self.record_at_or_after(tp, offset);
        if let Some(read) = self.read_cached(tp, offset, max_bytes) {
            return Ok(read);
        }
        // A read ahead under way brings it: waited for, rather than the file read twice.
        let bringing = self.read_aheads.borrow().bringing(tp, offset);
        if let Some(finished) = bringing {
            let _ = finished.await;
            if let Some(read) = self.read_cached(tp, offset, max_bytes) {
                return Ok(read);
            }
        }
        if self.tail_checked(tp, offset) {
            return Ok(ReadResult {
                batches: Vec::new(),
                high_watermark: offset,
                log_start_offset: 0,
            });
        }
        if self.high_watermark(tp) == Some(offset) {
            // At the end: this read asks for every read there until `fetch_poll` has passed,
            // those arriving while it is under way too.
            let now = std::time::Instant::now();
            self.tail_checks
                .borrow_mut()
                .insert(tp.clone(), (offset, now));
        }
        self.batch_cache_misses
            .set(self.batch_cache_misses.get() + 1);
        let filled = self.fill_cache(tp, offset, max_bytes).await?;
        // Answered from the cache as a hit would be; the first batch alone if the cache
        // kept none of them (it keeps one copy of an offset, and never a batch larger than
        // itself).
        let cached = self.batch_cache.borrow_mut().read(tp, offset, max_bytes);
        let batches = match cached {
            Some((batches, next)) => {
                self.read_ahead_after(tp, next);
                batches
            }
            None => filled.first.into_iter().collect(),
        };
        Ok(ReadResult {
            batches,
            high_watermark: filled.high_watermark,
            log_start_offset: 0,
        })
    }

    /// Whether a read at `offset`, the high-water mark then and still (an append through
    /// this gateway moves it, and so does a read that finds more), asked less than
    /// `fetch_poll` ago.
    fn tail_checked(&self, tp: &TopicPartition, offset: i64) -> bool {
        let Some(&(checked, asked)) = self.tail_checks.borrow().get(tp) else {
            return false;
        };
        checked == offset
            && self.high_watermark(tp) == Some(offset)
            && asked.elapsed() < self.fetch_poll
    }

    /// The read answered from the batch cache, if it holds `offset`.
    fn read_cached(
        self: &Rc<Self>,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Option<ReadResult> {
        let (batches, next) = self.batch_cache.borrow_mut().read(tp, offset, max_bytes)?;
        self.batch_cache_hits.set(self.batch_cache_hits.get() + 1);
        // What is served here was acknowledged, so the mark is at least past it; kept,
        // because `Partitions::watch` compares this answer with `high_watermark`, and a
        // difference there is "data arrived", which would end every wait at once.
        let high_watermark = {
            let mut high_watermarks = self.high_watermarks.borrow_mut();
            let known = high_watermarks.entry(tp.clone()).or_insert(next);
            *known = (*known).max(next);
            *known
        };
        self.read_ahead_after(tp, next);
        Some(ReadResult {
            batches,
            high_watermark,
            log_start_offset: 0,
        })
    }

    /// The partition's records from `offset` on (`fetch_records`), cached as batches of
    /// about `FETCHED_BATCH_BYTES`.
    async fn fill_cache(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Filled> {
        let (found, high_watermark) = self.fetch_records(tp, offset, max_bytes).await?;
        let records = found.records;
        let mut filled = Filled {
            first: None,
            high_watermark,
        };
        let mut cache = self.batch_cache.borrow_mut();
        for run in fetched_batches(&records) {
            let (first, last) = (run[0].offset, run[run.len() - 1].offset);
            let batch = LogBatch::as_served(encode_records(run)).in_epoch(self.epoch_at(tp, first));
            filled.first.get_or_insert_with(|| batch.clone());
            cache.insert(tp, first, last, batch, Source::Fetched);
        }
        Ok(filled)
    }

    /// A read of `tp` was answered up to `next`: if little is cached past it and what
    /// follows is in the files SMQ flushed, the next of them is read into the cache in the
    /// background (read_ahead.rs says why and how far).
    fn read_ahead_after(self: &Rc<Self>, tp: &TopicPartition, next: i64) {
        // A consumer reading what the broker still holds (one following its producers)
        // has nothing to read ahead: settled before counting what the cache holds.
        if !self.is_flushed(tp, next) {
            return;
        }
        let (end, ahead) = {
            let cache = self.batch_cache.borrow();
            if cache.unread_bytes() >= cache.capacity() / 2 {
                return;
            }
            cache.cached_from(tp, next, read_ahead::LOW_WATER_BYTES)
        };
        if ahead >= read_ahead::LOW_WATER_BYTES || !self.is_flushed(tp, end) {
            return;
        }
        let Some(reading) = self.read_aheads.borrow_mut().start(tp, end) else {
            return;
        };
        let backend = self.clone();
        let tp = tp.clone();
        glommio::spawn_local(async move {
            // A failure is the foreground read's to report, when it meets it.
            let _ = backend.fill_cache(&tp, end, MAX_FETCH_MESSAGE_BYTES).await;
            backend.read_aheads.borrow_mut().finished(&tp);
            drop(reading);
        })
        .detach();
    }

    /// Whether `offset` of `tp` was flushed, as last learned: read from the files.
    fn is_flushed(&self, tp: &TopicPartition, offset: i64) -> bool {
        let in_memory_from = self.in_memory_from.borrow().get(tp).copied().unwrap_or(0);
        offset < in_memory_from.max(self.log_files.known_end(tp))
    }

    /// Where the partition's next record at or after `offset` can be: past what SMQ kept of
    /// a batch answered as lost, if `offset` falls there (`EpochStart::records_from`).
    fn record_at_or_after(&self, tp: &TopicPartition, offset: i64) -> i64 {
        let known = self.leader_epochs.borrow();
        known
            .get(tp)
            .map_or(offset, |epochs| epochs.record_at_or_after(offset))
    }

    /// The partition's records from `offset` on, and its high-water mark: what SMQ stores
    /// there (`fetch_stored`) but what it kept of batches answered as lost.
    async fn fetch_records(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Decoded, i64)> {
        let mut offset = offset;
        loop {
            let (mut found, high_watermark) = self.fetch_stored(tp, offset, max_bytes).await?;
            let stored_end = found.records.last().map(|r| r.offset + 1);
            if let Some(epochs) = self.leader_epochs.borrow().get(tp) {
                found.retain_offsets(|offset| !epochs.skips(offset));
            }
            match stored_end {
                // Nothing but skipped records: a consumer would ask for `offset` again.
                Some(end) if found.records.is_empty() && end < high_watermark => {
                    offset = self.record_at_or_after(tp, end);
                }
                _ => return Ok((found, high_watermark)),
            }
        }
    }

    /// The idempotent batches whose marks the partition's records hold from `from` on (see
    /// `codec`), and the offset where its records end, for a restarted shard to recover its
    /// producers. What SMQ cannot serve within `RECOVERY_PATIENCE` is passed over (logged).
    pub async fn producer_marks(
        &self,
        tp: &TopicPartition,
        from: i64,
    ) -> Result<(Vec<StoredBatch>, i64)> {
        let (mut end, _) = self.list_offset(tp, OffsetSpec::Latest).await?;
        let patience = std::time::Instant::now() + RECOVERY_PATIENCE;
        let mut marks = Vec::new();
        let mut last_start = None;
        let mut offset = from;
        let mut settling = TORN_SETTLE_ROUNDS;
        loop {
            self.read_marks(tp, &mut offset, end, patience, &mut marks, &mut last_start)
                .await?;
            let torn = last_start.filter(|batch| offset >= end && batch.last_offset >= end);
            let Some(torn) = torn else { break };
            // The tidegate before may have stopped just now: SMQ goes on storing what it
            // had received from it for a moment. Only a log that stays still is torn.
            glommio::timer::sleep(TORN_SETTLE).await;
            let (now_end, _) = self.list_offset(tp, OffsetSpec::Latest).await?;
            if now_end == end {
                self.skip_torn_batch(tp, torn, end).await?;
                break;
            }
            settling -= 1;
            if settling == 0 {
                tracing::warn!(%tp, producer_id = torn.producer_id, first = torn.base_offset, end = now_end,
                    "the log keeps growing inside an idempotent batch: another gateway writes it? Left as it is");
                break;
            }
            end = now_end;
        }
        Ok((marks, end.max(offset)))
    }

    /// Reads the marks from `offset` to `end` (see `producer_marks`), moving `offset`.
    async fn read_marks(
        &self,
        tp: &TopicPartition,
        offset: &mut i64,
        end: i64,
        patience: std::time::Instant,
        marks: &mut Vec<StoredBatch>,
        last_start: &mut Option<StoredBatch>,
    ) -> Result<()> {
        while *offset < end {
            let found = match self.fetch_records(tp, *offset, RECOVERY_READ_BYTES).await {
                Ok((found, _)) => found,
                // Past the end: SMQ lost what the snapshot covered.
                Err(Error::OffsetOutOfRange) => break,
                Err(error) => return Err(error),
            };
            marks.extend(found.marks);
            *last_start = found.starts.last().copied().or(*last_start);
            match found.next {
                Some(next) if next > *offset => *offset = next,
                // SMQ cannot serve what it stored there now (a new topic's first flush
                // window after a restart: proto/README.md), maybe for good. The appends
                // waiting for this are not held back long for it.
                _ if std::time::Instant::now() < patience => {
                    glommio::timer::sleep(REREAD_INTERVAL).await;
                }
                _ => {
                    tracing::warn!(%tp, from = offset, to = end - 1,
                        "records not readable: retries of idempotent batches stored there are not recognised");
                    break;
                }
            }
        }
        Ok(())
    }

    /// A restarted shard found the partition's log ending inside an idempotent batch, at
    /// `end`: the tidegate before it stopped while SMQ was taking the batch record by record
    /// (codec.rs), so it was never acknowledged, and its producer sends it again whole.
    /// Kafka batches are all or nothing: what SMQ stored of it is skipped, in a new leader
    /// epoch that starts at the batch and has its records from `end` on (as for a batch SMQ
    /// lost part of, `truncated`), stored before any append goes on. This assumes, as the
    /// producer snapshots do, that one gateway writes the partition: the log must end where
    /// it ended for the records read, or the batch is still being written.
    async fn skip_torn_batch(
        &self,
        tp: &TopicPartition,
        torn: StoredBatch,
        end: i64,
    ) -> Result<()> {
        let (after, high_watermark) = self.fetch_records(tp, end, RECOVERY_READ_BYTES).await?;
        if !after.records.is_empty() || high_watermark > end {
            tracing::warn!(%tp, producer_id = torn.producer_id, first = torn.base_offset, end,
                "the log went on past an idempotent batch that looked cut short: left as it is");
            return Ok(());
        }
        let epoch = self.begin_epoch(tp, torn.base_offset, end);
        self.torn_batches.set(self.torn_batches.get() + 1);
        tracing::warn!(%tp, producer_id = torn.producer_id, producer_epoch = torn.epoch,
            first_sequence = torn.first_sequence, first = torn.base_offset, last = end - 1,
            records = torn.last_offset - torn.base_offset + 1, leader_epoch = epoch,
            "an idempotent batch was cut short when tidegate stopped: the part SeaweedMQ stored is skipped, and the producer's retry stored whole after it");
        self.epoch_store.store(tp, &self.epochs_of(tp)).await
    }

    /// Records SMQ stores from `offset` on, and the partition's high-water mark: from the
    /// broker, or from the files it flushed where it no longer holds `offset` in memory or
    /// cannot serve it (log_files.rs says why).
    async fn fetch_stored(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Decoded, i64)> {
        let (client, topic, partition) = self.target(tp).await?;
        if let Err(error) = self.log_files.list_once(tp, &partition).await {
            self.warn_log_files(tp, offset, &error);
        }
        if self.is_flushed(tp, offset) {
            if let Some(found) = self.read_flushed(tp, &partition, offset).await {
                return Ok(found);
            }
        }
        let target = (client, topic, partition);
        let seen = self.seen(tp);
        let response = fetch_message(
            target,
            offset,
            max_bytes,
            MAX_FETCH_MESSAGES,
            self.decompressed_limit,
        )
        .await?;
        if response.error_code == 1 {
            // Not the leader (or not loaded there): look the assignments up again.
            self.forget(&tp.topic);
            return Err(Error::Unavailable(response.error));
        }
        if response.error_code != 0 {
            // A read error, of flushed data as a rule: the files may hold it.
            if let Some(found) = self.read_flushed(tp, &partition, offset).await {
                return Ok(found);
            }
            return Err(Error::Unavailable(response.error));
        }
        // A reloaded partition's broker may count from the end of a flush window it lost
        // track of: the files prove where the log really ends, and past what they prove
        // such a broker cannot be asked by offset (it answers nothing there).
        let known_end = self.log_files.known_end(tp);
        let broker_mark = response.high_water_mark - self.overcount(tp);
        let broker_lost_count = broker_mark < known_end;
        let high_watermark = broker_mark.max(known_end);
        let how = "FetchMessage's high-water mark is below them";
        self.check_high_watermark(tp, &partition, high_watermark, seen, how)
            .await;
        // What tidegate acknowledged and did not find lost is in the log, if only in the
        // broker's memory: a broker that lost count (its mark below the files' end) does
        // not count it, and a consumer that read it from the cache must not be told its
        // next offset is out of range (it would reset to its policy and read the log again).
        let high_watermark = high_watermark.max(self.seen(tp).acked_end);
        self.high_watermarks
            .borrow_mut()
            .insert(tp.clone(), high_watermark);
        if response.log_start_offset > 0 {
            // It reads 0 while a fresh buffer is empty: only a rise is news.
            let mut in_memory_from = self.in_memory_from.borrow_mut();
            let known = in_memory_from.entry(tp.clone()).or_default();
            *known = (*known).max(response.log_start_offset);
        }
        let count = response.messages.len() as i64;
        // Messages carry no offsets: they are consecutive and end just before next_offset.
        let first = (response.next_offset - count).max(offset);
        let nothing_at_offset = count == 0 || first > offset;
        // Read from the broker's files, by position rather than by the offsets stored with
        // the records (a gap in them shifts every later record), or nothing where the
        // broker says there is something, a gap, or a mark at or below `offset` (a
        // reloaded partition forgets its first flush window): what the files hold there
        // wins. At the mark, with nothing, is a consumer waiting for more, unless the
        // broker lost count: then the files are listed again for what it flushed since.
        let from_disk = offset < response.log_start_offset;
        let files_may_hold = offset >= 0
            && (from_disk || broker_lost_count || nothing_at_offset && offset != high_watermark);
        if files_may_hold {
            if let Some(found) = self.read_flushed(tp, &partition, offset).await {
                return Ok(found);
            }
        }
        let high_watermark = high_watermark.max(self.log_files.known_end(tp));
        if offset < 0 || offset > high_watermark {
            return Err(Error::OffsetOutOfRange);
        }
        if broker_lost_count {
            // Its messages are counted from the wrong place: they wait for their flush.
            return Ok((Decoded::default(), high_watermark));
        }
        if count > 0 && first > offset {
            // Neither the broker nor the files have the records in between (see
            // proto/README.md, "Partition unloading"). Kafka clients accept gaps.
            tracing::warn!(%tp, offset, first, "SeaweedMQ skipped unreadable offsets");
        }
        let mut found = Decoded::default();
        for (i, message) in response.messages.into_iter().enumerate() {
            found.push(message.key, message.value, message.ts_ns, first + i as i64);
        }
        Ok((found, high_watermark))
    }

    /// Logs a failed read of the flushed files, one line a minute at most: every fetch
    /// of a partition would meet the same failure.
    fn warn_log_files(&self, tp: &TopicPartition, offset: i64, error: &Error) {
        let now = std::time::Instant::now();
        let quiet = self
            .log_files_warned
            .get()
            .is_some_and(|at| now.duration_since(at) < std::time::Duration::from_secs(60));
        if !quiet {
            self.log_files_warned.set(Some(now));
            tracing::warn!(%tp, offset, %error, "flushed records not read from the filer; asking the broker");
        }
    }

    /// Flushed records from `offset` on, read from the files, with the high-water mark
    /// they prove; `None` if the files hold none there or cannot be read (logged: the
    /// broker is asked instead).
    async fn read_flushed(
        &self,
        tp: &TopicPartition,
        partition: &proto::schema_pb::Partition,
        offset: i64,
    ) -> Option<(Decoded, i64)> {
        let found = match self.log_files.read(tp, partition, offset).await {
            Ok(found) => found,
            Err(error) => {
                self.warn_log_files(tp, offset, &error);
                return None;
            }
        };
        let end = found.records.last()?.offset + 1;
        self.reads_from_files.set(self.reads_from_files.get() + 1);
        let mut high_watermarks = self.high_watermarks.borrow_mut();
        let known = high_watermarks.entry(tp.clone()).or_insert(end);
        *known = (*known).max(end);
        Some((found, *known))
    }

    pub async fn list_offset(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<(i64, i64)> {
        let (_, _, partition) = self.target(tp).await?;
        let seen = self.seen(tp);
        let range = self.partition_range(tp).await?;
        let end = range.high_water_mark - self.overcount(tp);
        let how = "GetPartitionRangeInfo's high-water mark is below them";
        self.check_high_watermark(tp, &partition, end, seen, how)
            .await;
        match spec {
            OffsetSpec::Earliest => Ok((range.earliest_offset, -1)),
            OffsetSpec::Latest => Ok((end, -1)),
            OffsetSpec::MaxTimestamp if end == 0 => Ok((-1, -1)),
            OffsetSpec::MaxTimestamp => Ok((end - 1, self.timestamp_at(tp, end - 1).await?)),
            OffsetSpec::Timestamp(target) => {
                self.first_at_or_after(tp, target, range.earliest_offset, end)
                    .await
            }
        }
    }

    async fn timestamp_at(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        if let Some(timestamp) = self.timestamps.borrow_mut().get(tp, offset) {
            return Ok(timestamp);
        }
        let (found, _) = self.fetch_records(tp, offset, 1).await?;
        let found = found.records.first().filter(|r| r.offset == offset);
        let timestamp = found.map_or(-1, |r| r.timestamp);
        if found.is_some() {
            self.timestamps.borrow_mut().insert(tp, offset, timestamp);
        }
        Ok(timestamp)
    }

    /// Binary search for the first offset whose timestamp is at least `target`, assuming
    /// timestamps grow with offsets (they do for producers with working clocks).
    async fn first_at_or_after(
        &self,
        tp: &TopicPartition,
        target: i64,
        start: i64,
        end: i64,
    ) -> Result<(i64, i64)> {
        let (mut low, mut high) = (start, end);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.timestamp_at(tp, middle).await? < target {
                true => low = middle + 1,
                false => high = middle,
            }
        }
        if low >= end {
            return Ok((-1, -1));
        }
        Ok((low, self.timestamp_at(tp, low).await?))
    }
}

/// What a publish stream needs to find its partition's leader, owned by the stream's task.
struct SmqLookup {
    bootstrap: String,
    namespace: String,
    tp: TopicPartition,
    cached: Option<Rc<SmqTopic>>,
    clients: HashMap<String, GrpcChannel>,
    tls: Option<Arc<ClientTls>>,
    log_files: Rc<LogFiles>,
}

impl SmqLookup {
    /// The stream's target, and what the partition's files hold if the broker may count
    /// from below their end (see publisher.rs): its offset manager counts from its last
    /// checkpoint when it loads the partition.
    async fn resolve(self) -> Result<(Target, Option<FilesEnd>)> {
        let topic = Topic {
            namespace: self.namespace.clone(),
            name: self.tp.topic.to_string(),
        };
        let assignments = match &self.cached {
            Some(cached) => cached.assignments.clone(),
            None => {
                let mut client =
                    live_client(&self.clients, &self.bootstrap, self.tls.as_deref()).await?;
                lookup_assignments(&mut client, topic.clone()).await?
            }
        };
        let (leader, partition) = leader_of(&assignments, self.tp.partition)?;
        let leader = named_leader(&self.tp, leader)?;
        let client = live_client(&self.clients, leader, self.tls.as_deref()).await?;
        let files_end = self.checkpointed_files_end(&partition).await?;
        let behind = files_end > self.log_files.counted_from(&self.tp);
        let files = FilesEnd {
            end: files_end,
            claimed_end: self.log_files.claimed_end(&self.tp),
        };
        Ok(((client, topic, partition), behind.then_some(files)))
    }

    /// The end of the partition's files, once the broker's checkpoint covers them or
    /// `CHECKPOINT_CATCH_UP` has passed. Files ending past the checkpoint are what a broker
    /// restarted from an older checkpoint leaves, but also what a live one leaves for up to
    /// 2 s: it flushes a partition as soon as its last publisher goes (a tidegate restart),
    /// and checkpoints on its own schedule. A live broker's next checkpoint catches up;
    /// a filler published before it would leave a gap in the offsets for nothing.
    async fn checkpointed_files_end(&self, partition: &proto::schema_pb::Partition) -> Result<i64> {
        let started = std::time::Instant::now();
        let mut waited = false;
        loop {
            let files_end = self.log_files.flushed_end_now(&self.tp, partition).await?;
            let checkpointed = files_end <= self.log_files.counted_from(&self.tp);
            if checkpointed || started.elapsed() >= CHECKPOINT_CATCH_UP {
                if waited {
                    let waited_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(partition = %self.tp, checkpointed, waited_ms,
                        "waited for SeaweedMQ's offset checkpoint to reach the partition's files");
                }
                return Ok(files_end);
            }
            waited = true;
            glommio::timer::sleep(CHECKPOINT_POLL).await;
        }
    }
}

/// One FetchMessage to the partition's leader: up to `max_messages` records from
/// `start_offset`, about `max_bytes` of them (at most `MAX_FETCH_MESSAGE_BYTES`), where
/// no record is larger than `largest_record` (proto/README.md, "FetchMessage"). The broker
/// answers up to `max_bytes` and one record more; gRPC's default limit (4 MiB) would
/// refuse such an answer, and every later read of the partition with it.
async fn fetch_message(
    (client, topic, partition): Target,
    start_offset: i64,
    max_bytes: usize,
    max_messages: i32,
    largest_record: usize,
) -> Result<FetchMessageResponse> {
    let max_bytes = max_bytes.min(MAX_FETCH_MESSAGE_BYTES);
    let request = FetchMessageRequest {
        topic: Some(topic),
        partition: Some(partition),
        start_offset,
        max_bytes: max_bytes as i32,
        max_messages,
        ..Default::default()
    };
    let answer_limit = max_bytes + largest_record + FETCH_ANSWER_OVERHEAD;
    let mut client = client.max_decoding_message_size(answer_limit);
    let response = client.fetch_message(request).await.map_err(unavailable)?;
    Ok(response.into_inner())
}

/// A connection to a broker that is ready for control-plane calls. A restarted SeaweedFS
/// answers gRPC before its broker has a balancer, and LookupTopicBrokers & co. then crash
/// the whole weed process (proto/README.md): FindBrokerLeader, which is safe, must name a
/// balancer first.
async fn connect_broker(broker: &str, tls: Option<&ClientTls>) -> Result<GrpcChannel> {
    let channel = GrpcChannel::connect(broker, tls)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach SeaweedMQ broker {broker}: {e}")))?;
    let leader = channel
        .broker()
        .find_broker_leader(FindBrokerLeaderRequest::default())
        .await
        .map_err(unavailable)?
        .into_inner();
    if leader.broker.is_empty() {
        return Err(Error::Unavailable(format!(
            "SeaweedMQ broker {broker} is not ready: no balancer yet"
        )));
    }
    Ok(channel)
}

/// A client over the cached connection to `broker` while it is open, else a new one.
async fn live_client(
    channels: &HashMap<String, GrpcChannel>,
    broker: &str,
    tls: Option<&ClientTls>,
) -> Result<SmqClient> {
    match channels.get(broker).filter(|c| !c.is_closed()) {
        Some(channel) => Ok(channel.broker()),
        None => Ok(connect_broker(broker, tls).await?.broker()),
    }
}

/// A topic's partition assignments sorted by range start (the broker keeps allocation
/// order, but nothing promises it); empty if the topic does not exist.
async fn lookup_assignments(
    client: &mut SmqClient,
    topic: Topic,
) -> Result<Vec<BrokerPartitionAssignment>> {
    let request = LookupTopicBrokersRequest { topic: Some(topic) };
    let mut assignments = match client.lookup_topic_brokers(request).await {
        Ok(response) => response.into_inner().broker_partition_assignments,
        Err(status) if status.message().contains("not found") => Vec::new(),
        Err(status) => return Err(unavailable(status)),
    };
    assignments.sort_by_key(|a| a.partition.as_ref().map_or(0, |p| p.range_start));
    Ok(assignments)
}

/// Kafka partition k is the k-th assignment by range start: its leader and full partition.
fn leader_of(
    assignments: &[BrokerPartitionAssignment],
    partition: i32,
) -> Result<(&str, proto::schema_pb::Partition)> {
    let assignment = usize::try_from(partition)
        .ok()
        .and_then(|p| assignments.get(p))
        .ok_or(Error::UnknownTopicOrPartition)?;
    let range = assignment.partition.ok_or(Error::UnknownTopicOrPartition)?;
    Ok((&assignment.leader_broker, range))
}

/// The partition's leader, or Unavailable while SeaweedMQ names none (a restarted broker
/// before its balancer assigned the partition).
fn named_leader<'a>(tp: &TopicPartition, leader: &'a str) -> Result<&'a str> {
    if leader.is_empty() {
        return Err(Error::Unavailable(format!(
            "{tp}: SeaweedMQ names no leader for it yet"
        )));
    }
    Ok(leader)
}

/// What `SmqBackend::fill_cache` read: the first batch (which the cache may not have kept)
/// and the partition's high-water mark.
struct Filled {
    first: Option<LogBatch>,
    high_watermark: i64,
}

/// Per partition, offsets (first, last) of batches `wait_durable` waits on.
type AwaitedBatches = Rc<RefCell<HashMap<TopicPartition, Vec<(i64, i64)>>>>;

/// A batch `wait_durable` waits on, in `SmqBackend::awaited` until dropped (answered, or
/// its request abandoned).
struct Awaited {
    awaited: AwaitedBatches,
    tp: TopicPartition,
    offsets: (i64, i64),
}

impl Awaited {
    fn enter(awaited: &AwaitedBatches, tp: &TopicPartition, first: i64, last: i64) -> Self {
        let offsets = (first, last);
        let mut batches = awaited.borrow_mut();
        batches.entry(tp.clone()).or_default().push(offsets);
        Self {
            awaited: awaited.clone(),
            tp: tp.clone(),
            offsets,
        }
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        let mut awaited = self.awaited.borrow_mut();
        if let Some(batches) = awaited.get_mut(&self.tp) {
            if let Some(i) = batches.iter().position(|&o| o == self.offsets) {
                batches.swap_remove(i);
            }
            if batches.is_empty() {
                awaited.remove(&self.tp);
            }
        }
    }
}

/// Offsets a broken publish stream had acknowledged from the broker's memory.
#[derive(Debug, Clone, Copy)]
struct Doubt {
    first: i64,
    last: i64,
    /// The partition's leader epoch when the stream broke.
    epoch: i32,
}

/// What was acknowledged of a partition (the offset after the last record), and its leader
/// epoch, at some moment: see `SmqBackend::seen`.
#[derive(Debug, Clone, Copy)]
struct Seen {
    acked_end: i64,
    epoch: i32,
}

/// Partitions whose leader-epoch history is still to be stored, and the waiting writer.
#[derive(Default)]
struct EpochWrites {
    pending: VecDeque<TopicPartition>,
    wake: Option<oneshot::Sender<()>>,
}

impl EpochWrites {
    fn push(&mut self, tp: TopicPartition) {
        if !self.pending.contains(&tp) {
            self.pending.push_back(tp);
        }
        if let Some(wake) = self.wake.take() {
            let _ = wake.send(());
        }
    }

    /// The next partition to store, or what wakes the writer when there is one.
    fn next(&mut self) -> Result<TopicPartition, oneshot::Receiver<()>> {
        if let Some(tp) = self.pending.pop_front() {
            return Ok(tp);
        }
        let (wake, woken) = oneshot::channel();
        self.wake = Some(wake);
        Err(woken)
    }
}

impl Doubt {
    fn overlaps(&self, first: i64, last: i64) -> bool {
        self.first <= last && first <= self.last
    }
}

/// The records split into runs of about `FETCHED_BATCH_BYTES` each, one batch apiece.
fn fetched_batches(records: &[Record]) -> impl Iterator<Item = &[Record]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = 0;
        let end = rest
            .iter()
            .position(|r| {
                size +=
                    r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
                size > FETCHED_BATCH_BYTES
            })
            .map_or(rest.len(), |i| i.max(1));
        let (run, later) = rest.split_at(end);
        rest = later;
        Some(run)
    })
}

/// A stable id for a topic generation: the same on every shard and after restarts.
fn topic_id(name: &str, generation: i64) -> Uuid {
    Uuid::from_u64_pair(shards::fnv1a(name.as_bytes()), generation as u64)
}

/// Finds SeaweedFS's broker and filer (as given, or asked of the master) and reads back the
/// users and ACLs, before any shard starts: every shard then uses the same servers. gRPC runs on glommio, so this runs on a short-lived executor of its own.
/// `tls`: how to reach them when SeaweedFS's gRPC is TLS.
pub fn open(
    config: &crate::config::Config,
    security: &Arc<crate::security::Security>,
    tls: Option<Arc<ClientTls>>,
) -> anyhow::Result<Endpoints> {
    let startup_timeout = std::time::Duration::from_millis(config.smq_startup_timeout_ms);
    let master = config.smq_master().map(str::to_string);
    let broker = config.smq_broker.clone();
    let filer = config.smq_filer.clone();
    let discovery_tls = tls.clone();
    let resolved = before_shards("tidegate-discovery", move || async move {
        discovery::resolve(
            master.as_deref(),
            broker.as_deref(),
            filer.as_deref(),
            discovery_tls.as_deref(),
            startup_timeout,
        )
        .await
    })?;
    let endpoints = resolved.map_err(|e| anyhow::anyhow!(e))?;
    // Before "ready": a dead address is an error at start-up, naming where it came from,
    // not a produce that times out later.
    let (broker, filer) = (endpoints.broker.clone(), endpoints.filer.clone());
    let check_tls = tls.clone();
    let reached = before_shards("tidegate-check", move || async move {
        reachable(&broker, &filer, check_tls, startup_timeout).await
    })?;
    if let Err((what, error, refused)) = reached {
        let named = match what {
            "broker" if config.smq_broker.is_some() => "--smq-broker".to_string(),
            "filer" if config.smq_filer.is_some() => "--smq-filer".to_string(),
            other => format!(
                "the {other} the master {} named",
                config.smq_master().unwrap_or("")
            ),
        };
        if refused {
            anyhow::bail!("{named}: {error}");
        }
        anyhow::bail!(
            "{named}: {error}; is SeaweedFS's {what} running there (`weed server -mq.broker` \
             runs both)?"
        );
    }
    tracing::info!(
        broker = endpoints.broker,
        filer = endpoints.filer,
        namespace = config.smq_namespace,
        tls = tls.is_some(),
        "backend: SeaweedMQ"
    );
    // Users and ACLs that cannot be read stop the start: serving with others than the
    // other gateways', or overwriting them, would be worse.
    let filer = endpoints.filer.clone();
    let namespace = config.smq_namespace.clone();
    let security = security.clone();
    before_shards("tidegate-security", move || async move {
        let store = super::SecurityStore::Smq(security::SecurityStore::new(
            Rc::new(Filer::new(filer, tls)),
            &namespace,
        ));
        security.restore(&store).await
    })?
    .map_err(|e| anyhow::anyhow!("users and ACLs in SeaweedFS's filer: {e}"))?;
    Ok(endpoints)
}

/// Whether the broker and the filer accept a connection and the filer answers a listing,
/// trying again until `timeout` (SeaweedFS may still be starting) unless a server refuses
/// us for good (TLS on one side only, a certificate refused); if not, which one failed,
/// how, and whether it refused us.
async fn reachable(
    broker: &str,
    filer: &str,
    tls: Option<Arc<ClientTls>>,
    timeout: std::time::Duration,
) -> Result<(), (&'static str, String, bool)> {
    let deadline = std::time::Instant::now() + timeout;
    let filer_address = filer;
    let filer = Filer::new(filer.to_string(), tls.clone());
    loop {
        let attempt = async {
            for (what, address) in [("broker", broker), ("filer", filer_address)] {
                match GrpcChannel::connect(address, tls.as_deref()).await {
                    Ok(_) => {}
                    Err(ConnectError::Refused(error)) => return Err((what, error, true)),
                    Err(ConnectError::Unreachable(error)) => {
                        let error = format!("cannot reach SeaweedFS {what} {address}: {error}");
                        return Err((what, error, false));
                    }
                }
            }
            filer
                .list("/")
                .await
                .map_err(|e| ("filer", e.to_string(), false))?;
            Ok(())
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timer = glommio::timer::sleep(left);
        let outcome =
            match futures::future::select(std::pin::pin!(attempt), std::pin::pin!(timer)).await {
                futures::future::Either::Left((outcome, _)) => outcome,
                futures::future::Either::Right(_) => {
                    Err(("broker", format!("{broker} did not answer"), false))
                }
            };
        match outcome {
            Ok(()) => return Ok(()),
            Err(refused @ (_, _, true)) => return Err(refused),
            Err(failed) if std::time::Instant::now() >= deadline => return Err(failed),
            Err(_) => glommio::timer::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// Locked memory for a start-up executor; its few gRPC sockets need no more.
const STARTUP_IO_MEMORY: usize = 512 << 10;

fn before_shards<T, F>(name: &str, work: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .io_memory(STARTUP_IO_MEMORY)
        .spawn(work)
        .map_err(|e| anyhow::anyhow!("cannot start executor {name}: {e}"))?
        .join()
        .map_err(|e| anyhow::anyhow!("executor {name} stopped: {e}"))
}
