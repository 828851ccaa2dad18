//! The memory backend: records kept in this process, for trying tidegate without SeaweedFS
//! and for measuring the gateway's own overhead.
//!
//! Partition logs are per shard (only the owner touches a partition). The topic catalog is
//! the one piece all shards share: copy-on-write snapshots behind a lock that only admin
//! calls take, plus a version counter. A shard re-reads the catalog only when the version
//! moved, so the hot path costs one relaxed atomic load of a line that is almost never
//! written.
//!
//! Each partition keeps at most `retention_bytes` (and less if its topic's
//! `retention.bytes` says so); older batches are dropped and the log start offset moves
//! past them, as Kafka's size-based retention does. Batches older than the topic's
//! `retention.ms` are dropped by [`MemoryBackend::enforce_retention`], which the shard runs
//! every `--log-retention-check-interval-ms`, as Kafka checks every
//! `log.retention.check.interval.ms`. DeleteRecords moves the log start by hand.
//!
//! Everything here dies with the process, so it keeps no producer state for restarts, and
//! every append goes through this process: waiting fetches are woken, never re-read.

use super::{CommittedOffset, GroupOffsets, OffsetSpec, ReadResult, TopicMeta};
use crate::error::{Error, Result};
use crate::record_batch::{LogBatch, RecordBatch};
use crate::topic_config;
use crate::TopicPartition;
use hashbrown::HashMap;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// The catalog all shards of the process share.
#[derive(Default)]
pub struct SharedCatalog {
    version: AtomicU64,
    current: RwLock<Arc<Catalog>>,
}

#[derive(Default, Clone)]
struct Catalog {
    by_name: HashMap<Arc<str>, Arc<TopicMeta>>,
    by_id: HashMap<Uuid, Arc<TopicMeta>>,
}

impl SharedCatalog {
    fn snapshot(&self) -> (u64, Arc<Catalog>) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (self.version.load(Ordering::Acquire), current.clone())
    }

    /// Applies `change` to a copy of the catalog and publishes it.
    fn update<T>(&self, change: impl FnOnce(&mut Catalog) -> Result<T>) -> Result<T> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Catalog::clone(&current);
        let result = change(&mut next)?;
        *current = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
        Ok(result)
    }
}

/// How the memory backend keeps records.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Bytes a partition keeps at most (`--memory-retention-bytes`).
    pub retention_bytes: usize,
    /// Bytes a compressed batch may decompress to when its records are counted
    /// (`--max-decompressed-batch-bytes`).
    pub decompressed_limit: usize,
}

/// One shard's view of the memory backend.
pub struct MemoryBackend {
    shared: Arc<SharedCatalog>,
    cached: RefCell<(u64, Arc<Catalog>)>,
    logs: RefCell<HashMap<(Uuid, i32), PartitionLog>>,
    retention_bytes: usize,
    decompressed_limit: usize,
}

#[derive(Default)]
struct PartitionLog {
    batches: VecDeque<StoredBatch>,
    next_offset: i64,
    log_start_offset: i64,
    bytes: usize,
}

impl PartitionLog {
    /// Drops the oldest batches while over `limit`, always keeping the newest.
    fn enforce_size(&mut self, limit: usize) {
        while self.bytes > limit && self.batches.len() > 1 {
            self.drop_oldest();
        }
    }

    /// Drops every batch whose newest timestamp is before `cutoff_ms` (the newest too: Kafka
    /// rolls and deletes an expired active segment).
    fn enforce_age(&mut self, cutoff_ms: i64) -> usize {
        let mut dropped = 0;
        while self
            .batches
            .front()
            .is_some_and(|b| b.max_timestamp < cutoff_ms)
        {
            self.drop_oldest();
            dropped += 1;
        }
        dropped
    }

    fn drop_oldest(&mut self) {
        if let Some(dropped) = self.batches.pop_front() {
            self.bytes -= dropped.bytes.len();
            self.log_start_offset = self.log_start_offset.max(dropped.last_offset + 1);
        }
    }

    /// Moves the log start to `offset` (at most the high watermark), dropping the batches
    /// wholly before it.
    fn delete_before(&mut self, offset: i64) {
        while self.batches.front().is_some_and(|b| b.last_offset < offset) {
            self.drop_oldest();
        }
        self.log_start_offset = self.log_start_offset.max(offset);
    }
}

