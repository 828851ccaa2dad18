//! DescribeLogDirs (`kafka-log-dirs`): what this broker (one shard) holds. Each shard has
//! one "log dir", the backend's store, listing the partitions the shard leads with their
//! size in bytes: in memory, or in SeaweedFS's filer (what its broker has flushed). A store
//! that cannot be read answers KAFKA_STORAGE_ERROR, as an offline log dir does in Kafka.

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::config::BackendKind;
use crate::shard::Shard;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (1, 4);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeLogDirsRequest,
) -> Reply<DescribeLogDirsResponse> {
    // (topic, partitions asked, or all of them) — null asks for every topic.
    let mut wanted: Vec<(String, Option<Vec<i32>>)> = Vec::new();
    match &request.topics {
        None => match shard.topics.list().await {
            Ok(all) => wanted.extend(all.iter().map(|t| (t.name.to_string(), None))),
            Err(error) => tracing::warn!(%error, "cannot list topics"),
        },
        Some(topics) => wanted.extend(
            topics
                .iter()
                .map(|t| (t.topic.to_string(), Some(t.partitions.clone()))),
        ),
    }
    let mut topics = Vec::new();
    let mut unreadable = None;
    for (name, asked) in wanted {
        let Ok(Some(meta)) = shard.topics.get(&name).await else {
            continue;
        };
        let hosted = asked
            .unwrap_or_else(|| (0..meta.partitions).collect())
            .into_iter()
            .filter_map(|p| meta.partition(p).ok())
            // A broker describes only what it hosts.
            .filter(|tp| shard.owner(tp) == shard.id)
            .collect::<Vec<_>>();
        let sizes = shard.partitions.sizes(hosted.clone()).await;
        let mut partitions = Vec::new();
        for (tp, size) in hosted.iter().zip(sizes) {
            match size {
                Ok(size) => partitions.push(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_partition_size(size)
                        .with_offset_lag(0),
                ),
                Err(error) => unreadable = Some(error),
            }
        }
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(name)))
                    .with_partitions(partitions),
            );
        }
    }
    let log_dir = match shard.config.backend {
        BackendKind::Memory => format!("memory:shard-{}", shard.id),
        BackendKind::Smq => format!("seaweedmq:/topics/{}", shard.config.smq_namespace),
    };
    let result = DescribeLogDirsResult::default().with_log_dir(str_bytes(log_dir));
    let result = match unreadable {
        None => result.with_topics(topics),
        Some(error) => {
            tracing::warn!(%error, "log dir sizes unreadable");
            result.with_error_code(ResponseError::KafkaStorageError.code())
        }
    };
    let result = result
        // Capacity is the storage's; not known here.
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    Some(DescribeLogDirsResponse::default().with_results(vec![result]))
}
