//! Graceful shutdown as an operator meets it: SIGTERM answers every request tidegate has
//! read (long polls end early rather than waiting out their time), closes the connections
//! and exits 0; on SeaweedMQ, what it acknowledged is there after a restart. A client that
//! never reads cannot hold the process: a second signal, or `--shutdown-timeout-ms`, ends it.

use crate::common::*;
use kafka_protocol::messages::{FetchResponse, ProduceResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use kafka_protocol::records::Compression;
use std::time::{Duration, Instant};

/// The Fetches below ask to wait this long; shutdown must answer them well before.
const LONG_POLL_MS: i32 = 25_000;

fn decode<R: Decodable + HeaderVersion>(
    frame: Option<bytes::Bytes>,
    version: i16,
    server: &Server,
) -> (i32, R) {
    let Some(mut frame) = frame else {
        panic!(
            "the connection closed before this answer; log:\n{}",
            server.log()
        )
    };
    let header = ResponseHeader::decode(&mut frame, R::header_version(version)).expect("header");
    let body = R::decode(&mut frame, version).expect("response body");
    (header.correlation_id, body)
}

/// Records already in each partition before the requests under test.
const LEAD_IN: i64 = 2;

/// `filer_port`: SMQ's, to wait until the lead-in is flushed (see `wait_first_flush`).
fn sigterm_answers_every_request_read(args: &[&str], topic: &str, filer_port: Option<&str>) {
    let mut server = Server::start_logged(args);
    let mut admin = server.client();
    create_topic(&mut admin, topic, 2);
    for partition in 0..2 {
        let lead_in = encode_batch(&records(partition, LEAD_IN as i32, None), Compression::None);
        assert_eq!(produce(&mut admin, topic, partition, lead_in), (0, 0));
    }
    if let Some(filer_port) = filer_port {
        wait_first_flush(filer_port, topic, 2);
    }
    let first = records(0, 5, None);
    let second: Vec<_> = records(0, 10, None).split_off(5);
    let mut client = server.client();
    // One write: a Produce, three Fetches long-polling the empty partition 1, and a second
    // Produce (to partition 0, so it wakes none of them) that is answered after them.
    let mut wire = Vec::new();
    let mut frame = |body: bytes::BytesMut| {
        wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
        wire.extend_from_slice(&body);
    };
    let produce = |batch| produce_request(topic, 0, batch, -1);
    frame(request_frame(
        &produce(encode_batch(&first, Compression::None)),
        PRODUCE_VERSION,
        1,
    ));
    for correlation_id in 2..=4 {
        let fetch = fetch_request(topic, 1, LEAD_IN, LONG_POLL_MS);
        frame(request_frame(&fetch, FETCH_VERSION, correlation_id));
    }
    frame(request_frame(
        &produce(encode_batch(&second, Compression::Lz4)),
        PRODUCE_VERSION,
        5,
    ));
    client.send_raw(&wire);
    // Answered in order, so once the first Produce is answered all five were read (one
    // write of a few hundred bytes arrives in one read).
    let (id, produced): (_, ProduceResponse) =
        decode(client.read_frame(), PRODUCE_VERSION, &server);
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(
        (id, partition.error_code, partition.base_offset),
        (1, 0, LEAD_IN)
    );

    server.signal("TERM");
    let signalled = Instant::now();
    for expected_id in 2..=4 {
        let (id, fetched): (_, FetchResponse) = decode(client.read_frame(), FETCH_VERSION, &server);
        let partition = &fetched.responses[0].partitions[0];
        assert_eq!(
            (id, fetched.error_code, partition.error_code),
            (expected_id, 0, 0)
        );
        assert!(partition.records.as_ref().is_none_or(|r| r.is_empty()));
    }
    let (id, produced): (_, ProduceResponse) =
        decode(client.read_frame(), PRODUCE_VERSION, &server);
    let partition = &produced.responses[0].partition_responses[0];
    assert_eq!(
        (id, partition.error_code, partition.base_offset),
        (5, 0, LEAD_IN + 5)
    );
    assert!(
        signalled.elapsed() < Duration::from_millis(LONG_POLL_MS as u64 / 2),
        "the long polls were answered after {:?}, as if shutdown had not ended them",
        signalled.elapsed()
    );
    assert!(client.read_frame().is_none(), "the connection closes");

    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("shut down:"))
        .unwrap_or_else(|| panic!("no shutdown line in:\n{log}"));
    // The four answered after the signal, on this client's connection and the admin's.
    assert!(line.contains("requests=4"), "{line}");
    assert!(line.contains("connections=2"), "{line}");
}

#[test]
fn sigterm_answers_every_request_read_then_exits_zero() {
    sigterm_answers_every_request_read(&["--shards", "2"], "shutdown", None);
}