struct StoredBatch {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    bytes: LogBatch,
}

impl MemoryBackend {
    /// A shard's backend over the process-wide catalog, keeping at most `retention_bytes`
    /// per partition.
    pub fn new(shared: Arc<SharedCatalog>, settings: Settings) -> Self {
        let snapshot = shared.snapshot();
        Self {
            shared,
            cached: RefCell::new(snapshot),
            logs: RefCell::new(HashMap::new()),
            retention_bytes: settings.retention_bytes,
            decompressed_limit: settings.decompressed_limit,
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        let version = self.shared.version.load(Ordering::Acquire);
        if self.cached.borrow().0 != version {
            let snapshot = self.shared.snapshot();
            // Drop the logs of deleted topics the first time this shard notices.
            self.logs
                .borrow_mut()
                .retain(|(id, _), _| snapshot.1.by_id.contains_key(id));
            *self.cached.borrow_mut() = snapshot;
        }
        self.cached.borrow().1.clone()
    }

    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<TopicMeta>> {
        let meta = Arc::new(TopicMeta {
            name: Arc::from(name),
            id: Uuid::new_v4(),
            partitions,
            configs,
            // The memory log is never truncated: epoch 0 forever.
            leader_epochs: BTreeMap::new(),
        });
        if validate_only {
            return match self.catalog().by_name.contains_key(name) {
                true => Err(Error::TopicAlreadyExists),
                false => Ok(meta),
            };
        }
        self.shared.update(|catalog| {
            if catalog.by_name.contains_key(name) {
                return Err(Error::TopicAlreadyExists);
            }
            catalog.by_name.insert(meta.name.clone(), meta.clone());
            catalog.by_id.insert(meta.id, meta.clone());
            Ok(meta)
        })
    }

    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>> {
        self.shared.update(|catalog| {
            let meta = catalog
                .by_name
                .remove(name)
                .ok_or(Error::UnknownTopicOrPartition)?;
            catalog.by_id.remove(&meta.id);
            Ok(meta)
        })
    }

    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<()> {
        let grow = |catalog: &mut Catalog| {
            let meta = catalog
                .by_name
                .get(name)
                .ok_or(Error::UnknownTopicOrPartition)?;
            if count <= meta.partitions {
                return Err(Error::InvalidPartitions(format!(
                    "topic has {} partitions; the new count must be larger, not {count}",
                    meta.partitions
                )));
            }
            let grown = Arc::new(TopicMeta {
                partitions: count,
                ..TopicMeta::clone(meta)
            });
            catalog.by_name.insert(grown.name.clone(), grown.clone());
            catalog.by_id.insert(grown.id, grown);
            Ok(())
        };
        match validate_only {
            true => grow(&mut Catalog::clone(&self.catalog())),
            false => self.shared.update(grow),
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.catalog().by_name.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<TopicMeta>> {
        self.catalog().by_id.get(&id).cloned()
    }

    /// Nothing to forget: every shard reads the shared catalogue's version on each lookup.
    pub fn forget(&self, _name: &str) {}

    /// Every append goes through this process and wakes the fetches waiting on it: no
    /// re-reading.
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }

    pub fn list_topics(&self) -> Vec<Arc<TopicMeta>> {
        let mut topics: Vec<_> = self.catalog().by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// The log key of a partition that exists.
    fn log_key(&self, tp: &TopicPartition) -> Result<(Uuid, i32)> {
        self.partition(tp).map(|(key, _)| key)
    }

    /// A partition that exists: its log key and its topic.
    fn partition(&self, tp: &TopicPartition) -> Result<((Uuid, i32), Arc<TopicMeta>)> {
        let catalog = self.catalog();
        let meta = catalog
            .by_name
            .get(&*tp.topic)
            .ok_or(Error::UnknownTopicOrPartition)?;
        if tp.partition < 0 || tp.partition >= meta.partitions {
            return Err(Error::UnknownTopicOrPartition);
        }
        Ok(((meta.id, tp.partition), meta.clone()))
    }

    /// Bytes a partition of `topic` keeps: the backend's bound, or the topic's own if lower.
    fn size_limit(&self, topic: &TopicMeta) -> usize {
        topic_config::retention_bytes(topic).map_or(self.retention_bytes, |own| {
            self.retention_bytes
                .min(usize::try_from(own).unwrap_or(usize::MAX))
        })
    }

    /// Drops what every partition of this shard keeps past its topic's `retention.ms`;
    /// returns how many batches went.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        let catalog = self.catalog();
        let mut dropped = 0;
        for ((id, _), log) in self.logs.borrow_mut().iter_mut() {
            let retention = catalog
                .by_id
                .get(id)
                .and_then(|t| topic_config::retention_ms(t));
            if let Some(retention_ms) = retention {
                dropped += log.enforce_age(now_ms.saturating_sub(retention_ms));
            }
        }
        dropped
    }

    /// DeleteRecords: moves the partition's log start to `offset` (-1: the high watermark)
    /// and returns the new log start. An offset past the high watermark is out of range.
    pub fn delete_records(&self, tp: &TopicPartition, offset: i64) -> Result<i64> {
        let key = self.log_key(tp)?;
        let mut logs = self.logs.borrow_mut();
        let log = logs.entry(key).or_default();
        let offset = if offset == -1 {
            log.next_offset
        } else {
            offset
        };
        if offset < 0 || offset > log.next_offset {
            return Err(Error::OffsetOutOfRange);
        }
        log.delete_before(offset);
        Ok(log.log_start_offset)
    }

    /// Bytes the partition holds.
    pub fn partition_size(&self, tp: &TopicPartition) -> Result<i64> {
        let key = self.log_key(tp)?;
        let logs = self.logs.borrow();
        Ok(logs.get(&key).map_or(0, |log| log.bytes as i64))
    }

    /// Replaces a topic's configs.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        let alter = |catalog: &mut Catalog| {
            let meta = catalog
                .by_name
                .get(name)
                .ok_or(Error::UnknownTopicOrPartition)?;
            let altered = Arc::new(TopicMeta {
                configs,
                ..TopicMeta::clone(meta)
            });
            catalog
                .by_name
                .insert(altered.name.clone(), altered.clone());
            catalog.by_id.insert(altered.id, altered);
            Ok(())
        };
        match validate_only {
            true => alter(&mut Catalog::clone(&self.catalog())),
            false => self.shared.update(alter),
        }
    }

