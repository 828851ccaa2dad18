//! ConsumerGroupDescribe: groups on the new consumer protocol (KIP-848), as
//! `kafka-consumer-groups --describe` 4.x shows them: members, their assignment and the
//! target the coordinator moves them to. A classic group is not a consumer group here, as
//! in Kafka: GROUP_ID_NOT_FOUND, and the admin client asks DescribeGroups instead.

use super::{authorized_operations, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::group::consumer::{Partitions, ASSIGNORS};
use crate::group::{is_consumer, ConsumerMemberView, Description};
use crate::shard::Shard;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 1);

/// `member_type` (v1+): a member that joined with ConsumerGroupHeartbeat.
const CONSUMER_MEMBER: i8 = 1;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> Reply<ConsumerGroupDescribeResponse> {
    let operations = authorized_operations(request.include_authorized_operations, Resource::Group);
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for group_id in &request.group_ids {
        let described = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(operations);
        let found = match shard.coordinator(group_id) {
            Ok(groups) => groups.describe(group_id).await,
            Err(error) => Err(error),
        };
        let not_found = |message: String| {
            described
                .clone()
                .with_group_state(str_bytes("Dead"))
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(message)))
        };
        let described = match found {
            Ok(Description::Consumer {
                state,
                epoch,
                members,
            }) => {
                let mut described_members = Vec::with_capacity(members.len());
                for member in members {
                    described_members.push(describe_member(&shard, member, context.version).await);
                }
                described
                    .with_group_state(str_bytes(state))
                    .with_group_epoch(epoch)
                    .with_assignment_epoch(epoch)
                    .with_assignor_name(str_bytes(ASSIGNORS[0]))
                    .with_members(described_members)
            }
            Ok(Description::Empty(listing)) if is_consumer(&listing) => described
                .with_group_state(str_bytes("Empty"))
                .with_assignor_name(str_bytes(ASSIGNORS[0])),
            Ok(Description::Classic { .. } | Description::Empty(_)) => {
                not_found(format!("group {} is not a consumer group", &**group_id))
            }
            Ok(Description::Dead) => not_found(format!("group {} not found", &**group_id)),
            Err(error) => described.with_error_code(error.group_error().code()),
        };
        groups.push(described);
    }
    Some(ConsumerGroupDescribeResponse::default().with_groups(groups))
}

async fn describe_member(shard: &Shard, member: ConsumerMemberView, version: i16) -> Member {
    let described = Member::default()
        .with_member_id(str_bytes(member.id))
        .with_instance_id(member.instance_id.map(str_bytes))
        .with_rack_id(member.rack_id.map(str_bytes))
        .with_member_epoch(member.epoch)
        .with_client_id(str_bytes(member.client_id))
        .with_client_host(str_bytes(member.client_host))
        .with_subscribed_topic_names(
            member
                .subscribed
                .into_iter()
                .map(|t| TopicName(str_bytes(t)))
                .collect(),
        )
        .with_assignment(assignment(shard, member.assigned).await)
        .with_target_assignment(assignment(shard, member.target).await);
    // member_type exists from v1.
    match version >= 1 {
        true => described.with_member_type(CONSUMER_MEMBER),
        false => described,
    }
}

/// Partitions by topic id and name; topics deleted meanwhile are left out.
async fn assignment(shard: &Shard, partitions: Partitions) -> Assignment {
    let mut topics = Vec::new();
    for (name, partitions) in partitions {
        if let Ok(Some(meta)) = shard.topics.get(&name).await {
            topics.push(
                TopicPartitions::default()
                    .with_topic_id(meta.id)
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partitions(partitions.into_iter().collect()),
            );
        }
    }
    Assignment::default().with_topic_partitions(topics)
}
