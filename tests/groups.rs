//! Consumer-group coordination as a client library drives it, request by request: the
//! coordinator's shard, the join/sync round trips, errors, committed offsets, admin calls.

use crate::common::*;
use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
};
use kafka_protocol::ResponseError;
use std::net::SocketAddr;

const NOT_COORDINATOR: i16 = 16;

fn group(name: &str) -> GroupId {
    GroupId(name.to_string().into())
}

/// The coordinator's address, and another shard's.
fn coordinator(server: &Server, name: &str) -> (SocketAddr, SocketAddr) {
    let request =
        FindCoordinatorRequest::default().with_coordinator_keys(vec![name.to_string().into()]);
    let found = server.client().call(&request, 4).coordinators.remove(0);
    assert_eq!(found.error_code, 0);
    let owner = *server
        .brokers
        .iter()
        .find(|b| i32::from(b.port()) == found.port)
        .expect("the coordinator is one of the advertised brokers");
    let other = *server
        .brokers
        .iter()
        .find(|b| **b != owner)
        .expect("two shards");
    (owner, other)
}

fn join(client: &mut Client, name: &str, member_id: &str, session_ms: i32) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(group(name))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(member_id.to_string().into())
        .with_protocol_type("consumer".into())
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name("range".into())
            .with_metadata(Bytes::from_static(b"subscription"))]);
    client.call(&request, 9)
}

fn commit(
    client: &mut Client,
    name: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(group(name))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member.to_string().into())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some("checkpoint".into()))])]);
    client.call(&request, 9).topics[0].partitions[0].error_code
}

fn fetch_offsets(client: &mut Client, name: &str, topic: Option<&str>) -> OffsetFetchResponse {
    let topics = topic.map(|t| {
        vec![OffsetFetchRequestTopics::default()
            .with_name(topic_name(t))
            .with_partition_indexes(vec![0, 1])]
    });
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group(name))
            .with_topics(topics)]);
    client.call(&request, 9)
}

#[test]
fn only_the_coordinating_shard_serves_a_group() {
    let server = Server::start(&["--shards", "2"]);
    let (owner, other) = coordinator(&server, "orders-app");
    let refused = join(&mut Client::connect(other), "orders-app", "", 10_000);
    assert_eq!(refused.error_code, NOT_COORDINATOR);
    let accepted = join(&mut Client::connect(owner), "orders-app", "", 10_000);
    assert_eq!(accepted.error_code, ResponseError::MemberIdRequired.code());

    let found = server.client().call(
        &FindCoordinatorRequest::default().with_key("orders-app".into()),
        3,
    );
    assert_eq!((found.error_code, found.port), (0, i32::from(owner.port())));
}

