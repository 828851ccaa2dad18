//! OffsetCommit: a group's positions, stored durably by the coordinator shard in one write
//! per request before the answer goes out.

use super::group_error;
use super::{Reply, RequestContext};
use crate::backend::{CommittedOffset, GroupOffsets};
use crate::shard::Shard;
use crate::TopicPartition;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 9);

/// Kafka's offset.metadata.max.bytes default.
const MAX_METADATA: usize = 4096;

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: OffsetCommitRequest,
) -> Reply<OffsetCommitResponse> {
    let group_id = request.group_id.as_str();
    let refused = group_error(&shard, group_id).or_else(|| {
        let member = (
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
        );
        let generation = request.generation_id_or_member_epoch;
        let checked = shard
            .groups
            .with_group(group_id, |g| g.check_commit(member.0, member.1, generation));
        let checked = checked.or_else(|| {
            shard
                .groups
                .with_consumer_group(group_id, |g| g.check_commit(member.0, generation))
        });
        match checked {
            Some(outcome) => outcome.err(),
            // No members here (none yet, or none since a restart): only a commit that does
            // not claim membership is accepted.
            None if generation < 0 && member.0.is_empty() => None,
            None => Some(ResponseError::UnknownMemberId),
        }
    });

    let committed_at_ms = crate::unix_time().as_millis() as i64;
    let mut errors: Vec<Vec<Option<ResponseError>>> = Vec::with_capacity(request.topics.len());
    let mut offsets: GroupOffsets = Vec::new();
    for topic in &request.topics {
        let exists = match refused {
            Some(_) => None,
            None => shard.topics.get(&topic.name).await.ok().flatten(),
        };
        let topic_errors = topic
            .partitions
            .iter()
            .map(|p| {
                if refused.is_some() {
                    return refused;
                }
                let known = exists
                    .as_ref()
                    .is_some_and(|t| (0..t.partitions).contains(&p.partition_index));
                let metadata = p.committed_metadata.as_deref().unwrap_or("");
                if !known {
                    return Some(ResponseError::UnknownTopicOrPartition);
                }
                if metadata.len() > MAX_METADATA {
                    return Some(ResponseError::OffsetMetadataTooLarge);
                }
                offsets.push((
                    TopicPartition::new(topic.name.as_str(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: metadata.to_string(),
                        committed_at_ms,
                    },
                ));
                None
            })
            .collect();
        errors.push(topic_errors);
    }

    if !offsets.is_empty() {
        let stored = shard.groups.offsets.commit(group_id, offsets).await;
        if let Err(error) = stored {
            tracing::warn!(group = group_id, %error, "could not store committed offsets");
            // Retriable: the client finds the coordinator again and retries the commit.
            for slot in errors.iter_mut().flatten() {
                slot.get_or_insert(error.group_error());
            }
        }
    }

    let topics = request
        .topics
        .iter()
        .zip(errors)
        .map(|(topic, errors)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(errors)
                .map(|(p, error)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
