//! A deterministic Kafka client for counting tidegate's instructions per record under
//! callgrind (`perf/callgrind.sh` builds and runs it). The Java tools batch by timing, so the
//! requests they send to a server slowed down 50× by valgrind are not the ones they send at
//! full speed; this client sends the same bytes every run:
//!
//! - produce: RECORDS records of 1,000 B, 16 to a batch (about kafka-producer-perf-test's
//!   16 KiB batch.size), one batch per Produce v9 request (acks=1), 5 requests pipelined (as
//!   a Java producer does);
//! - fetch: Fetch v12 from offset 0 until every record is back (partition_max_bytes 1 MiB,
//!   max_bytes 50 MiB, max_wait 0: the Java consumer's defaults);
//! - `acls+` before a mode (or `acls` alone, for the idle run): first grant the client
//!   (User:ANONYMOUS) Write, Read and Describe on the topic with CreateAcls, so the
//!   authorization stage decides every request through its decision cache instead of
//!   taking its no-ACL fast path.
//!
//! A client program, not a benchmark: a Cargo example, built with
//! `cargo build --release --example callgrind_client` and run as
//! `target/release/examples/callgrind_client ADDR produce|fetch|both [RECORDS]`
//! (default both, 20,000 records).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const TOPIC: &str = "callgrind";
const BATCH: usize = 16;
const SIZE: usize = 1000;
const IN_FLIGHT: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first() else {
        eprintln!(
            "usage: callgrind_client ADDR produce|fetch|both [RECORDS] (see perf/callgrind.sh)"
        );
        std::process::exit(2);
    };
    let mode = args.get(1).map_or("both", String::as_str);
    let records: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mode = match mode.strip_prefix("acls") {
        Some(rest) => {
            grant(&mut stream);
            rest.trim_start_matches('+')
        }
        None => mode,
    };
    if mode == "produce" || mode == "both" {
        produce(&mut stream, records);
    }
    if mode == "fetch" || mode == "both" {
        let fetched = fetch(&mut stream, records);
        assert_eq!(fetched, records, "records fetched");
    }
}

/// CreateAcls v3: allow User:ANONYMOUS Write (4), Read (3) and Describe (8) on the literal
/// (3) topic (2) resource; permission allow (3).
fn grant(stream: &mut TcpStream) {
    let allow = |operation: i8| {
        AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(TOPIC.into())
            .with_resource_pattern_type(3)
            .with_principal("User:ANONYMOUS".into())
            .with_host("*".into())
            .with_operation(operation)
            .with_permission_type(3)
    };
    let request = CreateAclsRequest::default().with_creations(vec![allow(4), allow(3), allow(8)]);
    stream
        .write_all(&frame(ApiKey::CreateAcls, 3, 1, &request))
        .expect("send CreateAcls");
    let mut body = read_response(stream, ApiKey::CreateAcls, 3);
    let response = CreateAclsResponse::decode(&mut body, 3).expect("CreateAcls response");
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "ACLs created: {response:?}"
    );
}

fn frame<R: Encodable + HeaderVersion>(key: ApiKey, version: i16, id: i32, body: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(id)
        .with_client_id(Some("callgrind".into()))
        .encode(&mut buf, R::header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    buf.to_vec()
}

fn read_response(stream: &mut TcpStream, key: ApiKey, version: i16) -> Bytes {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, key.response_header_version(version)).expect("header");
    body
}

fn batch(first: usize, count: usize) -> Bytes {
    let records: Vec<Record> = (first..first + count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: (i - first) as i64,
            // The codec starts a new batch whenever offset − sequence changes.
            sequence: (i - first) as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; SIZE])),
            headers: Default::default(),
        })
        .collect();
    tidegate::record_batch::encode_batch(&records, Compression::None).expect("encode")
}

fn produce(stream: &mut TcpStream, records: usize) {
    let mut pending = VecDeque::new();
    let mut sent = 0;
    let mut id = 0;
    while sent < records || !pending.is_empty() {
        while sent < records && pending.len() < IN_FLIGHT {
            let count = BATCH.min(records - sent);
            let request = ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(TOPIC.into()))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(sent, count)))])]);
            id += 1;
            stream
                .write_all(&frame(ApiKey::Produce, PRODUCE_VERSION, id, &request))
                .expect("send");
            pending.push_back(count);
            sent += count;
        }
        let mut body = read_response(stream, ApiKey::Produce, PRODUCE_VERSION);
        let response = ProduceResponse::decode(&mut body, PRODUCE_VERSION).expect("produce");
        let code = response.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "produce error");
        pending.pop_front();
    }
}

fn fetch(stream: &mut TcpStream, records: usize) -> usize {
    let mut offset = 0i64;
    let mut id = 1_000_000;
    while (offset as usize) < records {
        let request = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(50 * 1024 * 1024)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(TOPIC.into()))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1024 * 1024)])]);
        id += 1;
        stream
            .write_all(&frame(ApiKey::Fetch, FETCH_VERSION, id, &request))
            .expect("send");
        let mut body = read_response(stream, ApiKey::Fetch, FETCH_VERSION);
        let response = FetchResponse::decode(&mut body, FETCH_VERSION).expect("fetch");
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "fetch error");
        let mut data = partition.records.clone().unwrap_or_default();
        let before = offset;
        while data.has_remaining() {
            let batch = RecordBatchDecoder::decode(&mut data).expect("batch");
            for record in batch.records {
                assert_eq!(record.offset, offset, "offsets in order");
                let value = record.value.expect("value");
                assert_eq!(value.len(), SIZE);
                assert_eq!(value[0], b'a' + (offset % 26) as u8, "record {offset}");
                offset += 1;
            }
        }
        assert!(offset > before, "fetch made no progress at {offset}");
    }
    offset as usize
}
