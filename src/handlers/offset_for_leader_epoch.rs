//! OffsetForLeaderEpoch: where a leader epoch ends. Every partition has had one leader
//! epoch, 0, since it was created (tidegate reports 0 in Metadata), so epoch 0 ends at the
//! high watermark; a later epoch than the current one is unknown to this leader.

use super::{named, on_partitions};
use super::{Reply, RequestContext};
use crate::backend::OffsetSpec;
use crate::shard::Shard;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 4);

/// The one leader epoch every partition has.
const LEADER_EPOCH: i32 = 0;
/// "Not given" in `current_leader_epoch`.
const NO_EPOCH: i32 = -1;

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Reply<OffsetForLeaderEpochResponse> {
    let named = named(
        &request.topics,
        |t| &t.topic,
        |t| &t.partitions,
        |p| (p.partition, Ok(OffsetSpec::Latest)),
    );
    let ends = on_partitions(&shard, named, |partitions, queries| {
        Box::pin(async move { partitions.list_offsets(queries).await })
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
                    // The client's view of the current epoch is checked first, as in Kafka.
                    let fenced = match asked.current_leader_epoch {
                        NO_EPOCH | LEADER_EPOCH => None,
                        newer if newer > LEADER_EPOCH => Some(ResponseError::UnknownLeaderEpoch),
                        _ => Some(ResponseError::FencedLeaderEpoch),
                    };
                    match (fenced, end) {
                        (Some(error), _) => failed(answer, error.code()),
                        (None, Err(error)) => failed(answer, error.code()),
                        (None, Ok(_)) if asked.leader_epoch > LEADER_EPOCH => {
                            answer.with_leader_epoch(-1).with_end_offset(-1)
                        }
                        (None, Ok(high_watermark)) => answer
                            .with_leader_epoch(LEADER_EPOCH)
                            .with_end_offset(high_watermark.offset),
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

fn failed(answer: EpochEndOffset, code: i16) -> EpochEndOffset {
    answer
        .with_error_code(code)
        .with_leader_epoch(-1)
        .with_end_offset(-1)
}
