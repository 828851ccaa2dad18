//! tidegate: a Kafka wire-protocol gateway for SeaweedMQ, thread-per-core on io_uring.
//!
//! - [`server`] starts one shard per core (the `shards` crate) and their listeners.
//! - [`protocol`] owns connections: framing, dispatch by API key, ordered responses.
//! - [`handlers`] holds one module per Kafka API.
//! - [`shard`] routes work to the shard that owns it; [`partition`] is a partition's work
//!   on its owner (append, read, producer state, waking fetches).
//! - [`group`] coordinates consumer groups and owns their committed offsets.
//! - [`backend`] is where records live, as four seams (topic catalogue, partition log,
//!   committed-offset store, producer-state store), each implemented by `memory` (in this
//!   process) and `smq` (SeaweedMQ); `backend::open` picks one at start-up.
//! - [`topic_config`] says which topic configs exist, which are enforced, and checks values.
//! - [`security`] authenticates clients (TLS, SASL) and authorizes their requests (ACLs).
//! - [`error`] says whose fault each error is and which Kafka code it becomes.
//!
//! Where to look:
//! - produce ordering: the module comment of [`partition`];
//! - idempotent producers (sequence checks, duplicates, state kept across restarts):
//!   [`partition::producer_state`];
//! - offsets: a record's offset is the backend's own ([`backend`]); committed offsets are
//!   [`group::offsets`] in front of the backend's `OffsetStore`;
//! - what each backend keeps, refuses and polls: the module comments of `backend::memory`
//!   and `backend::smq`;
//! - limits on what a client can make tidegate hold: README.md, "Limits and safety"; the
//!   memory budgets are [`protocol::budget`], charged where bytes enter (the frame reader,
//!   a Fetch's read, an encoded response);
//! - graceful shutdown: [`protocol::shutdown`] (a shard's connections) and `server::run`
//!   (signals, and the order in which shards drain and close their stores).

pub mod backend;
pub mod cluster;
pub mod config;
pub mod error;
pub mod group;
pub mod handlers;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod record_batch;
pub mod records;
pub mod security;
pub mod server;
pub mod shard;
pub mod topic_config;

use std::sync::Arc;

/// A partition of a topic: the one name for it everywhere in tidegate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

/// For maps keyed by partition: hashbrown's `entry_ref` clones the key only when it inserts.
impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        tp.clone()
    }
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// Wall-clock time since the Unix epoch (zero if the clock is set before it).
pub fn unix_time() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
