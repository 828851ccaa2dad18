//! DeleteGroups: groups without members go, with their committed offsets.

use super::{Reply, RequestContext};
use crate::error::Fault;
use crate::shard::Shard;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DeleteGroupsRequest,
) -> Reply<DeleteGroupsResponse> {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in &request.groups_names {
        let deleted = match shard.coordinator(group_id) {
            Ok(groups) => groups.delete(group_id).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &deleted {
            if error.fault() != Fault::Client {
                tracing::warn!(group = group_id.as_str(), %error, "group not deleted");
            }
        }
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(deleted.err().map_or(0, |e| e.group_error().code())),
        );
    }
    Some(DeleteGroupsResponse::default().with_results(results))
}
