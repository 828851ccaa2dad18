//! DescribeQuorum (`kafka-metadata-quorum`): tidegate has no KRaft quorum; its metadata is
//! decided in one process, which is what a one-voter quorum means. The controller node (see
//! `Cluster::controller_id`) is the voter and leader; the other shards' nodes observe it.

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

/// The one metadata log a KRaft quorum replicates.
const METADATA_TOPIC: &str = "__cluster_metadata";
const LEADER_EPOCH: i32 = 0;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DescribeQuorumRequest,
) -> Reply<DescribeQuorumResponse> {
    let asks_metadata_log = request.topics.len() == 1
        && &*request.topics[0].topic_name == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    let partition = PartitionData::default().with_partition_index(0);
    let partition = match asks_metadata_log {
        false => partition.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
        true => {
            let now_ms = crate::unix_time().as_millis() as i64;
            let leader = shard.cluster.controller_id();
            let replica = |node_id: i32| {
                let state = ReplicaState::default()
                    .with_replica_id(BrokerId(node_id))
                    .with_log_end_offset(0);
                // The timestamps exist from v1.
                match context.version >= 1 {
                    true => state
                        .with_last_fetch_timestamp(now_ms)
                        .with_last_caught_up_timestamp(now_ms),
                    false => state,
                }
            };
            let observers = shard
                .cluster
                .brokers(context.listener())
                .iter()
                .filter(|b| b.node_id != leader)
                .map(|b| replica(b.node_id))
                .collect();
            partition
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(LEADER_EPOCH)
                .with_high_watermark(0)
                .with_current_voters(vec![replica(leader)])
                .with_observers(observers)
        }
    };
    let topic = TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let response = DescribeQuorumResponse::default().with_topics(vec![topic]);
    // Voters' endpoints exist from v2.
    let nodes = shard
        .cluster
        .brokers(context.listener())
        .iter()
        .filter(|b| b.node_id == shard.cluster.controller_id() && context.version >= 2)
        .map(|b| {
            Node::default()
                .with_node_id(BrokerId(b.node_id))
                .with_listeners(vec![Listener::default()
                    .with_name(str_bytes("PLAINTEXT"))
                    .with_host(str_bytes(b.host.clone()))
                    .with_port(b.port)])
        })
        .collect();
    Some(response.with_nodes(nodes))
}
