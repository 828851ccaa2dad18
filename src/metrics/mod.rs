//! Metrics: each shard counts what it does in counters of its own, and `--metrics-addr`
//! serves them with /healthz and /readyz ([`http`]).
//!
//! The counters are plain `Cell`s, written only by their shard's thread: counting a request
//! costs a few unshared additions, no atomic and no lock. A scrape asks every shard over the
//! mesh for a [`Snapshot`] (a copy it can send), so only the scrape crosses cores.
//!
//! Counts labelled by names clients choose (topics, groups) are capped per shard
//! ([`labels`]). gRPC calls to SeaweedFS are counted where every call passes, in thread-local
//! counters of the shard's thread ([`seaweedfs`]). What the shards hold anyway is read at the
//! scrape instead of counted: group members and rebalances from the coordinator, and consumer
//! lag, which joins a coordinator's committed offsets with the high-water marks the owning
//! shards know ([`http`]).

pub mod histogram;
pub mod http;
pub mod labels;
pub mod prometheus;
pub mod seaweedfs;

use crate::TopicPartition;
use histogram::{Histogram, LatencyBuckets};
use labels::CappedLabels;
use seaweedfs::RpcSnapshot;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// One more than the largest API key counted per API (Kafka's reach the 80s); larger
/// keys are answered UnknownApi before they are counted.
const API_KEYS: usize = 128;

/// What one shard has done since start-up.
pub struct ShardMetrics {
    requests: [Cell<u64>; API_KEYS],
    latency: [Histogram; API_KEYS],
    /// (api key, error code) → answers carrying it; touched only when a code is not 0.
    errors: RefCell<hashbrown::HashMap<(i16, i16), u64>>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    connections_accepted: Cell<u64>,
    connections_closed: Cell<u64>,
    connections_refused: Cell<u64>,
    /// Connections closed because the client sent what tidegate cannot answer.
    protocol_errors: Cell<u64>,
    listening: Cell<bool>,
    /// Records and bytes produced and fetched by topic (`--metrics-topic-limit` topics).
    topics: RefCell<CappedLabels<TopicCounts>>,
}

/// Records and bytes of one topic through one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicCounts {
    pub produced_records: u64,
    pub produced_bytes: u64,
    pub fetched_records: u64,
    pub fetched_bytes: u64,
}

/// A consumer group's members and rebalances on its coordinator.
pub use crate::group::groups::GroupCounts;

/// How far a group's committed offset is behind a partition's high-water mark.
#[derive(Debug, Clone)]
pub struct Lag {
    pub group: String,
    pub tp: TopicPartition,
    pub lag: i64,
}

/// A copy of a shard's counters, made on the shard and sent to the scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub shard: usize,
    /// Whether the shard accepts connections on every listener.
    pub listening: bool,
    /// (api key, requests answered, their latency), for APIs that had any.
    pub requests: Vec<(i16, u64, LatencyBuckets)>,
    /// (api key, error code, how many), codes other than 0.
    pub errors: Vec<(i16, i16, u64)>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_accepted: u64,
    pub connections_closed: u64,
    pub connections_refused: u64,
    pub protocol_errors: u64,
    /// Bytes the shard's memory budget holds now, and its capacity.
    pub memory_used: usize,
    pub memory_limit: usize,
    /// Time the shard's connections waited for budget before reading, summed.
    pub reading_paused: Duration,
    /// What the SMQ backend counts (`None`: the memory backend).
    pub smq_counts: Option<SmqCounts>,
    /// By topic, sorted, `labels::OTHER` last.
    pub topics: Vec<(String, TopicCounts)>,
    /// The shard's gRPC calls to SeaweedFS, by RPC.
    pub seaweedfs: Vec<RpcSnapshot>,
    /// The groups the shard coordinates.
    pub groups: Vec<(String, GroupCounts)>,
    /// Their committed offsets: (group, partition, offset). Turned into `lag` at the scrape,
    /// with the high-water marks of the partitions' owners.
    pub committed: Vec<(String, TopicPartition, i64)>,
    pub lag: Vec<Lag>,
}

/// What the SMQ backend counts since start: where it answered reads from, the truncations
/// it found and the torn batches it skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmqCounts {
    /// From the shard's cache of recent batches.
    pub cache_hits: u64,
    /// Not from the cache: from the broker or the files.
    pub cache_misses: u64,
    /// Of the misses, those answered from the log files SMQ flushed to the filer.
    pub from_files: u64,
    /// Flushed files read ahead of consumers catching up.
    pub reads_ahead: u64,
    /// Acknowledged offset ranges SMQ was found to have lost (it stopped before flushing
    /// them): truncations of the partition's log.
    pub truncations: u64,
    /// Idempotent batches a crashed tidegate left stored in part, skipped after its restart
    /// (their producers' retries stored whole after them).
    pub torn_batches: u64,
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

/// `--metrics-topic-limit`'s default, which [`ShardMetrics::default`] has too.
const DEFAULT_TOPIC_LIMIT: usize = 1000;

