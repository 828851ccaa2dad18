//! One module per Kafka API, named as the protocol names it. Each has `VERSIONS` (the range
//! it serves, listed in [`APIS`]) and `handle`. Below them: the table, what a handler is
//! given besides its request ([`RequestContext`]), and the helpers several share.

mod context;
mod table;

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;

pub use context::{ConnectionState, ProduceOrder, ProduceTurn, Reply, RequestContext};
pub use table::{find_api, Api, APIS};

use crate::backend::TopicMeta;
use crate::error::{Error, Result};
use crate::protocol::authorization;
use crate::shard::{PartitionWork, Shard};
use crate::TopicPartition;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use uuid::Uuid;

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;

/// A topic by name, created with the default partition count if it is missing and the
/// server allows auto-creation, for the client of `creator` (`None`: the request does not
/// allow creation), if the ACLs let that client create it (TOPIC_AUTHORIZATION_FAILED if
/// not: the authorization stage's rule, asked only when a topic is about to be created).
pub async fn find_or_create_topic(
    shard: &Shard,
    name: &str,
    creator: Option<&RequestContext>,
) -> Result<Arc<TopicMeta>> {
    if let Some(topic) = shard.topics.get(name).await? {
        return Ok(topic);
    }
    let Some(creator) = creator.filter(|_| shard.config.auto_create_topics) else {
        return Err(Error::UnknownTopicOrPartition);
    };
    if !authorization::may_create_topic(shard, creator, name) {
        return Err(Error::TopicAuthorizationFailed);
    }
    validate_topic_name(name)?;
    let partitions = shard.config.default_partitions;
    check_partition_limits(shard, partitions, i64::from(partitions)).await?;
    match shard
        .topics
        .create(name, partitions, BTreeMap::new(), false)
        .await
    {
        Ok(topic) => {
            tracing::info!(topic = name, partitions, "auto-created topic");
            Ok(topic)
        }
        // Another shard created it first.
        Err(Error::TopicAlreadyExists) => shard
            .topics
            .get(name)
            .await?
            .ok_or(Error::UnknownTopicOrPartition),
        Err(error) => Err(error),
    }
}

/// Whether a topic may have `count` partitions, `added` of them new: at most
/// `--max-partitions-per-topic` (INVALID_PARTITIONS), and all topics together at most
/// `--max-partitions` (POLICY_VIOLATION).
pub async fn check_partition_limits(shard: &Shard, count: i32, added: i64) -> Result<()> {
    let per_topic = shard.config.max_partitions_per_topic;
    if count > per_topic {
        return Err(Error::InvalidPartitions(format!(
            "{count} partitions is over this gateway's --max-partitions-per-topic of {per_topic}"
        )));
    }
    let limit = shard.config.max_partitions;
    let total: i64 = shard
        .topics
        .list()
        .await?
        .iter()
        .map(|t| i64::from(t.partitions))
        .sum();
    if total.saturating_add(added) > limit {
        return Err(Error::PolicyViolation(format!(
            "{added} more partitions would make {} in all, over this gateway's \
             --max-partitions of {limit}",
            total.saturating_add(added)
        )));
    }
    Ok(())
}

/// The partitions of `topic` a request names: each one that exists is `Ok`, the others (or
/// all, if the topic does not exist) UNKNOWN_TOPIC_OR_PARTITION.
pub async fn named_partitions(
    shard: &Shard,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, Result<()>)>> {
    let meta = shard.topics.get(topic).await?;
    let exists = |p: i32| meta.as_ref().is_some_and(|m| m.has_partition(p));
    Ok(partitions
        .iter()
        .map(|&p| match exists(p) {
            true => (p, Ok(())),
            false => (p, Err(Error::UnknownTopicOrPartition)),
        })
        .collect())
}

/// AlterConfigs and IncrementalAlterConfigs of one resource: a topic's configs become what
/// `change` makes of them (validated there), stored by the backend, and every shard forgets
/// what it cached of the topic before this returns. Broker configs are tidegate's flags.
pub async fn alter_configs(
    shard: &Rc<Shard>,
    resource_type: i8,
    name: &str,
    change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>>,
    validate_only: bool,
) -> Result<()> {
    match resource_type {
        describe_configs::RESOURCE_TOPIC => {}
        describe_configs::RESOURCE_BROKER => return Err(Error::InvalidConfig(
            "broker configs are tidegate's command-line flags: restart it with the flag changed"
                .into(),
        )),
        other => {
            return Err(Error::InvalidRequest(format!(
                "resource type {other} has no configs here"
            )))
        }
    }
    let topic = shard
        .topics
        .get(name)
        .await?
        .ok_or(Error::UnknownTopicOrPartition)?;
    let configs = change(&topic.configs)?;
    shard
        .topics
        .alter_configs(name, configs, validate_only)
        .await?;
    if !validate_only {
        shard.topic_changed(name).await;
        tracing::info!(topic = name, "topic configs altered");
    }
    Ok(())
}

