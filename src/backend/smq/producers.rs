//! Idempotent producers' state in SeaweedFS's filer, so that a retry across a tidegate
//! restart is still recognised (see `crate::partition::producer_state`).
//!
//! Layout: one small file per producer and partition,
//! `/topics/<namespace>/.meta/producers/<topic>/<partition>/<producer id>`, holding the
//! JSON of a [`ProducerSnapshot`]: `{"epoch":0,"batches":[[first_seq,last_seq,base_offset],
//! ...],"taken_at_ms":...}`. Each write of a shard is one `ObjectTransaction` with a PUT per
//! changed file; all of them are read back at start-up with one `TraverseBfsMetadata`.
//! Files of producers idle for longer than Kafka's default `producer.id.expiration.ms`
//! (one day) are skipped and deleted then.

use super::filer::{self, component, Filer};
use crate::backend::StoredProducer;
use crate::error::{Error, Result};
use crate::partition::producer_state::{ProducerSnapshot, EXPIRATION};
use crate::TopicPartition;
use bytes::Bytes;
use std::rc::Rc;

pub struct ProducerStore {
    filer: Rc<Filer>,
    /// `/topics/<namespace>/.meta/producers`.
    base: String,
}

impl ProducerStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            base: format!("/topics/{namespace}/.meta/producers"),
        }
    }

    fn partition_dir(&self, tp: &TopicPartition) -> Result<String> {
        // Kafka topic names cannot hold a '/' anyway; never write outside the base.
        if !component(&tp.topic) || tp.partition < 0 {
            return Err(Error::InvalidTopic(format!(
                "{tp} cannot name a directory in SeaweedFS's filer"
            )));
        }
        Ok(format!("{}/{}/{}", self.base, tp.topic, tp.partition))
    }

    /// Writes the given producers' states in one ObjectTransaction.
    pub async fn store(&self, producers: &[StoredProducer]) -> Result<()> {
        let mut mutations = Vec::with_capacity(producers.len());
        let mut lock_key = None;
        for producer in producers {
            let directory = self.partition_dir(&producer.tp)?;
            // Serialising integers cannot fail.
            let content = Bytes::from(serde_json::to_vec(&producer.state).unwrap_or_default());
            mutations.push(filer::put(
                directory.clone(),
                &producer.producer_id.to_string(),
                content,
            ));
            lock_key.get_or_insert(directory);
        }
        match lock_key {
            // Locked on one of its partitions: each partition has one writer (its shard).
            Some(lock_key) => self.filer.transact(lock_key, mutations, None).await,
            None => Ok(()),
        }
    }

    /// Every producer state kept, except expired ones, which are deleted (best effort).
    pub async fn load(&self) -> Result<Vec<StoredProducer>> {
        let now_ms = crate::unix_time().as_millis() as i64;
        let mut producers = Vec::new();
        let mut expired = Vec::new();
        for (directory, entry) in self.filer.traverse(&self.base).await? {
            if entry.is_directory {
                continue;
            }
            let (Some(tp), Ok(producer_id)) = (
                filer::partition_of(&self.base, &directory),
                entry.name.parse::<i64>(),
            ) else {
                tracing::debug!(directory, entry.name, "not a producer state file");
                continue;
            };
            match serde_json::from_slice::<ProducerSnapshot>(&entry.content) {
                Ok(snapshot) if now_ms - snapshot.taken_at_ms > EXPIRATION.as_millis() as i64 => {
                    expired.push(filer::delete(directory, entry.name, true));
                }
                Ok(state) => producers.push(StoredProducer {
                    tp,
                    producer_id,
                    state,
                }),
                Err(error) => {
                    tracing::warn!(%tp, producer_id, %error, "unreadable producer state ignored")
                }
            }
        }
        if !expired.is_empty() {
            let count = expired.len();
            match self.filer.transact(self.base.clone(), expired, None).await {
                Ok(()) => tracing::info!(count, "expired producer states deleted"),
                Err(error) => tracing::warn!(%error, "expired producer states not deleted"),
            }
        }
        Ok(producers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_are_found_by_partition() {
        let store = ProducerStore::new(Rc::new(Filer::new("x:1".into(), None)), "kafka");
        let tp = TopicPartition::new("orders", 7);
        let directory = store.partition_dir(&tp).expect("valid");
        assert_eq!(directory, "/topics/kafka/.meta/producers/orders/7");
        assert_eq!(filer::partition_of(&store.base, &directory), Some(tp));
        assert_eq!(
            filer::partition_of(&store.base, "/topics/kafka/.meta/producers/orders"),
            None
        );
        assert_eq!(
            filer::partition_of(&store.base, "/elsewhere/orders/7"),
            None
        );
        assert!(store.partition_dir(&TopicPartition::new("..", 0)).is_err());
    }
}