impl Default for ShardMetrics {
    fn default() -> Self {
        Self::new(DEFAULT_TOPIC_LIMIT)
    }
}

impl ShardMetrics {
    /// Counters at 0, counting records per topic for `topic_limit` topics.
    pub fn new(topic_limit: usize) -> Self {
        Self {
            requests: std::array::from_fn(|_| Cell::new(0)),
            latency: std::array::from_fn(|_| Histogram::default()),
            errors: RefCell::default(),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            connections_accepted: Cell::new(0),
            connections_closed: Cell::new(0),
            connections_refused: Cell::new(0),
            protocol_errors: Cell::new(0),
            listening: Cell::new(false),
            topics: RefCell::new(CappedLabels::new(topic_limit)),
        }
    }

    /// A request answered (or dropped, for acks=0) after `took`, its answer carrying
    /// `error_codes` (those that are not 0).
    pub fn answered(&self, api_key: i16, took: Duration, error_codes: &[i16]) {
        let Some(index) = usize::try_from(api_key).ok().filter(|&k| k < API_KEYS) else {
            return;
        };
        add(&self.requests[index], 1);
        self.latency[index].record(took);
        if !error_codes.is_empty() {
            let mut errors = self.errors.borrow_mut();
            for &code in error_codes {
                *errors.entry((api_key, code)).or_insert(0) += 1;
            }
        }
    }

    /// Records stored in a topic, and their batches' bytes (one call per partition and
    /// request: a map look-up per partition, not per record).
    pub fn produced(&self, topic: &str, records: u64, bytes: u64) {
        if let Some(counts) = self.topics.borrow_mut().get_mut(topic) {
            counts.produced_records += records;
            counts.produced_bytes += bytes;
        }
    }

    /// Records in batches a Fetch answered with, and their bytes (one call per partition).
    pub fn fetched(&self, topic: &str, records: u64, bytes: u64) {
        if let Some(counts) = self.topics.borrow_mut().get_mut(topic) {
            counts.fetched_records += records;
            counts.fetched_bytes += bytes;
        }
    }

    /// Bytes of a request frame read, its length prefix included.
    pub fn received(&self, bytes: usize) {
        add(&self.bytes_in, bytes as u64);
    }

    /// Bytes of a response frame written.
    pub fn sent(&self, bytes: usize) {
        add(&self.bytes_out, bytes as u64);
    }

    pub fn connection_accepted(&self) {
        add(&self.connections_accepted, 1);
    }

    pub fn connection_closed(&self) {
        add(&self.connections_closed, 1);
    }

    /// A connection closed on accept: over `--max-connections` or `--max-connections-per-ip`.
    pub fn connection_refused(&self) {
        add(&self.connections_refused, 1);
    }

    /// A connection closed for bytes that are not a request tidegate can answer.
    pub fn protocol_error(&self) {
        add(&self.protocol_errors, 1);
    }

    /// Whether the shard accepts connections: from when its listeners serve until shutdown.
    pub fn set_listening(&self, listening: bool) {
        self.listening.set(listening);
    }

    pub fn listening(&self) -> bool {
        self.listening.get()
    }

    pub fn snapshot(&self, shard: usize) -> Snapshot {
        let requests = (0..API_KEYS)
            .filter(|&k| self.requests[k].get() > 0)
            .map(|k| (k as i16, self.requests[k].get(), self.latency[k].buckets()))
            .collect();
        let mut errors: Vec<_> = self
            .errors
            .borrow()
            .iter()
            .map(|(&(api, code), &count)| (api, code, count))
            .collect();
        errors.sort_unstable();
        Snapshot {
            shard,
            listening: self.listening.get(),
            requests,
            errors,
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            connections_accepted: self.connections_accepted.get(),
            connections_closed: self.connections_closed.get(),
            connections_refused: self.connections_refused.get(),
            protocol_errors: self.protocol_errors.get(),
            topics: self.topics.borrow().snapshot(),
            seaweedfs: seaweedfs::snapshot(),
            // Filled in by `Shard::metrics_snapshot`, which holds what they count.
            ..Snapshot::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_holds_what_was_counted() {
        let metrics = ShardMetrics::default();
        metrics.answered(0, Duration::from_micros(100), &[]);
        metrics.answered(0, Duration::from_millis(3), &[3, 3]);
        metrics.answered(1, Duration::from_micros(10), &[]);
        metrics.answered(500, Duration::ZERO, &[]);
        metrics.received(40);
        metrics.sent(20);
        metrics.connection_accepted();
        metrics.connection_refused();
        let snapshot = metrics.snapshot(2);
        assert_eq!(snapshot.shard, 2);
        let counts: Vec<_> = snapshot.requests.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(counts, [(0, 2), (1, 1)]);
        assert_eq!(snapshot.errors, [(0, 3, 2)]);
        assert_eq!((snapshot.bytes_in, snapshot.bytes_out), (40, 20));
        assert_eq!(
            (snapshot.connections_accepted, snapshot.connections_refused),
            (1, 1)
        );
    }
}
