//! DescribeConfigs for topics and brokers: the configs a topic was created with, over the
//! defaults tidegate runs with.

use super::{error_message, str_bytes};
use crate::error::{Error, Result};
use crate::protocol::{Reply, RequestContext};
use crate::shard::Shard;
use crate::topic_config;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 4);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeConfigsRequest,
) -> Reply<DescribeConfigsResponse> {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        results.push(match describe(&shard, resource).await {
            Ok(configs) => result.with_configs(configs),
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        });
    }
    Some(DescribeConfigsResponse::default().with_results(results))
}

async fn describe(
    shard: &Shard,
    resource: &DescribeConfigsResource,
) -> Result<Vec<DescribeConfigsResourceResult>> {
    let entries: Vec<(String, String, i8)> = match resource.resource_type {
        RESOURCE_TOPIC => {
            let topic = shard
                .backend
                .topic(&resource.resource_name)
                .await?
                .ok_or(Error::UnknownTopicOrPartition)?;
            topic_config::of_topic(&topic, &shard.config)
        }
        RESOURCE_BROKER => broker_configs(shard)
            .into_iter()
            .map(|(name, value)| (name, value, topic_config::SOURCE_STATIC_BROKER))
            .collect(),
        other => {
            return Err(Error::InvalidRequest(format!(
                "resource type {other} has no configs here"
            )))
        }
    };
    // Null or empty both mean every config, as in Kafka.
    let wanted = |name: &str| match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| &**k == name),
        _ => true,
    };
    Ok(entries
        .into_iter()
        .filter(|(name, _, _)| wanted(name))
        .map(|(name, value, source)| {
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_read_only(source != topic_config::SOURCE_TOPIC)
                .with_config_source(source)
        })
        .collect())
}

fn broker_configs(shard: &Shard) -> Vec<(String, String)> {
    [
        (
            "auto.create.topics.enable",
            shard.config.auto_create_topics.to_string(),
        ),
        ("broker.id", shard.cluster.node_id(shard.id).to_string()),
        (
            "num.partitions",
            shard.config.default_partitions.to_string(),
        ),
        (
            "socket.request.max.bytes",
            shard.config.max_request_size.to_string(),
        ),
        ("fetch.max.bytes", shard.config.fetch_max_bytes.to_string()),
        (
            "message.max.bytes",
            shard.config.message_max_bytes.to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}
