//! SyncGroup: the leader hands in the assignment; every member waits for its part.

use super::{code, str_bytes};
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::group::state::SyncResult;
use crate::shard::Shard;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: SyncGroupRequest,
) -> Reply<SyncGroupResponse> {
    let group_id = request.group_id.as_str();
    let groups = match shard.coordinator(group_id) {
        Ok(groups) => groups,
        Err(error) => {
            return Some(SyncGroupResponse::default().with_error_code(error.group_error().code()))
        }
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let member = (
        request.member_id.as_str(),
        request.group_instance_id.as_deref(),
    );
    let protocol = (
        request.protocol_type.as_deref(),
        request.protocol_name.as_deref(),
    );
    let sync = groups.sync(
        group_id,
        member,
        request.generation_id,
        protocol,
        assignments,
    );
    // As a parked JoinGroup does (see join_group).
    let result = match context.connection.shutdown.unless_begun(sync).await {
        Some(result) => result,
        None => SyncResult::failed(Error::NotCoordinator.group_error()),
    };
    Some(response(result))
}

fn response(result: SyncResult) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_error_code(code(result.error))
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(result.protocol_name.map(str_bytes))
        .with_assignment(result.assignment)
}
