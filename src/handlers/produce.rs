//! Produce: validate every batch, then append each partition on the shard that owns it.
//!
//! All partitions owned by one shard go to it in one message, and the messages to all
//! owners are sent before any answer is awaited. A producer pipelines requests (up to five
//! with idempotence), so their appends must be queued in the order they were sent: the
//! connection's `produce_order` turn is held from the start of a request until its
//! scatter has queued every append (started here, or in the owner's mesh inbox); only the
//! waiting for acknowledgements overlaps.

use super::{error_message, named_topic};
use super::{ProduceTurn, Reply, RequestContext};
use crate::error::{Error, Result};
use crate::partition::PartitionAppend;
use crate::record_batch::{parse_produce_batches, RecordBatch};
use crate::shard::Shard;
use crate::topic_config;
use crate::TopicPartition;
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (3, 13);

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ProduceRequest,
) -> Reply<ProduceResponse> {
    let turn = context.connection.produce_order.next_turn().await;
    handle_in_order(shard, context, request, Some(turn)).await
}

/// Produce, holding the connection's `produce_order` turn already (dispatch takes it
/// early for a request whose topic ids must be resolved before authorization).
pub async fn handle_in_order(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ProduceRequest,
    in_order: Option<ProduceTurn>,
) -> Reply<ProduceResponse> {
    if request.transactional_id.is_some() {
        return respond_all(&request, Error::TransactionsUnsupported);
    }
    // acks=all: answered once the records are as safe as the backend makes them, within the
    // request's timeout, as a Kafka leader waits for its in-sync replicas.
    let durable_within = (request.acks == -1)
        .then(|| std::time::Duration::from_millis(request.timeout_ms.max(0) as u64));
    let mut slots: Vec<Slot> = Vec::new();
    let mut appends = Vec::new();
    for topic in &request.topic_data {
        let meta = named_topic(&shard, &topic.name, topic.topic_id, Some(&context)).await;
        for partition in &topic.partition_data {
            let checked = meta.as_ref().map_err(Clone::clone).and_then(|meta| {
                let tp = meta.partition(partition.index)?;
                let mut batches =
                    parse_produce_batches(partition.records.as_ref().unwrap_or(&Bytes::new()))?;
                for batch in &mut batches {
                    batch.most_of_its_frame = 2 * batch.bytes.len() >= context.frame_len;
                }
                check_batch_sizes(
                    &batches,
                    topic_config::max_message_bytes(meta, &shard.config),
                )?;
                if !topic_config::log_append_time(meta) {
                    return Ok((tp, batches, -1));
                }
                // Only LogAppendTime topics read the clock on the produce path.
                let now_ms = crate::unix_time().as_millis() as i64;
                let stamped = batches.iter().map(|b| b.with_log_append_time(now_ms));
                Ok((tp, stamped.collect(), now_ms))
            });
            match checked {
                Ok((tp, batches, log_append_time)) => {
                    let records = batches.iter().map(|b| b.header.records_count.max(0) as u64);
                    let bytes = batches.iter().map(|b| b.bytes.len() as u64);
                    let size = (records.sum(), bytes.sum());
                    appends.push((
                        slots.len(),
                        PartitionAppend {
                            tp: tp.clone(),
                            batches,
                            durable_within,
                        },
                    ));
                    slots.push(Slot {
                        tp,
                        result: Ok(-1),
                        log_append_time,
                        size,
                    });
                }
                Err(error) => {
                    let name = meta.as_ref().map_or(topic.name.as_str(), |m| &m.name);
                    let tp = TopicPartition::new(name, partition.index);
                    tracing::debug!(%tp, %error, "produce refused");
                    slots.push(Slot::failed(tp, error));
                }
            }
        }
    }

    let appended = shard
        .scatter_queued(
            appends,
            |a| &a.tp,
            |partitions, appends| Box::pin(async move { partitions.append_all(appends).await }),
            // Every append is queued now: the connection's next Produce may go.
            move || drop(in_order),
        )
        .await;
    for (index, result) in appended {
        let slot = &mut slots[index];
        if result.is_ok() {
            let (records, bytes) = slot.size;
            shard.metrics.produced(&slot.tp.topic, records, bytes);
        }
        slot.result = result;
    }
    // Answered even with acks=0: dispatch sends nothing then, but closes the connection if
    // any partition failed.
    Some(response(&request, slots))
}

/// One partition of the request, in request order.
struct Slot {
    tp: TopicPartition,
    /// The append's base offset, or why not.
    result: Result<i64>,
    /// The batches' LogAppendTime; -1 for CreateTime topics.
    log_append_time: i64,
    /// Records and bytes to append, counted per topic once stored.
    size: (u64, u64),
}

impl Slot {
    fn failed(tp: TopicPartition, error: Error) -> Self {
        Self {
            tp,
            result: Err(error),
            log_append_time: -1,
            size: (0, 0),
        }
    }
}

/// Kafka's message.max.bytes: no batch above the topic's limit, compressed size counted.
fn check_batch_sizes(batches: &[RecordBatch], limit: usize) -> Result<()> {
    match batches.iter().find(|b| b.bytes.len() > limit) {
        Some(batch) => Err(Error::MessageTooLarge(format!(
            "a record batch of {} bytes is over the topic's max.message.bytes of {limit}",
            batch.bytes.len()
        ))),
        None => Ok(()),
    }
}

fn response(request: &ProduceRequest, slots: Vec<Slot>) -> ProduceResponse {
    let mut slots = slots.into_iter();
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .zip(slots.by_ref())
                .map(|(partition, slot)| {
                    partition_response(partition.index, slot.result, slot.log_append_time)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn partition_response(
    index: i32,
    result: Result<i64>,
    log_append_time: i64,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(0);
    match result {
        Ok(base_offset) => response
            .with_base_offset(base_offset)
            .with_log_append_time_ms(log_append_time),
        Err(error) => response
            .with_error_code(error.code())
            .with_error_message(error_message(&error))
            .with_base_offset(-1),
    }
}

fn respond_all(request: &ProduceRequest, error: Error) -> Reply<ProduceResponse> {
    let slots = request
        .topic_data
        .iter()
        .flat_map(|t| {
            t.partition_data.iter().map(|p| {
                let tp = TopicPartition::new(t.name.0.to_string(), p.index);
                Slot::failed(tp, error.clone())
            })
        })
        .collect();
    Some(response(request, slots))
}
