//! Every shard is a broker; a client that reaches only the bootstrap port is still served
//! (requests are forwarded to the owning shard); pipelined produce requests keep their
//! order; fetches wait for data without polling; idempotent producers get Kafka's sequence
//! checks.

use crate::common::*;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    DescribeClusterRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, ProduceResponse, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use kafka_protocol::records::Compression;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn metadata_from_any_port_lists_one_broker_per_shard() {
    let server = Server::start(&["--shards", "3"]);
    let mut ports = vec![server.bootstrap];
    ports.extend(&server.brokers);
    for port in ports {
        let mut client = Client::connect(port);
        let request = MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name("spread"))),
        ]));
        let metadata = client.call(&request, 12);
        let advertised: BTreeSet<_> = metadata
            .brokers
            .iter()
            .map(|b| format!("{}:{}", b.host.as_str(), b.port))
            .collect();
        let expected: BTreeSet<_> = server.brokers.iter().map(|b| b.to_string()).collect();
        assert_eq!(advertised, expected, "asked through {port}");
        let nodes: BTreeSet<_> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
        assert_eq!(nodes, (0..3).collect(), "node ids are shard indexes");
        let topic = &metadata.topics[0];
        assert_eq!(topic.error_code, 0, "auto-created");
        for partition in &topic.partitions {
            assert!(nodes.contains(&partition.leader_id.0));
        }
        let cluster = client.call(&DescribeClusterRequest::default(), 0);
        assert_eq!(cluster.brokers.len(), 3);
    }
}

#[test]
fn a_client_limited_to_the_bootstrap_port_produces_and_consumes_every_partition() {
    let server = Server::start(&["--shards", "2"]);
    // Several connections, so the kernel spreads them over both shards.
    let mut clients: Vec<Client> = (0..4).map(|_| server.client()).collect();
    create_topic(&mut clients[0], "forwarded", 8);
    for (i, client) in clients.iter_mut().enumerate() {
        for partition in 0..8 {
            let sent = records(partition, 3 + i as i32, None);
            let (error, base) = produce(
                client,
                "forwarded",
                partition,
                encode_batch(&sent, Compression::Lz4),
            );
            assert_eq!(error, 0, "produce to {partition} via connection {i}");
            let (error, got) = fetch(client, "forwarded", partition, base, 0);
            assert_eq!(error, 0);
            let mut expected = sent.clone();
            for (n, record) in expected.iter_mut().enumerate() {
                record.offset = base + n as i64;
            }
            assert_eq!(
                visible(&got[..expected.len()]),
                visible(&expected),
                "partition {partition}"
            );
        }
    }
    // Offsets are per partition and contiguous: 3 + 4 + 5 + 6 records in each.
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name("forwarded"))
            .with_partitions(
                (0..8)
                    .map(|p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )]);
    let latest = clients[1].call(&request, 7);
    for partition in &latest.topics[0].partitions {
        assert_eq!((partition.error_code, partition.offset), (0, 18));
    }
}

/// The produce-ordering invariant (`src/partition/mod.rs`): produce requests pipelined on
/// one connection, each to every partition of a topic spread over both shards, are stored
/// and acknowledged in the order they were sent, although the partitions' appends complete
/// in any order (on SMQ each partition has its own publish stream and acknowledgements).
fn pipelined_produces_keep_their_order(extra_args: &[&str], topic: &str) {
    const PARTITIONS: i32 = 6;
    const REQUESTS: i32 = 40;
    const RECORDS_PER_BATCH: i32 = 2;
    let mut args = vec!["--shards", "2"];
    args.extend_from_slice(extra_args);
    let server = Server::start(&args);
    let mut client = server.client();
    create_topic(&mut client, topic, PARTITIONS);
    // Request i carries, for every partition, the batch whose records say "request i".
    let batch = |request: i32, partition: i32| {
        let mut sent = records(partition, RECORDS_PER_BATCH, None);
        for record in &mut sent {
            record.value = Some(format!("request {request} partition {partition}").into());
        }
        encode_batch(&sent, Compression::None)
    };
    for request in 0..REQUESTS {
        let partitions = (0..PARTITIONS)
            .map(|p| {
                PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(batch(request, p)))
            })
            .collect();
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(partitions)]);
        client.send_frame(&request_frame(&produce, PRODUCE_VERSION, request));
    }
    // Answers come in request order, each batch at the offset its place gives it.
    for request in 0..REQUESTS {
        let mut frame = client.read_frame().expect("produce answer");
        let header =
            ResponseHeader::decode(&mut frame, ProduceResponse::header_version(PRODUCE_VERSION))
                .expect("header");
        assert_eq!(header.correlation_id, request, "answers in request order");
        let response = ProduceResponse::decode(&mut frame, PRODUCE_VERSION).expect("answer");
        for partition in &response.responses[0].partition_responses {
            assert_eq!(
                (partition.error_code, partition.base_offset),
                (0, i64::from(request * RECORDS_PER_BATCH)),
                "request {request}, partition {}",
                partition.index
            );
        }
    }
    // And stored in that order.
    for partition in 0..PARTITIONS {
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while values.len() < (REQUESTS * RECORDS_PER_BATCH) as usize {
            assert!(
                Instant::now() < deadline,
                "partition {partition}: {} records",
                values.len()
            );
            let (error, fetched) = fetch(&mut client, topic, partition, values.len() as i64, 1000);
            assert_eq!(error, 0);
            values.extend(fetched.into_iter().map(|r| (r.offset, r.value)));
        }
        for (index, (offset, value)) in values.into_iter().enumerate() {
            let request = index as i32 / RECORDS_PER_BATCH;
            let want = format!("request {request} partition {partition}");
            assert_eq!((offset, value), (index as i64, Some(want.into())));
        }
    }
}

