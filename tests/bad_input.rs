//! Bad input gets the right Kafka error or a clean close, and never disturbs the other
//! connections.

use crate::common::*;
use bytes::{Buf, BufMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::Compression;
use std::time::Duration;

/// A connection that must keep working while the others misbehave.
fn assert_still_serving(client: &mut Client) {
    let response = client.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(response.error_code, 0);
    assert!(!response.api_keys.is_empty());
}

#[test]
fn malformed_traffic_closes_only_its_own_connection() {
    let server = Server::start(&["--shards", "2", "--max-request-size", "1048576"]);
    let mut healthy = server.client();
    assert_still_serving(&mut healthy);

    let mut garbage = server.client();
    garbage.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(garbage.is_closed_by_server(), "garbage bytes");
    assert_still_serving(&mut healthy);

    let mut huge = server.client();
    huge.send_raw(&2_000_000_000i32.to_be_bytes());
    assert!(huge.is_closed_by_server(), "2 GB frame length");
    assert_still_serving(&mut healthy);

    let mut negative = server.client();
    negative.send_raw(&(-5i32).to_be_bytes());
    assert!(negative.is_closed_by_server(), "negative frame length");

    let mut truncated = server.client();
    truncated.send_raw(&100i32.to_be_bytes());
    truncated.send_raw(&[0, 18, 0, 3, 0, 0]);
    truncated
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    assert!(truncated.is_closed_by_server(), "truncated frame");
    assert_still_serving(&mut healthy);

    let mut unknown_key = server.client();
    unknown_key.send_frame(&raw_header(999, 0, 7));
    assert!(unknown_key.is_closed_by_server(), "unknown API key");

    let mut bad_body = server.client();
    let mut body = raw_header(3, 12, 8); // Metadata v12 with a body cut short
    body.put_u8(0);
    bad_body.send_frame(&body);
    assert!(bad_body.is_closed_by_server(), "undecodable body");

    let mut unsupported = server.client();
    unsupported.send_frame(&raw_header(0, 99, 9)); // Produce v99
    assert!(
        unsupported.is_closed_by_server(),
        "unsupported Produce version"
    );
    assert_still_serving(&mut healthy);
}

#[test]
fn api_versions_from_the_future_gets_a_v0_answer_with_our_ranges() {
    let server = Server::start(&["--shards", "1"]);
    let mut client = server.client();
    client.send_frame(&raw_header(18, 99, 42));
    let mut frame = client.read_frame().expect("an answer, not a close");
    assert_eq!(frame.get_i32(), 42, "correlation id");
    let response = ApiVersionsResponse::decode(&mut frame, 0).expect("v0 body");
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    let api_versions = response
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("listed");
    assert_eq!((api_versions.min_version, api_versions.max_version), (0, 4));
    // The connection stays usable at a version both sides know.
    assert_still_serving(&mut client);
}

#[test]
fn produce_errors_are_per_partition_and_store_nothing() {
    let server = Server::start(&["--shards", "2", "--auto-create-topics", "false"]);
    let mut client = server.client();
    create_topic(&mut client, "bad-input", 2);
    let batch = encode_batch(&records(0, 5, None), Compression::None);

    assert_eq!(
        produce(&mut client, "bad-input", 2, batch.clone()).0,
        3,
        "no partition 2"
    );
    assert_eq!(
        produce(&mut client, "no-such-topic", 0, batch.clone()).0,
        3,
        "no such topic"
    );

    let mut corrupt = batch.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut client, "bad-input", 0, corrupt.into()).0,
        2,
        "CORRUPT_MESSAGE"
    );
    let (error, stored) = fetch(&mut client, "bad-input", 0, 0, 0);
    assert_eq!(
        (error, stored.len()),
        (0, 0),
        "nothing of the corrupt batch was stored"
    );

    assert_eq!(produce(&mut client, "bad-input", 0, batch).0, 0);
    let metadata = client.call(&MetadataRequest::default().with_topics(None), 12);
    assert_eq!(
        metadata.topics.len(),
        1,
        "the failed produce created no topic"
    );
}