#[test]
fn a_member_joins_syncs_commits_and_leaves() {
    let server = Server::start(&["--shards", "2", "--group-initial-rebalance-delay-ms", "0"]);
    create_topic(&mut server.client(), "events", 2);
    let (owner, _) = coordinator(&server, "app");
    let mut client = Client::connect(owner);

    assert_eq!(
        join(&mut client, "app", "", 10).error_code,
        ResponseError::InvalidSessionTimeout.code()
    );
    let first = join(&mut client, "app", "", 10_000);
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    let joined = join(&mut client, "app", &member, 10_000);
    assert_eq!(joined.error_code, 0);
    assert_eq!(
        (joined.generation_id, joined.leader.as_str()),
        (1, member.as_str())
    );
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);

    let sync = SyncGroupRequest::default()
        .with_group_id(group("app"))
        .with_generation_id(1)
        .with_member_id(member.clone().into())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(member.clone().into())
            .with_assignment(Bytes::from_static(b"events-0,events-1"))]);
    let synced = client.call(&sync, 5);
    assert_eq!(
        (synced.error_code, synced.assignment.as_ref()),
        (0, &b"events-0,events-1"[..])
    );

    let heartbeat = |client: &mut Client, generation| {
        let request = HeartbeatRequest::default()
            .with_group_id(group("app"))
            .with_generation_id(generation)
            .with_member_id(member.clone().into());
        client.call(&request, 4).error_code
    };
    assert_eq!(heartbeat(&mut client, 1), 0);
    assert_eq!(
        heartbeat(&mut client, 7),
        ResponseError::IllegalGeneration.code()
    );

    assert_eq!(commit(&mut client, "app", &member, 1, "events", 42), 0);
    assert_eq!(
        commit(&mut client, "app", &member, 0, "events", 43),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        commit(&mut client, "app", "stranger", 1, "events", 43),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        commit(&mut client, "app", &member, 1, "no-such-topic", 1),
        ResponseError::UnknownTopicOrPartition.code()
    );

    let named = fetch_offsets(&mut client, "app", Some("events"));
    let partitions = &named.groups[0].topics[0].partitions;
    let seen: Vec<(i32, i64)> = partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(
        seen,
        vec![(0, -1), (1, 42)],
        "a partition without a commit answers -1"
    );
    assert_eq!(partitions[1].metadata.as_deref(), Some("checkpoint"));
    let all = fetch_offsets(&mut client, "app", None);
    assert_eq!(all.groups[0].topics.len(), 1);
    assert_eq!(all.groups[0].topics[0].partitions.len(), 1);

    let described = client.call(
        &DescribeGroupsRequest::default().with_groups(vec![group("app")]),
        5,
    );
    let described = &described.groups[0];
    assert_eq!(
        (described.group_state.as_str(), described.members.len()),
        ("Stable", 1)
    );
    assert_eq!(
        described.members[0].member_assignment.as_ref(),
        b"events-0,events-1"
    );

    let delete = DeleteGroupsRequest::default().with_groups_names(vec![group("app")]);
    assert_eq!(
        client.call(&delete, 2).results[0].error_code,
        ResponseError::NonEmptyGroup.code()
    );

    let leave = LeaveGroupRequest::default()
        .with_group_id(group("app"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(member.clone().into())
        ]);
    let left = client.call(&leave, 5);
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0));
    assert_eq!(
        heartbeat(&mut client, 1),
        ResponseError::UnknownMemberId.code()
    );

    let described = client.call(
        &DescribeGroupsRequest::default().with_groups(vec![group("app")]),
        5,
    );
    assert_eq!(
        described.groups[0].group_state.as_str(),
        "Empty",
        "offsets keep it listed"
    );
    let listed = client.call(&ListGroupsRequest::default(), 5);
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == "app"));

    // Without members, a commit that does not claim membership is an admin's commit.
    assert_eq!(commit(&mut client, "app", "", -1, "events", 7), 0);
    assert_eq!(client.call(&delete, 2).results[0].error_code, 0);
    let gone = fetch_offsets(&mut client, "app", Some("events"));
    assert!(gone.groups[0].topics[0]
        .partitions
        .iter()
        .all(|p| p.committed_offset == -1));
    assert_eq!(
        client.call(&delete, 2).results[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
}

#[test]
fn a_second_member_makes_the_first_rejoin() {
    let server = Server::start(&["--shards", "1", "--group-initial-rebalance-delay-ms", "0"]);
    let (owner, _) = (server.brokers[0], ());
    let mut first = Client::connect(owner);
    let a = join(&mut first, "pair", "", 10_000).member_id.to_string();
    assert_eq!(join(&mut first, "pair", &a, 10_000).generation_id, 1);

    // The newcomer's JoinGroup is parked until the first member rejoins: send it on its
    // own connection and answer the rebalance from the first.
    let mut second = Client::connect(owner);
    let b = join(&mut second, "pair", "", 10_000).member_id.to_string();
    let newcomer = std::thread::spawn(move || join(&mut second, "pair", &b, 10_000));
    let rebalancing = ResponseError::RebalanceInProgress.code();
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(group("pair"))
        .with_generation_id(1)
        .with_member_id(a.clone().into());
    // Readiness, not a sleep: heartbeat until the coordinator says a rebalance is on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while first.call(&heartbeat, 4).error_code != rebalancing {
        assert!(std::time::Instant::now() < deadline, "no rebalance started");
    }
    let rejoined = join(&mut first, "pair", &a, 10_000);
    let joined = newcomer.join().expect("second member");
    assert_eq!((rejoined.generation_id, joined.generation_id), (2, 2));
    assert_eq!(rejoined.members.len(), 2, "the leader sees both");
    assert!(joined.members.is_empty());
}
