//! DescribeClientQuotas: tidegate enforces no client quotas, so it has none to describe.
//! Served because `kafka-configs --describe --entity-type users` asks for a user's quotas
//! before its SCRAM credentials, and fails if the API is missing.

use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(
    _shard: Rc<Shard>,
    _context: RequestContext,
    _request: DescribeClientQuotasRequest,
) -> Reply<DescribeClientQuotasResponse> {
    Some(DescribeClientQuotasResponse::default().with_entries(Some(Vec::new())))
}
