//! DeleteRecords (`kafka-delete-records`): moves each partition's log start forward, on the
//! partition's owner. The memory backend drops what lies before it; reads below it get
//! OFFSET_OUT_OF_RANGE. SeaweedMQ cannot drop the start of a partition: POLICY_VIOLATION.

use super::{named, on_partitions};
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DeleteRecordsRequest,
) -> Reply<DeleteRecordsResponse> {
    let named = named(
        &request.topics,
        |t| &t.name,
        |t| &t.partitions,
        |p| (p.partition_index, Ok(p.offset)),
    );
    let results = on_partitions(&shard, named, |partitions, deletions| {
        Box::pin(async move { partitions.delete_records(deletions).await })
    })
    .await;
    let mut results = results.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .zip(results.by_ref())
                .map(|(partition, result)| {
                    let answer = DeleteRecordsPartitionResult::default()
                        .with_partition_index(partition.partition_index);
                    match result {
                        Ok(low_watermark) => answer.with_low_watermark(low_watermark),
                        Err(error) => {
                            tracing::debug!(topic = &**topic.name, %error, "records not deleted");
                            answer.with_low_watermark(-1).with_error_code(error.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(DeleteRecordsResponse::default().with_topics(topics))
}
