//! LeaveGroup: members leave (v3+: several at once, by member or instance id).

use super::group_error;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::Instant;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: LeaveGroupRequest,
) -> Reply<LeaveGroupResponse> {
    let group_id = request.group_id.as_str();
    if let Some(error) = group_error(&shard, group_id) {
        return Some(LeaveGroupResponse::default().with_error_code(error.code()));
    }
    let leavers: Vec<(StrBytes, Option<StrBytes>)> = match context.version {
        0..=2 => vec![(request.member_id.clone(), None)],
        _ => request
            .members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect(),
    };
    let outcomes: Vec<Result<(), ResponseError>> = leavers
        .iter()
        .map(|(member_id, instance_id)| {
            shard
                .groups
                .with_group(group_id, |g| {
                    g.leave(member_id, instance_id.as_deref(), Instant::now())
                })
                .unwrap_or(Err(ResponseError::UnknownMemberId))
        })
        .collect();
    if context.version <= 2 {
        let error = outcomes.first().and_then(|o| o.err());
        return Some(LeaveGroupResponse::default().with_error_code(error.map_or(0, |e| e.code())));
    }
    let members = leavers
        .into_iter()
        .zip(outcomes)
        .map(|((member_id, instance_id), outcome)| {
            MemberResponse::default()
                .with_member_id(member_id)
                .with_group_instance_id(instance_id)
                .with_error_code(outcome.err().map_or(0, |e| e.code()))
        })
        .collect();
    Some(LeaveGroupResponse::default().with_members(members))
}
