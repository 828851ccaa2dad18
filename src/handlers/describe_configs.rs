//! DescribeConfigs for topics and brokers: the configs set on a topic over the defaults
//! tidegate runs with, and the broker settings its flags fix.

use super::{error_message, str_bytes};
use super::{Reply, RequestContext};
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::topic_config::{self, Described, SOURCE_STATIC_BROKER};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 4);

/// ConfigResource types, as Kafka numbers them.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DescribeConfigsRequest,
) -> Reply<DescribeConfigsResponse> {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        results.push(match describe(&shard, resource).await {
            Ok(configs) => result.with_configs(
                configs
                    .into_iter()
                    .map(|d| entry(d, &request, context.version))
                    .collect(),
            ),
            Err(error) => result
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        });
    }
    Some(DescribeConfigsResponse::default().with_results(results))
}

async fn describe(shard: &Shard, resource: &DescribeConfigsResource) -> Result<Vec<Described>> {
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => {
            let topic = shard
                .topics
                .get(&resource.resource_name)
                .await?
                .ok_or(Error::UnknownTopicOrPartition)?;
            topic_config::of_topic(&topic, &shard.config)
        }
        RESOURCE_BROKER => broker_configs(shard, &resource.resource_name)?,
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
    Ok(entries.into_iter().filter(|d| wanted(&d.name)).collect())
}

fn entry(
    described: Described,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResourceResult {
    let synonyms = match request.include_synonyms {
        true => described
            .synonyms
            .iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name.clone()))
                    .with_value(Some(str_bytes(value.clone())))
                    .with_source(*source)
            })
            .collect(),
        false => Vec::new(),
    };
    let entry = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(described.name))
        .with_value(Some(str_bytes(described.value)))
        .with_read_only(described.read_only)
        .with_config_source(described.source)
        .with_synonyms(synonyms);
    // Type and documentation exist from v3.
    match version >= 3 {
        true => entry
            .with_config_type(described.config_type)
            .with_documentation(
                request
                    .include_documentation
                    .then(|| str_bytes(described.documentation)),
            ),
        false => entry,
    }
}

/// ConfigType codes, as Kafka numbers them.
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const LIST: i8 = 7;

/// The broker configs of node `name` (one of this cluster's), as tidegate's flags set them;
/// the cluster-wide default resource ("") has none, as no broker config is dynamic here.
fn broker_configs(shard: &Shard, name: &str) -> Result<Vec<Described>> {
    if name.is_empty() {
        return Ok(Vec::new());
    }
    let node_id = name.parse::<i32>().ok();
    let Some(node_shard) = node_id.and_then(|id| shard.cluster.shard_of_node(id)) else {
        return Err(Error::InvalidRequest(format!(
            "{name} is not a broker of this cluster"
        )));
    };
    let config = &shard.config;
    let broker = &shard.cluster.brokers(0)[node_shard];
    // Every listener's address of this shard, as Kafka lists its advertised.listeners.
    let listener = shard
        .config
        .listeners()
        .iter()
        .zip(&shard.cluster.listeners)
        .filter_map(|(listener, brokers)| {
            let b = brokers.get(node_shard)?;
            Some(format!("{}://{}:{}", listener.name, b.host, b.port))
        })
        .collect::<Vec<_>>()
        .join(",");
    let (retention_bytes, _) = topic_config::default_retention_bytes(config);
    let deletable = config.backend == crate::config::BackendKind::Memory;
    let configs: Vec<(&str, String, i8, &str)> = vec![
        (
            "advertised.listeners",
            listener.clone(),
            STRING,
            "Where clients reach this broker (one shard of tidegate).",
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            BOOLEAN,
            "--auto-create-topics",
        ),
        (
            "broker.id",
            broker.node_id.to_string(),
            INT,
            "This shard's node id (--node-id-base + shard).",
        ),
        (
            "compression.type",
            "producer".into(),
            STRING,
            "Batches are stored as producers send them.",
        ),
        (
            "default.replication.factor",
            "1".into(),
            INT,
            "Replication is the storage's concern.",
        ),
        (
            "delete.topic.enable",
            deletable.to_string(),
            BOOLEAN,
            "Whether the backend can delete topics (SeaweedMQ cannot).",
        ),
        (
            "fetch.max.bytes",
            config.fetch_max_bytes.to_string(),
            INT,
            "--fetch-max-bytes",
        ),
        (
            "group.consumer.heartbeat.interval.ms",
            config.group_consumer_heartbeat_interval_ms.to_string(),
            INT,
            "--group-consumer-heartbeat-interval-ms",
        ),
        (
            "group.consumer.session.timeout.ms",
            config.group_consumer_session_timeout_ms.to_string(),
            INT,
            "--group-consumer-session-timeout-ms",
        ),
        (
            "group.initial.rebalance.delay.ms",
            config.group_initial_rebalance_delay_ms.to_string(),
            INT,
            "--group-initial-rebalance-delay-ms",
        ),
        (
            "group.max.session.timeout.ms",
            config.group_max_session_timeout_ms.to_string(),
            INT,
            "--group-max-session-timeout-ms",
        ),
        (
            "group.min.session.timeout.ms",
            config.group_min_session_timeout_ms.to_string(),
            INT,
            "--group-min-session-timeout-ms",
        ),
        (
            "listeners",
            listener,
            STRING,
            "This shard's listener (see --listen, --broker-port-base).",
        ),
        (
            "log.cleanup.policy",
            "delete".into(),
            LIST,
            "Compaction is not implemented.",
        ),
        (
            "log.message.timestamp.type",
            "CreateTime".into(),
            STRING,
            "Default of message.timestamp.type.",
        ),
        (
            "log.retention.bytes",
            retention_bytes,
            LONG,
            "Memory backend: --memory-retention-bytes; SeaweedMQ keeps everything.",
        ),
        (
            "log.retention.check.interval.ms",
            config.log_retention_check_interval_ms.to_string(),
            LONG,
            "--log-retention-check-interval-ms",
        ),
        (
            "log.retention.ms",
            topic_config::DEFAULT_RETENTION_MS.to_string(),
            LONG,
            "Default of retention.ms.",
        ),
        (
            "message.max.bytes",
            config.message_max_bytes.to_string(),
            INT,
            "--message-max-bytes",
        ),
        (
            "min.insync.replicas",
            "1".into(),
            INT,
            "Replication is the storage's concern.",
        ),
        (
            "node.id",
            broker.node_id.to_string(),
            INT,
            "This shard's node id (--node-id-base + shard).",
        ),
        (
            "num.partitions",
            config.default_partitions.to_string(),
            INT,
            "--default-partitions",
        ),
        (
            "socket.request.max.bytes",
            config.max_request_size.to_string(),
            INT,
            "--max-request-size",
        ),
    ];
    Ok(configs
        .into_iter()
        .map(|(name, value, config_type, doc)| Described {
            name: name.to_string(),
            synonyms: vec![(name.to_string(), value.clone(), SOURCE_STATIC_BROKER)],
            value,
            source: SOURCE_STATIC_BROKER,
            config_type,
            documentation: doc,
            // Fixed by tidegate's flags: no request alters them.
            read_only: true,
        })
        .collect())
}
