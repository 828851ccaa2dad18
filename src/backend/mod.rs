//! Where records live, as four small seams, and the one backend chosen at start-up.
//!
//! The seams, each sized to its one caller:
//! - [`TopicCatalogue`]: topics by name or id, and their admin (the topic handlers).
//! - [`PartitionLog`]: append, read a range, list offsets, move the log start, and how a
//!   waiting fetch learns of new data (`partition::Partitions`).
//! - [`OffsetStore`]: consumer groups' committed offsets (`group::offsets::OffsetCache`).
//! - [`ProducerStore`]: idempotent producers' state, for backends whose records outlive the
//!   process (`partition::Partitions`).
//! - [`SecurityStore`]: the users and the ACLs, each one document written whole with a
//!   compare-and-swap, for backends shared by several gateways or outliving the process
//!   (`security::stored`).
//!
//! `memory` and `smq` implement each; [`open`] picks one at start-up, does its discovery
//! and start-up reads, and [`Backend::open_shard`] gives every shard its own instance of
//! each seam. A seam is an enum (static dispatch) whose arms only forward: what a backend
//! refuses, how it polls and what it keeps are decided inside `memory` and `smq`.
//!
//! A shard's instances are its own. Topic admin may be called on any shard; partition data
//! calls are only made on the shard that owns the partition, and a group's offsets only on
//! the group's coordinator, so implementations keep per-partition and per-group state
//! without locks. Offsets are assigned by the log: a Kafka offset is the backend's own.

pub mod memory;
pub mod smq;

use crate::config::{BackendKind, Config};
use crate::error::Result;
use crate::partition::leader_epochs::LeaderEpochs;
use crate::partition::producer_state::{PartitionSnapshot, StoredBatch};
use crate::record_batch::{LogBatch, RecordBatch};
use crate::security::Security;
use crate::TopicPartition;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A topic as the catalogue knows it. Shared read-only between shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level configs set at creation (name → value).
    pub configs: BTreeMap<String, String>,
    /// The leader-epoch histories of partitions whose log was ever truncated (SMQ lost
    /// records); the others are in epoch 0. Metadata answers from here on every shard, so
    /// the owner tells every shard to look the topic up again when it changes.
    pub leader_epochs: BTreeMap<i32, LeaderEpochs>,
}

impl TopicMeta {
    /// Whether the topic has partition `index`.
    pub fn has_partition(&self, index: i32) -> bool {
        (0..self.partitions).contains(&index)
    }

    /// The leader epoch partition `index` is in, as Metadata reports it.
    pub fn leader_epoch(&self, index: i32) -> i32 {
        self.leader_epochs
            .get(&index)
            .map_or(0, LeaderEpochs::current)
    }

    /// Partition `index` of the topic; UNKNOWN_TOPIC_OR_PARTITION if it has none.
    pub fn partition(&self, index: i32) -> crate::error::Result<TopicPartition> {
        match self.has_partition(index) {
            true => Ok(TopicPartition::new(self.name.clone(), index)),
            false => Err(crate::error::Error::UnknownTopicOrPartition),
        }
    }
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The offset of the record with the largest timestamp.
    MaxTimestamp,
    /// The first offset whose record timestamp is at least this (ms since the epoch).
    Timestamp(i64),
}

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    /// -1 when no record matches.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch); -1 when no record matches.
    pub timestamp: i64,
    /// The leader epoch the offset lies in (the current one for the log's end); -1 when
    /// no record matches.
    pub leader_epoch: i32,
}

/// A range of the log, as stored batches.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// Whole batches, in offset order; the first contains the requested offset.
    pub batches: Vec<LogBatch>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A consumer group's committed position in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not say.
    pub leader_epoch: i32,
    pub metadata: String,
    /// When it was committed, ms since the epoch.
    pub committed_at_ms: i64,
}

/// Committed offsets of one group, as stored.
pub type GroupOffsets = Vec<(TopicPartition, CommittedOffset)>;

