//! Metadata: one broker per shard; each partition led by the shard that owns it.

use super::{authorized_operations, find_or_create_topic, find_topic_by_id, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::backend::TopicMeta;
use crate::shard::Shard;
use crate::TopicPartition;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 13);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: MetadataRequest,
) -> Reply<MetadataResponse> {
    // Before v4 there is no flag, and Kafka auto-creates.
    let may_create = context.version < 4 || request.allow_auto_topic_creation;
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => context.version == 0 && topics.is_empty(),
    };
    let topic_operations =
        authorized_operations(request.include_topic_authorized_operations, Resource::Topic);
    let mut topics = Vec::new();
    if all_topics {
        match shard.topics.list().await {
            Ok(all) => {
                for topic in &all {
                    topics.push(describe(&shard, topic, topic_operations));
                    // Thousands of partitions take a while: let the core serve others.
                    glommio::yield_if_needed().await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list topics"),
        }
    }
    for wanted in request.topics.iter().flatten() {
        let found = match &wanted.name {
            Some(name) => find_or_create_topic(&shard, name, may_create.then_some(&context)).await,
            None => find_topic_by_id(&shard, wanted.topic_id).await,
        };
        topics.push(match found {
            Ok(topic) => describe(&shard, &topic, topic_operations),
            Err(error) => MetadataResponseTopic::default()
                .with_name(wanted.name.clone())
                .with_topic_id(wanted.topic_id)
                .with_error_code(error.code()),
        });
    }
    Some(
        MetadataResponse::default()
            .with_brokers(brokers(&shard, &context))
            .with_cluster_id(Some(str_bytes(shard.cluster.cluster_id.clone())))
            .with_controller_id(BrokerId(shard.cluster.controller_id()))
            .with_topics(topics)
            .with_cluster_authorized_operations(authorized_operations(
                request.include_cluster_authorized_operations,
                Resource::Cluster,
            )),
    )
}

/// The brokers on the listener the client came in on.
fn brokers(shard: &Shard, context: &RequestContext) -> Vec<MetadataResponseBroker> {
    shard
        .cluster
        .brokers(context.listener())
        .iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
        })
        .collect()
}

/// The broker that leads a partition: the node of the shard that owns it.
pub fn leader_of(shard: &Shard, topic: &TopicMeta, index: i32) -> BrokerId {
    let owner = shard.owner(&TopicPartition::new(topic.name.clone(), index));
    BrokerId(shard.cluster.node_id(owner))
}

fn describe(shard: &Shard, topic: &TopicMeta, operations: i32) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|index| {
            let leader = leader_of(shard, topic, index);
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(leader)
                .with_leader_epoch(topic.leader_epoch(index))
                .with_replica_nodes(vec![leader])
                .with_isr_nodes(vec![leader])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&*topic.name))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations)
}
