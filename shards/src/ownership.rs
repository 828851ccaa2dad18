//! Which shard owns a partition.
//!
//! A partition is named by a key (a topic name, say) and an index. The default owner is
//! `(hash(key) + index) % nr_shards`: the partitions of one topic are dealt out round-robin
//! starting at a shard chosen by the key, so every topic spreads evenly and two topics do not
//! pile their partition 0 onto the same core. The hash is FNV-1a, fixed across builds and
//! restarts, so ownership is stable for a given shard count.
//!
//! Ownership is derived, never persisted: a restart with another core count simply deals
//! the partitions out again (persisted placement is what left Redpanda brokers unable to
//! start after their core count shrank). Explicit moves override the default and can change
//! at run time, which a fixed hash (glommio's `sharding.rs`) cannot do.

use crate::ShardId;
use hashbrown::HashMap;

/// The partition-to-shard table. Each shard holds its own copy; a move must be applied to
/// every copy (the gateway broadcasts it over the mesh).
#[derive(Debug, Clone)]
pub struct ShardMap {
    nr_shards: usize,
    moved: HashMap<(Box<[u8]>, u32), ShardId>,
}

impl ShardMap {
    /// A table for `nr_shards` shards (at least one).
    pub fn new(nr_shards: usize) -> Self {
        Self {
            nr_shards: nr_shards.max(1),
            moved: HashMap::new(),
        }
    }

    pub fn nr_shards(&self) -> usize {
        self.nr_shards
    }

    /// The shard that owns partition `index` of the set named `key`.
    pub fn owner(&self, key: &[u8], index: u32) -> ShardId {
        if !self.moved.is_empty() {
            if let Some(shard) = self.moved.get(&(Box::from(key), index)) {
                return *shard;
            }
        }
        self.default_owner(key, index)
    }

    /// The owner of something that is not a partition (a consumer group, say).
    pub fn owner_of_key(&self, key: &[u8]) -> ShardId {
        (fnv1a(key) % self.nr_shards as u64) as ShardId
    }

    /// Moves one partition to `shard`; out-of-range shards are ignored.
    pub fn assign(&mut self, key: &[u8], index: u32, shard: ShardId) {
        if shard < self.nr_shards {
            self.moved.insert((Box::from(key), index), shard);
        }
    }

    fn default_owner(&self, key: &[u8], index: u32) -> ShardId {
        let start = fnv1a(key) % self.nr_shards as u64;
        ((start + u64::from(index)) % self.nr_shards as u64) as ShardId
    }
}

/// FNV-1a, 64 bit: fixed across builds and processes, unlike std's `RandomState`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_one_topic_spread_evenly() {
        for nr_shards in 1..=16 {
            let map = ShardMap::new(nr_shards);
            let mut load = vec![0usize; nr_shards];
            for index in 0..(nr_shards as u32 * 10) {
                load[map.owner(b"orders", index)] += 1;
            }
            assert!(load.iter().all(|n| *n == 10), "{nr_shards}: {load:?}");
        }
    }

    #[test]
    fn many_single_partition_topics_spread_evenly() {
        let map = ShardMap::new(8);
        let mut load = [0usize; 8];
        for topic in 0..8000 {
            load[map.owner(format!("topic-{topic}").as_bytes(), 0)] += 1;
        }
        assert!(load.iter().all(|n| (800..1200).contains(n)), "{load:?}");
    }

    #[test]
    fn ownership_is_stable_across_instances() {
        let a = ShardMap::new(6);
        let b = ShardMap::new(6);
        for index in 0..100 {
            assert_eq!(a.owner(b"t", index), b.owner(b"t", index));
        }
        // A fixed value guards against an accidental change of hash function.
        assert_eq!(
            ShardMap::new(7).owner(b"orders", 0),
            (fnv1a(b"orders") % 7) as usize
        );
    }

    #[test]
    fn moves_override_and_stay_in_range() {
        let mut map = ShardMap::new(4);
        map.assign(b"t", 3, 1);
        map.assign(b"t", 2, 9);
        assert_eq!(map.owner(b"t", 3), 1);
        assert!(map.owner(b"t", 2) < 4);
    }

    #[test]
    fn shrinking_the_core_count_keeps_every_owner_valid() {
        let map = ShardMap::new(2);
        for index in 0..64 {
            assert!(map.owner(b"t", index) < 2);
        }
    }
}