    pub fn append(&self, tp: &TopicPartition, batches: &[RecordBatch]) -> Result<i64> {
        let (key, topic) = self.partition(tp)?;
        // Offsets advance by the count a batch claims, so a compressed one is opened to
        // check it (an uncompressed one was checked against its bytes on arrival).
        for batch in batches.iter().filter(|b| b.header.compression() != 0) {
            crate::records::check_compressed_count(batch, self.decompressed_limit)?;
        }
        let size_limit = self.size_limit(&topic);
        let mut logs = self.logs.borrow_mut();
        let log = logs.entry(key).or_default();
        let base_offset = log.next_offset;
        for batch in batches {
            let offset = log.next_offset;
            log.next_offset += batch.header.offset_count();
            let bytes = batch.kept_at(offset);
            log.bytes += bytes.len();
            log.batches.push_back(StoredBatch {
                base_offset: offset,
                last_offset: log.next_offset - 1,
                max_timestamp: batch.header.max_timestamp,
                bytes,
            });
        }
        log.enforce_size(size_limit);
        Ok(base_offset)
    }

    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        let key = self.log_key(tp).ok()?;
        Some(
            self.logs
                .borrow()
                .get(&key)
                .map_or(0, |log| log.next_offset),
        )
    }

    pub fn read(&self, tp: &TopicPartition, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let key = self.log_key(tp)?;
        let logs = self.logs.borrow();
        let Some(log) = logs.get(&key) else {
            return match offset {
                0 => Ok(ReadResult::default()),
                _ => Err(Error::OffsetOutOfRange),
            };
        };
        if offset < log.log_start_offset || offset > log.next_offset {
            return Err(Error::OffsetOutOfRange);
        }
        let first = log.batches.partition_point(|b| b.last_offset < offset);
        let mut result = ReadResult {
            batches: Vec::new(),
            high_watermark: log.next_offset,
            log_start_offset: log.log_start_offset,
        };
        let mut size = 0;
        for batch in log.batches.range(first..) {
            if !result.batches.is_empty() && size + batch.bytes.len() > max_bytes {
                break;
            }
            size += batch.bytes.len();
            result.batches.push(batch.bytes.clone());
        }
        Ok(result)
    }

    pub fn list_offset(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<(i64, i64)> {
        let key = self.log_key(tp)?;
        let logs = self.logs.borrow();
        let Some(log) = logs.get(&key) else {
            return Ok(match spec {
                OffsetSpec::Earliest | OffsetSpec::Latest => (0, -1),
                _ => (-1, -1),
            });
        };
        let batches = &log.batches;
        let found = match spec {
            OffsetSpec::Earliest => return Ok((log.log_start_offset, -1)),
            OffsetSpec::Latest => return Ok((log.next_offset, -1)),
            OffsetSpec::MaxTimestamp => batches
                .iter()
                .rev()
                .max_by_key(|b| b.max_timestamp)
                .map(|b| (b, b.max_timestamp)),
            OffsetSpec::Timestamp(ts) => batches
                .iter()
                .find(|b| b.max_timestamp >= ts)
                .map(|b| (b, ts)),
        };
        Ok(match found {
            Some((batch, target)) => first_record_at_or_after(batch, target, log.log_start_offset),
            None => (-1, -1),
        })
    }
}

