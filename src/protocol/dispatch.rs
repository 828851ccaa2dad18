//! Dispatch by API key. One table ([`APIS`]) says which APIs and versions tidegate
//! implements; it drives both routing and the ApiVersions answer, so what is advertised is
//! what is implemented. The version check happens here, once.

use crate::handlers;
use crate::shard::Shard;
use bytes::{BufMut, Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use glommio::sync::Semaphore;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// What a connection's requests share.
pub struct Connection {
    /// Held by a Produce until its appends are queued, so a client's pipelined produce
    /// requests reach each partition in the order they were sent.
    pub produce_order: Semaphore,
    /// As Kafka shows it in DescribeGroups: "/" and the peer's IP address.
    pub client_host: String,
}

impl Connection {
    pub fn new(peer: Option<std::net::SocketAddr>) -> Self {
        Self {
            produce_order: Semaphore::new(1),
            client_host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client_host", &self.client_host)
            .finish_non_exhaustive()
    }
}

/// What a handler is given besides its request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub connection: Rc<Connection>,
}

impl RequestContext {
    /// The client.id the request carries ("" when none).
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map_or_else(String::new, |c| c.to_string())
    }
}

/// A handler's answer; `None` sends nothing back (Produce with acks=0).
pub type Reply<T> = Option<T>;

type HandlerFn =
    fn(Rc<Shard>, RequestContext, RequestKind) -> LocalBoxFuture<'static, Reply<ResponseKind>>;

/// One implemented API: its key, the versions served, its handler.
pub struct Api {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    handle: HandlerFn,
}

/// A response being prepared: the encoded frame, nothing, or why it could not be encoded.
pub type Routed = glommio::Task<Result<Option<Bytes>, String>>;

macro_rules! api {
    ($module:ident, $kind:ident) => {
        Api {
            key: ApiKey::$kind,
            min_version: handlers::$module::VERSIONS.0,
            max_version: handlers::$module::VERSIONS.1,
            handle: |shard, context, request| match request {
                RequestKind::$kind(request) => Box::pin(async move {
                    handlers::$module::handle(shard, context, request)
                        .await
                        .map(ResponseKind::$kind)
                }),
                // Requests are decoded by this entry's key, so no other kind reaches here.
                _ => Box::pin(async { None }),
            },
        }
    };
}

/// Every API tidegate serves.
pub static APIS: &[Api] = &[
    api!(produce, Produce),
    api!(fetch, Fetch),
    api!(list_offsets, ListOffsets),
    api!(metadata, Metadata),
    api!(api_versions, ApiVersions),
    api!(create_topics, CreateTopics),
    api!(delete_topics, DeleteTopics),
    api!(init_producer_id, InitProducerId),
    api!(describe_configs, DescribeConfigs),
    api!(create_partitions, CreatePartitions),
    api!(describe_cluster, DescribeCluster),
    api!(find_coordinator, FindCoordinator),
    api!(join_group, JoinGroup),
    api!(sync_group, SyncGroup),
    api!(heartbeat, Heartbeat),
    api!(leave_group, LeaveGroup),
    api!(offset_commit, OffsetCommit),
    api!(offset_fetch, OffsetFetch),
    api!(describe_groups, DescribeGroups),
    api!(list_groups, ListGroups),
    api!(delete_groups, DeleteGroups),
    api!(offset_delete, OffsetDelete),
    api!(consumer_group_heartbeat, ConsumerGroupHeartbeat),
    api!(elect_leaders, ElectLeaders),
    api!(list_partition_reassignments, ListPartitionReassignments),
    api!(alter_partition_reassignments, AlterPartitionReassignments),
    api!(delete_records, DeleteRecords),
    api!(offset_for_leader_epoch, OffsetForLeaderEpoch),
    api!(alter_configs, AlterConfigs),
    api!(incremental_alter_configs, IncrementalAlterConfigs),
    api!(describe_log_dirs, DescribeLogDirs),
    api!(describe_producers, DescribeProducers),
    api!(describe_quorum, DescribeQuorum),
    api!(consumer_group_describe, ConsumerGroupDescribe),
    api!(list_config_resources, ListConfigResources),
    api!(describe_topic_partitions, DescribeTopicPartitions),
];

