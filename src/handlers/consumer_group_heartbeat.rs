//! ConsumerGroupHeartbeat (KIP-848): joining, staying in and leaving a group on the new
//! consumer protocol; the coordinator computes assignments and hands them out here.

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::group::consumer::{HeartbeatRequest, HeartbeatResult, Partitions, ASSIGNORS};
use crate::group::{LEAVE, STATIC_LEAVE};
use crate::shard::Shard;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;
use uuid::Uuid;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> Reply<ConsumerGroupHeartbeatResponse> {
    Some(match heartbeat(&shard, &context, request).await {
        Ok(result) => {
            let interval = shard.all_groups().consumer_heartbeat_interval.as_millis();
            let assignment = match result.assignment {
                Some(partitions) => Some(assignment(&shard, partitions).await),
                None => None,
            };
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(result.member_id)))
                .with_member_epoch(result.member_epoch)
                .with_heartbeat_interval_ms(i32::try_from(interval).unwrap_or(i32::MAX))
                .with_assignment(assignment)
        }
        Err((error, message)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(message.map(str_bytes)),
    })
}

type Failure = (ResponseError, Option<String>);

async fn heartbeat(
    shard: &Shard,
    context: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<HeartbeatResult, Failure> {
    let group_id = request.group_id.as_str();
    let failed = |error: Error| (error.group_error(), error.message());
    let groups = shard.coordinator(group_id).map_err(failed)?;
    if request
        .subscribed_topic_regex
        .as_ref()
        .is_some_and(|regex| !regex.is_empty())
    {
        let message = "subscribing by regular expression is not supported".to_string();
        return Err((ResponseError::InvalidRequest, Some(message)));
    }
    if let Some(assignor) = request.server_assignor.as_deref() {
        if !ASSIGNORS.contains(&assignor) {
            let message = format!("assignors: {}", ASSIGNORS.join(", "));
            return Err((ResponseError::UnsupportedAssignor, Some(message)));
        }
    }
    let member_id = match request.member_id.as_str() {
        "" if request.member_epoch == 0 => Uuid::new_v4().to_string(),
        "" => return Err((ResponseError::UnknownMemberId, None)),
        id => id.to_string(),
    };
    let subscribed = request
        .subscribed_topic_names
        .as_ref()
        .map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let leaving = matches!(request.member_epoch, LEAVE | STATIC_LEAVE);
    let mut topics = BTreeMap::new();
    let mut owned = None;
    // A leaving member needs no assignment, so no topic is looked up for it.
    if !leaving {
        let mut wanted = groups.consumer_subscriptions(group_id);
        wanted.extend(subscribed.iter().flatten().cloned());
        topics = partition_counts(shard, &wanted).await;
        if let Some(partitions) = &request.topic_partitions {
            owned = Some(owned_by_name(shard, partitions).await);
        }
    }
    let member = HeartbeatRequest {
        member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|i| i.to_string()),
        rack_id: request.rack_id.as_ref().map(|r| r.to_string()),
        client_id: context.client_id(),
        client_host: context.connection.client_host.clone(),
        rebalance_timeout: Duration::from_millis(
            u64::try_from(request.rebalance_timeout_ms).unwrap_or(0),
        ),
        subscribed,
        owned,
    };
    groups
        .consumer_heartbeat(group_id, member, &topics)
        .map_err(failed)
}

/// Partition counts of the topics that exist; the others are simply not assigned.
async fn partition_counts(shard: &Shard, names: &BTreeSet<String>) -> BTreeMap<String, i32> {
    let mut counts = BTreeMap::new();
    for name in names {
        if let Ok(Some(topic)) = shard.topics.get(name).await {
            counts.insert(name.clone(), topic.partitions);
        }
    }
    counts
}

async fn owned_by_name(
    shard: &Shard,
    owned: &[kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions],
) -> Partitions {
    let mut partitions = Partitions::new();
    for topic in owned {
        if let Ok(Some(meta)) = shard.topics.by_id(topic.topic_id).await {
            let entry = partitions.entry(meta.name.to_string()).or_default();
            entry.extend(topic.partitions.iter().copied());
        }
    }
    partitions
}

async fn assignment(shard: &Shard, partitions: Partitions) -> Assignment {
    let mut topics = Vec::new();
    for (name, partitions) in partitions {
        if let Ok(Some(meta)) = shard.topics.get(&name).await {
            topics.push(
                TopicPartitions::default()
                    .with_topic_id(meta.id)
                    .with_partitions(partitions.into_iter().collect()),
            );
        }
    }
    Assignment::default().with_topic_partitions(topics)
}
