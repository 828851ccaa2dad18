//! LeaveGroup: members leave (v3+: several at once, by member or instance id).

use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: LeaveGroupRequest,
) -> Reply<LeaveGroupResponse> {
    let group_id = request.group_id.as_str();
    let groups = match shard.coordinator(group_id) {
        Ok(groups) => groups,
        Err(error) => {
            return Some(LeaveGroupResponse::default().with_error_code(error.group_error().code()))
        }
    };
    let leavers: Vec<(StrBytes, Option<StrBytes>)> = match context.version {
        0..=2 => vec![(request.member_id.clone(), None)],
        _ => request
            .members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect(),
    };
    let members: Vec<(&str, Option<&str>)> = leavers
        .iter()
        .map(|(member_id, instance_id)| (member_id.as_str(), instance_id.as_deref()))
        .collect();
    let outcomes = groups.leave(group_id, &members);
    let code = |outcome: &crate::error::Result<()>| {
        outcome.as_ref().err().map_or(0, |e| e.group_error().code())
    };
    if context.version <= 2 {
        let error_code = outcomes.first().map_or(0, code);
        return Some(LeaveGroupResponse::default().with_error_code(error_code));
    }
    let members = leavers
        .into_iter()
        .zip(&outcomes)
        .map(|((member_id, instance_id), outcome)| {
            MemberResponse::default()
                .with_member_id(member_id)
                .with_group_instance_id(instance_id)
                .with_error_code(code(outcome))
        })
        .collect();
    Some(LeaveGroupResponse::default().with_members(members))
}
