//! OffsetDelete: forgets a group's committed offsets for some partitions, unless the
//! group's members still subscribe to the topic.

use super::group_error;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use crate::TopicPartition;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: OffsetDeleteRequest,
) -> Reply<OffsetDeleteResponse> {
    let group = request.group_id.as_str();
    let failed =
        |error: ResponseError| Some(OffsetDeleteResponse::default().with_error_code(error.code()));
    if let Some(error) = group_error(&shard, group) {
        return failed(error);
    }
    let subscribed = shard
        .groups
        .with_group(group, |g| g.subscribed_topics())
        .or_else(|| {
            let topics = shard
                .groups
                .with_consumer_group(group, |g| g.subscribed_topics());
            topics.map(|t| t.into_iter().collect())
        })
        .unwrap_or_default();
    let committed = match shard.groups.offsets.fetch(group).await {
        Ok(committed) => committed,
        Err(error) => return failed(error.group_error()),
    };
    let live = shard.groups.is_active(group);
    if committed.is_empty() && !live {
        return failed(ResponseError::GroupIdNotFound);
    }

    let mut deletable = Vec::new();
    let topics: Vec<OffsetDeleteResponseTopic> = request
        .topics
        .iter()
        .map(|topic| {
            let in_use = subscribed.iter().any(|s| s.as_str() == topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let error = match in_use {
                        true => ResponseError::GroupSubscribedToTopic.code(),
                        false => {
                            deletable
                                .push(TopicPartition::new(topic.name.as_str(), p.partition_index));
                            0
                        }
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    if !deletable.is_empty() {
        let deleted = shard.groups.offsets.delete(group, Some(&deletable)).await;
        if let Err(error) = deleted {
            tracing::warn!(group, %error, "could not delete committed offsets");
            return failed(error.group_error());
        }
    }
    Some(OffsetDeleteResponse::default().with_topics(topics))
}
