//! Decoding a request frame: the header and body codecs tidegate runs on every request.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use kafka_protocol::records::{Compression, Record, TimestampType};
use tidegate::handlers::ConnectionState;
use tidegate::protocol::dispatch::decode_request;
use tidegate::record_batch::encode_batch;

const VERSION: i16 = 9;

fn batch(count: i32, value_bytes: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 1,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: i,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_bytes])),
            headers: Default::default(),
        })
        .collect();
    encode_batch(&records, Compression::None).expect("encode")
}

/// A Produce v9 request as kafka-producer-perf-test sends it: 8 partitions, 16 KiB each.
fn produce_frame() -> Bytes {
    let partitions = (0..8)
        .map(|index| {
            PartitionProduceData::default()
                .with_index(index)
                .with_records(Some(batch(16, 1000)))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName("perf".to_string().into()))
            .with_partition_data(partitions)]);
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1)
        .with_client_id(Some("perf".into()))
        .encode(&mut frame, ProduceRequest::header_version(VERSION))
        .expect("header");
    request.encode(&mut frame, VERSION).expect("body");
    frame.freeze()
}

fn bench(c: &mut Criterion) {
    let frame = produce_frame();
    let connection = std::rc::Rc::new(ConnectionState::new(
        None,
        std::rc::Rc::new(tidegate::protocol::shutdown::Shutdown::default()),
        tidegate::protocol::budget::MemoryBudget::new(64 << 20, None),
        0,
        tidegate::security::session::Session::new(false, None),
    ));
    let mut group = c.benchmark_group("request_decode");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("produce_v9_8x16KiB", |b| {
        b.iter(|| {
            decode_request(ApiKey::Produce, VERSION, frame.clone(), connection.clone())
                .expect("decode")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
