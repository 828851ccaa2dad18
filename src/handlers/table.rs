//! The one table of APIs tidegate serves: key, versions, handler. It drives both dispatch
//! (`protocol::dispatch`) and the ApiVersions answer, so what is advertised is what is
//! implemented.

use super::{Reply, RequestContext};
use crate::shard::Shard;
use futures::future::LocalBoxFuture;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use std::rc::Rc;

type HandlerFn =
    fn(Rc<Shard>, RequestContext, RequestKind) -> LocalBoxFuture<'static, Reply<ResponseKind>>;

/// One implemented API: its key, the versions served, its handler.
pub struct Api {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    handle: HandlerFn,
}

impl Api {
    /// Starts the handler on a request decoded by this entry's key.
    pub fn handle(
        &self,
        shard: Rc<Shard>,
        context: RequestContext,
        request: RequestKind,
    ) -> LocalBoxFuture<'static, Reply<ResponseKind>> {
        (self.handle)(shard, context, request)
    }
}

macro_rules! api {
    ($module:ident, $kind:ident) => {
        Api {
            key: ApiKey::$kind,
            min_version: super::$module::VERSIONS.0,
            max_version: super::$module::VERSIONS.1,
            handle: |shard, context, request| match request {
                RequestKind::$kind(request) => Box::pin(async move {
                    super::$module::handle(shard, context, request)
                        .await
                        .map(ResponseKind::$kind)
                }),
                // Requests are decoded by this entry's key, so no other kind reaches here.
                _ => Box::pin(async { None }),
            },
        }
    };
}

/// An API answered by dispatch's authentication stage, as the request is read (its
/// answer decides what the next request may be): listed here for its versions only.
macro_rules! answered_in_dispatch {
    ($module:ident, $kind:ident) => {
        Api {
            key: ApiKey::$kind,
            min_version: super::$module::VERSIONS.0,
            max_version: super::$module::VERSIONS.1,
            handle: |_, _, _| Box::pin(async { None }),
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
    api!(describe_acls, DescribeAcls),
    api!(create_acls, CreateAcls),
    api!(delete_acls, DeleteAcls),
    api!(describe_client_quotas, DescribeClientQuotas),
    api!(
        describe_user_scram_credentials,
        DescribeUserScramCredentials
    ),
    api!(alter_user_scram_credentials, AlterUserScramCredentials),
    answered_in_dispatch!(sasl_handshake, SaslHandshake),
    answered_in_dispatch!(sasl_authenticate, SaslAuthenticate),
];

pub fn find_api(key: i16) -> Option<&'static Api> {
    APIS.iter().find(|api| api.key as i16 == key)
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
                ApiKey::DescribeAcls => DescribeAclsRequest::VERSIONS,
                ApiKey::CreateAcls => CreateAclsRequest::VERSIONS,
                ApiKey::DeleteAcls => DeleteAclsRequest::VERSIONS,
                ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::VERSIONS,
                ApiKey::DescribeUserScramCredentials => {
                    DescribeUserScramCredentialsRequest::VERSIONS
                }
                ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::VERSIONS,
                ApiKey::SaslHandshake => SaslHandshakeRequest::VERSIONS,
                ApiKey::SaslAuthenticate => SaslAuthenticateRequest::VERSIONS,
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
