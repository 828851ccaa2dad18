//! CreateTopics, including validate_only.

use super::{check_partition_limits, error_message, str_bytes, validate_topic_name};
use super::{Reply, RequestContext};
use crate::backend::TopicMeta;
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::topic_config;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

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
            Ok(meta) => result
                .with_topic_id(meta.id)
                .with_num_partitions(meta.partitions)
                .with_replication_factor(1)
                .with_configs(Some(configs(&shard, &meta))),
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
) -> Result<Arc<TopicMeta>> {
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
    // An existing topic is answered as such, whatever the limits say.
    if shard.topics.get(&topic.name).await?.is_some() {
        return Err(Error::TopicAlreadyExists);
    }
    check_partition_limits(shard, partitions, i64::from(partitions)).await?;
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
    for (name, value) in &configs {
        topic_config::validate(name, value)?;
    }
    let meta = shard
        .topics
        .create(&topic.name, partitions, configs, validate_only)
        .await?;
    if !validate_only {
        tracing::info!(topic = &*meta.name, partitions, "created topic");
    }
    Ok(meta)
}

/// The created topic's configs, as Kafka reports them from v5.
fn configs(shard: &Shard, topic: &TopicMeta) -> Vec<CreatableTopicConfigs> {
    topic_config::of_topic(topic, &shard.config)
        .into_iter()
        .map(|described| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(described.name))
                .with_value(Some(str_bytes(described.value)))
                .with_read_only(false)
                .with_config_source(described.source)
        })
        .collect()
}
