//! ListConfigResources (v0 was ListClientMetricsResources): the resources that have
//! configs. Topics and brokers have; there are no client-metrics or group config resources.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

/// ConfigResource types tidegate does not have resources of.
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ListConfigResourcesRequest,
) -> Reply<ListConfigResourcesResponse> {
    // v0 lists client-metrics resources only; v1 the types asked, or all of them.
    let types: Vec<i8> = match (context.version, request.resource_types.is_empty()) {
        (0, _) => vec![RESOURCE_CLIENT_METRICS],
        (_, true) => vec![
            RESOURCE_TOPIC,
            RESOURCE_BROKER,
            RESOURCE_GROUP,
            RESOURCE_CLIENT_METRICS,
        ],
        (_, false) => request.resource_types.clone(),
    };
    let resource = |resource_type: i8, name: String| {
        ConfigResource::default()
            .with_resource_name(str_bytes(name))
            .with_resource_type(resource_type)
    };
    let mut resources = Vec::new();
    for resource_type in types {
        match resource_type {
            RESOURCE_TOPIC => match shard.topics.list().await {
                Ok(topics) => resources.extend(
                    topics
                        .iter()
                        .map(|t| resource(RESOURCE_TOPIC, t.name.to_string())),
                ),
                Err(error) => return Some(failed(&error)),
            },
            RESOURCE_BROKER => resources.extend(
                shard
                    .cluster
                    .brokers(context.listener())
                    .iter()
                    .map(|b| resource(RESOURCE_BROKER, b.node_id.to_string())),
            ),
            RESOURCE_GROUP | RESOURCE_CLIENT_METRICS => {}
            other => {
                let error = Error::InvalidRequest(format!("unknown config resource type {other}"));
                return Some(failed(&error));
            }
        }
    }
    Some(ListConfigResourcesResponse::default().with_config_resources(resources))
}

fn failed(error: &Error) -> ListConfigResourcesResponse {
    ListConfigResourcesResponse::default().with_error_code(error.code())
}
