//! Snapshots of idempotent producers' state in SeaweedFS's filer, one per partition, so
//! that a restarted shard reads only the records written since (their producer marks,
//! `codec`) to recover it (see `crate::partition::producer_state`).
//!
//! Layout: `/topics/<namespace>/.meta/producer-snapshots/<topic>/<partition>`, holding the
//! JSON of a [`PartitionSnapshot`]: `{"covered_until":1234,"producers":{"<producer id>":
//! {"epoch":0,"batches":[[first_seq,last_seq,base_offset],...],"last_used_ms":...}}}`.
//! Each shard writes the partitions that changed in one `ObjectTransaction` every
//! `--smq-producer-snapshot-interval-ms`; a partition's file is read when the shard first
//! appends to it after a start. A partition gets its first file before any record there
//! carries a mark, so a partition without one has none to read.

use super::filer::{self, component, Filer};
use crate::error::{Error, Result};
use crate::partition::producer_state::PartitionSnapshot;
use crate::TopicPartition;
use bytes::Bytes;
use std::rc::Rc;

pub struct ProducerStore {
    filer: Rc<Filer>,
    /// `/topics/<namespace>/.meta/producer-snapshots`.
    base: String,
}

impl ProducerStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            base: format!("/topics/{namespace}/.meta/producer-snapshots"),
        }
    }

    fn topic_dir(&self, tp: &TopicPartition) -> Result<String> {
        // Kafka topic names cannot hold a '/' anyway; never write outside the base.
        if !component(&tp.topic) || tp.partition < 0 {
            return Err(Error::InvalidTopic(format!(
                "{tp} cannot name a file in SeaweedFS's filer"
            )));
        }
        Ok(format!("{}/{}", self.base, tp.topic))
    }

    /// Writes the partitions' snapshots in one ObjectTransaction.
    pub async fn store(&self, snapshots: &[(TopicPartition, PartitionSnapshot)]) -> Result<()> {
        let mut mutations = Vec::with_capacity(snapshots.len());
        let mut lock_key = None;
        for (tp, snapshot) in snapshots {
            let directory = self.topic_dir(tp)?;
            // Serialising integers cannot fail.
            let content = Bytes::from(serde_json::to_vec(snapshot).unwrap_or_default());
            lock_key.get_or_insert_with(|| format!("{directory}/{}", tp.partition));
            mutations.push(filer::put(directory, &tp.partition.to_string(), content));
        }
        match lock_key {
            // Locked on one of its partitions: each partition has one writer (its shard).
            Some(lock_key) => self.filer.transact(lock_key, mutations, None).await,
            None => Ok(()),
        }
    }

    /// The partition's snapshot, if it has one. One that does not parse is an error: taking
    /// it for none would skip the marks it covers less than.
    pub async fn load(&self, tp: &TopicPartition) -> Result<Option<PartitionSnapshot>> {
        let directory = self.topic_dir(tp)?;
        let Some(content) = self
            .filer
            .read(&directory, &tp.partition.to_string())
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&content).map(Some).map_err(|error| {
            Error::Unavailable(format!(
                "{directory}/{}: unreadable producer snapshot: {error}",
                tp.partition
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_kept_by_topic_and_partition() {
        let store = ProducerStore::new(Rc::new(Filer::new("x:1".into(), None)), "kafka");
        let tp = TopicPartition::new("orders", 7);
        let directory = store.topic_dir(&tp).expect("valid");
        assert_eq!(directory, "/topics/kafka/.meta/producer-snapshots/orders");
        assert!(store.topic_dir(&TopicPartition::new("..", 0)).is_err());
        assert!(store.topic_dir(&TopicPartition::new("a/b", 0)).is_err());
        let snapshot = PartitionSnapshot::default();
        let json = serde_json::to_string(&snapshot).expect("serialises");
        assert_eq!(json, r#"{"covered_until":0,"producers":{}}"#);
    }
}
