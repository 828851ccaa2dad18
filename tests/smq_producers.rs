//! Idempotent producers across a tidegate restart on SeaweedMQ: a batch SMQ stored before
//! the restart, retried afterwards (its answer was lost with the old process), is answered
//! with its first offset and not stored twice, and sequence checks go on where they were;
//! whether the producers' snapshot covered the batches before the kill, or only the marks
//! the records carry knew of them. DescribeProducers shows them before any append does.
//!
//! Needs `TIDEGATE_SEAWEEDFS=DIR`, a directory `scripts/seaweedfs start DIR` runs in
//! (`scripts/test` provides one); without it the test says so and passes.

use crate::common::{
    create_topic, encode_batch, fetch, http_get, produce, produce_retrying, records, seaweedfs,
    smq_args, visible, wait_first_flush, Server,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{DescribeProducersRequest, InitProducerIdRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record};

const PARTITIONS: i32 = 4;

fn start(master: &str) -> Server {
    start_with(master, "1000")
}

fn start_with(master: &str, snapshot_interval_ms: &str) -> Server {
    let interval = ["--smq-producer-snapshot-interval-ms", snapshot_interval_ms];
    Server::start(&smq_args(master, &interval))
}

/// Where the partition's producer snapshot covers the records' marks to, as the filer
/// holds it now (-1: no snapshot).
fn snapshot_covers(filer_port: &str, topic: &str, partition: i32) -> i64 {
    let path = format!("/topics/kafka/.meta/producer-snapshots/{topic}/{partition}");
    let (status, body) = http_get(filer_port, &path);
    if status != 200 {
        return -1;
    }
    let snapshot: serde_json::Value = serde_json::from_str(&body).expect("a snapshot is JSON");
    snapshot["covered_until"].as_i64().expect("covered_until")
}

#[test]
fn a_batch_retried_across_a_restart_is_recognised_from_the_snapshot() {
    retried_across_a_restart(Snapshot::CoversAll);
}

#[test]
fn a_batch_retried_across_a_restart_is_recognised_from_the_records_marks() {
    retried_across_a_restart(Snapshot::NoneSinceTheFirst);
}

enum Snapshot {
    /// Killed once each partition's snapshot covers every batch.
    CoversAll,
    /// Killed with no snapshot written since the partition's first (made before any
    /// record there carried a mark): the records' marks alone tell the batches.
    NoneSinceTheFirst,
}

fn retried_across_a_restart(snapshot: Snapshot) {
    let Some(ports) = seaweedfs() else { return };
    let topic = format!("producer-restart-{}", uuid::Uuid::new_v4().simple());
    let interval_ms = match snapshot {
        Snapshot::CoversAll => "50",
        Snapshot::NoneSinceTheFirst => "3600000",
    };
    let server = start_with(&ports["MASTER"], interval_ms);
    let mut client = server.client();
    create_topic(&mut client, &topic, PARTITIONS);
    for partition in 0..PARTITIONS {
        let lead_in = encode_batch(&records(partition, 2, None), Compression::None);
        assert_eq!(produce(&mut client, &topic, partition, lead_in).0, 0);
    }
    wait_first_flush(&ports["FILER_PORT"], &topic, PARTITIONS);

    let init = client.call(&InitProducerIdRequest::default(), 4);
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch);
    // Per partition: nine records in three batches (sequences 0-3, 4-6, 7-8).
    let sent: Vec<Vec<Record>> = (0..PARTITIONS)
        .map(|p| records(p, 9, Some((producer.0, producer.1, 0))))
        .collect();
    let batch = |p: i32, range: std::ops::Range<usize>| {
        encode_batch(&sent[p as usize][range], Compression::Lz4)
    };
    let mut first_offsets = Vec::new();
    for partition in 0..PARTITIONS {
        let (error, first) = produce(&mut client, &topic, partition, batch(partition, 0..4));
        assert_eq!(error, 0);
        let (error, second) = produce(&mut client, &topic, partition, batch(partition, 4..7));
        assert_eq!((error, second), (0, first + 4));
        first_offsets.push(first);
    }
    for partition in 0..PARTITIONS {
        let first = first_offsets[partition as usize];
        let covers = || snapshot_covers(&ports["FILER_PORT"], &topic, partition);
        match snapshot {
            Snapshot::CoversAll => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while covers() < first + 7 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no snapshot covers them"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            Snapshot::NoneSinceTheFirst => {
                assert_eq!(covers(), 0, "the first, made before any record")
            }
        }
    }
    drop(client);
    drop(server); // SIGKILL

    let server = start(&ports["MASTER"]);
    let mut client = server.client();
    // Asked before any append there, the restarted gateway knows the producer as it was.
    let asked = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_string(topic.clone())))
        .with_partition_indexes((0..PARTITIONS).collect())]);
    let described = client.call(&asked, 0);
    for partition in &described.topics[0].partitions {
        let known: Vec<_> = partition
            .active_producers
            .iter()
            .map(|p| (p.producer_id.0, p.producer_epoch, p.last_sequence))
            .collect();
        assert_eq!(
            (partition.error_code, known),
            (0, vec![(producer.0, i32::from(producer.1), 6)]),
            "DescribeProducers on partition {} after the restart",
            partition.partition_index
        );
    }
    for partition in 0..PARTITIONS {
        let first = first_offsets[partition as usize];
        assert_eq!(
            produce(&mut client, &topic, partition, batch(partition, 4..7)),
            (0, first + 4),
            "the retried last batch is answered with its offset"
        );
        assert_eq!(
            produce(&mut client, &topic, partition, batch(partition, 0..4)),
            (0, first),
            "an older retried batch too"
        );
        let gap = encode_batch(&sent[partition as usize][8..9], Compression::None);
        assert_eq!(
            produce(&mut client, &topic, partition, gap).0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER: the restored state knows sequence 6 came last"
        );
        let third = produce_retrying(&mut client, &topic, partition, batch(partition, 7..9));
        assert!(third >= first + 7, "offsets only grow");

        let mut stored: Vec<Record> = Vec::new();
        while stored.len() < 9 {
            let next = stored.last().map_or(first, |r| r.offset + 1);
            let (error, more) = fetch(&mut client, &topic, partition, next, 5_000);
            assert_eq!(error, 0);
            assert!(!more.is_empty(), "nothing to fetch at {next}: {stored:?}");
            stored.extend(more);
        }
        let mut expected = sent[partition as usize].clone();
        for (i, record) in expected.iter_mut().enumerate() {
            record.offset = match i {
                0..=6 => first + i as i64,
                _ => third + i as i64 - 7,
            };
        }
        assert_eq!(
            visible(&stored),
            visible(&expected),
            "every record once, in order, byte for byte"
        );
    }
}

