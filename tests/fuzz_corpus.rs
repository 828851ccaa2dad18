//! Replays the fuzz corpus, `tests/fuzz/corpus/<target>/`, through the fuzz targets: every
//! input the fuzzers kept (each reached new code, and some once crashed tidegate) is a
//! regression test of the normal test run. The fuzzers themselves: `scripts/fuzz`.
//!
//! `write_seeds` (ignored; `scripts/fuzz seed` runs it) writes the inputs the fuzzers start
//! from: every advertised API at every version, record batches in every compression, SMQ
//! messages plain and enveloped.

/// The gateway's allocator (src/main.rs), so the replay meets the codec as tidegate does:
/// kafka-protocol reserves the capacity an array claims before reading it (README, "one
/// known gap"), which under mimalloc is address space that is never touched, and under the
/// system allocator an abort for a claim past the host's memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
#[path = "fuzz/targets.rs"]
mod targets;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use std::path::{Path, PathBuf};
use tidegate::handlers::APIS;
use tidegate::record_batch::HEADER_LEN;
use tidegate::records::{encode_records, Record};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// Runs every file of a target's corpus; fails naming each input that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus directory entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable corpus file");
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
}

#[test]
fn frame_corpus() {
    replay("frame", targets::frame);
}

#[test]
fn request_corpus() {
    replay("request", targets::request);
}

#[test]
fn record_batch_corpus() {
    replay("record_batch", targets::record_batch);
}

#[test]
fn smq_envelope_corpus() {
    replay("smq_envelope", targets::smq_envelope);
}

/// Writes seed inputs for every target into `$FUZZ_SEEDS/<target>/`.
#[test]
#[ignore = "writes fuzz seeds; run by `scripts/fuzz seed`"]
fn write_seeds() {
    let root = PathBuf::from(std::env::var("FUZZ_SEEDS").expect("FUZZ_SEEDS names a directory"));
    let write = |target: &str, name: String, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create the seed directory");
        std::fs::write(dir.join(name), data).expect("write a seed");
    };

    let mut frames = BytesMut::new();
    for api in APIS {
        for version in api.min_version..=api.max_version {
            for (i, request) in requests(api.key).iter().enumerate() {
                let header = RequestHeader::default()
                    .with_request_api_key(api.key as i16)
                    .with_request_api_version(version)
                    .with_correlation_id(i32::from(version))
                    .with_client_id(Some(StrBytes::from_static_str("seed")));
                let frame = targets::encode_request(api.key, version, &header, request)
                    .expect("a seed request encodes");
                write("request", format!("{:?}-v{version}-{i}", api.key), &frame);
                frames.put_i32(frame.len() as i32);
                frames.extend_from_slice(&frame);
            }
        }
    }
    // A connection's worth of frames, read at several sizes under several limits.
    let stream = frames.freeze();
    for (limit, read_size) in [(23, 17), (16, 4), (10, 0), (20, 9)] {
        let mut input = vec![limit, read_size];
        input.extend_from_slice(&stream[..stream.len().min(16 << 10)]);
        write("frame", format!("stream-{limit}-{read_size}"), &input);
    }

    let compressions = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for compression in compressions {
        for (count, producer_id) in [(1, -1), (5, 7)] {
            let batch = client_batch(count, compression, producer_id);
            let name = format!("{compression:?}-{count}");
            write("record_batch", name, &[&[0u8][..], &batch].concat());
        }
    }
    let two = [
        client_batch(2, Compression::None, -1),
        xerial_snappy_batch(),
    ]
    .concat();
    write(
        "record_batch",
        "None-then-xerial".into(),
        &[&[0u8][..], &two].concat(),
    );
    write(
        "record_batch",
        "xerial-snappy".into(),
        &[&[0u8][..], &xerial_snappy_batch()].concat(),
    );
    let ours = encode_records(&tidegate_records());
    write(
        "record_batch",
        "repeated-headers".into(),
        &[&[1u8][..], &ours].concat(),
    );

    let mut last_ts_ns = 0;
    for (i, record) in tidegate_records().iter().enumerate() {
        let message =
            tidegate::backend::smq::codec::encode(record, None, &mut last_ts_ns, 1_700_000_000_010);
        let input = targets::smq_input(&message.key, &message.value, message.ts_ns);
        write("smq_envelope", format!("record-{i}"), &input);
    }
    use tidegate::backend::smq::codec::MarkedRecord;
    for (name, on) in [
        ("marked", MarkedRecord::Last),
        ("start-marked", MarkedRecord::First),
    ] {
        let mark = tidegate::backend::smq::codec::ProducerMark {
            producer_id: 42,
            epoch: 3,
            base_sequence: 7,
            count: 5,
            on,
        };
        let message = tidegate::backend::smq::codec::encode(
            &tidegate_records()[0],
            Some(&mark),
            &mut last_ts_ns,
            1_700_000_000_010,
        );
        let input = targets::smq_input(&message.key, &message.value, message.ts_ns);
        write("smq_envelope", format!("record-{name}"), &input);
    }
}