#[test]
fn pipelined_produces_are_stored_and_acknowledged_in_order() {
    pipelined_produces_keep_their_order(&[], "pipelined");
    // A one-message mesh inbox: forwarded appends wait for room, and still keep their order.
    let tight = ["--mesh-queue-capacity", "1"];
    pipelined_produces_keep_their_order(&tight, "pipelined-tight-mesh");
    if let Some(ports) = seaweedfs() {
        let topic = format!("pipelined-{}", uuid::Uuid::new_v4().simple());
        let smq = ["--backend", "smq", "--smq-master", &ports["MASTER"]];
        pipelined_produces_keep_their_order(&smq, &topic);
    }
}

#[test]
fn a_waiting_fetch_is_answered_by_the_next_append_not_by_its_timeout() {
    let server = Server::start(&["--shards", "2"]);
    let mut admin = server.client();
    create_topic(&mut admin, "long-poll", 2);
    for partition in 0..2 {
        let mut consumer = server.client();
        let waiting = std::thread::spawn(move || {
            let started = Instant::now();
            let (error, got) = fetch(&mut consumer, "long-poll", partition, 0, 30_000);
            (error, got.len(), started.elapsed())
        });
        // The waiting fetch was sent first; a probe that itself waits 100 ms and comes
        // back empty shows the partition still empty while the first one parks.
        let mut probe = server.client();
        let (error, none) = fetch(&mut probe, "long-poll", partition, 0, 100);
        assert_eq!((error, none.len()), (0, 0));
        let (error, _) = produce(
            &mut admin,
            "long-poll",
            partition,
            encode_batch(&records(partition, 2, None), Compression::None),
        );
        assert_eq!(error, 0);
        let (error, count, waited) = waiting.join().expect("fetch thread");
        assert_eq!((error, count), (0, 2));
        // Woken by the append: far sooner than the 30 s the fetch was willing to wait.
        assert!(waited < Duration::from_secs(20), "waited {waited:?}");
    }
}

#[test]
fn idempotent_producers_get_unique_ids_duplicates_and_gaps_detected() {
    let server = Server::start(&["--shards", "2"]);
    let mut ids = BTreeSet::new();
    for port in &server.brokers {
        let mut client = Client::connect(*port);
        for _ in 0..5 {
            let response = client.call(
                &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
                4,
            );
            assert_eq!(response.error_code, 0);
            assert!(
                ids.insert(response.producer_id.0),
                "producer id handed out twice"
            );
        }
    }
    let producer_id = *ids.first().expect("an id");
    let mut client = server.client();
    create_topic(&mut client, "idempotent", 2);
    for partition in 0..2 {
        let first = encode_batch(
            &records(partition, 4, Some((producer_id, 0, 0))),
            Compression::None,
        );
        let (error, base) = produce(&mut client, "idempotent", partition, first.clone());
        assert_eq!((error, base), (0, 0));
        let (error, again) = produce(&mut client, "idempotent", partition, first);
        assert_eq!(
            (error, again),
            (0, 0),
            "a retried batch is answered with its first offset"
        );
        let gap = encode_batch(
            &records(partition, 1, Some((producer_id, 0, 9))),
            Compression::None,
        );
        assert_eq!(
            produce(&mut client, "idempotent", partition, gap).0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        let next = encode_batch(
            &records(partition, 2, Some((producer_id, 0, 4))),
            Compression::None,
        );
        assert_eq!(produce(&mut client, "idempotent", partition, next), (0, 4));
        let (_, stored) = fetch(&mut client, "idempotent", partition, 0, 0);
        assert_eq!(stored.len(), 6, "the duplicate was not stored twice");
    }
}
