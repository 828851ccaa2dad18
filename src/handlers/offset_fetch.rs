//! OffsetFetch: a group's committed positions (all, or the partitions named), from the
//! coordinator's cache, loaded from the store after a restart. v8+ asks for several groups.

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::backend::CommittedOffset;
use crate::error::Fault;
use crate::shard::Shard;
use crate::TopicPartition;
use hashbrown::HashMap;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 9);

/// One partition's answer: committed offset, leader epoch, metadata.
type Position = (i64, i32, String);

/// What one group's answer holds, by topic, or why there is none.
type GroupAnswer = Result<BTreeMap<String, Vec<(i32, Position)>>, ResponseError>;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: OffsetFetchRequest,
) -> Reply<OffsetFetchResponse> {
    if context.version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let wanted = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let answer = fetch_group(&shard, &group.group_id, wanted).await;
            groups.push(group_response(group.group_id.clone(), answer));
        }
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let answer = fetch_group(&shard, &request.group_id, wanted).await;
    Some(single_group_response(answer))
}

async fn fetch_group(
    shard: &Shard,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> GroupAnswer {
    let groups = shard.coordinator(group).map_err(|e| e.group_error())?;
    let committed = groups.committed(group).await.map_err(|error| {
        tracing::warn!(group, %error, "could not load committed offsets");
        match error.fault() {
            // What Kafka answers while a coordinator loads a group's offsets, which every
            // client retries; librdkafka's consumer gives up on COORDINATOR_NOT_AVAILABLE
            // here and never fetches, even once SeaweedFS is back.
            Fault::Storage => ResponseError::CoordinatorLoadInProgress,
            _ => error.group_error(),
        }
    })?;
    Ok(select(&committed, wanted))
}

/// The committed positions asked for; partitions with none get offset -1.
fn select(
    committed: &HashMap<TopicPartition, CommittedOffset>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> BTreeMap<String, Vec<(i32, Position)>> {
    let position = |c: &CommittedOffset| (c.offset, c.leader_epoch, c.metadata.clone());
    let mut topics: BTreeMap<String, Vec<(i32, Position)>> = BTreeMap::new();
    match wanted {
        None => {
            for (tp, offset) in committed {
                let partitions = topics.entry(tp.topic.to_string()).or_default();
                partitions.push((tp.partition, position(offset)));
            }
            topics.values_mut().for_each(|p| p.sort_by_key(|(i, _)| *i));
        }
        Some(wanted) => {
            for (topic, partitions) in wanted {
                let name: std::sync::Arc<str> = topic.as_str().into();
                let answers = partitions.into_iter().map(|partition| {
                    let tp = TopicPartition::new(name.clone(), partition);
                    let found = committed.get(&tp).map(position);
                    (partition, found.unwrap_or((-1, -1, String::new())))
                });
                topics.entry(topic).or_default().extend(answers);
            }
        }
    }
    topics
}

/// The committed positions in either response layout (v8+ per group, earlier per request):
/// the same fields in types of their own.
macro_rules! topics_of {
    ($topics:expr, $topic:ident, $partition:ident) => {
        $topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, (offset, epoch, metadata))| {
                        $partition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(Some(str_bytes(metadata)))
                    })
                    .collect();
                $topic::default()
                    .with_name(TopicName(str_bytes(name)))
                    .with_partitions(partitions)
            })
            .collect()
    };
}

fn group_response(group_id: GroupId, answer: GroupAnswer) -> OffsetFetchResponseGroup {
    let response = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match answer {
        Err(error) => response.with_error_code(error.code()),
        Ok(topics) => response.with_topics(topics_of!(
            topics,
            OffsetFetchResponseTopics,
            OffsetFetchResponsePartitions
        )),
    }
}

fn single_group_response(answer: GroupAnswer) -> OffsetFetchResponse {
    let response = OffsetFetchResponse::default();
    match answer {
        Err(error) => response.with_error_code(error.code()),
        Ok(topics) => response.with_topics(topics_of!(
            topics,
            OffsetFetchResponseTopic,
            OffsetFetchResponsePartition
        )),
    }
}
