//! Committed consumer-group offsets in SeaweedFS's filer, where SeaweedFS's own Kafka
//! gateway keeps them, so a group keeps its positions when it moves between gateways.
//!
//! Layout (`weed/mq/kafka/consumer_offset/filer_storage.go` at the pinned version): one
//! file per partition, `/topics/kafka/.meta/consumer_offsets/<group>/<topic>/<partition>/offset`,
//! holding `{"type":"offset","value":N,"committed_at":<ms>,"metadata":"..."}` as the
//! entry's inline content. tidegate adds `"leader_epoch"` (Go's decoder ignores unknown
//! fields; files without it read back as -1). `kafka` is the SMQ namespace, so
//! `--smq-namespace` other than the default keeps its own offsets apart.
//!
//! The Go gateway writes one CreateEntry per partition. Here a commit request is one
//! `ObjectTransaction`: a PUT per partition, applied in order under the filer's lock on
//! the group's directory. A PUT is the filer's `CreateEntry`, so it creates missing parent
//! directories and replaces an existing file. A group is read back with one
//! `TraverseBfsMetadata` stream (every entry below the group's directory, content
//! included), deleted with DELETE mutations, and groups are listed with `ListEntries` on
//! the base directory. See `proto/README.md` ("Consumer offsets").

use super::filer::{self, component, Filer};
use crate::backend::{CommittedOffset, GroupOffsets};
use crate::error::{Error, Result};
use crate::TopicPartition;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// The file in each partition's directory.
const FILE_NAME: &str = "offset";

/// The JSON in an offset file, as the Go gateway's `KafkaConsumerPosition` plus the epoch.
#[derive(Serialize)]
struct OffsetJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    value: i64,
    committed_at: i64,
    metadata: &'a str,
    leader_epoch: i32,
}

/// What is read back: lenient where Go's decoder is (absent fields are zero values).
#[derive(Deserialize)]
struct StoredJson {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    value: i64,
    #[serde(default)]
    committed_at: Option<i64>,
    #[serde(default)]
    metadata: Option<String>,
    #[serde(default)]
    leader_epoch: Option<i32>,
}

/// An offset file's content.
pub fn encode(committed: &CommittedOffset) -> Vec<u8> {
    let json = OffsetJson {
        kind: "offset",
        value: committed.offset,
        committed_at: committed.committed_at_ms,
        metadata: &committed.metadata,
        leader_epoch: committed.leader_epoch,
    };
    // Serialising plain integers and strings cannot fail.
    serde_json::to_vec(&json).unwrap_or_default()
}

/// An offset file's content read back; why not, if it is not an offset.
pub fn decode(content: &[u8]) -> std::result::Result<CommittedOffset, String> {
    let stored: StoredJson = serde_json::from_slice(content).map_err(|e| e.to_string())?;
    if let Some(kind) = stored.kind.filter(|k| k != "offset") {
        // "timestamp" positions exist in the Go type but are not Kafka offsets.
        return Err(format!("a position of type {kind:?}, not an offset"));
    }
    Ok(CommittedOffset {
        offset: stored.value,
        leader_epoch: stored.leader_epoch.unwrap_or(-1),
        metadata: stored.metadata.unwrap_or_default(),
        committed_at_ms: stored.committed_at.unwrap_or(-1),
    })
}

/// Paths of one namespace's offsets.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `/topics/<namespace>/.meta/consumer_offsets`.
    base: String,
}