/// The backend this process runs, shared by every shard: what each needs to open its own
/// seams.
pub enum Backend {
    Memory(Arc<memory::SharedCatalog>, memory::Settings),
    Smq(smq::Endpoints, smq::Settings),
}

/// One shard's instance of every seam.
pub struct ShardStores {
    pub topics: TopicCatalogue,
    pub log: PartitionLog,
    pub offsets: OffsetStore,
    pub producers: ProducerStore,
    pub security: SecurityStore,
}

/// The backend `--backend` names, ready for the shards: SeaweedFS's servers found (or the
/// process-wide memory catalogue made), and what earlier runs stored read back (users and
/// ACLs put into `security`). Runs before any shard starts.
pub fn open(config: &Config, security: &Arc<Security>) -> anyhow::Result<Backend> {
    match config.backend {
        BackendKind::Memory => {
            tracing::info!(
                retention_bytes = config.memory_retention_bytes,
                "backend: memory (records live in this process)"
            );
            let settings = memory::Settings {
                retention_bytes: config.memory_retention_bytes,
                decompressed_limit: config.max_decompressed_batch_bytes,
            };
            Ok(Backend::Memory(Arc::default(), settings))
        }
        BackendKind::Smq => {
            let tls = smq::tls::ClientTls::from_config(config).map_err(anyhow::Error::msg)?;
            let endpoints = smq::open(config, security, tls.clone())?;
            let settings = smq::Settings {
                namespace: config.smq_namespace.clone(),
                decompressed_limit: config.max_decompressed_batch_bytes,
                tls,
                acks_all: config.smq_acks_all,
                fetch_poll: Duration::from_millis(config.smq_fetch_poll_ms),
                batch_cache_bytes: config.smq_batch_cache_bytes,
            };
            Ok(Backend::Smq(endpoints, settings))
        }
    }
}

impl Backend {
    /// Shard `shard_id`'s own instance of every seam.
    pub fn open_shard(&self, shard_id: usize) -> ShardStores {
        match self {
            Backend::Memory(catalog, settings) => {
                let backend = Rc::new(memory::MemoryBackend::new(catalog.clone(), *settings));
                ShardStores {
                    topics: TopicCatalogue::Memory(backend.clone()),
                    log: PartitionLog::Memory(backend),
                    offsets: OffsetStore::Memory(memory::OffsetStore::default()),
                    producers: ProducerStore::Memory,
                    security: SecurityStore::Memory,
                }
            }
            Backend::Smq(endpoints, settings) => {
                let namespace = &settings.namespace;
                let filer = Rc::new(smq::filer::Filer::new(
                    endpoints.filer.clone(),
                    settings.tls.clone(),
                ));
                let backend = Rc::new(smq::SmqBackend::new(
                    endpoints.broker.clone(),
                    filer.clone(),
                    settings,
                    shard_id,
                ));
                ShardStores {
                    topics: TopicCatalogue::Smq(backend.clone()),
                    log: PartitionLog::Smq(backend),
                    offsets: OffsetStore::Smq(smq::offsets::OffsetStore::new(
                        filer.clone(),
                        namespace,
                    )),
                    producers: ProducerStore::Smq(smq::producers::ProducerStore::new(
                        filer.clone(),
                        namespace,
                    )),
                    security: SecurityStore::Smq(smq::security::SecurityStore::new(
                        filer, namespace,
                    )),
                }
            }
        }
    }
}

/// Topics: lookup and admin. A backend's catalogue and log share what they cache of a
/// topic.
pub enum TopicCatalogue {
    Memory(Rc<memory::MemoryBackend>),
    Smq(Rc<smq::SmqBackend>),
}

impl TopicCatalogue {
    /// Creates a topic; TOPIC_ALREADY_EXISTS if it does. `validate_only` checks and answers
    /// what would be created.
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>> {
        match self {
            Self::Memory(b) => b.create_topic(name, partitions, configs, validate_only),
            Self::Smq(b) => {
                b.create_topic(name, partitions, configs, validate_only)
                    .await
            }
        }
    }

