//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's configs, the form
//! `kafka-configs --alter` and the admin clients use.

use super::{alter_configs, error_message};
use super::{Reply, RequestContext};
use crate::error::Result;
use crate::shard::Shard;
use crate::topic_config::{self, Change};
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Reply<IncrementalAlterConfigsResponse> {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let altered = match changes(resource) {
            Ok(changes) => {
                let config = shard.config.clone();
                let apply = move |current: &_| topic_config::changed(current, &changes, &config);
                alter_configs(
                    &shard,
                    resource.resource_type,
                    &resource.resource_name,
                    apply,
                    request.validate_only,
                )
                .await
            }
            Err(error) => Err(error),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        responses.push(match altered {
            Ok(()) => response,
            Err(error) => response
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        });
    }
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn changes(resource: &AlterConfigsResource) -> Result<Vec<(String, Change)>> {
    resource
        .configs
        .iter()
        .map(|c| {
            let change = Change::from_request(c.config_operation, c.value.as_deref())?;
            Ok((c.name.to_string(), change))
        })
        .collect()
}
