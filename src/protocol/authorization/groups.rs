//! The group APIs: a request about one group the client may not use fails whole
//! (GROUP_AUTHORIZATION_FAILED, no handler runs); requests about several groups answer each
//! denied group in its place; the topics of an offset request are checked after the group.

use super::{run_amended, take_denied, Admitted, Who};
use crate::error::Error;
use crate::security::acl::{AclOperation, ResourceType};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use AclOperation::*;

fn group_denied() -> i16 {
    Error::GroupAuthorizationFailed.code()
}

fn topic_denied() -> i16 {
    Error::TopicAuthorizationFailed.code()
}

/// FindCoordinator: Describe on the Group (key type 0) or the TransactionalId (key type 1);
/// per key from v4, the whole answer before.
pub fn find_coordinator(who: &Who, version: i16, mut request: FindCoordinatorRequest) -> Admitted {
    let (resource_type, error) = match request.key_type {
        1 => (
            ResourceType::TransactionalId,
            Error::TransactionalIdAuthorizationFailed.code(),
        ),
        _ => (ResourceType::Group, group_denied()),
    };
    let allowed = |key: &StrBytes| who.may(Describe, resource_type, key);
    if version < 4 {
        return match allowed(&request.key) {
            true => Admitted::Run(RequestKind::FindCoordinator(request), None),
            false => Admitted::Answer(Some(ResponseKind::FindCoordinator(
                FindCoordinatorResponse::default()
                    .with_error_code(error)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1),
            ))),
        };
    }
    let entries: Vec<_> = take_denied(&mut request.coordinator_keys, allowed)
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(error)
        })
        .collect();
    let denied = !entries.is_empty();
    if denied && request.coordinator_keys.is_empty() {
        return Admitted::Answer(Some(ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default().with_coordinators(entries),
        )));
    }
    run_amended(
        RequestKind::FindCoordinator(request),
        denied,
        move |_, response| {
            if let ResponseKind::FindCoordinator(r) = response {
                r.coordinators.extend(entries);
            }
        },
    )
}

/// JoinGroup: Read on the Group.
pub fn join_group(who: &Who, version: i16, request: JoinGroupRequest) -> Admitted {
    if who.may_group(Read, &request.group_id) {
        return Admitted::Run(RequestKind::JoinGroup(request), None);
    }
    Admitted::Answer(Some(ResponseKind::JoinGroup(
        JoinGroupResponse::default()
            .with_error_code(group_denied())
            .with_generation_id(-1)
            .with_protocol_name((version < 7).then(StrBytes::default)),
    )))
}

/// SyncGroup: Read on the Group.
pub fn sync_group(who: &Who, request: SyncGroupRequest) -> Admitted {
    match who.may_group(Read, &request.group_id) {
        true => Admitted::Run(RequestKind::SyncGroup(request), None),
        false => Admitted::Answer(Some(ResponseKind::SyncGroup(
            SyncGroupResponse::default().with_error_code(group_denied()),
        ))),
    }
}

/// Heartbeat: Read on the Group.
pub fn heartbeat(who: &Who, request: HeartbeatRequest) -> Admitted {
    match who.may_group(Read, &request.group_id) {
        true => Admitted::Run(RequestKind::Heartbeat(request), None),
        false => Admitted::Answer(Some(ResponseKind::Heartbeat(
            HeartbeatResponse::default().with_error_code(group_denied()),
        ))),
    }
}

/// LeaveGroup: Read on the Group.
pub fn leave_group(who: &Who, request: LeaveGroupRequest) -> Admitted {
    match who.may_group(Read, &request.group_id) {
        true => Admitted::Run(RequestKind::LeaveGroup(request), None),
        false => Admitted::Answer(Some(ResponseKind::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(group_denied()),
        ))),
    }
}

/// ConsumerGroupHeartbeat: Read on the Group.
pub fn consumer_group_heartbeat(who: &Who, request: ConsumerGroupHeartbeatRequest) -> Admitted {
    let refuse = |error: i16| {
        Admitted::Answer(Some(ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default().with_error_code(error),
        )))
    };
    if !who.may_group(Read, &request.group_id) {
        return refuse(group_denied());
    }
    // A subscription may name only topics the client may see (Kafka checks Describe).
    let mut subscribed = request.subscribed_topic_names.iter().flatten();
    if !subscribed.all(|topic| who.may_topic(Describe, topic)) {
        return refuse(topic_denied());
    }
    Admitted::Run(RequestKind::ConsumerGroupHeartbeat(request), None)
}

