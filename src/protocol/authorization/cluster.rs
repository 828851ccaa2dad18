//! The cluster-level APIs, decided by API key (a denial fails the whole request with
//! CLUSTER_AUTHORIZATION_FAILED), InitProducerId, and the config APIs, which check each
//! resource by its type.

use super::{run_amended, take_denied, topics::cluster_bits, Admitted, Who};
use crate::error::Error;
use crate::security::acl::{AclOperation, ResourceType};
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use AclOperation::*;

fn cluster_denied() -> i16 {
    Error::ClusterAuthorizationFailed.code()
}

/// The APIs that are one operation on the Cluster, or none: by API key.
pub fn by_api_key(who: &Who, version: i16, request: RequestKind) -> Admitted {
    use RequestKind as R;
    let operation = match &request {
        R::CreateAcls(_) | R::DeleteAcls(_) => Alter,
        R::DescribeAcls(_) => Describe,
        R::AlterUserScramCredentials(_) => Alter,
        R::DescribeUserScramCredentials(_) => Describe,
        R::ElectLeaders(_) => Alter,
        R::AlterPartitionReassignments(_) => Alter,
        R::ListPartitionReassignments(_) => Describe,
        R::DescribeLogDirs(_) => Describe,
        R::DescribeQuorum(_) => Describe,
        R::ListConfigResources(_) => DescribeConfigs,
        // ApiVersions and the SASL requests: nothing to check. An API without an entry in
        // `super::check` or here is not served (the table test keeps them in step).
        _ => return Admitted::Run(request, None),
    };
    if who.may_cluster(operation) {
        return Admitted::Run(request, None);
    }
    Admitted::Answer(Some(cluster_denial(version, &request)))
}

/// The error response of a cluster-level request, in each API's shape.
fn cluster_denial(version: i16, request: &RequestKind) -> ResponseKind {
    use RequestKind as R;
    let error = cluster_denied();
    let message = Some(StrBytes::from_static_str("Cluster authorization failed."));
    match request {
        R::CreateAcls(r) => ResponseKind::CreateAcls(
            CreateAclsResponse::default().with_results(
                r.creations
                    .iter()
                    .map(|_| AclCreationResult::default().with_error_code(error))
                    .collect(),
            ),
        ),
        R::DeleteAcls(r) => ResponseKind::DeleteAcls(
            DeleteAclsResponse::default().with_filter_results(
                r.filters
                    .iter()
                    .map(|_| DeleteAclsFilterResult::default().with_error_code(error))
                    .collect(),
            ),
        ),
        R::DescribeAcls(_) => ResponseKind::DescribeAcls(
            DescribeAclsResponse::default()
                .with_error_code(error)
                .with_error_message(message),
        ),
        R::AlterUserScramCredentials(r) => {
            let users = r
                .deletions
                .iter()
                .map(|d| &d.name)
                .chain(r.upsertions.iter().map(|u| &u.name));
            ResponseKind::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(
                    users
                        .map(|user| {
                            alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                                .with_user(user.clone())
                                .with_error_code(error)
                        })
                        .collect(),
                ),
            )
        }
        R::DescribeUserScramCredentials(_) => ResponseKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(error)
                .with_error_message(message),
        ),
        R::ElectLeaders(r) => {
            // v0 has no top-level error: each partition carries it.
            let results = match version {
                0 => r
                    .topic_partitions
                    .iter()
                    .flatten()
                    .map(|t| {
                        ReplicaElectionResult::default()
                            .with_topic(t.topic.clone())
                            .with_partition_result(
                                t.partitions
                                    .iter()
                                    .map(|&p| {
                                        PartitionResult::default()
                                            .with_partition_id(p)
                                            .with_error_code(error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            ResponseKind::ElectLeaders(
                ElectLeadersResponse::default()
                    .with_error_code(error)
                    .with_replica_election_results(results),
            )
        }
        R::AlterPartitionReassignments(_) => ResponseKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsResponse::default()
                .with_error_code(error)
                .with_error_message(message),
        ),
        R::ListPartitionReassignments(_) => ResponseKind::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default()
                .with_error_code(error)
                .with_error_message(message),
        ),
        R::DescribeLogDirs(_) => {
            ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(error))
        }
        R::DescribeQuorum(_) => ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default()
                .with_error_code(error)
                .with_error_message(message),
        ),
        R::ListConfigResources(_) => ResponseKind::ListConfigResources(
            ListConfigResourcesResponse::default().with_error_code(error),
        ),
        // Not reached: `by_api_key` answers only the requests listed above.
        _ => ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(error)),
    }
}

