//! DeleteTopics, by name or (v6+) by topic id.

use super::{error_message, find_topic_by_id, str_bytes};
use super::{Reply, RequestContext};
use crate::error::Result;
use crate::shard::Shard;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use std::rc::Rc;
use uuid::Uuid;

pub const VERSIONS: (i16, i16) = (1, 6);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DeleteTopicsRequest,
) -> Reply<DeleteTopicsResponse> {
    // Before v6 the request lists names; from v6 on, names or ids.
    let wanted: Vec<(Option<TopicName>, Uuid)> = match request.topic_names.is_empty() {
        false => request
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::nil()))
            .collect(),
        true => request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect(),
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        responses.push(
            match delete(&shard, name.as_ref().map(|n| n.as_str()), id).await {
                Ok((name, id)) => result
                    .with_name(Some(TopicName(str_bytes(name))))
                    .with_topic_id(id),
                Err(error) => result
                    .with_error_code(error.code())
                    .with_error_message(error_message(&error)),
            },
        );
    }
    Some(DeleteTopicsResponse::default().with_responses(responses))
}

async fn delete(shard: &Shard, name: Option<&str>, id: Uuid) -> Result<(String, Uuid)> {
    let name = match name {
        Some(name) => name.to_string(),
        None => find_topic_by_id(shard, id).await?.name.to_string(),
    };
    let deleted = shard.topics.delete(&name).await?;
    tracing::info!(topic = name, "deleted topic");
    Ok((name, deleted.id))
}