#[test]
fn sigterm_on_seaweedmq_keeps_every_acknowledged_record() {
    let Some(ports) = seaweedfs() else { return };
    let topic = format!("shutdown-{}", uuid::Uuid::new_v4().simple());
    let smq = [
        "--shards",
        "2",
        "--backend",
        "smq",
        "--smq-master",
        &ports["MASTER"],
    ];
    sigterm_answers_every_request_read(&smq, &topic, Some(&ports["FILER_PORT"]));

    let server = Server::start(&smq);
    let mut client = server.client();
    let mut stored = Vec::new();
    while stored.len() < 10 {
        let offset = LEAD_IN + stored.len() as i64;
        let (error, got) = fetch(&mut client, &topic, 0, offset, 5_000);
        assert_eq!(error, 0);
        assert!(!got.is_empty(), "records missing from offset {offset}");
        stored.extend(got);
    }
    let mut sent = records(0, 10, None);
    for (i, record) in sent.iter_mut().enumerate() {
        record.offset = LEAD_IN + i as i64;
    }
    assert_eq!(visible(&stored), visible(&sent));
}

/// A topic of one partition holding four batches of 900 KiB (under the default
/// max.message.bytes): a Fetch from its start is answered with 3.6 MiB.
fn topic_of_big_records(server: &Server, topic: &str) {
    let mut admin = server.client();
    create_topic(&mut admin, topic, 1);
    let mut big = records(0, 1, None);
    big[0].value = Some(vec![7u8; 900 << 10].into());
    for _ in 0..4 {
        let batch = encode_batch(&big, Compression::None);
        assert_eq!(produce(&mut admin, topic, 0, batch).0, 0);
    }
}

/// A connection whose client never reads holds responses tidegate cannot write, so its
/// shutdown cannot finish: a second signal ends it at once, `--shutdown-timeout-ms` without one.
#[test]
fn a_client_that_never_reads_cannot_hold_shutdown() {
    for (args, second_signal, expected_code) in [
        (&["--shards", "1"][..], Some("INT"), 128 + 2),
        (
            &["--shards", "1", "--shutdown-timeout-ms", "300"][..],
            None,
            1,
        ),
    ] {
        let mut server = Server::start_logged(args);
        topic_of_big_records(&server, "never-read");
        // 16 answers of 3.6 MiB each: far more than the socket buffers take.
        let mut reader = server.client();
        for correlation_id in 0..16 {
            let fetch = fetch_request("never-read", 0, 0, 0);
            reader.send_frame(&request_frame(&fetch, FETCH_VERSION, correlation_id));
        }
        // The first answer has begun to arrive: tidegate is writing, and stuck.
        let mut first = [0u8; 4];
        std::io::Read::read_exact(&mut reader.stream, &mut first).expect("a response begins");
        server.signal("TERM");
        if let Some(signal) = second_signal {
            // Only once the first is handled: the kernel merges a signal still pending.
            server.wait_for_log("shutting down", Duration::from_secs(10));
            server.signal(signal);
        }
        let status = server.wait_exit(Duration::from_secs(20));
        assert_eq!(status.code(), Some(expected_code), "log:\n{}", server.log());
        drop(reader);
    }
}

/// Clients go on sending until they see a connection end (librdkafka asks another broker
/// for metadata when one goes away, for instance). At shutdown tidegate no longer reads
/// those requests, and a socket closed with bytes unread is reset by the kernel, which
/// loses the answers still on their way: the answers read before the signal must arrive
/// whole anyway (seen: a long-polling Fetch never answered in the librdkafka shutdown test).
#[test]
fn answers_reach_a_client_that_goes_on_sending_at_shutdown() {
    let mut server = Server::start_logged(&["--shards", "1"]);
    topic_of_big_records(&server, "still-sending");
    // Two answers of 3.6 MiB in one write: more than the socket buffers hold, so the
    // last of it is still on its way when tidegate has written it all and closes.
    let mut client = server.client();
    client.send_raw(&pipelined_fetches("still-sending", 2));
    let mut length = [0u8; 4];
    std::io::Read::read_exact(&mut client.stream, &mut length).expect("the first answer begins");
    server.signal("TERM");
    server.wait_for_log("shutting down", Duration::from_secs(10));
    // A request after the signal: not read, never answered.
    let late = request_frame(&fetch_request("still-sending", 0, 0, 0), FETCH_VERSION, 2);
    client.send_frame(&late);

    let mut first = vec![0u8; i32::from_be_bytes(length) as usize];
    std::io::Read::read_exact(&mut client.stream, &mut first).expect("the first answer, whole");
    let second = client.read_frame();
    for (expected_id, frame) in [(0, Some(first.into())), (1, second)] {
        let (id, fetched): (_, FetchResponse) = decode(frame, FETCH_VERSION, &server);
        let partition = &fetched.responses[0].partitions[0];
        let records = partition.records.as_ref().map_or(0, |r| r.len());
        assert_eq!((id, partition.error_code), (expected_id, 0));
        assert!(records > 4 * (900 << 10), "{records} bytes of records");
    }
    assert!(client.read_frame().is_none(), "then the connection ends");
    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}
