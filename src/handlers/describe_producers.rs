//! DescribeProducers (`kafka-transactions describe-producers`): the idempotent producers
//! each partition's owner knows, with their epoch and last sequence.

use super::{error_message, named, on_partitions};
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeProducersRequest,
) -> Reply<DescribeProducersResponse> {
    let named = named(
        &request.topics,
        |t| &t.name,
        |t| &t.partition_indexes,
        |&p| (p, Ok(())),
    );
    let found = on_partitions(&shard, named, |partitions, asked| {
        let partitions_asked: Vec<_> = asked.into_iter().map(|(tp, ())| tp).collect();
        Box::pin(async move { partitions.producers_on(&partitions_asked).await })
    })
    .await;
    let mut found = found.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_indexes
                .iter()
                .zip(found.by_ref())
                .map(|(&index, producers)| {
                    let answer = PartitionResponse::default().with_partition_index(index);
                    match producers {
                        Ok(producers) => answer.with_active_producers(
                            producers
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_used_ms)
                                        // No transactions: no coordinator, no open one.
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(-1)
                                })
                                .collect(),
                        ),
                        Err(error) => answer
                            .with_error_code(error.code())
                            .with_error_message(error_message(&error)),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(DescribeProducersResponse::default().with_topics(topics))
}
