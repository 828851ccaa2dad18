//! ListGroups: the groups this shard (broker) coordinates — those with members and those
//! that only have committed offsets — filtered by state (v4+) and type (v5+).

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: ListGroupsRequest,
) -> Reply<ListGroupsResponse> {
    let groups = shard.all_groups();
    let groups = match groups.list(|group| shard.coordinates(group)).await {
        Ok(groups) => groups,
        Err(error) => {
            tracing::warn!(%error, "could not list groups with committed offsets");
            let code = error.group_error().code();
            return Some(ListGroupsResponse::default().with_error_code(code));
        }
    };
    let wanted_state = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    let wanted_type = |group_type: &str| {
        request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(group_type))
    };
    let listed = groups
        .into_iter()
        .filter(|(_, listed)| wanted_type(listed.group_type) && wanted_state(listed.state))
        .map(|(name, listed)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(name)))
                .with_protocol_type(str_bytes(listed.protocol_type))
                .with_group_state(str_bytes(listed.state))
                .with_group_type(str_bytes(listed.group_type))
        })
        .collect();
    Some(ListGroupsResponse::default().with_groups(listed))
}