/// The first record of `batch` from `log_start` on whose timestamp is at least `target`, as
/// (offset, timestamp). Falls back to the batch's own offset and max timestamp if its
/// records cannot be decoded.
fn first_record_at_or_after(batch: &StoredBatch, target: i64, log_start: i64) -> (i64, i64) {
    let mut bytes = batch.bytes.clone().into_bytes();
    kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
        .ok()
        .and_then(|set| {
            set.records
                .iter()
                .find(|r| r.timestamp >= target && r.offset >= log_start)
                .map(|r| (r.offset, r.timestamp))
        })
        .unwrap_or((batch.base_offset.max(log_start), batch.max_timestamp))
}

/// A shard's committed offsets, for the groups it coordinates.
#[derive(Default)]
pub struct OffsetStore {
    groups: RefCell<HashMap<String, HashMap<TopicPartition, CommittedOffset>>>,
}

impl OffsetStore {
    pub fn store(&self, group: &str, offsets: &GroupOffsets) -> Result<()> {
        let mut groups = self.groups.borrow_mut();
        let stored = groups.entry_ref(group).or_default();
        for (tp, committed) in offsets {
            stored.insert(tp.clone(), committed.clone());
        }
        Ok(())
    }

    pub fn load(&self, group: &str) -> Result<GroupOffsets> {
        let groups = self.groups.borrow();
        Ok(groups.get(group).map_or_else(Vec::new, |stored| {
            stored
                .iter()
                .map(|(tp, committed)| (tp.clone(), committed.clone()))
                .collect()
        }))
    }

