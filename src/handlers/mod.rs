//! One module per Kafka API, named as the protocol names it. Each has `VERSIONS` (the range
//! it serves, listed in `protocol::dispatch::APIS`) and `handle`.

pub mod api_versions;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use crate::backend::TopicMeta;
use crate::error::{Error, Result};
use crate::shard::Shard;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;

/// A topic by name, created with the default partition count if it is missing and both the
/// request and the server allow auto-creation.
pub async fn find_or_create_topic(
    shard: &Shard,
    name: &str,
    request_allows_creation: bool,
) -> Result<Arc<TopicMeta>> {
    if let Some(topic) = shard.backend.topic(name).await? {
        return Ok(topic);
    }
    if !(request_allows_creation && shard.config.auto_create_topics) {
        return Err(Error::UnknownTopicOrPartition);
    }
    validate_topic_name(name)?;
    let partitions = shard.config.default_partitions;
    match shard
        .backend
        .create_topic(name, partitions, BTreeMap::new(), false)
        .await
    {
        Ok(topic) => {
            tracing::info!(topic = name, partitions, "auto-created topic");
            Ok(topic)
        }
        // Another shard created it first.
        Err(Error::TopicAlreadyExists) => shard
            .backend
            .topic(name)
            .await?
            .ok_or(Error::UnknownTopicOrPartition),
        Err(error) => Err(error),
    }
}

/// Newer requests name a topic by id and leave the name empty.
pub fn named_by_id(name: &str, id: Uuid) -> bool {
    name.is_empty() && !id.is_nil()
}

/// A topic named by id.
pub async fn find_topic_by_id(shard: &Shard, id: Uuid) -> Result<Arc<TopicMeta>> {
    shard
        .backend
        .topic_by_id(id)
        .await?
        .ok_or(Error::UnknownTopicId)
}

/// Kafka's rules for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::InvalidTopic(format!(
            "{name:?} is not a valid topic name"
        )));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(Error::InvalidTopic(format!(
            "topic name is {} characters; the limit is {MAX_TOPIC_NAME}",
            name.len()
        )));
    }
    if !name.chars().all(legal) {
        return Err(Error::InvalidTopic(format!(
            "{name:?} may only contain ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Why this shard cannot serve a request for `group`: an invalid id, or another shard
/// coordinates it (the client then asks FindCoordinator again).
pub fn group_error(shard: &Shard, group: &str) -> Option<kafka_protocol::ResponseError> {
    if !crate::group::valid_group_id(group) {
        return Some(kafka_protocol::ResponseError::InvalidGroupId);
    }
    (!shard.coordinates(group)).then_some(kafka_protocol::ResponseError::NotCoordinator)
}

/// A Kafka error code, 0 for none.
pub fn code(error: Option<kafka_protocol::ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

pub fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

/// An error message for responses that carry one.
pub fn error_message(error: &Error) -> Option<StrBytes> {
    error.message().map(StrBytes::from_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["orders", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