impl Layout {
    pub fn new(namespace: &str) -> Self {
        Self {
            base: format!("/topics/{namespace}/.meta/consumer_offsets"),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The group's directory. A group id is any string to Kafka, but one with a '/' would
    /// land in another group's directory (the Go gateway lets it): refused.
    pub fn group_dir(&self, group: &str) -> Result<String> {
        if !component(group) {
            return Err(Error::InvalidGroupId(format!(
                "group id {group:?} cannot name a directory in SeaweedFS's filer \
                 (no '/', not empty, '.' or '..')"
            )));
        }
        Ok(format!("{}/{group}", self.base))
    }

    /// A topic's directory in a group's directory.
    pub fn topic_dir(&self, group_dir: &str, topic: &str) -> Result<String> {
        // Kafka topic names cannot hold a '/' anyway; never write outside the group.
        if !component(topic) {
            return Err(Error::InvalidTopic(format!(
                "{topic:?} cannot name a directory in SeaweedFS's filer"
            )));
        }
        Ok(format!("{group_dir}/{topic}"))
    }

    /// The directory holding a partition's offset file.
    pub fn partition_dir(&self, group_dir: &str, tp: &TopicPartition) -> Result<String> {
        if tp.partition < 0 {
            return Err(Error::UnknownTopicOrPartition);
        }
        Ok(format!(
            "{}/{}",
            self.topic_dir(group_dir, &tp.topic)?,
            tp.partition
        ))
    }
}

/// The filer side of the SMQ backend's committed offsets, for one shard.
pub struct OffsetStore {
    filer: Rc<Filer>,
    layout: Layout,
}

impl OffsetStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            layout: Layout::new(namespace),
        }
    }

    /// Writes a commit request's offsets: one ObjectTransaction, one PUT per partition.
    pub async fn store(&self, group: &str, offsets: &GroupOffsets) -> Result<()> {
        let group_dir = self.layout.group_dir(group)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let mut mutations = Vec::with_capacity(offsets.len());
        for (tp, committed) in offsets {
            let directory = self.layout.partition_dir(&group_dir, tp)?;
            mutations.push(filer::put(
                directory,
                FILE_NAME,
                Bytes::from(encode(committed)),
            ));
        }
        self.filer.transact(group_dir, mutations, None).await
    }

    /// Every offset file of the group, from one TraverseBfsMetadata stream; a group
    /// without a directory has none.
    pub async fn load(&self, group: &str) -> Result<GroupOffsets> {
        let group_dir = self.layout.group_dir(group)?;
        let mut offsets = Vec::new();
        for (directory, entry) in self.filer.traverse(&group_dir).await? {
            if entry.is_directory || entry.name != FILE_NAME {
                continue;
            }
            let Some(tp) = filer::partition_of(&group_dir, &directory) else {
                tracing::debug!(directory, "not an offset file of the group");
                continue;
            };
            match decode(&entry.content) {
                Ok(committed) => offsets.push((tp, committed)),
                // As the Go gateway does with a file it cannot read: no offset.
                Err(why) => tracing::warn!(
                    group, %tp, directory, "unreadable committed offset: {why}"
                ),
            }
        }
        Ok(offsets)
    }

    /// Deletes some of the group's offsets (their partition directories), or, with
    /// `None`, the group's whole directory.
    pub async fn delete(&self, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
        let group_dir = self.layout.group_dir(group)?;
        let Some(partitions) = partitions else {
            let mutation = filer::delete(self.layout.base.clone(), group.to_string(), false);
            return self.filer.transact(group_dir, vec![mutation], None).await;
        };
        if partitions.is_empty() {
            return Ok(());
        }
        let mut mutations = Vec::with_capacity(partitions.len() + 1);
        for tp in partitions {
            if tp.partition < 0 {
                continue;
            }
            // The filer removes the topic's directory once its last partition goes.
            let topic_dir = self.layout.topic_dir(&group_dir, &tp.topic)?;
            mutations.push(filer::delete(topic_dir, tp.partition.to_string(), true));
        }
        // Then the group's directory if that emptied it, so it is no longer listed as a
        // group with offsets. A non-recursive delete of a directory that still holds
        // topics fails, and that failure of this last, optional step is expected.
        let cleanup = mutations.len();
        let mut group_entry = filer::delete(self.layout.base.clone(), group.to_string(), false);
        group_entry.is_recursive = false;
        mutations.push(group_entry);
        self.filer
            .transact(group_dir, mutations, Some(cleanup))
            .await
    }

    /// Names of the groups with a directory under the base directory.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let entries = self.filer.list(&self.layout.base).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.is_directory && component(&e.name))
            .map(|e| e.name)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64, epoch: i32, metadata: &str) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: epoch,
            metadata: metadata.to_string(),
            committed_at_ms: 1_795_634_087_054,
        }
    }

    #[test]
    fn json_is_the_go_gateways_plus_the_leader_epoch() {
        let json = encode(&committed(10, 3, "m \"q\" é"));
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"type":"offset","value":10,"committed_at":1795634087054,"metadata":"m \"q\" é","leader_epoch":3}"#
        );
        assert_eq!(decode(&json), Ok(committed(10, 3, "m \"q\" é")));
    }

    #[test]
    fn files_written_by_the_go_gateway_read_back_without_an_epoch() {
        // As seen in the filer after a commit through `weed mq.kafka.gateway`.
        let go = br#"{"type":"offset","value":10,"committed_at":1795634087054,"metadata":""}"#;
        assert_eq!(decode(go), Ok(committed(10, -1, "")));
        let sparse = br#"{"value":7,"metadata":null,"extra":[1,2]}"#;
        assert_eq!(
            decode(sparse),
            Ok(CommittedOffset {
                offset: 7,
                leader_epoch: -1,
                metadata: String::new(),
                committed_at_ms: -1,
            })
        );
    }

    #[test]
    fn what_is_not_an_offset_is_refused() {
        for bad in [
            &br#"{"type":"timestamp","value":1795634087054000000}"#[..],
            b"",
            b"10",
            br#"{"type":"offset"}"#,
            br#"{"type":"offset","value":"10"}"#,
        ] {
            assert!(decode(bad).is_err(), "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn paths_follow_the_go_gateways_layout() {
        let layout = Layout::new("kafka");
        let group = layout.group_dir("orders-app").expect("valid");
        assert_eq!(group, "/topics/kafka/.meta/consumer_offsets/orders-app");
        let tp = TopicPartition::new("orders", 3);
        assert_eq!(
            layout.partition_dir(&group, &tp).expect("valid"),
            "/topics/kafka/.meta/consumer_offsets/orders-app/orders/3"
        );
        assert_eq!(
            filer::partition_of(
                &group,
                "/topics/kafka/.meta/consumer_offsets/orders-app/orders/3"
            ),
            Some(tp)
        );
        assert_eq!(
            Layout::new("other").base(),
            "/topics/other/.meta/consumer_offsets"
        );
    }

    #[test]
    fn names_that_would_leave_their_directory_are_refused() {
        let layout = Layout::new("kafka");
        for group in ["team/app", "/", "..", ".", "", "a\0b"] {
            assert!(
                matches!(layout.group_dir(group), Err(Error::InvalidGroupId(_))),
                "{group:?}"
            );
        }
        // Dots, spaces and non-ASCII are fine inside one component.
        assert!(layout.group_dir("my.group v2 é").is_ok());
        let group = layout.group_dir("g").expect("valid");
        for topic in ["a/b", "..", ""] {
            let tp = TopicPartition::new(topic, 0);
            assert!(matches!(
                layout.partition_dir(&group, &tp),
                Err(Error::InvalidTopic(_))
            ));
        }
        assert!(layout
            .partition_dir(&group, &TopicPartition::new("t", -1))
            .is_err());
    }

    #[test]
    fn only_files_at_group_topic_partition_are_offsets() {
        let group = "/topics/kafka/.meta/consumer_offsets/g";
        for other in [
            "/topics/kafka/.meta/consumer_offsets/g",
            "/topics/kafka/.meta/consumer_offsets/g/t",
            "/topics/kafka/.meta/consumer_offsets/g/t/0/x",
            "/topics/kafka/.meta/consumer_offsets/g/t/-1",
            "/topics/kafka/.meta/consumer_offsets/g/t/1a",
            "/topics/kafka/.meta/consumer_offsets/g/t/99999999999",
            "/topics/kafka/.meta/consumer_offsets/gg/t/0",
        ] {
            assert_eq!(filer::partition_of(group, other), None, "{other}");
        }
    }
}
