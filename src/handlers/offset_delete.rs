//! OffsetDelete: forgets a group's committed offsets for some partitions, unless the
//! group's members still subscribe to the topic.

use super::{Reply, RequestContext};
use crate::shard::Shard;
use crate::TopicPartition;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: OffsetDeleteRequest,
) -> Reply<OffsetDeleteResponse> {
    let group_id = request.group_id.as_str();
    let partitions: Vec<TopicPartition> = request
        .topics
        .iter()
        .flat_map(|topic| {
            let name = topic.name.as_str();
            topic
                .partitions
                .iter()
                .map(move |p| TopicPartition::new(name, p.partition_index))
        })
        .collect();
    let deleted = match shard.coordinator(group_id) {
        Ok(groups) => groups.delete_offsets(group_id, &partitions).await,
        Err(error) => Err(error),
    };
    let mut outcomes = match deleted {
        Ok(outcomes) => outcomes.into_iter(),
        Err(error) => {
            tracing::debug!(group = group_id, %error, "offsets not deleted");
            let code = error.group_error().code();
            return Some(OffsetDeleteResponse::default().with_error_code(code));
        }
    };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .zip(outcomes.by_ref())
                .map(|(p, outcome)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(outcome.err().map_or(0, |e| e.group_error().code()))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetDeleteResponse::default().with_topics(topics))
}
