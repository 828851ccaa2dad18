//! CreateTopics, including validate_only.

use super::{error_message, validate_topic_name};
use crate::error::{Error, Result};
use crate::protocol::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (2, 7);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: CreateTopicsRequest,
) -> Reply<CreateTopicsResponse> {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let named_twice = request
            .topics
            .iter()
            .filter(|t| t.name == topic.name)
            .count()
            > 1;
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_configs(Some(Vec::new()));
        let outcome = match named_twice {
            true => Err(Error::InvalidRequest(format!(
                "topic {} named twice",
                &*topic.name
            ))),
            false => create(&shard, topic, request.validate_only).await,
        };
        results.push(match outcome {
            Ok((id, partitions)) => result
                .with_topic_id(id)
                .with_num_partitions(partitions)
                .with_replication_factor(1),
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error_message(&error))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    Some(CreateTopicsResponse::default().with_topics(results))
}

async fn create(
    shard: &Shard,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<(uuid::Uuid, i32)> {
    validate_topic_name(&topic.name)?;
    let partitions = match (topic.num_partitions, topic.assignments.len()) {
        (-1, 0) => shard.config.default_partitions,
        (-1, assigned) => assigned as i32,
        (n, _) if n > 0 => n,
        (n, _) => {
            return Err(Error::InvalidPartitions(format!(
                "{n} partitions: must be positive, or -1 for the default"
            )))
        }
    };
    // Durability is the storage's concern; any factor a client asks for is accepted.
    if topic.replication_factor == 0 || topic.replication_factor < -1 {
        return Err(Error::InvalidReplicationFactor(format!(
            "replication factor {} must be positive, or -1 for the default",
            topic.replication_factor
        )));
    }
    let configs: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
        .collect();
    let meta = shard
        .backend
        .create_topic(&topic.name, partitions, configs, validate_only)
        .await?;
    if !validate_only {
        tracing::info!(topic = &*meta.name, partitions, "created topic");
    }
    Ok((meta.id, meta.partitions))
}
