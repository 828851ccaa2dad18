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

use super::channel::{FilerClient, GrpcChannel};
use super::proto::filer_pb::{
    object_mutation, Entry, FuseAttributes, ListEntriesRequest, ObjectMutation,
    ObjectTransactionRequest, TraverseBfsMetadataRequest,
};
use crate::backend::{CommittedOffset, GroupOffsets};
use crate::error::{Error, Result};
use crate::TopicPartition;
use bytes::Bytes;
use futures::future::{select, Either};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

/// The file in each partition's directory.
const FILE_NAME: &str = "offset";
/// `-rw-r--r--`, as the Go gateway writes it.
const FILE_MODE: u32 = 0o644;
/// Longest a filer call may take before the outcome counts as unknown.
const FILER_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries asked for per ListEntries call.
const LIST_PAGE: u32 = 1024;
/// How the filer words a missing path (`filer_pb.ErrNotFound`); it reaches gRPC as a
/// plain error with code Unknown, so the message is all there is to go by.
const NOT_FOUND: &str = "no entry is found";

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

/// A Kafka name used as one path component: it must name exactly one entry.
fn component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
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

    /// The partition an offset file at `directory` belongs to, if it is one of the
    /// group's: `<group_dir>/<topic>/<partition>`.
    fn partition_of(group_dir: &str, directory: &str) -> Option<TopicPartition> {
        let relative = directory.strip_prefix(group_dir)?.strip_prefix('/')?;
        let (topic, partition) = relative.split_once('/')?;
        if !component(topic) || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

/// The filer side of the SMQ backend's committed offsets, for one shard.
pub struct OffsetStore {
    /// Filer gRPC address.
    filer: String,
    layout: Layout,
    channel: RefCell<Option<GrpcChannel>>,
}

impl OffsetStore {
    pub fn new(filer: String, namespace: &str) -> Self {
        Self {
            filer,
            layout: Layout::new(namespace),
            channel: RefCell::default(),
        }
    }

    /// A client on the shard's connection to the filer, connecting (again) if needed.
    async fn client(&self) -> Result<FilerClient> {
        if let Some(channel) = self.channel.borrow().as_ref().filter(|c| !c.is_closed()) {
            return Ok(channel.filer());
        }
        let channel = within(&self.filer, "connect", async {
            GrpcChannel::connect(&self.filer)
                .await
                .map_err(|e| self.unavailable(format!("cannot connect: {e}")))
        })
        .await?;
        let client = channel.filer();
        *self.channel.borrow_mut() = Some(channel);
        Ok(client)
    }

    fn unavailable(&self, message: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("SeaweedFS filer {}: {message}", self.filer))
    }

    fn status(&self, call: &str, status: tonic::Status) -> Error {
        self.unavailable(format!("{call}: {}", status.message()))
    }

    /// Writes a commit request's offsets: one ObjectTransaction, one PUT per partition.
    pub async fn store(&self, group: &str, offsets: &GroupOffsets) -> Result<()> {
        let group_dir = self.layout.group_dir(group)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let now_s = crate::unix_time().as_secs() as i64;
        let mut mutations = Vec::with_capacity(offsets.len());
        for (tp, committed) in offsets {
            let content = Bytes::from(encode(committed));
            mutations.push(ObjectMutation {
                r#type: object_mutation::Type::Put.into(),
                directory: self.layout.partition_dir(&group_dir, tp)?,
                entry: Some(Entry {
                    name: FILE_NAME.to_string(),
                    is_directory: false,
                    attributes: Some(FuseAttributes {
                        file_size: content.len() as u64,
                        mtime: now_s,
                        crtime: now_s,
                        file_mode: FILE_MODE,
                        ..Default::default()
                    }),
                    content,
                }),
                ..Default::default()
            });
        }
        self.transact(group_dir, mutations, None).await
    }

    /// Every offset file of the group, from one TraverseBfsMetadata stream; a group
    /// without a directory has none.
    pub async fn load(&self, group: &str) -> Result<GroupOffsets> {
        let group_dir = self.layout.group_dir(group)?;
        let mut client = self.client().await?;
        within(&self.filer, "TraverseBfsMetadata", async {
            let request = TraverseBfsMetadataRequest {
                directory: group_dir.clone(),
                excluded_prefixes: Vec::new(),
            };
            let mut stream = match client.traverse_bfs_metadata(request).await {
                Ok(response) => response.into_inner(),
                Err(status) if status.message().contains(NOT_FOUND) => return Ok(Vec::new()),
                Err(status) => return Err(self.status("TraverseBfsMetadata", status)),
            };
            let mut offsets = Vec::new();
            loop {
                let item = match stream.message().await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(status) if status.message().contains(NOT_FOUND) => break,
                    Err(status) => return Err(self.status("TraverseBfsMetadata", status)),
                };
                let Some(entry) = item.entry else { continue };
                if entry.is_directory || entry.name != FILE_NAME {
                    continue;
                }
                let Some(tp) = Layout::partition_of(&group_dir, &item.directory) else {
                    tracing::debug!(
                        directory = item.directory,
                        "not an offset file of the group"
                    );
                    continue;
                };
                match decode(&entry.content) {
                    Ok(committed) => offsets.push((tp, committed)),
                    // As the Go gateway does with a file it cannot read: no offset.
                    Err(why) => tracing::warn!(
                        group, %tp, directory = item.directory, "unreadable committed offset: {why}"
                    ),
                }
            }
            Ok(offsets)
        })
        .await
    }

    /// Deletes some of the group's offsets (their partition directories), or, with
    /// `None`, the group's whole directory.
    pub async fn delete(&self, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
        let group_dir = self.layout.group_dir(group)?;
        let delete = |directory: String, name: String, remove_empty_parent| ObjectMutation {
            r#type: object_mutation::Type::Delete.into(),
            directory,
            name,
            is_recursive: true,
            is_delete_data: true,
            remove_empty_parent,
            ..Default::default()
        };
        let Some(partitions) = partitions else {
            let mutation = delete(self.layout.base.clone(), group.to_string(), false);
            return self.transact(group_dir, vec![mutation], None).await;
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
            mutations.push(delete(topic_dir, tp.partition.to_string(), true));
        }
        // Then the group's directory if that emptied it, so it is no longer listed as a
        // group with offsets. A non-recursive delete of a directory that still holds
        // topics fails, and that failure of this last, optional step is expected.
        let cleanup = mutations.len();
        let mut group_entry = delete(self.layout.base.clone(), group.to_string(), false);
        group_entry.is_recursive = false;
        mutations.push(group_entry);
        self.transact(group_dir, mutations, Some(cleanup)).await
    }

    /// Names of the groups with a directory under the base directory.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let mut groups = Vec::new();
        let mut start_from = String::new();
        loop {
            let request = ListEntriesRequest {
                directory: self.layout.base.clone(),
                start_from_file_name: start_from.clone(),
                inclusive_start_from: false,
                limit: LIST_PAGE,
                omit_chunks: true,
                ..Default::default()
            };
            let page = within(&self.filer, "ListEntries", async {
                let mut stream = match client.list_entries(request).await {
                    Ok(response) => response.into_inner(),
                    Err(status) if status.message().contains(NOT_FOUND) => return Ok(Vec::new()),
                    Err(status) => return Err(self.status("ListEntries", status)),
                };
                let mut page = Vec::new();
                loop {
                    match stream.message().await {
                        Ok(Some(item)) => page.extend(item.entry),
                        Ok(None) => return Ok(page),
                        Err(status) if status.message().contains(NOT_FOUND) => return Ok(page),
                        Err(status) => return Err(self.status("ListEntries", status)),
                    }
                }
            })
            .await?;
            let full = page.len() >= LIST_PAGE as usize;
            if let Some(last) = page.last() {
                start_from = last.name.clone();
            }
            groups.extend(
                page.into_iter()
                    .filter(|e| e.is_directory && component(&e.name))
                    .map(|e| e.name),
            );
            if !full {
                return Ok(groups);
            }
        }
    }

    /// Applies `mutations` in one ObjectTransaction locked (and routed, with several
    /// filers) on the group's directory. `optional`: index of a mutation whose failure
    /// still counts as success (everything before it was applied).
    async fn transact(
        &self,
        group_dir: String,
        mutations: Vec<ObjectMutation>,
        optional: Option<usize>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let request = ObjectTransactionRequest {
            lock_key: group_dir.clone(),
            route_key: group_dir,
            mutations,
            request_id: String::new(),
        };
        let response = within(&self.filer, "ObjectTransaction", async {
            client
                .object_transaction(request)
                .await
                .map_err(|status| self.status("ObjectTransaction", status))
        })
        .await?
        .into_inner();
        if response.error.is_empty() {
            return Ok(());
        }
        let failed = response
            .failed_mutation
            .and_then(|i| usize::try_from(i).ok());
        if failed.is_some() && failed == optional {
            tracing::trace!(
                error = response.error,
                "optional filer mutation not applied"
            );
            return Ok(());
        }
        // Mutations before the failed one were applied; a retry applies them again, to
        // the same effect, so the client may retry.
        Err(self.unavailable(format!(
            "ObjectTransaction: {} (code {:?})",
            response.error,
            response.error_code()
        )))
    }
}

/// Runs a filer call with a deadline: past it, the outcome is unknown (retriable).
async fn within<T>(filer: &str, call: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    let timer = pin!(glommio::timer::sleep(FILER_TIMEOUT));
    match select(pin!(future), timer).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(Error::Unavailable(format!(
            "SeaweedFS filer {filer}: {call} took more than {}s",
            FILER_TIMEOUT.as_secs()
        ))),
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
            Layout::partition_of(
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
            assert_eq!(Layout::partition_of(group, other), None, "{other}");
        }
    }
}
