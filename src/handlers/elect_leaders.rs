//! ElectLeaders: every partition's leader is the shard that owns it, so there is never an
//! election to hold; existing partitions answer ELECTION_NOT_NEEDED, as Kafka does for a
//! partition whose preferred leader already leads.

use super::{error_message, named_partitions};
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: ElectLeadersRequest,
) -> Reply<ElectLeadersResponse> {
    // A null list asks for every partition; Kafka then lists only the partitions it elected
    // a leader for, here none.
    let mut results = Vec::new();
    for topic in request.topic_partitions.iter().flatten() {
        let outcome = named_partitions(&shard, &topic.topic, &topic.partitions).await;
        let partitions: Vec<(i32, Result<(), Error>)> = match outcome {
            Ok(found) => found
                .into_iter()
                .map(|(p, exists)| (p, exists.and(Err(Error::ElectionNotNeeded))))
                .collect(),
            Err(error) => topic
                .partitions
                .iter()
                .map(|&p| (p, Err(error.clone())))
                .collect(),
        };
        let partition_result = partitions
            .into_iter()
            .map(|(partition, outcome)| {
                let error = outcome.err();
                PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(error.as_ref().map_or(0, Error::code))
                    .with_error_message(error.as_ref().and_then(error_message))
            })
            .collect();
        results.push(
            ReplicaElectionResult::default()
                .with_topic(topic.topic.clone())
                .with_partition_result(partition_result),
        );
    }
    Some(ElectLeadersResponse::default().with_replica_election_results(results))
}
