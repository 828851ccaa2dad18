//! The thread-per-core runtime under tidegate.
//!
//! One glommio executor per shard, each pinned to its own CPU; an ownership table that says
//! which shard owns a keyed partition; and a mesh over which shards send each other the rare
//! message that must run elsewhere. Nothing here knows about Kafka: the gateway defines the
//! message type and what a shard does with it.

mod mesh;
mod ownership;
mod runtime;

pub use mesh::{Mesh, MeshError, MeshInbox};
pub use ownership::{fnv1a, ShardMap};
pub use runtime::{parse_cpu_list, Runtime, RuntimeConfig, RuntimeError, ShardContext};

/// Index of a shard, `0..nr_shards`.
pub type ShardId = usize;
