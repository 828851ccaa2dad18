//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 4);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: HeartbeatRequest,
) -> Reply<HeartbeatResponse> {
    let group_id = request.group_id.as_str();
    let member = (
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
    );
    let outcome = shard
        .coordinator(group_id)
        .and_then(|groups| groups.heartbeat(group_id, member, request.generation_id));
    let error_code = outcome.err().map_or(0, |e| e.group_error().code());
    Some(HeartbeatResponse::default().with_error_code(error_code))
}
