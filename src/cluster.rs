//! What tidegate tells clients about itself: one broker per shard, on each listener.

use shards::ShardId;

/// An advertised broker: one shard's port on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// Which listener a connection came in on: an index into `Config::listeners()`.
pub type ListenerId = usize;

/// The advertised cluster, fixed once every shard is listening.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub cluster_id: String,
    /// Indexed by listener, then by shard: the same node ids on every listener, each
    /// listener with its own host and ports.
    pub listeners: Vec<Vec<Broker>>,
}

impl Cluster {
    /// The brokers as clients of `listener` must reach them: a client is never sent to a
    /// listener of another protocol.
    pub fn brokers(&self, listener: ListenerId) -> &[Broker] {
        self.listeners
            .get(listener)
            .or(self.listeners.first())
            .map_or(&[], Vec::as_slice)
    }

    pub fn node_id(&self, shard: ShardId) -> i32 {
        self.brokers(0).get(shard).map_or(-1, |b| b.node_id)
    }

    /// The shard behind a node id, if it is one of ours.
    pub fn shard_of_node(&self, node_id: i32) -> Option<ShardId> {
        self.brokers(0).iter().position(|b| b.node_id == node_id)
    }

    /// The node that answers for the cluster as a whole (the "controller").
    pub fn controller_id(&self) -> i32 {
        self.node_id(0)
    }
}
