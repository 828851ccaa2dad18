//! ApiVersions: the APIs and versions of the dispatch table, nothing more.

use super::{Reply, RequestContext, APIS};
use crate::shard::Shard;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 4);

pub async fn handle(
    _shard: Rc<Shard>,
    _context: RequestContext,
    _request: ApiVersionsRequest,
) -> Reply<ApiVersionsResponse> {
    Some(
        ApiVersionsResponse::default()
            .with_api_keys(supported())
            .with_finalized_features_epoch(-1),
    )
}

/// The dispatch table as ApiVersions entries.
pub fn supported() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect()
}
