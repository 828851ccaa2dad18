//! AlterConfigs: replaces a topic's whole set of configs with the ones given (the legacy,
//! non-incremental form; `kafka-configs` 4.x uses IncrementalAlterConfigs).

use super::{alter_configs, error_message};
use super::{Reply, RequestContext};
use crate::error::Result;
use crate::shard::Shard;
use crate::topic_config;
use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 2);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: AlterConfigsRequest,
) -> Reply<AlterConfigsResponse> {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let replaced = |_: &BTreeMap<String, String>| replacement(resource);
        let altered = alter_configs(
            &shard,
            resource.resource_type,
            &resource.resource_name,
            replaced,
            request.validate_only,
        )
        .await;
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
    Some(AlterConfigsResponse::default().with_responses(responses))
}

/// The configs the request sets, each validated; a null value is not set.
fn replacement(resource: &AlterConfigsResource) -> Result<BTreeMap<String, String>> {
    let mut configs = BTreeMap::new();
    for config in &resource.configs {
        if let Some(value) = &config.value {
            topic_config::validate(&config.name, value)?;
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    Ok(configs)
}