/// InitProducerId: Write on its TransactionalId; without one, IdempotentWrite on the
/// Cluster or Write on some Topic (KIP-679).
pub fn init_producer_id(who: &Who, request: InitProducerIdRequest) -> Admitted {
    let (allowed, error) = match &request.transactional_id {
        Some(id) => (
            who.may(Write, ResourceType::TransactionalId, id),
            Error::TransactionalIdAuthorizationFailed.code(),
        ),
        None => (
            who.may_cluster(IdempotentWrite)
                || (who.access).authorize_by_resource_type(
                    who.principal,
                    who.host,
                    Write,
                    ResourceType::Topic,
                ),
            cluster_denied(),
        ),
    };
    match allowed {
        true => Admitted::Run(RequestKind::InitProducerId(request), None),
        false => Admitted::Answer(Some(ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(error)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ))),
    }
}

/// Config resource types (the `i8` of the config APIs).
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// Whether the client may do `operation` (DescribeConfigs or AlterConfigs) on a config
/// resource, and the error if not; an unknown type is the handler's to refuse.
fn config_access(
    who: &Who,
    operation: AclOperation,
    resource_type: i8,
    name: &str,
) -> Result<(), i16> {
    let (allowed, error) = match resource_type {
        BROKER | BROKER_LOGGER | CLIENT_METRICS => (who.may_cluster(operation), cluster_denied()),
        TOPIC => (
            who.may_topic(operation, name),
            Error::TopicAuthorizationFailed.code(),
        ),
        GROUP => (
            who.may_group(operation, name),
            Error::GroupAuthorizationFailed.code(),
        ),
        _ => (true, 0),
    };
    if allowed {
        Ok(())
    } else {
        Err(error)
    }
}

