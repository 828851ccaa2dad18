//! OffsetCommit: a group's positions, stored durably by the coordinator shard in one write
//! per request before the answer goes out.

use super::{Reply, RequestContext};
use crate::backend::{CommittedOffset, GroupOffsets};
use crate::error::{Error, Fault};
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
    let coordinator = shard.coordinator(group_id);
    let committed_at_ms = crate::unix_time().as_millis() as i64;
    let mut errors: Vec<Vec<Option<ResponseError>>> = Vec::with_capacity(request.topics.len());
    let mut offsets: GroupOffsets = Vec::new();
    for topic in &request.topics {
        let exists = match coordinator {
            Ok(_) => shard.topics.get(&topic.name).await.ok().flatten(),
            Err(_) => None, // refused as a whole below; no lookup needed
        };
        let topic_errors = topic
            .partitions
            .iter()
            .map(|p| {
                let known = exists
                    .as_ref()
                    .is_some_and(|t| t.has_partition(p.partition_index));
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

    let member = (
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
    );
    let generation = request.generation_id_or_member_epoch;
    let committed = match coordinator {
        Ok(groups) => groups.commit(group_id, member, generation, offsets).await,
        Err(error) => Err(error),
    };
    match committed {
        Ok(()) => {}
        // Refused (not the coordinator, not a member): nothing was stored, for any partition.
        Err(error) if error.fault() == Fault::Client || error == Error::NotCoordinator => {
            let refused = error.group_error();
            errors.iter_mut().flatten().for_each(|e| *e = Some(refused));
        }
        Err(error) => {
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
