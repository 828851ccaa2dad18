//! DescribeTopicPartitions (KIP-966; `kafka-topics --describe` 4.x): Metadata's partition
//! view, paged. Topics come sorted by name from the cursor on; at most
//! `response_partition_limit` partitions per answer, and `next_cursor` says where the next
//! page starts.

use super::metadata::leader_of;
use super::{authorized_operations, str_bytes, Resource};
use super::{Reply, RequestContext};
use crate::backend::TopicMeta;
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use std::rc::Rc;
use std::sync::Arc;

pub const VERSIONS: (i16, i16) = (0, 0);

/// Kafka's max.request.partition.size.limit: the most partitions one answer holds.
const PARTITION_LIMIT: i32 = 2000;

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> Reply<DescribeTopicPartitionsResponse> {
    let operations = authorized_operations(true, Resource::Topic);
    // Every topic when none is named, else the named ones; sorted by name either way.
    let mut wanted: Vec<(String, Result<Arc<TopicMeta>, Error>)> = Vec::new();
    if request.topics.is_empty() {
        match shard.topics.list().await {
            Ok(all) => wanted.extend(all.into_iter().map(|t| (t.name.to_string(), Ok(t)))),
            Err(error) => tracing::warn!(%error, "cannot list topics"),
        }
    } else {
        for topic in &request.topics {
            let found = shard.topics.get(&topic.name).await;
            let found = found.and_then(|t| t.ok_or(Error::UnknownTopicOrPartition));
            wanted.push((topic.name.to_string(), found));
        }
    }
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    wanted.dedup_by(|a, b| a.0 == b.0);

    let (first_topic, mut first_partition) = match &request.cursor {
        Some(cursor) => (
            Some(cursor.topic_name.to_string()),
            cursor.partition_index.max(0),
        ),
        None => (None, 0),
    };
    if let Some(first) = &first_topic {
        wanted.retain(|(name, _)| name >= first);
        if wanted.first().is_none_or(|(name, _)| name != first) {
            first_partition = 0;
        }
    }
    let mut budget = match request.response_partition_limit {
        n if n > 0 => n.min(PARTITION_LIMIT),
        _ => PARTITION_LIMIT,
    };
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for (index, (name, found)) in wanted.into_iter().enumerate() {
        let start = if index == 0 { first_partition } else { 0 };
        let described = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(TopicName(str_bytes(name.clone()))))
            .with_topic_authorized_operations(operations);
        let meta = match found {
            Ok(meta) => meta,
            Err(error) => {
                topics.push(described.with_error_code(error.code()));
                continue;
            }
        };
        if budget == 0 {
            next_cursor = Some(cursor(&name, start));
            break;
        }
        let end = meta.partitions.min(start.saturating_add(budget));
        let partitions = (start..end)
            .map(|p| {
                let leader = leader_of(&shard, &meta, p);
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(leader)
                    .with_leader_epoch(meta.leader_epoch(p))
                    .with_replica_nodes(vec![leader])
                    .with_isr_nodes(vec![leader])
                    // Kafka always sends lists here (the Java admin client cannot take null).
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        budget -= end - start.min(end);
        topics.push(described.with_topic_id(meta.id).with_partitions(partitions));
        if end < meta.partitions {
            next_cursor = Some(cursor(&name, end));
            break;
        }
    }
    Some(
        DescribeTopicPartitionsResponse::default()
            .with_topics(topics)
            .with_next_cursor(next_cursor),
    )
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(str_bytes(topic)))
        .with_partition_index(partition)
}
