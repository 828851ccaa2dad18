//! DescribeCluster: the same brokers Metadata advertises.

use super::{authorized_operations, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DescribeClusterRequest,
) -> Reply<DescribeClusterResponse> {
    let brokers = shard
        .cluster
        .brokers(context.listener())
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
        })
        .collect();
    Some(
        DescribeClusterResponse::default()
            .with_endpoint_type(1)
            .with_cluster_id(str_bytes(shard.cluster.cluster_id.clone()))
            .with_controller_id(BrokerId(shard.cluster.controller_id()))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(authorized_operations(
                request.include_cluster_authorized_operations,
                Resource::Cluster,
            )),
    )
}