    /// Deletes a topic and its records, or says why the backend cannot.
    pub async fn delete(&self, name: &str) -> Result<Arc<TopicMeta>> {
        match self {
            Self::Memory(b) => b.delete_topic(name),
            Self::Smq(b) => b.delete_topic(name).await,
        }
    }

    /// Grows a topic to `count` partitions, or says why the backend cannot.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        match self {
            Self::Memory(b) => b.create_partitions(name, count, validate_only),
            Self::Smq(b) => b.create_partitions(name, count, validate_only).await,
        }
    }

    /// Replaces a topic's configs (validated by the caller). Every shard sees the change on
    /// its next lookup once [`TopicCatalogue::forget`] ran there.
    pub async fn alter_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        match self {
            Self::Memory(b) => b.alter_topic_configs(name, configs, validate_only),
            Self::Smq(b) => b.alter_topic_configs(name, configs, validate_only).await,
        }
    }

    /// Forgets what this shard cached about a topic that another shard changed.
    pub fn forget(&self, name: &str) {
        match self {
            Self::Memory(b) => b.forget(name),
            Self::Smq(b) => b.forget(name),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Arc<TopicMeta>>> {
        match self {
            Self::Memory(b) => Ok(b.topic(name)),
            Self::Smq(b) => b.topic(name).await,
        }
    }

    pub async fn by_id(&self, id: Uuid) -> Result<Option<Arc<TopicMeta>>> {
        match self {
            Self::Memory(b) => Ok(b.topic_by_id(id)),
            Self::Smq(b) => b.topic_by_id(id).await,
        }
    }

    /// Whether the backend answers (for /readyz): always, for the memory backend.
    pub async fn answers(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Smq(b) => b.answers().await,
        }
    }

    /// Every topic, by name.
    pub async fn list(&self) -> Result<Vec<Arc<TopicMeta>>> {
        match self {
            Self::Memory(b) => Ok(b.list_topics()),
            Self::Smq(b) => b.list_topics().await,
        }
    }
}

/// Partition data, on the partition's owner only.
pub enum PartitionLog {
    Memory(Rc<memory::MemoryBackend>),
    Smq(Rc<smq::SmqBackend>),
}

impl PartitionLog {
    /// Appends validated batches in order and returns the offset given to the first record.
    ///
    /// Ordering contract: the position of the append is fixed before the first `.await`,
    /// so appends issued in order on one shard land in that order (`partition` explains
    /// why it matters).
    pub async fn append(&self, tp: &TopicPartition, batches: &[RecordBatch]) -> Result<i64> {
        match self {
            Self::Memory(b) => b.append(tp, batches),
            Self::Smq(b) => b.append(tp, batches).await,
        }
    }

