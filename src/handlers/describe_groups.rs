//! DescribeGroups: state, protocol and members of groups this shard coordinates.

use super::{authorized_operations, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::group::Description;
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
        let found = match shard.coordinator(group_id) {
            Ok(groups) => groups.describe(group_id).await,
            Err(error) => Err(error),
        };
        let described = match found {
            Ok(Description::Classic {
                state,
                protocol_type,
                protocol,
                members,
            }) => {
                let members = members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.id))
                            .with_group_instance_id(m.instance_id.map(str_bytes))
                            .with_client_id(str_bytes(m.client_id))
                            .with_client_host(str_bytes(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect();
                described
                    .with_group_state(str_bytes(state))
                    .with_protocol_type(str_bytes(protocol_type))
                    .with_protocol_data(str_bytes(protocol))
                    .with_members(members)
            }
            Ok(Description::Empty(listing)) => described
                .with_group_state(str_bytes("Empty"))
                .with_protocol_type(str_bytes(listing.protocol_type)),
            // A consumer-protocol group is not a classic group, as in Kafka; v6+ says so.
            Ok(Description::Consumer { .. } | Description::Dead) if context.version >= 6 => {
                described
                    .with_group_state(str_bytes("Dead"))
                    .with_error_code(ResponseError::GroupIdNotFound.code())
            }
            Ok(Description::Consumer { .. } | Description::Dead) => {
                described.with_group_state(str_bytes("Dead"))
            }
            Err(error) => described.with_error_code(error.group_error().code()),
        };
        groups.push(described);
    }
    Some(DescribeGroupsResponse::default().with_groups(groups))
}
