//! Leader-epoch histories of SMQ partitions (`partition::leader_epochs`), kept in the
//! filer so that a truncation outlives tidegate: after a restart, clients must still find
//! that epoch 0 of a partition ended where SMQ lost records.
//!
//! Layout: one small file per truncated partition,
//! `/topics/<namespace>/.meta/leader_epochs/<topic>/<partition>`, holding the history as a
//! JSON array (`[{"epoch":0,"start_offset":0},{"epoch":1,"start_offset":120}]`). A
//! partition without a file is in epoch 0. One file per partition, not per topic, because
//! each partition's owner shard writes its own, and one SMQ restart truncates many
//! partitions at once: a file per topic would need a read-modify-write across shards. Never
//! inside the topic's own directory: SMQ reads every file there as a log file. Read (one
//! ListEntries) when a shard first looks the topic up; written only on a truncation.

use super::filer::{self, component, Filer};
use crate::error::{Error, Result};
use crate::partition::leader_epochs::{EpochStart, LeaderEpochs};
use crate::TopicPartition;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::rc::Rc;

pub struct LeaderEpochStore {
    filer: Rc<Filer>,
    /// `/topics/<namespace>/.meta/leader_epochs`.
    directory: String,
}

impl LeaderEpochStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            directory: format!("/topics/{namespace}/.meta/leader_epochs"),
        }
    }

    fn topic_directory(&self, topic: &str) -> Result<String> {
        // Kafka topic names cannot hold a '/' anyway; never write outside the directory.
        match component(topic) {
            true => Ok(format!("{}/{topic}", self.directory)),
            false => Err(Error::InvalidTopic(format!(
                "{topic} cannot name a file in SeaweedFS's filer"
            ))),
        }
    }

    /// The histories of the topic's truncated partitions. A file that does not parse is
    /// logged and read as epoch 0 (clients then see UNKNOWN_LEADER_EPOCH and refresh)
    /// rather than making the topic unusable.
    pub async fn load(&self, topic: &str) -> Result<BTreeMap<i32, LeaderEpochs>> {
        let directory = self.topic_directory(topic)?;
        let mut histories = BTreeMap::new();
        for entry in self.filer.list(&directory).await? {
            let parsed = entry.name.parse::<i32>().ok().and_then(|partition| {
                let entries: Vec<EpochStart> = serde_json::from_slice(&entry.content).ok()?;
                Some((partition, LeaderEpochs::from_entries(entries)?))
            });
            match parsed {
                Some((partition, epochs)) => {
                    histories.insert(partition, epochs);
                }
                None if entry.is_directory => {}
                None => tracing::warn!(file = %format!("{directory}/{}", entry.name),
                    "not a leader-epoch history; its partition is read as in epoch 0"),
            }
        }
        Ok(histories)
    }

    /// Replaces the stored history of the partition.
    pub async fn store(&self, tp: &TopicPartition, epochs: &LeaderEpochs) -> Result<()> {
        let directory = self.topic_directory(&tp.topic)?;
        // A list of numbers always serialises.
        let content = Bytes::from(serde_json::to_vec(epochs.entries()).unwrap_or_default());
        let name = tp.partition.to_string();
        let put = filer::put(directory.clone(), &name, content);
        self.filer
            .transact(format!("{directory}/{name}"), vec![put], None)
            .await
    }
}