    /// Waits until the `batches` stored from `base` on survive the loss of the backend's process, at
    /// most `within`. The memory backend keeps nothing beyond its process: at once.
    pub async fn wait_durable(
        &self,
        tp: &TopicPartition,
        base: i64,
        batches: &[RecordBatch],
        within: std::time::Duration,
    ) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Smq(b) => b.wait_durable(tp, base, batches, within).await,
        }
    }

    /// Batches from `offset` on, up to about `max_bytes` (always at least one batch when
    /// there is one, so a consumer never stalls on a large batch).
    pub async fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        match self {
            Self::Memory(b) => b.read(tp, offset, max_bytes),
            Self::Smq(b) => b.read(tp, offset, max_bytes).await,
        }
    }

    /// The idempotent batches whose marks the partition's records hold from `from` on, and
    /// where its records end. The memory log's producers die with it: none.
    pub async fn producer_marks(
        &self,
        tp: &TopicPartition,
        from: i64,
    ) -> Result<(Vec<StoredBatch>, i64)> {
        match self {
            Self::Memory(_) => Ok((Vec::new(), from)),
            Self::Smq(b) => b.producer_marks(tp, from).await,
        }
    }

    /// The offset a ListOffsets query names.
    pub async fn list_offset(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<FoundOffset> {
        let (offset, timestamp) = match self {
            Self::Memory(b) => b.list_offset(tp, spec)?,
            Self::Smq(b) => b.list_offset(tp, spec).await?,
        };
        // Asked after the offset: looking it up may have found a truncation.
        let epochs = self.leader_epochs(tp).await?;
        let leader_epoch = match (offset, spec) {
            (-1, _) => -1,
            (_, OffsetSpec::Latest) => epochs.current(),
            (offset, _) => epochs.epoch_at(offset),
        };
        Ok(FoundOffset {
            offset,
            timestamp,
            leader_epoch,
        })
    }

    /// The partition's leader-epoch history. The memory log is never truncated: epoch 0.
    pub async fn leader_epochs(&self, tp: &TopicPartition) -> Result<LeaderEpochs> {
        match self {
            Self::Memory(_) => Ok(LeaderEpochs::default()),
            Self::Smq(b) => b.leader_epochs(tp).await,
        }
    }

    /// Returns the topic of the next partition whose leader epoch changed (SMQ: a
    /// truncation), once its history is stored: every shard must look the topic up again.
    /// Never, on the memory backend.
    pub async fn leader_epoch_changed(&self) -> Arc<str> {
        match self {
            Self::Memory(_) => futures::future::pending().await,
            Self::Smq(b) => b.leader_epoch_changed().await,
        }
    }

    /// DeleteRecords: moves the partition's log start to `offset` (-1: the high watermark)
    /// and returns the new log start, or says why the backend cannot.
    pub async fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        match self {
            Self::Memory(b) => b.delete_records(tp, offset),
            Self::Smq(b) => b.delete_records(tp, offset).await,
        }
    }

    /// Bytes the backend holds for the partition.
    pub async fn size(&self, tp: &TopicPartition) -> Result<i64> {
        match self {
            Self::Memory(b) => b.partition_size(tp),
            Self::Smq(b) => b.partition_size(tp).await,
        }
    }

    /// Where reads were answered from; `None` on the memory backend (it serves every read
    /// from memory).
    pub fn smq_counts(&self) -> Option<crate::metrics::SmqCounts> {
        match self {
            Self::Memory(_) => None,
            Self::Smq(b) => Some(b.counts()),
        }
    }

    /// The offset after the last record, cheaply: long-polls compare against it.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        match self {
            Self::Memory(b) => b.high_watermark(tp),
            Self::Smq(b) => b.high_watermark(tp),
        }
    }

    /// How a waiting fetch learns of new data: `None` when every append goes through this
    /// process and wakes it; otherwise how often it must re-read, because others append
    /// too.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self {
            Self::Memory(b) => b.poll_interval(),
            Self::Smq(b) => b.poll_interval(),
        }
    }

    /// Closes what the backend keeps open for appends (SMQ: the publish streams, each once
    /// every message sent on it is acknowledged), at shutdown.
    pub async fn close(&self) {
        match self {
            Self::Memory(_) => {}
            Self::Smq(b) => b.close().await,
        }
    }

    /// Drops what this shard's partitions keep past their topics' `retention.ms`, where the
    /// backend enforces it; returns how many batches went.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        match self {
            Self::Memory(b) => b.enforce_retention(now_ms),
            Self::Smq(b) => b.enforce_retention(now_ms),
        }
    }
}

/// Consumer groups' committed offsets. Only a group's coordinator shard calls these for
/// the group.
pub enum OffsetStore {
    Memory(memory::OffsetStore),
    Smq(smq::offsets::OffsetStore),
}

