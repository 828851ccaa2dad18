//! Fetch: read each partition on its owner, and long-poll when there is too little.
//!
//! The wait is event-driven: the owners of the partitions are asked to report the next
//! append past what was read (`Shard::watch`); the timer only bounds the wait. An
//! idle long-poll costs no CPU, and data that arrives is answered at once.
//!
//! Fetch sessions (KIP-227) are declined by answering session id 0, which makes clients send
//! full fetch requests; that is always allowed.

use super::named_topic;
use super::{Reply, RequestContext};
use crate::backend::ReadResult;
use crate::error::{Error, Result};
use crate::partition::PartitionRead;
use crate::record_batch::LogBatch;
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use futures::future::select;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub const VERSIONS: (i16, i16) = (4, 18);

/// One requested partition, resolved against the catalog.
struct Wanted {
    topic_index: usize,
    partition: i32,
    read: Result<PartitionRead>,
}

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: FetchRequest,
) -> Reply<FetchResponse> {
    if request.session_id != 0 && request.session_epoch > 0 {
        return Some(
            FetchResponse::default().with_error_code(Error::FetchSessionIdNotFound.code()),
        );
    }
    let wanted = resolve(&shard, &request).await;
    let max_wait = Duration::from_millis(
        request
            .max_wait_ms
            .clamp(0, shard.config.fetch_max_wait_ms as i32) as u64,
    );
    let deadline = Instant::now() + max_wait;
    let max_bytes = request.max_bytes.clamp(1, shard.config.fetch_max_bytes) as usize;
    // Nor more than the partitions may return, which is what is charged while reading.
    let partitions_max: usize = wanted
        .iter()
        .filter_map(|w| Some(w.read.as_ref().ok()?.max_bytes))
        .sum();
    let max_bytes = max_bytes.min(partitions_max.max(1));
    let min_bytes = request.min_bytes.max(0) as usize;
    let memory = &context.connection.memory;
    loop {
        // No more than the connection (and its shard) can still hold: a client that does
        // not read its answers gets smaller ones, down to one batch (KIP-74). Charged while
        // reading, so concurrent Fetches on one connection share what is left.
        let mut held = memory.charge(max_bytes.min(memory.room()));
        let mut results = read_all(&shard, &wanted).await;
        let size = trim_to(&mut results, held.bytes().max(1));
        held.shrink_to(size);
        let any_error = results
            .iter()
            .any(|r| r.as_ref().is_some_and(|r| r.is_err()));
        let now = Instant::now();
        let shutting_down = context.connection.shutdown.has_begun();
        if size >= min_bytes.max(1) || any_error || now >= deadline || shutting_down {
            count_fetched(&shard, &wanted, &results);
            return Some(response(&request, &wanted, results));
        }
        // Too little: wait for an append to any partition, or the deadline.
        let positions = wanted.iter().zip(&results).filter_map(|(w, r)| {
            let tp = w.read.as_ref().ok()?.tp.clone();
            Some((tp, r.as_ref()?.as_ref().ok()?.high_watermark))
        });
        let positions: Vec<_> = positions.collect();
        // Data, the deadline or shutdown; then one last read, and the answer.
        let timer = glommio::timer::sleep(deadline - now);
        let wait = async {
            if positions.is_empty() {
                timer.await;
            } else {
                let watch = std::pin::pin!(shard.watch(positions));
                let _ = select(watch, std::pin::pin!(timer)).await;
            }
        };
        context.connection.shutdown.unless_begun(wait).await;
        // A wait that ends at once (data "moved" but nothing new to read) must not keep
        // this task, and so its shard, from letting others run until the deadline.
        glommio::yield_if_needed().await;
    }
}

