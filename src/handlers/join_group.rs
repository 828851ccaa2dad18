//! JoinGroup: a consumer (re)joins its group and waits until the rebalance completes.

use super::{code, str_bytes};
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::group::state::{JoinRequest, JoinResult};
use crate::shard::Shard;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use std::rc::Rc;
use std::time::Duration;

pub const VERSIONS: (i16, i16) = (0, 9);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: JoinGroupRequest,
) -> Reply<JoinGroupResponse> {
    let group_id = request.group_id.as_str();
    let groups = match shard.coordinator(group_id) {
        Ok(groups) => groups,
        Err(error) => {
            let failed = JoinResult::failed(error.group_error(), &request.member_id);
            return Some(response(failed, context.version));
        }
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: context.client_id(),
        client_host: context.connection.client_host.clone(),
        session_timeout: millis(request.session_timeout_ms),
        // v0 has no rebalance timeout: the session timeout serves for both.
        rebalance_timeout: match context.version {
            0 => millis(request.session_timeout_ms),
            _ => millis(request.rebalance_timeout_ms),
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: context.version >= 4,
    };
    // A parked join ends at shutdown as it would when the coordinator moves: the client
    // finds the coordinator again and rejoins there (or here, once restarted).
    let shutdown = &context.connection.shutdown;
    let result = match shutdown.unless_begun(groups.join(group_id, join)).await {
        Some(result) => result,
        None => JoinResult::failed(Error::NotCoordinator.group_error(), &request.member_id),
    };
    Some(response(result, context.version))
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let members = result
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.map(str_bytes))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(code(result.error))
        .with_generation_id(result.generation)
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(result.protocol_name.map(str_bytes))
        .with_leader(str_bytes(result.leader))
        // skip_assignment exists from v9 (KIP-814). Below it a returning static leader is
        // not told to skip: it computes an assignment, which the group ignores (as Kafka does).
        .with_skip_assignment(result.skip_assignment && version >= 9)
        .with_member_id(str_bytes(result.member_id))
        .with_members(members)
}
