//! Where records live: the contract every backend meets, and the one chosen at start-up.
//!
//! A backend instance belongs to one shard. Topic admin may be called on any shard; partition
//! data calls (`append`, `read`, `list_offset`) are only made on the shard that owns the
//! partition, so a backend keeps per-partition state without locks. Offsets are assigned by
//! the backend: a Kafka offset is the backend's own offset.

pub mod memory;
pub mod smq;

use crate::error::Result;
use crate::partition::producer_state::ProducerSnapshot;
use crate::record_batch::RecordBatch;
use crate::TopicPartition;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A topic as the catalog knows it. Shared read-only between shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level configs set at creation (name → value).
    pub configs: BTreeMap<String, String>,
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

/// A range of the log, as stored batches.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// Whole batches, in offset order; the first contains the requested offset.
    pub batches: Vec<Bytes>,
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

/// An idempotent producer's state on one partition: (partition, producer id, state).
pub type StoredProducer = (TopicPartition, i64, ProducerSnapshot);

/// The backend this process runs, chosen once at start-up.
pub enum Backend {
    Memory(memory::MemoryBackend),
    /// Boxed: it is much larger than the memory backend, and there is one per shard.
    Smq(Box<smq::SmqBackend>),
}

impl Backend {
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>> {
        match self {
            Backend::Memory(b) => b.create_topic(name, partitions, configs, validate_only),
            Backend::Smq(b) => {
                b.create_topic(name, partitions, configs, validate_only)
                    .await
            }
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>> {
        match self {
            Backend::Memory(b) => b.delete_topic(name),
            Backend::Smq(b) => b.delete_topic(name).await,
        }
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<()> {
        match self {
            Backend::Memory(b) => b.create_partitions(name, count, validate_only),
            Backend::Smq(b) => b.create_partitions(name, count).await,
        }
    }

    /// Replaces a topic's configs (validated by the caller). Every shard sees the change on
    /// its next lookup once [`Backend::topic_changed`] ran there.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        match self {
            Backend::Memory(b) => b.alter_topic_configs(name, configs, validate_only),
            Backend::Smq(b) => b.alter_topic_configs(name, configs, validate_only).await,
        }
    }

    /// Forgets what this shard cached about a topic that another shard changed.
    pub fn topic_changed(&self, name: &str) {
        match self {
            // The shared catalog's version tells every shard.
            Backend::Memory(_) => {}
            Backend::Smq(b) => b.forget(name),
        }
    }

    pub async fn topic(&self, name: &str) -> Result<Option<Arc<TopicMeta>>> {
        match self {
            Backend::Memory(b) => Ok(b.topic(name)),
            Backend::Smq(b) => b.topic(name).await,
        }
    }

    pub async fn topic_by_id(&self, id: Uuid) -> Result<Option<Arc<TopicMeta>>> {
        match self {
            Backend::Memory(b) => Ok(b.topic_by_id(id)),
            Backend::Smq(b) => b.topic_by_id(id).await,
        }
    }

    pub async fn list_topics(&self) -> Result<Vec<Arc<TopicMeta>>> {
        match self {
            Backend::Memory(b) => Ok(b.list_topics()),
            Backend::Smq(b) => b.list_topics().await,
        }
    }

    /// Appends validated batches in order and returns the offset given to the first record.
    ///
    /// Ordering contract: a backend fixes the position of the append before its first
    /// `.await`, so appends issued in order on one shard land in that order.
    pub async fn append(&self, tp: &TopicPartition, batches: &[RecordBatch]) -> Result<i64> {
        match self {
            Backend::Memory(b) => b.append(tp, batches),
            Backend::Smq(b) => b.append(tp, batches).await,
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
            Backend::Memory(b) => b.read(tp, offset, max_bytes),
            Backend::Smq(b) => b.read(tp, offset, max_bytes).await,
        }
    }

    /// The offset after the last record, cheaply: long-polls compare against it.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        match self {
            Backend::Memory(b) => b.high_watermark(tp),
            Backend::Smq(b) => b.high_watermark(tp),
        }
    }

    /// How often a waiting fetch re-reads when others than this process may append
    /// (SeaweedMQ); `None` where every append goes through here and wakes it.
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        match self {
            Backend::Memory(_) => None,
            Backend::Smq(_) => Some(std::time::Duration::from_millis(100)),
        }
    }

    /// DeleteRecords: moves the partition's log start to `offset` (-1: the high watermark)
    /// and returns the new log start.
    pub async fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        match self {
            Backend::Memory(b) => b.delete_records(tp, offset),
            Backend::Smq(b) => b.delete_records(tp).await,
        }
    }

    /// Bytes the backend holds for the partition.
    pub async fn partition_size(&self, tp: &TopicPartition) -> Result<i64> {
        match self {
            Backend::Memory(b) => b.partition_size(tp),
            Backend::Smq(b) => b.partition_size(tp).await,
        }
    }

    /// Drops what this shard's partitions keep past their topics' `retention.ms`, where the
    /// backend enforces it; returns how many batches went.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        match self {
            Backend::Memory(b) => b.enforce_retention(now_ms),
            // SeaweedMQ keeps everything (README: retention on SMQ).
            Backend::Smq(_) => 0,
        }
    }

    /// (offset, timestamp) for a ListOffsets query; (-1, -1) when no record matches.
    pub async fn list_offset(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<(i64, i64)> {
        match self {
            Backend::Memory(b) => b.list_offset(tp, spec),
            Backend::Smq(b) => b.list_offset(tp, spec).await,
        }
    }

    // Committed consumer offsets. Only the group's coordinator shard calls these for a
    // group, so a backend may keep per-group state without locks.

    /// Stores one commit request's offsets, durably before it returns: a single write.
    pub async fn store_offsets(&self, group: &str, offsets: &GroupOffsets) -> Result<()> {
        match self {
            Backend::Memory(b) => {
                b.store_offsets(group, offsets);
                Ok(())
            }
            Backend::Smq(b) => b.store_offsets(group, offsets).await,
        }
    }

    /// Every committed offset of a group (empty when it has none).
    pub async fn load_offsets(&self, group: &str) -> Result<GroupOffsets> {
        match self {
            Backend::Memory(b) => Ok(b.load_offsets(group)),
            Backend::Smq(b) => b.load_offsets(group).await,
        }
    }

    /// Forgets the given partitions' offsets of a group, or all of them with `None`.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        match self {
            Backend::Memory(b) => {
                b.delete_offsets(group, partitions);
                Ok(())
            }
            Backend::Smq(b) => b.delete_offsets(group, partitions).await,
        }
    }

    /// Every group with stored offsets, on any shard.
    pub async fn list_offset_groups(&self) -> Result<Vec<String>> {
        match self {
            Backend::Memory(b) => Ok(b.list_offset_groups()),
            Backend::Smq(b) => b.list_offset_groups().await,
        }
    }

    // Idempotent producers' state, for backends whose records outlive the process. Each
    // shard stores the partitions it owns; start-up reads them back once for all shards.

    /// Whether producer state must be stored for a retry across a restart to be recognised.
    pub fn keeps_producers(&self) -> bool {
        matches!(self, Backend::Smq(_))
    }

    /// Stores producers' states, durably before it returns: a single write.
    pub async fn store_producers(&self, producers: &[StoredProducer]) -> Result<()> {
        match self {
            Backend::Memory(_) => Ok(()),
            Backend::Smq(b) => b.store_producers(producers).await,
        }
    }
}