#[test]
fn records_appended_after_a_gateway_died_are_read_from_the_offset_before_them() {
    let Some(ports) = seaweedfs() else { return };
    let topic = format!("after-death-{}", uuid::Uuid::new_v4().simple());
    let server = start(&ports["MASTER"]);
    let mut client = server.client();
    create_topic(&mut client, &topic, 1);
    let lead_in = encode_batch(&records(0, 10, None), Compression::None);
    assert_eq!(produce(&mut client, &topic, 0, lead_in), (0, 0));
    // Killed with its publish stream open: SeaweedMQ unloads the partition, and the next
    // publish may meet the stopping buffer and leave an offset unused.
    drop(server);
    let other = start(&ports["MASTER"]);
    let sent = records(0, 5, None);
    let at = produce_retrying(
        &mut other.client(),
        &topic,
        0,
        encode_batch(&sent, Compression::None),
    );
    assert!(at >= 10, "appended at {at}, before what was acknowledged");
    let expected: Vec<Record> = sent
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: at + i as i64,
            ..r
        })
        .collect();
    // A consumer that had read the first ten asks for offset 10, through the gateway that
    // appended and through one that never saw the partition; either reads them once SMQ
    // has them in a file at the latest.
    let fresh = start(&ports["MASTER"]);
    for gateway in [&other, &fresh] {
        let mut client = gateway.client();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let read = loop {
            let (error, read) = fetch(&mut client, &topic, 0, 10, 500);
            assert_eq!(error, 0);
            if !read.is_empty() || std::time::Instant::now() > deadline {
                break read;
            }
        };
        assert_eq!(visible(&read), visible(&expected));
    }
}