impl OffsetStore {
    /// Stores one commit request's offsets, durably before it returns: a single write.
    pub async fn store(&self, group: &str, offsets: &GroupOffsets) -> Result<()> {
        match self {
            Self::Memory(s) => s.store(group, offsets),
            Self::Smq(s) => s.store(group, offsets).await,
        }
    }

    /// Every committed offset of a group (empty when it has none).
    pub async fn load(&self, group: &str) -> Result<GroupOffsets> {
        match self {
            Self::Memory(s) => s.load(group),
            Self::Smq(s) => s.load(group).await,
        }
    }

    /// Forgets the given partitions' offsets of a group, or all of them with `None`.
    pub async fn delete(&self, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
        match self {
            Self::Memory(s) => s.delete(group, partitions),
            Self::Smq(s) => s.delete(group, partitions).await,
        }
    }

    /// Every group with stored offsets.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        match self {
            Self::Memory(s) => s.list_groups(),
            Self::Smq(s) => s.list_groups().await,
        }
    }
}

/// Snapshots of idempotent producers' state, one per partition, for backends whose records
/// outlive the process (and carry the producers' marks: `producer_state`). Each shard
/// writes and reads the partitions it owns.
pub enum ProducerStore {
    /// Keeps none: the records die with the process, and so do their producers.
    Memory,
    Smq(smq::producers::ProducerStore),
}

impl ProducerStore {
    /// Whether states must be stored for a retry across a restart to be recognised.
    pub fn keeps_producers(&self) -> bool {
        match self {
            Self::Memory => false,
            Self::Smq(_) => true,
        }
    }

    /// Stores the partitions' snapshots, durably before it returns: a single write.
    pub async fn store(&self, snapshots: &[(TopicPartition, PartitionSnapshot)]) -> Result<()> {
        match self {
            Self::Memory => Ok(()),
            Self::Smq(s) => s.store(snapshots).await,
        }
    }

    /// The partition's last snapshot, if it has one.
    pub async fn load(&self, tp: &TopicPartition) -> Result<Option<PartitionSnapshot>> {
        match self {
            Self::Memory => Ok(None),
            Self::Smq(s) => s.load(tp).await,
        }
    }
}

/// One of the two security documents a [`SecurityStore`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityDocument {
    /// `credentials::Users` as JSON.
    Users,
    /// `acl::Acls` as JSON, with its revision.
    Acls,
}

/// The users and the ACLs. Any shard may call these; `security::stored` orders the writes
/// of one process, merges them with other gateways' and decides what a read means.
pub enum SecurityStore {
    /// Keeps nothing: the users come from `--users-file` at every start, ACLs die with the
    /// process.
    Memory,
    Smq(smq::security::SecurityStore),
}

impl SecurityStore {
    /// Whether changes must be written (and others' changes polled for).
    pub fn keeps_security(&self) -> bool {
        match self {
            Self::Memory => false,
            Self::Smq(_) => true,
        }
    }

    /// The stored document; `None` if there is none.
    pub async fn read(&self, document: SecurityDocument) -> Result<Option<StoredDocument>> {
        match self {
            Self::Memory => Ok(None),
            Self::Smq(s) => s.read(document).await,
        }
    }

    /// Replaces the stored document, durably before it returns, if the store still holds
    /// the one tagged `expected` (`None`: no document at all); a compare-and-swap, so a
    /// change based on a stale read never overwrites another gateway's. `Ok(None)` if the
    /// store holds something else (nothing is written); else what is now stored.
    pub async fn write_if(
        &self,
        document: SecurityDocument,
        content: Bytes,
        expected: Option<&str>,
    ) -> Result<Option<StoredDocument>> {
        match self {
            Self::Memory => Ok(Some(StoredDocument {
                content,
                etag: String::new(),
            })),
            Self::Smq(s) => s.write_if(document, content, expected).await,
        }
    }
}

/// A security document as stored: its content and the tag that names this content in
/// [`SecurityStore::write_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub content: Bytes,
    pub etag: String,
}
