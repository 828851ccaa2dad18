//! DescribeGroups: state, protocol and members of groups this shard coordinates.

use super::{authorized_operations, group_error, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 6);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DescribeGroupsRequest,
) -> Reply<DescribeGroupsResponse> {
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in &request.groups {
        let described = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(authorized_operations(
                request.include_authorized_operations,
                Resource::Group,
            ));
        if let Some(error) = group_error(&shard, group_id) {
            groups.push(described.with_error_code(error.code()));
            continue;
        }
        let live = shard.groups.with_group(group_id, |g| {
            let stable = g.state == crate::group::state::GroupState::Stable;
            let protocol = g.protocol_name.clone();
            let members = g
                .members
                .values()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.id.clone()))
                        .with_group_instance_id(m.instance_id.clone().map(str_bytes))
                        .with_client_id(str_bytes(m.client_id.clone()))
                        .with_client_host(str_bytes(m.client_host.clone()))
                        .with_member_metadata(m.metadata(protocol.as_deref()))
                        .with_member_assignment(match stable {
                            true => m.assignment.clone(),
                            false => Default::default(),
                        })
                })
                .collect();
            described
                .clone()
                .with_group_state(str_bytes(g.state.name()))
                .with_protocol_type(str_bytes(g.protocol_type.clone().unwrap_or_default()))
                .with_protocol_data(str_bytes(protocol.unwrap_or_default()))
                .with_members(members)
        });
        let described = match live {
            Some(described) => described,
            // No members: Empty if its last member left recently or it has committed
            // offsets, else it does not exist.
            None => match shard.groups.emptied(group_id) {
                Some(emptied) => described
                    .with_group_state(str_bytes("Empty"))
                    .with_protocol_type(str_bytes(emptied.protocol_type)),
                None => match shard.groups.offsets.fetch(group_id).await {
                    Ok(offsets) if !offsets.is_empty() => {
                        described.with_group_state(str_bytes("Empty"))
                    }
                    Ok(_) if context.version >= 6 => described
                        .with_group_state(str_bytes("Dead"))
                        .with_error_code(ResponseError::GroupIdNotFound.code()),
                    Ok(_) => described.with_group_state(str_bytes("Dead")),
                    Err(error) => described.with_error_code(error.group_error().code()),
                },
            },
        };
        groups.push(described);
    }
    Some(DescribeGroupsResponse::default().with_groups(groups))
}
