//! AlterPartitionReassignments: refused. tidegate places each partition on the shard that
//! owns it (and SeaweedMQ places its data), so replicas cannot be moved by request; a
//! cancellation finds nothing in progress.

use super::{error_message, named_partitions};
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> Reply<AlterPartitionReassignmentsResponse> {
    let refused = || {
        Error::InvalidReplicaAssignment(
            "tidegate places every partition on the shard that owns it; replicas cannot be \
             reassigned"
                .into(),
        )
    };
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let indexes: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
        let found = named_partitions(&shard, &topic.name, &indexes).await;
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, partition)| {
                let error = match &found {
                    Err(error) => error.clone(),
                    Ok(found) => match &found[i].1 {
                        Err(error) => error.clone(),
                        // A null replica list cancels a reassignment.
                        Ok(()) if partition.replicas.is_none() => Error::NoReassignmentInProgress,
                        Ok(()) => refused(),
                    },
                };
                ReassignablePartitionResponse::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(error.code())
                    .with_error_message(error_message(&error))
            })
            .collect();
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    Some(
        AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(request.allow_replication_factor_change)
            .with_responses(responses),
    )
}
