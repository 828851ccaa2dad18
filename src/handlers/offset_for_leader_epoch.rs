//! OffsetForLeaderEpoch (KIP-101, KIP-320): where a leader epoch ends. A consumer asks it
//! after its partition's epoch moved on, with the epoch of the last record it read; an end
//! offset below its position means the log was truncated under it (tidegate bumps the
//! epoch when SMQ lost acknowledged records: `partition::leader_epochs`).

use super::{named, on_partitions};
use super::{Reply, RequestContext};
use crate::partition::EpochQuery;
use crate::shard::Shard;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 4);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Reply<OffsetForLeaderEpochResponse> {
    let named = named(
        &request.topics,
        |t| &t.topic,
        |t| &t.partitions,
        |p| {
            let query = EpochQuery {
                current_leader_epoch: p.current_leader_epoch,
                leader_epoch: p.leader_epoch,
            };
            (p.partition, Ok(query))
        },
    );
    let ends = on_partitions(&shard, named, |partitions, queries| {
        Box::pin(async move { partitions.epoch_end_offsets(queries).await })
    })
    .await;
    let mut ends = ends.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .zip(ends.by_ref())
                .map(|(asked, end)| {
                    let answer = EpochEndOffset::default().with_partition(asked.partition);
                    match end {
                        Ok((epoch, end_offset)) => {
                            answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                        }
                        Err(error) => answer
                            .with_error_code(error.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
