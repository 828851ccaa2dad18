//! What tidegate tells clients about itself: one broker per shard.

use shards::ShardId;

/// An advertised broker: the listener of one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// The advertised cluster, fixed once every shard is listening.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub cluster_id: String,
    /// Indexed by shard.
    pub brokers: Vec<Broker>,
}

impl Cluster {
    pub fn node_id(&self, shard: ShardId) -> i32 {
        self.brokers.get(shard).map_or(-1, |b| b.node_id)
    }

    /// The shard behind a node id, if it is one of ours.
    pub fn shard_of_node(&self, node_id: i32) -> Option<ShardId> {
        self.brokers.iter().position(|b| b.node_id == node_id)
    }

    /// The node that answers for the cluster as a whole (the "controller").
    pub fn controller_id(&self) -> i32 {
        self.node_id(0)
    }
}
