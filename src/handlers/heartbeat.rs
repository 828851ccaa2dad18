//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use super::group_error;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::Instant;

pub const VERSIONS: (i16, i16) = (0, 4);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: HeartbeatRequest,
) -> Reply<HeartbeatResponse> {
    let group_id = request.group_id.as_str();
    let outcome = match group_error(&shard, group_id) {
        Some(error) => Err(error),
        None => shard
            .groups
            .with_group(group_id, |g| {
                g.heartbeat(
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                    request.generation_id,
                    Instant::now(),
                )
            })
            .unwrap_or(Err(ResponseError::UnknownMemberId)),
    };
    Some(HeartbeatResponse::default().with_error_code(outcome.err().map_or(0, |e| e.code())))
}
