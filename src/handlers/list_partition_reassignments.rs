//! ListPartitionReassignments: a partition lives on the shard that owns it and is never
//! being moved, so no reassignment is ever in progress.

use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(
    _shard: Rc<Shard>,
    _context: RequestContext,
    _request: ListPartitionReassignmentsRequest,
) -> Reply<ListPartitionReassignmentsResponse> {
    // Kafka lists only partitions being reassigned, whatever the request names.
    Some(ListPartitionReassignmentsResponse::default())
}
