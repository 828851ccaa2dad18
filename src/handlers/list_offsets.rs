//! ListOffsets: earliest, latest, max timestamp, or the first offset at a timestamp, asked
//! of each partition's owner.

use super::{named, on_partitions, Reply, RequestContext};
use crate::backend::OffsetSpec;
use crate::error::{Error, Result};
use crate::partition::OffsetQuery;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 10);

/// Special timestamps of the protocol.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ListOffsetsRequest,
) -> Reply<ListOffsetsResponse> {
    let named = named(
        &request.topics,
        |t| &t.name,
        |t| &t.partitions,
        |p| {
            let query = spec(p.timestamp).map(|spec| OffsetQuery {
                spec,
                current_leader_epoch: p.current_leader_epoch,
            });
            (p.partition_index, query)
        },
    );
    let answers = on_partitions(&shard, named, |partitions, queries| {
        Box::pin(async move { partitions.list_offsets(queries).await })
    })
    .await;

    let mut answers = answers.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .zip(answers.by_ref())
                .map(|(partition, answer)| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition.partition_index);
                    match answer {
                        // leader_epoch exists from v4; a field set that the version
                        // lacks cannot be encoded.
                        Ok(found) => response
                            .with_offset(found.offset)
                            .with_timestamp(found.timestamp)
                            .with_leader_epoch(match context.version {
                                4.. => found.leader_epoch,
                                _ => -1,
                            }),
                        Err(error) => response
                            .with_error_code(error.code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(ListOffsetsResponse::default().with_topics(topics))
}

fn spec(timestamp: i64) -> Result<OffsetSpec> {
    match timestamp {
        LATEST | LATEST_TIERED => Ok(OffsetSpec::Latest),
        EARLIEST | EARLIEST_LOCAL => Ok(OffsetSpec::Earliest),
        MAX_TIMESTAMP => Ok(OffsetSpec::MaxTimestamp),
        ts if ts >= 0 => Ok(OffsetSpec::Timestamp(ts)),
        other => Err(Error::InvalidRequest(format!(
            "unknown special timestamp {other}"
        ))),
    }
}