#[test]
fn lying_frame_lengths_cost_only_the_bytes_sent() {
    let server = Server::start(&["--shards", "1"]);
    let mut bystander = server.client();
    assert_still_serving(&mut bystander);
    let before = server.rss_bytes();
    // Ten connections each claim a 100 MB request and send 10 bytes of it.
    let mut liars: Vec<Client> = (0..10).map(|_| server.client()).collect();
    for liar in &mut liars {
        let mut claim = (100i32 << 20).to_be_bytes().to_vec();
        claim.extend_from_slice(b"0123456789");
        liar.send_raw(&claim);
    }
    // Round trips on the same shard, after the liars' bytes are in its sockets: by then it
    // has read them (it serves completions in the order they arrive).
    for _ in 0..3 {
        assert_still_serving(&mut bystander);
    }
    let grown = server.rss_bytes().saturating_sub(before);
    assert!(grown < 16 << 20, "grew {} MiB for 140 bytes", grown >> 20);
}

/// 8 MiB in 80 batches of 100 KiB, in partition 0 of topic "unread".
fn fill_unread_topic(client: &mut Client) {
    create_topic(client, "unread", 1);
    let mut record = records(0, 1, None);
    record[0].value = Some(vec![1u8; 100 << 10].into());
    for _ in 0..80 {
        let batch = encode_batch(&record, Compression::None);
        assert_eq!(produce(client, "unread", 0, batch).0, 0);
    }
}

/// Four connections that each pipeline 64 Fetches of the whole 8 MiB and never read the
/// answers: 2 GiB, were every answer built.
fn never_reading_clients(server: &Server) -> Vec<Client> {
    let mut readers: Vec<Client> = (0..4).map(|_| server.client()).collect();
    for reader in &mut readers {
        let mut wire = Vec::new();
        for correlation_id in 0..64 {
            let fetch = fetch_request("unread", 0, 0, 0);
            let fetch = request_frame(&fetch, FETCH_VERSION, correlation_id);
            wire.extend_from_slice(&(fetch.len() as i32).to_be_bytes());
            wire.extend_from_slice(&fetch);
        }
        reader.send_raw(&wire);
    }
    readers
}

/// Reads the 80 batches as a consumer does: answers may be small while the shard's budget
/// is spent, but each brings at least one batch.
fn assert_reads_everything(client: &mut Client) {
    let mut offset = 0;
    while offset < 80 {
        let (error, fetched) = fetch(client, "unread", 0, offset, 0);
        assert_eq!(error, 0);
        assert!(!fetched.is_empty(), "no progress at offset {offset}");
        offset += fetched.len() as i64;
    }
}

/// One shard started with `budget` (a flag and its value), the "unread" topic filled by a
/// bystander, its RSS then, and the never-reading clients' requests sent.
fn flood_of_unread_answers(budget: [&str; 2]) -> (Server, Client, u64, Vec<Client>) {
    let server = Server::start(&["--shards", "1", budget[0], budget[1]]);
    let mut bystander = server.client();
    fill_unread_topic(&mut bystander);
    let before = server.rss_bytes();
    let readers = never_reading_clients(&server);
    (server, bystander, before, readers)
}

#[test]
fn clients_that_never_read_their_answers_hold_only_their_connection_budget() {
    let (server, mut bystander, before, readers) =
        flood_of_unread_answers(["--connection-memory-bytes", "16MiB"]);
    // Round trips on the same shard after the readers' requests are in its sockets: by then
    // it has read them and built every answer it is going to build (the memory backend
    // answers a Fetch in the task's first run, and tasks run in the order started).
    for _ in 0..3 {
        assert_still_serving(&mut bystander);
    }
    assert_reads_everything(&mut bystander);
    // Per connection: its 16 MiB, one 100 KiB batch for each Fetch that found the budget
    // spent (a consumer always gets one batch, KIP-74), and what the socket buffers took.
    // Uncapped, the same run grew by 2 GiB.
    let grown = server.rss_bytes().saturating_sub(before);
    assert!(grown < 192 << 20, "grew {} MiB", grown >> 20);
    drop(readers);
}