pub fn find_api(key: i16) -> Option<&'static Api> {
    APIS.iter().find(|api| api.key as i16 == key)
}

/// Decodes a frame and starts its handler. `Err` means the connection must close: the bytes
/// are not a request tidegate can answer (malformed, unknown API, unsupported version).
pub fn route(
    shard: &Rc<Shard>,
    frame: Bytes,
    connection: &Rc<Connection>,
) -> Result<Routed, String> {
    if frame.len() < 8 {
        return Err(format!("request of {} bytes has no header", frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = find_api(key).ok_or_else(|| format!("unknown API key {key}"))?;
    if !(api.min_version..=api.max_version).contains(&version) {
        if api.key == ApiKey::ApiVersions {
            // A client newer than us: KIP-511 says answer in v0 with our ranges, so it can
            // pick a version we know.
            let bytes = unsupported_api_versions(correlation_id);
            return Ok(glommio::spawn_local(async move { Ok(Some(bytes)) }));
        }
        return Err(format!("{:?} v{version} is not supported", api.key));
    }
    let (context, request) = decode_request(api.key, version, frame, connection.clone())?;
    let reply = (api.handle)(shard.clone(), context, request);
    let api_key = api.key;
    Ok(glommio::spawn_local(async move {
        match reply.await {
            Some(response) => encode_response(api_key, version, correlation_id, &response)
                .map(Some)
                .map_err(|e| format!("{api_key:?} v{version}: {e}")),
            None => Ok(None),
        }
    }))
}

/// Decodes the header and body of a request whose key and version were checked.
pub fn decode_request(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
    connection: Rc<Connection>,
) -> Result<(RequestContext, RequestKind), String> {
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| format!("bad {api_key:?} v{version} header: {e}"))?;
    let request = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| format!("bad {api_key:?} v{version} request: {e}"))?;
    let context = RequestContext {
        header,
        api_key,
        version,
        connection,
    };
    Ok((context, request))
}

/// A whole response frame: length, header, body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    // A Fetch response carries the records: sized exactly up front, so that copying them
    // in does not regrow (and recopy) the buffer a few hundred times (callgrind: that
    // growth was most of the fetch path's cost). Small responses are not worth a sizing pass.
    let capacity = match body {
        ResponseKind::Fetch(fetch) => {
            8 + header_size(api_key, version, correlation_id) + fetch.compute_size(version)?
        }
        _ => 256,
    };
    let mut frame = BytesMut::with_capacity(capacity);
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, api_key.response_header_version(version))?;
    body.encode(&mut frame, version)?;
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame.freeze())
}

fn header_size(api_key: ApiKey, version: i16, correlation_id: i32) -> usize {
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .compute_size(api_key.response_header_version(version))
        .unwrap_or(0)
}

fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(handlers::api_versions::supported());
    let body = ResponseKind::ApiVersions(response);
    // v0 cannot fail to encode these fields; an empty frame would at least close cleanly.
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_one_the_codec_supports() {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::Message;
        for api in APIS {
            let codec = match api.key {
                ApiKey::Produce => ProduceRequest::VERSIONS,
                ApiKey::Fetch => FetchRequest::VERSIONS,
                ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
                ApiKey::Metadata => MetadataRequest::VERSIONS,
                ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
                ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
                ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
                ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
                ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
                ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
                ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
                ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
                ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
                ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
                ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
                ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
                ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
                ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
                ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
                ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
                ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
                ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
                ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
                ApiKey::ElectLeaders => ElectLeadersRequest::VERSIONS,
                ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
                ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::VERSIONS,
                ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
                ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
                ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
                ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
                ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
                ApiKey::DescribeProducers => DescribeProducersRequest::VERSIONS,
                ApiKey::DescribeQuorum => DescribeQuorumRequest::VERSIONS,
                ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
                ApiKey::ListConfigResources => ListConfigResourcesRequest::VERSIONS,
                ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::VERSIONS,
                other => panic!("{other:?} has no codec range listed here"),
            };
            assert!(
                api.min_version >= codec.min && api.max_version <= codec.max,
                "{:?}",
                api.key
            );
        }
    }
}