    pub fn delete(&self, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
        let mut groups = self.groups.borrow_mut();
        match partitions {
            None => {
                groups.remove(group);
            }
            Some(partitions) => {
                if let Some(stored) = groups.get_mut(group) {
                    for tp in partitions {
                        stored.remove(tp);
                    }
                    if stored.is_empty() {
                        groups.remove(group);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn list_groups(&self) -> Result<Vec<String>> {
        Ok(self.groups.borrow().keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{parse_produce_batches, tests::client_batch};
    use kafka_protocol::records::Compression;

    fn settings(retention_bytes: usize) -> Settings {
        Settings {
            retention_bytes,
            decompressed_limit: 64 << 20,
        }
    }

    #[test]
    fn a_compressed_batch_claiming_more_records_than_it_holds_is_refused() {
        let backend = backend_with_topic(1);
        let tp = TopicPartition::new("t", 0);
        for compression in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let mut lying = client_batch(3, compression, -1).to_vec();
            // lastOffsetDelta and recordsCount claim 2^31 - 1 records; the CRC is made good.
            lying[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
            lying[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
            let crc = crc32c::crc32c(&lying[21..]);
            lying[17..21].copy_from_slice(&crc.to_be_bytes());
            let batches = parse_produce_batches(&bytes::Bytes::from(lying)).expect("valid header");
            let refused = backend.append(&tp, &batches);
            assert!(
                matches!(refused, Err(Error::CorruptMessage(_))),
                "{compression:?}: {refused:?}"
            );
            assert_eq!(backend.high_watermark(&tp), Some(0), "offsets did not move");
        }
        let honest = parse_produce_batches(&client_batch(3, Compression::Zstd, -1)).expect("valid");
        assert_eq!(backend.append(&tp, &honest).ok(), Some(0));
        assert_eq!(backend.high_watermark(&tp), Some(3));
    }

    fn backend_with_topic(partitions: i32) -> MemoryBackend {
        let backend = MemoryBackend::new(Arc::default(), settings(usize::MAX));
        backend
            .create_topic("t", partitions, BTreeMap::new(), false)
            .expect("created");
        backend
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    #[test]
    fn appends_get_consecutive_offsets_and_read_back_rebased() {
        let backend = backend_with_topic(2);
        let batch = parse_produce_batches(&client_batch(3, Compression::None, -1)).expect("valid");
        assert_eq!(backend.append(&tp(1), &batch).ok(), Some(0));
        assert_eq!(backend.append(&tp(1), &batch).ok(), Some(3));
        // Kept as sent (re-based as it is read) when it is most of its frame.
        let mut kept_as_sent = batch.clone();
        kept_as_sent[0].most_of_its_frame = true;
        assert_eq!(backend.append(&tp(1), &kept_as_sent).ok(), Some(6));
        let read = backend.read(&tp(1), 4, 1 << 20).expect("read");
        assert_eq!(read.high_watermark, 9);
        assert_eq!(read.batches.len(), 2);
        for (served, base_offset) in read.batches.into_iter().zip([3i64, 6]) {
            let served = served.into_bytes();
            assert_eq!(served, batch[0].rebased(base_offset));
            assert_eq!(&served[..8], &base_offset.to_be_bytes());
        }
        assert_eq!(
            backend.read(&tp(0), 0, 100).map(|r| r.batches.len()).ok(),
            Some(0)
        );
        assert_eq!(
            backend.read(&tp(1), 10, 100).err(),
            Some(Error::OffsetOutOfRange)
        );
        assert_eq!(
            backend.append(&tp(2), &batch).err(),
            Some(Error::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn a_read_returns_at_least_one_batch_and_stops_at_max_bytes() {
        let backend = backend_with_topic(1);
        let batch = parse_produce_batches(&client_batch(3, Compression::None, -1)).expect("valid");
        for _ in 0..4 {
            backend.append(&tp(0), &batch).expect("append");
        }
        let one = batch[0].bytes.len();
        assert_eq!(
            backend.read(&tp(0), 0, 1).map(|r| r.batches.len()).ok(),
            Some(1)
        );
        assert_eq!(
            backend
                .read(&tp(0), 0, one * 2 + 1)
                .map(|r| r.batches.len())
                .ok(),
            Some(2)
        );
    }

    #[test]
    fn offsets_by_timestamp_find_the_first_record_at_or_after() {
        let backend = backend_with_topic(1);
        let batch = parse_produce_batches(&client_batch(5, Compression::Zstd, -1)).expect("valid");
        backend.append(&tp(0), &batch).expect("append");
        backend.append(&tp(0), &batch).expect("append");
        let ts = 1_700_000_000_000;
        assert_eq!(
            backend
                .list_offset(&tp(0), OffsetSpec::Timestamp(ts + 3))
                .ok(),
            Some((3, ts + 3))
        );
        assert_eq!(
            backend
                .list_offset(&tp(0), OffsetSpec::Timestamp(ts + 99))
                .ok(),
            Some((-1, -1))
        );
        assert_eq!(
            backend.list_offset(&tp(0), OffsetSpec::Latest).ok(),
            Some((10, -1))
        );
        assert_eq!(
            backend.list_offset(&tp(0), OffsetSpec::MaxTimestamp).ok(),
            Some((4, ts + 4))
        );
    }

    #[test]
    fn the_catalog_is_shared_and_deleted_topics_lose_their_data() {
        let shared: Arc<SharedCatalog> = Arc::default();
        let a = MemoryBackend::new(shared.clone(), settings(usize::MAX));
        let b = MemoryBackend::new(shared, settings(usize::MAX));
        a.create_topic("t", 1, BTreeMap::new(), false)
            .expect("created");
        assert_eq!(b.topic("t").map(|t| t.partitions), Some(1));
        assert_eq!(
            b.create_topic("t", 1, BTreeMap::new(), false).err(),
            Some(Error::TopicAlreadyExists)
        );
        let batch = parse_produce_batches(&client_batch(1, Compression::None, -1)).expect("valid");
        b.append(&tp(0), &batch).expect("append");
        a.delete_topic("t").expect("deleted");
        a.create_topic("t", 1, BTreeMap::new(), false)
            .expect("recreated");
        assert_eq!(b.high_watermark(&tp(0)), Some(0));
        assert!(b.create_partitions("t", 1, false).is_err());
        b.create_partitions("t", 3, false).expect("grown");
        assert_eq!(a.topic("t").map(|t| t.partitions), Some(3));
    }

    #[test]
    fn retention_drops_the_oldest_batches_and_moves_the_log_start() {
        let backend = MemoryBackend::new(Arc::default(), settings(1));
        backend
            .create_topic("t", 1, BTreeMap::new(), false)
            .expect("created");
        let batch = parse_produce_batches(&client_batch(3, Compression::None, -1)).expect("valid");
        for _ in 0..3 {
            backend.append(&tp(0), &batch).expect("append");
        }
        assert_eq!(
            backend.list_offset(&tp(0), OffsetSpec::Earliest).ok(),
            Some((6, -1))
        );
        assert_eq!(
            backend.read(&tp(0), 0, 100).err(),
            Some(Error::OffsetOutOfRange)
        );
        let read = backend.read(&tp(0), 6, 100).expect("newest batch kept");
        assert_eq!((read.log_start_offset, read.batches.len()), (6, 1));
    }

    fn topic_with(configs: &[(&str, &str)]) -> MemoryBackend {
        let backend = MemoryBackend::new(Arc::default(), settings(usize::MAX));
        let configs = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        backend
            .create_topic("t", 1, configs, false)
            .expect("created");
        backend
    }

    #[test]
    fn delete_records_moves_the_log_start_and_refuses_past_the_end() {
        let backend = backend_with_topic(1);
        let batch = parse_produce_batches(&client_batch(3, Compression::None, -1)).expect("valid");
        for _ in 0..3 {
            backend.append(&tp(0), &batch).expect("append");
        }
        assert_eq!(backend.delete_records(&tp(0), 4), Ok(4));
        // Never backwards.
        assert_eq!(backend.delete_records(&tp(0), 1), Ok(4));
        assert_eq!(
            backend.read(&tp(0), 3, 100).err(),
            Some(Error::OffsetOutOfRange)
        );
        let read = backend.read(&tp(0), 4, 1 << 20).expect("read");
        assert_eq!((read.log_start_offset, read.batches.len()), (4, 2));
        assert_eq!(
            backend.list_offset(&tp(0), OffsetSpec::Earliest).ok(),
            Some((4, -1))
        );
        assert_eq!(
            backend
                .list_offset(&tp(0), OffsetSpec::Timestamp(0))
                .map(|(o, _)| o)
                .ok(),
            Some(4)
        );
        assert_eq!(
            backend.delete_records(&tp(0), 10),
            Err(Error::OffsetOutOfRange)
        );
        assert_eq!(backend.delete_records(&tp(0), -1), Ok(9));
        assert_eq!(backend.partition_size(&tp(0)), Ok(0));
        assert_eq!(backend.append(&tp(0), &batch), Ok(9));
    }

    #[test]
    fn a_topics_retention_bytes_and_ms_are_enforced() {
        let batch = parse_produce_batches(&client_batch(3, Compression::None, -1)).expect("valid");
        let one = batch[0].bytes.len();
        let small = topic_with(&[("retention.bytes", &(one * 2).to_string())]);
        for _ in 0..4 {
            small.append(&tp(0), &batch).expect("append");
        }
        assert_eq!(small.partition_size(&tp(0)), Ok((one * 2) as i64));
        assert_eq!(
            small.list_offset(&tp(0), OffsetSpec::Earliest).ok(),
            Some((6, -1))
        );

        // client_batch's records are stamped 1_700_000_000_000 + i.
        let aged = topic_with(&[("retention.ms", "1000")]);
        aged.append(&tp(0), &batch).expect("append");
        assert_eq!(aged.enforce_retention(1_700_000_000_500), 0);
        assert_eq!(aged.enforce_retention(1_700_000_001_500), 1);
        assert_eq!(
            aged.list_offset(&tp(0), OffsetSpec::Earliest).ok(),
            Some((3, -1))
        );
        assert_eq!(aged.append(&tp(0), &batch), Ok(3));

        let forever = topic_with(&[("retention.ms", "-1")]);
        forever.append(&tp(0), &batch).expect("append");
        assert_eq!(forever.enforce_retention(i64::MAX), 0);
    }
}