/// Requests to encode at every version of an API: the default one, and for the APIs that
/// carry nested data, one that has some.
fn requests(key: ApiKey) -> Vec<RequestKind> {
    macro_rules! default_of {
        ($($kind:ident: $request:ident),* $(,)?) => {
            match key {
                $(ApiKey::$kind => RequestKind::$kind($request::default()),)*
                other => panic!("{other:?} is served but has no seed here"),
            }
        };
    }
    let default = default_of!(
        Produce: ProduceRequest, Fetch: FetchRequest, ListOffsets: ListOffsetsRequest,
        Metadata: MetadataRequest, ApiVersions: ApiVersionsRequest,
        CreateTopics: CreateTopicsRequest, DeleteTopics: DeleteTopicsRequest,
        InitProducerId: InitProducerIdRequest, DescribeConfigs: DescribeConfigsRequest,
        CreatePartitions: CreatePartitionsRequest, DescribeCluster: DescribeClusterRequest,
        FindCoordinator: FindCoordinatorRequest, JoinGroup: JoinGroupRequest,
        SyncGroup: SyncGroupRequest, Heartbeat: HeartbeatRequest, LeaveGroup: LeaveGroupRequest,
        OffsetCommit: OffsetCommitRequest, OffsetFetch: OffsetFetchRequest,
        DescribeGroups: DescribeGroupsRequest, ListGroups: ListGroupsRequest,
        DeleteGroups: DeleteGroupsRequest, OffsetDelete: OffsetDeleteRequest,
        ConsumerGroupHeartbeat: ConsumerGroupHeartbeatRequest,
        ElectLeaders: ElectLeadersRequest,
        ListPartitionReassignments: ListPartitionReassignmentsRequest,
        AlterPartitionReassignments: AlterPartitionReassignmentsRequest,
        DeleteRecords: DeleteRecordsRequest, OffsetForLeaderEpoch: OffsetForLeaderEpochRequest,
        AlterConfigs: AlterConfigsRequest, IncrementalAlterConfigs: IncrementalAlterConfigsRequest,
        DescribeLogDirs: DescribeLogDirsRequest, DescribeProducers: DescribeProducersRequest,
        DescribeQuorum: DescribeQuorumRequest, ConsumerGroupDescribe: ConsumerGroupDescribeRequest,
        ListConfigResources: ListConfigResourcesRequest,
        DescribeTopicPartitions: DescribeTopicPartitionsRequest,
    );
    let mut requests = vec![default];
    let topic = || TopicName(StrBytes::from_static_str("seed-topic"));
    match key {
        ApiKey::Produce => requests.push(RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(client_batch(2, Compression::None, -1)))])]),
        )),
        ApiKey::Fetch => requests.push(RequestKind::Fetch(FetchRequest::default().with_topics(
            vec![fetch_request::FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![fetch_request::FetchPartition::default()])],
        ))),
        ApiKey::Metadata => requests.push(RequestKind::Metadata(
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ])),
        )),
        _ => {}
    }
    requests
}

/// A batch of `count` records as a Kafka client would send it (`producer_id` -1: a plain
/// producer).
fn client_batch(count: i32, compression: Compression, producer_id: i64) -> Bytes {
    let producer = (producer_id >= 0).then_some((producer_id, 0, 0));
    common::encode_batch(&common::records(0, count, producer), compression)
}

/// A snappy batch in the xerial framing the Java client writes: magic header, then blocks
/// of a length and raw snappy.
fn xerial_snappy_batch() -> Bytes {
    let plain = client_batch(3, Compression::None, -1);
    let records = &plain[HEADER_LEN..];
    let mut body = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for block in records.chunks(64) {
        let raw = snap::raw::Encoder::new()
            .compress_vec(block)
            .expect("snappy compresses");
        body.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        body.extend_from_slice(&raw);
    }
    let mut batch = plain[..HEADER_LEN].to_vec();
    batch.extend_from_slice(&body);
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | 2;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    targets::fix_crcs(&mut batch);
    Bytes::from(batch)
}

/// Records with what only tidegate's own record reader keeps: repeated header keys, null
/// and empty keys and values.
fn tidegate_records() -> Vec<Record> {
    (0..4)
        .map(|i| Record {
            offset: i,
            timestamp: 1_700_000_000_000 + i,
            key: match i {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(format!("k{i}"))),
            },
            value: (i != 2).then(|| Bytes::from(vec![b'v'; 10])),
            headers: match i {
                3 => vec![
                    (Bytes::from("dup"), Some(Bytes::from("a"))),
                    (Bytes::from("dup"), None),
                ],
                _ => Vec::new(),
            },
        })
        .collect()
}