#[test]
fn a_spent_shard_budget_stops_reading_until_answers_go_out() {
    let (server, mut bystander, before, readers) =
        flood_of_unread_answers(["--shard-memory-bytes", "32MiB"]);
    // The shard's 32 MiB go to the first answers; the bystander waits (backpressure) until
    // they are gone with their connections, and is then served.
    bystander.send_frame(&request_frame(
        &fetch_request("unread", 0, 0, 0),
        FETCH_VERSION,
        1,
    ));
    drop(readers);
    assert!(
        bystander.read_frame().is_some(),
        "the bystander is answered"
    );
    assert_reads_everything(&mut bystander);
    let peak = server.peak_rss_bytes().saturating_sub(before);
    assert!(
        peak < 128 << 20,
        "peaked {} MiB above the start",
        peak >> 20
    );
}

#[test]
fn a_decompression_bomb_is_refused_as_too_large_without_growing_the_server() {
    let Some(ports) = seaweedfs() else { return };
    let server = Server::start(&[
        "--backend",
        "smq",
        "--smq-master",
        &ports["MASTER"],
        "--max-decompressed-batch-bytes",
        "8MiB",
    ]);
    let mut client = server.client();
    let topic = format!("bomb-{}", uuid::Uuid::new_v4().simple());
    create_topic(&mut client, &topic, 1);
    // One record of 256 MiB of zeros: about 256 KiB gzipped, within every request limit.
    let mut bomb = records(0, 1, None);
    bomb[0].value = Some(bytes::Bytes::from(vec![0u8; 256 << 20]));
    let batch = encode_batch(&bomb, Compression::Gzip);
    drop(bomb);
    assert!(batch.len() < 1 << 20, "{} bytes compressed", batch.len());
    let before = server.rss_bytes();
    let (error, _) = produce(&mut client, &topic, 0, batch);
    assert_eq!(error, 10, "MESSAGE_TOO_LARGE");
    let grown = server.rss_bytes().saturating_sub(before);
    // What the cap allows (8 MiB, in a buffer that grows by doubling), not the 256 MiB the
    // batch holds.
    assert!(grown < 48 << 20, "grew {} MiB", grown >> 20);
    assert_still_serving(&mut client);
}

#[test]
fn dead_seaweedfs_addresses_fail_start_up_naming_the_flag() {
    // Nothing listens on port 1 of loopback.
    let args = [
        "--backend",
        "smq",
        "--smq-broker",
        "127.0.0.1:1",
        "--smq-filer",
        "127.0.0.1:1",
        "--smq-startup-timeout-ms",
        "1000",
    ];
    let (status, stderr) = start_up_failure(&args, Duration::from_secs(30));
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("--smq-broker"), "{stderr}");
}