async fn resolve(shard: &Shard, request: &FetchRequest) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let meta = named_topic(shard, &topic.topic, topic.topic_id, None).await;
        for partition in &topic.partitions {
            let read = meta.clone().and_then(|meta| {
                Ok(PartitionRead {
                    tp: meta.partition(partition.partition)?,
                    offset: partition.fetch_offset,
                    max_bytes: partition.partition_max_bytes.max(1) as usize,
                    current_leader_epoch: partition.current_leader_epoch,
                })
            });
            wanted.push(Wanted {
                topic_index,
                partition: partition.partition,
                read,
            });
        }
    }
    wanted
}

/// Reads every resolvable partition on its owner; `None` where it did not resolve.
async fn read_all(shard: &Rc<Shard>, wanted: &[Wanted]) -> Vec<Option<Result<ReadResult>>> {
    let reads = wanted
        .iter()
        .enumerate()
        .filter_map(|(i, w)| Some((i, w.read.as_ref().ok()?.clone())));
    let read = shard
        .scatter(
            reads,
            |r| &r.tp,
            |partitions, reads| Box::pin(async move { partitions.read_all(reads).await }),
        )
        .await;
    let mut results: Vec<Option<Result<ReadResult>>> = wanted.iter().map(|_| None).collect();
    for (index, result) in read {
        results[index] = Some(result);
    }
    results
}

/// Drops batches past the response's `max_bytes`, keeping at least the first batch of the
/// response (KIP-74: a consumer must always make progress). Returns the bytes kept.
fn trim_to(results: &mut [Option<Result<ReadResult>>], max_bytes: usize) -> usize {
    let mut size = 0;
    for read in results.iter_mut().flatten().flatten() {
        let mut kept = 0;
        for batch in &read.batches {
            if size > 0 && size + batch.len() > max_bytes {
                break;
            }
            size += batch.len();
            kept += 1;
        }
        read.batches.truncate(kept);
    }
    size
}

/// Counts, per topic, the records and bytes the answer carries.
fn count_fetched(shard: &Shard, wanted: &[Wanted], results: &[Option<Result<ReadResult>>]) {
    for (w, result) in wanted.iter().zip(results) {
        let (Ok(read), Some(Ok(result))) = (&w.read, result) else {
            continue;
        };
        if result.batches.is_empty() {
            continue;
        }
        let records = result.batches.iter().map(LogBatch::records_count).sum();
        let bytes = result.batches.iter().map(|b| b.len() as u64).sum();
        shard.metrics.fetched(&read.tp.topic, records, bytes);
    }
}

fn response(
    request: &FetchRequest,
    wanted: &[Wanted],
    results: Vec<Option<Result<ReadResult>>>,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = request
        .topics
        .iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(t.topic.0.clone()))
                .with_topic_id(t.topic_id)
        })
        .collect();
    for (w, result) in wanted.iter().zip(results) {
        let result = match (&w.read, result) {
            (Err(error), _) => Err(error.clone()),
            (Ok(_), Some(result)) => result,
            (Ok(_), None) => Err(Error::ShardUnreachable),
        };
        topics[w.topic_index]
            .partitions
            .push(partition_data(w.partition, result));
    }
    FetchResponse::default()
        .with_responses(topics)
        .with_session_id(0)
}

fn partition_data(partition: i32, result: Result<ReadResult>) -> PartitionData {
    let data = PartitionData::default()
        .with_partition_index(partition)
        .with_preferred_read_replica(BrokerId(-1));
    match result {
        Ok(read) => data
            .with_high_watermark(read.high_watermark)
            .with_last_stable_offset(read.high_watermark)
            .with_log_start_offset(read.log_start_offset)
            .with_records(Some(concat(read.batches))),
        Err(error) => data
            .with_error_code(error.code())
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new())),
    }
}

/// The batches as one buffer; a single batch is passed through without a copy where it is
/// served as stored.
fn concat(batches: Vec<LogBatch>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches
            .into_iter()
            .next()
            .map_or_else(Bytes::new, LogBatch::into_bytes),
        _ => {
            let mut out = BytesMut::with_capacity(batches.iter().map(LogBatch::len).sum());
            for batch in &batches {
                batch.write_to(&mut out);
            }
            out.freeze()
        }
    }
}
