//! SyncGroup: the leader hands in the assignment; every member waits for its part.

use super::{code, group_error, str_bytes};
use super::{Reply, RequestContext};
use crate::group::state::{Pending, SyncResult};
use crate::shard::Shard;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: SyncGroupRequest,
) -> Reply<SyncGroupResponse> {
    let group_id = request.group_id.to_string();
    if let Some(error) = group_error(&shard, &group_id) {
        return Some(failed(error));
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let pending = shard.groups.with_group(&group_id, |g| {
        g.sync(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            (
                request.protocol_type.as_deref(),
                request.protocol_name.as_deref(),
            ),
            assignments,
        )
    });
    let result = match pending {
        None => return Some(failed(ResponseError::UnknownMemberId)),
        Some(Pending::Ready(result)) => result,
        Some(Pending::Wait(receiver)) => match receiver.await {
            Ok(result) => result,
            Err(_) => return Some(failed(ResponseError::UnknownMemberId)),
        },
    };
    Some(response(result))
}

fn failed(error: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(error.code())
}

fn response(result: SyncResult) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(code(result.error))
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(result.protocol_name.map(str_bytes))
        .with_assignment(result.assignment)
}
