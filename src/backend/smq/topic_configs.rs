//! Kafka topic configs of SMQ topics, kept in SeaweedFS's filer: SMQ's own topic
//! configuration has no room for them, and every shard and every restart must see the
//! configs a topic was created with (`max.message.bytes` is enforced on produce).
//!
//! Layout: one small file per topic, `/topics/<namespace>/.meta/topic_configs/<topic>`,
//! holding a JSON object of name → value (`{"max.message.bytes":"51200"}`). It is written
//! before the topic is created, so a topic never exists without its configs, and read when
//! a shard first looks the topic up. A topic without a file has only defaults.

use super::filer::{self, component, Filer};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::rc::Rc;

pub struct TopicConfigStore {
    filer: Rc<Filer>,
    /// `/topics/<namespace>/.meta/topic_configs`.
    directory: String,
}

impl TopicConfigStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            directory: format!("/topics/{namespace}/.meta/topic_configs"),
        }
    }

    fn file_name<'a>(&self, topic: &'a str) -> Result<&'a str> {
        // Kafka topic names cannot hold a '/' anyway; never write outside the directory.
        match component(topic) {
            true => Ok(topic),
            false => Err(Error::InvalidTopic(format!(
                "{topic} cannot name a file in SeaweedFS's filer"
            ))),
        }
    }

    /// The configs set on `topic` (none if it has no file).
    pub async fn load(&self, topic: &str) -> Result<BTreeMap<String, String>> {
        let Some(content) = self
            .filer
            .read(&self.directory, self.file_name(topic)?)
            .await?
        else {
            return Ok(BTreeMap::new());
        };
        serde_json::from_slice(&content).map_err(|e| {
            self.filer.unavailable(format!(
                "{}/{topic} is not a JSON object of strings: {e}",
                self.directory
            ))
        })
    }

    /// Replaces the configs set on `topic`.
    pub async fn store(&self, topic: &str, configs: &BTreeMap<String, String>) -> Result<()> {
        let name = self.file_name(topic)?;
        // A map of strings always serialises.
        let content = Bytes::from(serde_json::to_vec(configs).unwrap_or_default());
        let put = filer::put(self.directory.clone(), name, content);
        let lock_key = format!("{}/{name}", self.directory);
        self.filer.transact(lock_key, vec![put], None).await
    }
}
