//! CreatePartitions: grow a topic, never shrink it.

use super::{check_partition_limits, error_message};
use super::{Reply, RequestContext};
use crate::error::{Error, Result};
use crate::shard::Shard;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: CreatePartitionsRequest,
) -> Reply<CreatePartitionsResponse> {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match grow(&shard, topic, request.validate_only).await {
            Ok(()) => result,
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        });
    }
    Some(CreatePartitionsResponse::default().with_results(results))
}

async fn grow(shard: &Shard, topic: &CreatePartitionsTopic, validate_only: bool) -> Result<()> {
    if topic.count < 1 {
        return Err(Error::InvalidPartitions(format!(
            "{} partitions",
            topic.count
        )));
    }
    if let Some(meta) = shard.topics.get(&topic.name).await? {
        let added = i64::from(topic.count) - i64::from(meta.partitions);
        if added > 0 {
            check_partition_limits(shard, topic.count, added).await?;
        }
    }
    shard
        .topics
        .create_partitions(&topic.name, topic.count, validate_only)
        .await?;
    if !validate_only {
        tracing::info!(
            topic = topic.name.as_str(),
            count = topic.count,
            "grew topic"
        );
    }
    Ok(())
}