/// Every advertised API at every version, its body a run of huge lengths: whatever field
/// comes first (a string, an array, compact or not) claims gigabytes. The decoder
/// (kafka-protocol 0.18) reserves an array's claimed capacity before reading it (see
/// README, "Limits and safety"); what must hold is that such a request only closes its
/// connection, commits no memory, and leaves the gateway serving.
#[test]
fn claimed_lengths_in_every_request_close_only_that_connection() {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Encodable;
    let server = Server::start(&["--shards", "1"]);
    let mut bystander = server.client();
    let before = server.rss_bytes();
    for api in tidegate::handlers::APIS {
        for version in api.min_version..=api.max_version {
            for claim in [
                &[0x7f, 0xff, 0xff, 0xff][..],
                &[0xff, 0xff, 0xff, 0xff, 0x07],
            ] {
                let mut body = bytes::BytesMut::new();
                RequestHeader::default()
                    .with_request_api_key(api.key as i16)
                    .with_request_api_version(version)
                    .with_correlation_id(1)
                    .encode(&mut body, api.key.request_header_version(version))
                    .expect("encode header");
                for _ in 0..8 {
                    body.extend_from_slice(claim);
                }
                let mut liar = server.client();
                liar.send_frame(&body);
                // Closed, or (for a request these bytes happen to make valid) answered.
                let _ = liar.read_frame();
            }
        }
    }
    assert_still_serving(&mut bystander);
    let grown = server.rss_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "grew {} MiB", grown >> 20);
}

#[test]
fn a_master_address_that_is_not_a_master_fails_start_up_at_once() {
    let Some(ports) = seaweedfs() else { return };
    // The filer's HTTP port: its gRPC port (+10000) answers, but not as a master.
    let master = format!("127.0.0.1:{}", ports["FILER_PORT"]);
    let args = [
        "--backend",
        "smq",
        "--smq-master",
        &master,
        "--smq-startup-timeout-ms",
        "60000",
    ];
    // Not retried until --smq-startup-timeout-ms: the answer would not change.
    let (status, stderr) = start_up_failure(&args, Duration::from_secs(30));
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("is not a SeaweedFS master"), "{stderr}");
    assert!(stderr.contains("--smq-master"), "{stderr}");
}

#[test]
fn a_low_locked_memory_limit_fails_start_up_naming_ulimit() {
    // Root is not held to the limit: run as nobody (possible when the tests run as root,
    // as CI does).
    let root = std::process::Command::new("id").arg("-u").output();
    if !root.is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
        eprintln!("SKIPPED: needs root, to run tidegate as nobody with a low locked-memory limit");
        return;
    }
    // A copy nobody can run wherever the checkout is (it may sit in root's home).
    let dir = std::env::temp_dir().join(format!("tidegate-memlock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = dir.join("tidegate");
    std::fs::copy(env!("CARGO_BIN_EXE_tidegate"), &binary).expect("copy tidegate");
    use std::os::unix::fs::PermissionsExt;
    for path in [&dir, &binary] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let script = format!(
        "ulimit -l 64; exec {} --listen 127.0.0.1 --port 0 --shards 2",
        binary.display()
    );
    let Ok(output) = std::process::Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c", &script])
        .output()
    else {
        eprintln!("SKIPPED: no su to run tidegate as nobody");
        return;
    };
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ulimit -l"), "{stderr}");
    assert!(stderr.contains("LimitMEMLOCK"), "{stderr}");
    assert!(stderr.contains("now 64 KiB"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the server answers an ApiVersions request on this connection (false: it closed
/// the connection instead).
fn answers(client: &mut Client) -> bool {
    let frame = request_frame(&ApiVersionsRequest::default(), 3, 1);
    let mut sized = (frame.len() as i32).to_be_bytes().to_vec();
    sized.extend_from_slice(&frame);
    use std::io::Write;
    client.stream.write_all(&sized).is_ok() && client.read_frame().is_some()
}

#[test]
fn connections_past_the_limits_are_closed_and_the_others_served() {
    let server = Server::start(&["--max-connections", "3", "--max-connections-per-ip", "2"]);
    let mut first = server.client();
    let mut second = server.client();
    assert!(answers(&mut first) && answers(&mut second));
    // A third from the same address is closed at once.
    let mut third = server.client();
    assert!(
        !answers(&mut third),
        "a third connection from one address was served"
    );
    drop(first);
    // The slot comes back once the server has seen the close: ask until it has.
    let served = (0..1000).any(|_| answers(&mut server.client()));
    assert!(served, "the slot of a closed connection never came back");
    assert!(answers(&mut second));
}