/// DescribeConfigs: DescribeConfigs on each resource (Cluster for broker resources).
pub fn describe_configs(who: &Who, mut request: DescribeConfigsRequest) -> Admitted {
    use describe_configs_response::DescribeConfigsResult;
    let denied = |r: &describe_configs_request::DescribeConfigsResource| {
        config_access(who, DescribeConfigs, r.resource_type, &r.resource_name).err()
    };
    let entries: Vec<_> = take_denied(&mut request.resources, |r| denied(r).is_none())
        .into_iter()
        .map(|r| {
            DescribeConfigsResult::default()
                .with_error_code(denied(&r).unwrap_or_default())
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    let any = !entries.is_empty();
    run_amended(
        RequestKind::DescribeConfigs(request),
        any,
        move |_, response| {
            if let ResponseKind::DescribeConfigs(r) = response {
                r.results.extend(entries);
            }
        },
    )
}

/// AlterConfigs: AlterConfigs on each resource.
pub fn alter_configs(who: &Who, mut request: AlterConfigsRequest) -> Admitted {
    use alter_configs_response::AlterConfigsResourceResponse;
    let denied = |r: &alter_configs_request::AlterConfigsResource| {
        config_access(who, AlterConfigs, r.resource_type, &r.resource_name).err()
    };
    let entries: Vec<_> = take_denied(&mut request.resources, |r| denied(r).is_none())
        .into_iter()
        .map(|r| {
            AlterConfigsResourceResponse::default()
                .with_error_code(denied(&r).unwrap_or_default())
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    let any = !entries.is_empty();
    run_amended(
        RequestKind::AlterConfigs(request),
        any,
        move |_, response| {
            if let ResponseKind::AlterConfigs(r) = response {
                r.responses.extend(entries);
            }
        },
    )
}

/// IncrementalAlterConfigs: AlterConfigs on each resource.
pub fn incremental_alter_configs(
    who: &Who,
    mut request: IncrementalAlterConfigsRequest,
) -> Admitted {
    use incremental_alter_configs_response::AlterConfigsResourceResponse;
    let denied = |r: &incremental_alter_configs_request::AlterConfigsResource| {
        config_access(who, AlterConfigs, r.resource_type, &r.resource_name).err()
    };
    let entries: Vec<_> = take_denied(&mut request.resources, |r| denied(r).is_none())
        .into_iter()
        .map(|r| {
            AlterConfigsResourceResponse::default()
                .with_error_code(denied(&r).unwrap_or_default())
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    let any = !entries.is_empty();
    run_amended(
        RequestKind::IncrementalAlterConfigs(request),
        any,
        move |_, response| {
            if let ResponseKind::IncrementalAlterConfigs(r) = response {
                r.responses.extend(entries);
            }
        },
    )
}

/// DescribeCluster: no check for the answer; `cluster_authorized_operations` is the client's.
pub fn describe_cluster(_: &Who, request: DescribeClusterRequest) -> Admitted {
    let asked = request.include_cluster_authorized_operations;
    run_amended(
        RequestKind::DescribeCluster(request),
        asked,
        |who, response| {
            if let ResponseKind::DescribeCluster(r) = response {
                r.cluster_authorized_operations = cluster_bits(who);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::security::acl::PatternType::Literal;
    use ResourceType::{Cluster, Topic};

    #[test]
    fn cluster_apis_are_denied_whole_by_api_key() {
        let access = access(&[(Cluster, "kafka-cluster", Literal, Describe)]);
        let who = who(&access);
        let allowed = RequestKind::DescribeAcls(DescribeAclsRequest::default());
        assert!(matches!(
            by_api_key(&who, 3, allowed),
            Admitted::Run(_, None)
        ));
        let create = CreateAclsRequest::default()
            .with_creations(vec![create_acls_request::AclCreation::default()]);
        let ResponseKind::CreateAcls(r) =
            answer(by_api_key(&who, 3, RequestKind::CreateAcls(create)))
        else {
            panic!()
        };
        assert_eq!(r.results[0].error_code, 31);
        for request in [
            RequestKind::DeleteAcls(DeleteAclsRequest::default()),
            RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default()),
            RequestKind::ElectLeaders(ElectLeadersRequest::default()),
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default()),
            RequestKind::ListConfigResources(ListConfigResourcesRequest::default()),
        ] {
            assert!(matches!(
                by_api_key(&who, 1, request),
                Admitted::Answer(Some(_))
            ));
        }
        let log_dirs = RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default());
        assert!(matches!(
            by_api_key(&who, 1, log_dirs),
            Admitted::Run(_, None)
        ));
        let versions = RequestKind::ApiVersions(ApiVersionsRequest::default());
        assert!(matches!(
            by_api_key(&who, 1, versions),
            Admitted::Run(_, None)
        ));
    }

    #[test]
    fn init_producer_id_needs_idempotent_write_or_write_on_a_topic() {
        let nothing = access(&[]);
        let ResponseKind::InitProducerId(r) = answer(init_producer_id(
            &who(&nothing),
            InitProducerIdRequest::default().with_transactional_id(None),
        )) else {
            panic!()
        };
        assert_eq!(r.error_code, 31);
        let writer = access(&[(Topic, "orders", Literal, Write)]);
        let request = InitProducerIdRequest::default().with_transactional_id(None);
        assert!(matches!(
            init_producer_id(&who(&writer), request),
            Admitted::Run(_, None)
        ));
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId("tx".to_string().into())));
        let ResponseKind::InitProducerId(r) = answer(init_producer_id(&who(&writer), request))
        else {
            panic!()
        };
        assert_eq!(r.error_code, 53);
    }

    #[test]
    fn config_apis_check_each_resource_by_type() {
        let access = access(&[(Topic, "orders", Literal, AlterConfigs)]);
        let who = who(&access);
        let resource = |t: i8, n: &str| {
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(n.to_string().into())
        };
        let request = DescribeConfigsRequest::default().with_resources(vec![
            resource(TOPIC, "orders"),
            resource(TOPIC, "secret"),
            resource(BROKER, "0"),
        ]);
        let (request, amend) = run(describe_configs(&who, request));
        let RequestKind::DescribeConfigs(request) = request else {
            panic!()
        };
        assert_eq!(request.resources.len(), 1);
        let ResponseKind::DescribeConfigs(r) = amended(
            &who,
            amend,
            ResponseKind::DescribeConfigs(DescribeConfigsResponse::default()),
        ) else {
            panic!()
        };
        let codes: Vec<_> = r.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [29, 31]);
    }
}