/// A topic name and, in request order, the partitions of it a request names, each with its
/// argument (or why the request's value for it is not one).
pub type NamedPartitions<T> = (String, Vec<(i32, Result<T>)>);

/// The partitions a request's topics name, as [`on_partitions`] takes them: `name` and
/// `partitions` read a topic of the request, `argument` a partition (its index and what
/// the work needs of it).
pub fn named<Topic, Partition, T>(
    topics: &[Topic],
    name: impl Fn(&Topic) -> &str,
    partitions: impl Fn(&Topic) -> &[Partition],
    argument: impl Fn(&Partition) -> (i32, Result<T>),
) -> Vec<NamedPartitions<T>> {
    topics
        .iter()
        .map(|t| {
            (
                name(t).to_string(),
                partitions(t).iter().map(&argument).collect(),
            )
        })
        .collect()
}

/// Per-partition work for the partitions a request names, each run on its owning shard:
/// `named` lists, per topic name, (partition, argument) in request order; the answer has
/// one result per named partition in that order: UNKNOWN_TOPIC_OR_PARTITION for those that
/// do not exist, and the argument's own error where it is one.
pub async fn on_partitions<T, R>(
    shard: &Rc<Shard>,
    named: Vec<NamedPartitions<T>>,
    work: PartitionWork<(TopicPartition, T), R>,
) -> Vec<Result<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let mut results: Vec<Result<R>> = Vec::new();
    let mut items = Vec::new();
    for (topic, partitions) in named {
        let meta = shard.topics.get(&topic).await;
        for (partition, argument) in partitions {
            let exists = match &meta {
                Ok(Some(meta)) => meta.partition(partition),
                Ok(None) => Err(Error::UnknownTopicOrPartition),
                Err(error) => Err(error.clone()),
            };
            match exists.and_then(|tp| Ok((tp, argument?))) {
                Ok((tp, argument)) => {
                    items.push((results.len(), (tp, argument)));
                    results.push(Err(Error::ShardUnreachable));
                }
                Err(error) => results.push(Err(error)),
            }
        }
    }
    for (index, result) in shard.scatter(items, |(tp, _)| tp, work).await {
        results[index] = result;
    }
    results
}

/// A topic as a request names it: by id where the name is empty and the id set (newer
/// versions), else by name, created for `creator` as [`find_or_create_topic`] does.
pub async fn named_topic(
    shard: &Shard,
    name: &str,
    id: Uuid,
    creator: Option<&RequestContext>,
) -> Result<Arc<TopicMeta>> {
    match name.is_empty() && !id.is_nil() {
        true => find_topic_by_id(shard, id).await,
        false => find_or_create_topic(shard, name, creator).await,
    }
}

/// A topic named by id.
pub async fn find_topic_by_id(shard: &Shard, id: Uuid) -> Result<Arc<TopicMeta>> {
    shard.topics.by_id(id).await?.ok_or(Error::UnknownTopicId)
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

/// A resource whose authorized operations a client may ask for.
#[derive(Debug, Clone, Copy)]
pub enum Resource {
    Topic,
    Group,
    Cluster,
}

/// The `*_authorized_operations` field of an answer: `i32::MIN` ("not provided") unless the
/// client asked, else a bit per Kafka AclOperation code: every operation the resource type
/// supports, which is the answer when nothing is denied. When ACLs are in force the
/// authorization stage (`protocol::authorization`) replaces it with the client's own.
pub fn authorized_operations(asked: bool, resource: Resource) -> i32 {
    use crate::security::acl::{supported_operations, ResourceType};
    if !asked {
        return i32::MIN;
    }
    let resource_type = match resource {
        Resource::Topic => ResourceType::Topic,
        Resource::Group => ResourceType::Group,
        Resource::Cluster => ResourceType::Cluster,
    };
    supported_operations(resource_type)
        .iter()
        .fold(0, |bits, op| bits | 1 << op.code())
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
