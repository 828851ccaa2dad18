//! DeleteGroups: groups without members go, with their committed offsets.

use super::group_error;
use super::{Reply, RequestContext};
use crate::shard::Shard;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DeleteGroupsRequest,
) -> Reply<DeleteGroupsResponse> {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in &request.groups_names {
        let error = delete(&shard, group_id).await.err();
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(error.map_or(0, |e| e.code())),
        );
    }
    Some(DeleteGroupsResponse::default().with_results(results))
}

async fn delete(shard: &Shard, group: &str) -> Result<(), ResponseError> {
    if let Some(error) = group_error(shard, group) {
        return Err(error);
    }
    if shard.groups.is_active(group) {
        return Err(ResponseError::NonEmptyGroup);
    }
    let unavailable = |error: crate::error::Error| {
        tracing::warn!(group, %error, "could not delete committed offsets");
        error.group_error()
    };
    let offsets = shard.groups.offsets.fetch(group).await;
    // A group whose last member just left exists (Empty) even without commits, as in Kafka.
    let emptied = shard.groups.emptied(group).is_some();
    if offsets.map_err(unavailable)?.is_empty() && !emptied {
        return Err(ResponseError::GroupIdNotFound);
    }
    let deleted = shard.groups.offsets.delete(group, None).await;
    deleted.map_err(unavailable)?;
    // Only now: a store failure above leaves the group as it was, to be deleted again.
    shard.groups.forget_emptied(group);
    tracing::info!(group, "group deleted");
    Ok(())
}
