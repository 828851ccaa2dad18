//! ListGroups: the groups this shard (broker) coordinates — those with members and those
//! that only have committed offsets — filtered by state (v4+) and type (v5+).

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::group::consumer::ConsumerGroup;
use crate::shard::Shard;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: ListGroupsRequest,
) -> Reply<ListGroupsResponse> {
    // name → (protocol type, state, group type)
    let mut groups: BTreeMap<String, (String, &'static str, &'static str)> = BTreeMap::new();
    let stored = match shard.groups.offsets.stored_groups().await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(%error, "could not list groups with committed offsets");
            let code = error.group_error().code();
            return Some(ListGroupsResponse::default().with_error_code(code));
        }
    };
    for name in stored.into_iter().filter(|g| shard.coordinates(g)) {
        groups.insert(name, (String::new(), "Empty", "classic"));
    }
    for (name, emptied) in shard.groups.emptied_groups() {
        groups.insert(name, (emptied.protocol_type, "Empty", emptied.group_type));
    }
    for name in shard.groups.group_ids() {
        let described = shard
            .groups
            .with_group(&name, |g| {
                let protocol_type = g.protocol_type.clone().unwrap_or_default();
                (protocol_type, g.state.name(), "classic")
            })
            .or_else(|| {
                let consumer = |g: &mut ConsumerGroup| ("consumer".into(), g.state(), "consumer");
                shard.groups.with_consumer_group(&name, consumer)
            });
        if let Some(described) = described {
            groups.insert(name, described);
        }
    }
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
        .filter(|(_, (_, state, group_type))| wanted_type(group_type) && wanted_state(state))
        .map(|(name, (protocol_type, state, group_type))| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(name)))
                .with_protocol_type(str_bytes(protocol_type))
                .with_group_state(str_bytes(state))
                .with_group_type(str_bytes(group_type))
        })
        .collect();
    Some(ListGroupsResponse::default().with_groups(listed))
}