/// OffsetCommit: Read on the Group (every partition GROUP_AUTHORIZATION_FAILED without it),
/// then Read on each Topic (its partitions TOPIC_AUTHORIZATION_FAILED).
pub fn offset_commit(who: &Who, mut request: OffsetCommitRequest) -> Admitted {
    let answer = |topics: &[offset_commit_request::OffsetCommitRequestTopic], error: i16| {
        topics
            .iter()
            .map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                });
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(partitions.collect())
            })
            .collect::<Vec<_>>()
    };
    if !who.may_group(Read, &request.group_id) {
        let topics = answer(&request.topics, group_denied());
        return Admitted::Answer(Some(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(topics),
        )));
    }
    let denied_topics = take_denied(&mut request.topics, |t| who.may_topic(Read, &t.name));
    if denied_topics.is_empty() {
        return Admitted::Run(RequestKind::OffsetCommit(request), None);
    }
    let entries = answer(&denied_topics, topic_denied());
    if request.topics.is_empty() {
        return Admitted::Answer(Some(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(entries),
        )));
    }
    run_amended(
        RequestKind::OffsetCommit(request),
        true,
        move |_, response| {
            if let ResponseKind::OffsetCommit(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// OffsetFetch: Describe on each Group (v8+: per group; before: the whole answer), then
/// Describe on each Topic: a named one is answered TOPIC_AUTHORIZATION_FAILED per partition,
/// an all-topics fetch leaves out the rest.
pub fn offset_fetch(who: &Who, version: i16, mut request: OffsetFetchRequest) -> Admitted {
    if version >= 8 {
        return offset_fetch_groups(who, request);
    }
    if !who.may_group(Describe, &request.group_id) {
        // v1 has no top-level error: each partition carries it.
        let topics = match version {
            1 => request
                .topics
                .iter()
                .flatten()
                .map(|t| offset_fetch_topic(&t.name, &t.partition_indexes, group_denied()))
                .collect(),
            _ => Vec::new(),
        };
        return Admitted::Answer(Some(ResponseKind::OffsetFetch(
            OffsetFetchResponse::default()
                .with_error_code(group_denied())
                .with_topics(topics),
        )));
    }
    let all_topics = request.topics.is_none();
    let entries: Vec<_> = match &mut request.topics {
        Some(topics) => take_denied(topics, |t| who.may_topic(Describe, &t.name))
            .iter()
            .map(|t| offset_fetch_topic(&t.name, &t.partition_indexes, topic_denied()))
            .collect(),
        None => Vec::new(),
    };
    let denied = all_topics || !entries.is_empty();
    run_amended(
        RequestKind::OffsetFetch(request),
        denied,
        move |who, response| {
            if let ResponseKind::OffsetFetch(r) = response {
                if all_topics {
                    r.topics.retain(|t| who.may_topic(Describe, &t.name));
                }
                r.topics.extend(entries);
            }
        },
    )
}

fn offset_fetch_topic(
    name: &TopicName,
    partitions: &[i32],
    error: i16,
) -> OffsetFetchResponseTopic {
    let partitions = partitions.iter().map(|&p| {
        OffsetFetchResponsePartition::default()
            .with_partition_index(p)
            .with_committed_offset(-1)
            .with_committed_leader_epoch(-1)
            .with_metadata(Some(StrBytes::default()))
            .with_error_code(error)
    });
    OffsetFetchResponseTopic::default()
        .with_name(name.clone())
        .with_partitions(partitions.collect())
}

/// OffsetFetch v8+: several groups, each answered on its own.
fn offset_fetch_groups(who: &Who, mut request: OffsetFetchRequest) -> Admitted {
    let denied_groups: Vec<_> = take_denied(&mut request.groups, |g| {
        who.may_group(Describe, &g.group_id)
    })
    .into_iter()
    .map(|g| {
        OffsetFetchResponseGroup::default()
            .with_group_id(g.group_id)
            .with_error_code(group_denied())
    })
    .collect();
    // Per group still asked: its denied named topics, or whether it asks for all topics.
    let mut per_group = Vec::new();
    for group in &mut request.groups {
        let denied_topics = match &mut group.topics {
            Some(topics) => take_denied(topics, |t| who.may_topic(Describe, &t.name))
                .into_iter()
                .map(|t| {
                    let partitions = t.partition_indexes.iter().map(|&p| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(p)
                            .with_committed_offset(-1)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(StrBytes::default()))
                            .with_error_code(topic_denied())
                    });
                    OffsetFetchResponseTopics::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partitions(partitions.collect())
                })
                .collect(),
            None => Vec::new(),
        };
        per_group.push((
            group.group_id.clone(),
            group.topics.is_none(),
            denied_topics,
        ));
    }
    if request.groups.is_empty() {
        return Admitted::Answer(Some(ResponseKind::OffsetFetch(
            OffsetFetchResponse::default().with_groups(denied_groups),
        )));
    }
    run_amended(
        RequestKind::OffsetFetch(request),
        true,
        move |who, response| {
            let ResponseKind::OffsetFetch(r) = response else {
                return;
            };
            for (group_id, all_topics, denied_topics) in per_group {
                let Some(group) = r.groups.iter_mut().find(|g| g.group_id == group_id) else {
                    continue;
                };
                if all_topics {
                    group.topics.retain(|t| who.may_topic(Describe, &t.name));
                }
                group.topics.extend(denied_topics);
            }
            r.groups.extend(denied_groups);
        },
    )
}

/// OffsetDelete: Delete on the Group (the whole request), then Read on each Topic.
pub fn offset_delete(who: &Who, mut request: OffsetDeleteRequest) -> Admitted {
    if !who.may_group(Delete, &request.group_id) {
        return Admitted::Answer(Some(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default().with_error_code(group_denied()),
        )));
    }
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Read, &t.name))
        .into_iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(topic_denied())
            });
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        })
        .collect();
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::OffsetDelete(request),
        denied,
        move |_, response| {
            if let ResponseKind::OffsetDelete(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// DescribeGroups: Describe on each Group; `authorized_operations` is the client's.
pub fn describe_groups(who: &Who, mut request: DescribeGroupsRequest) -> Admitted {
    use describe_groups_response::DescribedGroup;
    let entries: Vec<_> = take_denied(&mut request.groups, |g| who.may_group(Describe, g))
        .into_iter()
        .map(|g| {
            DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(group_denied())
                .with_authorized_operations(i32::MIN)
        })
        .collect();
    if !entries.is_empty() && request.groups.is_empty() {
        return Admitted::Answer(Some(ResponseKind::DescribeGroups(
            DescribeGroupsResponse::default().with_groups(entries),
        )));
    }
    let operations = request.include_authorized_operations;
    let amend = operations || !entries.is_empty();
    run_amended(
        RequestKind::DescribeGroups(request),
        amend,
        move |who, response| {
            if let ResponseKind::DescribeGroups(r) = response {
                if operations {
                    for g in r.groups.iter_mut().filter(|g| g.error_code == 0) {
                        g.authorized_operations = who.operations(ResourceType::Group, &g.group_id);
                    }
                }
                r.groups.extend(entries);
            }
        },
    )
}

/// ConsumerGroupDescribe: Describe on each Group; `authorized_operations` is the client's.
pub fn consumer_group_describe(who: &Who, mut request: ConsumerGroupDescribeRequest) -> Admitted {
    use consumer_group_describe_response::DescribedGroup;
    let entries: Vec<_> = take_denied(&mut request.group_ids, |g| who.may_group(Describe, g))
        .into_iter()
        .map(|g| {
            DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(group_denied())
                .with_authorized_operations(i32::MIN)
        })
        .collect();
    if !entries.is_empty() && request.group_ids.is_empty() {
        return Admitted::Answer(Some(ResponseKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeResponse::default().with_groups(entries),
        )));
    }
    let operations = request.include_authorized_operations;
    let amend = operations || !entries.is_empty();
    run_amended(
        RequestKind::ConsumerGroupDescribe(request),
        amend,
        move |who, response| {
            if let ResponseKind::ConsumerGroupDescribe(r) = response {
                if operations {
                    for g in r.groups.iter_mut().filter(|g| g.error_code == 0) {
                        g.authorized_operations = who.operations(ResourceType::Group, &g.group_id);
                    }
                }
                r.groups.extend(entries);
            }
        },
    )
}

/// ListGroups: every group with Describe on the Cluster, else only those with Describe on
/// the Group. Never an error.
pub fn list_groups(who: &Who, request: ListGroupsRequest) -> Admitted {
    let filter = !who.may_cluster(Describe);
    run_amended(RequestKind::ListGroups(request), filter, |who, response| {
        if let ResponseKind::ListGroups(r) = response {
            r.groups.retain(|g| who.may_group(Describe, &g.group_id));
        }
    })
}

/// DeleteGroups: Delete on each Group.
pub fn delete_groups(who: &Who, mut request: DeleteGroupsRequest) -> Admitted {
    use delete_groups_response::DeletableGroupResult;
    let entries: Vec<_> = take_denied(&mut request.groups_names, |g| who.may_group(Delete, g))
        .into_iter()
        .map(|g| {
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(group_denied())
        })
        .collect();
    let denied = !entries.is_empty();
    if denied && request.groups_names.is_empty() {
        return Admitted::Answer(Some(ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(entries),
        )));
    }
    run_amended(
        RequestKind::DeleteGroups(request),
        denied,
        move |_, response| {
            if let ResponseKind::DeleteGroups(r) = response {
                r.results.extend(entries);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::security::acl::PatternType::{Literal, Prefixed};
    use ResourceType::{Group, Topic};

    fn group(name: &str) -> GroupId {
        GroupId(name.to_string().into())
    }

    fn topic(name: &str) -> TopicName {
        TopicName(name.to_string().into())
    }

    #[test]
    fn membership_requests_need_read_on_the_group() {
        let access = access(&[(Group, "app", Literal, Read)]);
        let who = who(&access);
        let allowed = JoinGroupRequest::default().with_group_id(group("app"));
        assert!(matches!(
            join_group(&who, 9, allowed),
            Admitted::Run(_, None)
        ));
        let denied = JoinGroupRequest::default().with_group_id(group("other"));
        let ResponseKind::JoinGroup(r) = answer(join_group(&who, 9, denied)) else {
            panic!()
        };
        assert_eq!((r.error_code, r.generation_id), (30, -1));
        let ResponseKind::Heartbeat(r) = answer(heartbeat(
            &who,
            HeartbeatRequest::default().with_group_id(group("x")),
        )) else {
            panic!()
        };
        assert_eq!(r.error_code, 30);
        let ResponseKind::SyncGroup(r) = answer(sync_group(
            &who,
            SyncGroupRequest::default().with_group_id(group("x")),
        )) else {
            panic!()
        };
        assert_eq!(r.error_code, 30);
        let ResponseKind::LeaveGroup(r) = answer(leave_group(
            &who,
            LeaveGroupRequest::default().with_group_id(group("x")),
        )) else {
            panic!()
        };
        assert_eq!(r.error_code, 30);
    }

    #[test]
    fn consumer_group_heartbeat_needs_describe_on_every_subscribed_topic() {
        let access = access(&[
            (Group, "app", Literal, Read),
            (Topic, "orders", Prefixed, Describe),
        ]);
        let who = who(&access);
        let subscribing = |topics: &[&str]| {
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group("app"))
                .with_subscribed_topic_names(Some(topics.iter().map(|t| topic(t)).collect()))
        };
        let allowed = consumer_group_heartbeat(&who, subscribing(&["orders-eu", "orders-us"]));
        assert!(matches!(allowed, Admitted::Run(_, None)));
        // A heartbeat that repeats no subscription is not checked against topics.
        let unchanged = ConsumerGroupHeartbeatRequest::default().with_group_id(group("app"));
        assert!(matches!(
            consumer_group_heartbeat(&who, unchanged),
            Admitted::Run(_, None)
        ));
        let denied = consumer_group_heartbeat(&who, subscribing(&["orders-eu", "payments"]));
        let ResponseKind::ConsumerGroupHeartbeat(r) = answer(denied) else {
            panic!()
        };
        assert_eq!(r.error_code, 29);
        let other_group = ConsumerGroupHeartbeatRequest::default().with_group_id(group("x"));
        let ResponseKind::ConsumerGroupHeartbeat(r) =
            answer(consumer_group_heartbeat(&who, other_group))
        else {
            panic!()
        };
        assert_eq!(r.error_code, 30);
    }

    fn commit_topic(name: &str) -> offset_commit_request::OffsetCommitRequestTopic {
        offset_commit_request::OffsetCommitRequestTopic::default()
            .with_name(topic(name))
            .with_partitions(vec![
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(3),
            ])
    }

    #[test]
    fn offset_commit_checks_the_group_then_each_topic() {
        let access = access(&[
            (Group, "app", Literal, Read),
            (Topic, "orders", Literal, Read),
        ]);
        let who = who(&access);
        let request = OffsetCommitRequest::default()
            .with_group_id(group("app"))
            .with_topics(vec![commit_topic("orders"), commit_topic("secret")]);
        let (request, amend) = run(offset_commit(&who, request));
        let RequestKind::OffsetCommit(request) = request else {
            panic!()
        };
        assert_eq!(request.topics.len(), 1);
        let ResponseKind::OffsetCommit(r) = amended(
            &who,
            amend,
            ResponseKind::OffsetCommit(OffsetCommitResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(r.topics[0].name.as_str(), "secret");
        assert_eq!(r.topics[0].partitions[0].error_code, 29);
        // A denied group: every partition says so, no handler.
        let request = OffsetCommitRequest::default()
            .with_group_id(group("other"))
            .with_topics(vec![commit_topic("orders")]);
        let ResponseKind::OffsetCommit(r) = answer(offset_commit(&who, request)) else {
            panic!()
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 30);
    }

    #[test]
    fn offset_fetch_per_group_and_all_topics_filtered() {
        let access = access(&[
            (Group, "app", Literal, Describe),
            (Topic, "orders", Literal, Read),
        ]);
        let who = who(&access);
        // v8: two groups, one denied; the allowed one asks for all topics.
        let request = OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(group("app"))
                .with_topics(None),
            offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(group("other")),
        ]);
        let (request, amend) = run(offset_fetch(&who, 8, request));
        let RequestKind::OffsetFetch(request) = request else {
            panic!()
        };
        assert_eq!(request.groups.len(), 1);
        let handler =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_group_id(group("app"))
                .with_topics(vec![
                    OffsetFetchResponseTopics::default().with_name(topic("orders")),
                    OffsetFetchResponseTopics::default().with_name(topic("secret")),
                ])]);
        let ResponseKind::OffsetFetch(r) = amended(&who, amend, ResponseKind::OffsetFetch(handler))
        else {
            panic!()
        };
        assert_eq!(r.groups[0].topics.len(), 1);
        assert_eq!(r.groups[1].error_code, 30);
        // v7: a named topic denied is answered per partition.
        let request = OffsetFetchRequest::default()
            .with_group_id(group("app"))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic("secret"))
                    .with_partition_indexes(vec![0]),
            ]));
        let (_, amend) = run(offset_fetch(&who, 7, request));
        let ResponseKind::OffsetFetch(r) = amended(
            &who,
            amend,
            ResponseKind::OffsetFetch(OffsetFetchResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 29);
        // v7, group denied: the whole answer.
        let request = OffsetFetchRequest::default().with_group_id(group("other"));
        let ResponseKind::OffsetFetch(r) = answer(offset_fetch(&who, 7, request)) else {
            panic!()
        };
        assert_eq!(r.error_code, 30);
    }

    #[test]
    fn find_coordinator_per_key_and_whole() {
        let access = access(&[(Group, "app", Prefixed, Describe)]);
        let who = who(&access);
        let request = FindCoordinatorRequest::default()
            .with_coordinator_keys(vec!["app-1".into(), "other".into()]);
        let (request, amend) = run(find_coordinator(&who, 4, request));
        let RequestKind::FindCoordinator(request) = request else {
            panic!()
        };
        assert_eq!(request.coordinator_keys.len(), 1);
        let ResponseKind::FindCoordinator(r) = amended(
            &who,
            amend,
            ResponseKind::FindCoordinator(FindCoordinatorResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(
            (r.coordinators[0].key.as_str(), r.coordinators[0].error_code),
            ("other", 30)
        );
        let request = FindCoordinatorRequest::default()
            .with_key("app-1".into())
            .with_key_type(1);
        let ResponseKind::FindCoordinator(r) = answer(find_coordinator(&who, 3, request)) else {
            panic!()
        };
        assert_eq!(r.error_code, 53);
    }

    #[test]
    fn describe_list_and_delete_groups() {
        let access = access(&[(Group, "app", Literal, Delete)]);
        let who = who(&access);
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![group("app"), group("other")])
            .with_include_authorized_operations(true);
        let (_, amend) = run(describe_groups(&who, request));
        let handler = DescribeGroupsResponse::default().with_groups(vec![
            describe_groups_response::DescribedGroup::default().with_group_id(group("app")),
        ]);
        let ResponseKind::DescribeGroups(r) =
            amended(&who, amend, ResponseKind::DescribeGroups(handler))
        else {
            panic!()
        };
        assert_eq!(
            r.groups[0].authorized_operations,
            1 << Delete.code() | 1 << Describe.code()
        );
        assert_eq!(r.groups[1].error_code, 30);

        let (_, amend) = run(list_groups(&who, ListGroupsRequest::default()));
        let handler = ListGroupsResponse::default().with_groups(vec![
            list_groups_response::ListedGroup::default().with_group_id(group("app")),
            list_groups_response::ListedGroup::default().with_group_id(group("other")),
        ]);
        let ResponseKind::ListGroups(r) = amended(&who, amend, ResponseKind::ListGroups(handler))
        else {
            panic!()
        };
        assert_eq!(r.groups.len(), 1);

        let request = DeleteGroupsRequest::default().with_groups_names(vec![group("other")]);
        let ResponseKind::DeleteGroups(r) = answer(delete_groups(&who, request)) else {
            panic!()
        };
        assert_eq!(r.results[0].error_code, 30);
    }
}
