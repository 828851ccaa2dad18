//! SMQ losing records it acknowledged, seen as Kafka clients see a log truncation (KIP-320):
//! records produced with acks=1 sit in the broker's memory, `weed` is SIGKILLed before it
//! flushes them and started again, and new records get the lost offsets. tidegate must bump
//! the partition's leader epoch, say where epoch 0 ended (OffsetForLeaderEpoch), fence
//! fetches in the old epoch, log it once and count it, and remember it across its own
//! restart.
//!
//! And SMQ handing out offsets its flushed files hold (its offset manager restarts from an
//! older checkpoint): tidegate fills them, and nothing is lost or moved.
//!
//! And a batch SMQ flushed only the first part of before it died: answered as lost (Kafka
//! batches are all or nothing), sent again by its idempotent producer, and read once.
//!
//! And an idempotent batch a killed tidegate left half stored (SMQ takes it record by
//! record): the restarted tidegate skips that part, and the producer's retry is read once.
//! That test kills only tidegate, and runs on the shared SeaweedFS (`TIDEGATE_SEAWEEDFS`).
//!
//! And a tidegate restarted before SMQ checkpointed the offsets it handed out, which leaves
//! the files ending past the checkpoint as a crash does: no filler, no gap in the offsets.
//! That one, too, runs on the shared SeaweedFS.
//!
//! The others kill and restart SeaweedFS, so they run only on one of its own:
//! `TIDEGATE_SEAWEEDFS_KILLABLE=DIR`, a directory `SEAWEEDFS_PORT_OFFSET=600
//! scripts/seaweedfs start DIR` runs in (never one another test or person uses).

use crate::common::{
    create_topic, encode_batch, fetch, fetch_request, filer_list, http_delete, produce_request,
    records, request_frame, scrape, seaweedfs, smq_args, topic_name, visible, wait_first_flush,
    Client, Server, PRODUCE_VERSION,
};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, InitProducerIdRequest, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    ProduceResponse,
};
use kafka_protocol::records::{Compression, Record};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const OFFSET_OUT_OF_RANGE: i16 = 1;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;
const LOST_LINE: &str = "SeaweedMQ lost records it had acknowledged";
const FILLED_LINE: &str = "SeaweedMQ hands out offsets its files already hold";

/// The tests here kill the same SeaweedFS: one at a time.
static KILLABLE: Mutex<()> = Mutex::new(());

/// The SeaweedFS the caller may kill (its directory and ports), held until the guard drops.
fn killable_seaweedfs() -> Option<(MutexGuard<'static, ()>, PathBuf, HashMap<String, String>)> {
    let dir = PathBuf::from(std::env::var_os("TIDEGATE_SEAWEEDFS_KILLABLE")?);
    // A test that failed holding it must not fail the other for that.
    let only_user = KILLABLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let ports = std::fs::read_to_string(dir.join("ports.env")).expect("ports.env");
    let ports = ports
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((only_user, dir, ports))
}

/// SIGKILL, as a crash would (nothing is flushed), then `scripts/seaweedfs start` on the
/// same ports, which returns once a topic can be configured again (~30 s).
fn kill_and_restart(dir: &PathBuf, ports: &HashMap<String, String>) {
    let pid = std::fs::read_to_string(dir.join("weed.pid")).expect("weed.pid");
    let pid = pid.trim();
    let killed = Command::new("kill").args(["-KILL", pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill weed {pid}");
    let gone = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < gone, "weed {pid} alive 30 s after SIGKILL");
        // Another process's death can only be polled for.
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/seaweedfs");
    let status = Command::new(script)
        .arg("start")
        .arg(dir)
        .env("SEAWEEDFS_MASTER_PORT", &ports["MASTER_PORT"])
        .env("SEAWEEDFS_VOLUME_PORT", &ports["VOLUME_PORT"])
        .env("SEAWEEDFS_FILER_PORT", &ports["FILER_PORT"])
        .env("SEAWEEDFS_BROKER_PORT", &ports["BROKER_PORT"])
        .status()
        .expect("run scripts/seaweedfs");
    assert!(status.success(), "SeaweedFS did not come back");
}

fn start(master: &str) -> Server {
    start_with(master, &[])
}

fn start_with(master: &str, extra: &[&str]) -> Server {
    let extra = [&["--metrics-addr", "127.0.0.1:0"], extra].concat();
    Server::start_logged(&smq_args(master, &extra))
}

/// Produces one batch with acks=1: (error code, base offset).
fn produce(client: &mut Client, topic: &str, batch: Bytes) -> (i16, i64) {
    let response: ProduceResponse =
        client.call(&produce_request(topic, 0, batch, 1), PRODUCE_VERSION);
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// Produces with acks=1 as a client does after SeaweedFS restarted: retrying while
/// tidegate's connections come back, for up to two minutes. The base offset.
fn produce_after_restart(client: &mut Client, topic: &str, batch: Bytes) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match produce(client, topic, batch.clone()) {
            (0, offset) => return offset,
            (error, _) => {
                assert!(
                    Instant::now() < deadline,
                    "produce after the restart: error {error}"
                );
                std::thread::sleep(Duration::from_millis(200)); // the client's retry backoff
            }
        }
    }
}

/// The partition's latest offset (ListOffsets v7): what SMQ's broker holds, flushed or not.
fn latest_offset(client: &mut Client, topic: &str) -> i64 {
    let (error, offset) = latest_in(client, topic, -1);
    assert_eq!(error, 0, "ListOffsets");
    offset
}

/// (error code, latest offset) of partition 0 for a client that believes `current` the
/// partition's leader epoch (ListOffsets v7).
fn latest_in(client: &mut Client, topic: &str, current: i32) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(current)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.call(&request, 7);
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.offset)
}

/// The records as sent, at the offsets from `from` on.
fn placed(sent: &[Record], from: i64) -> Vec<Record> {
    let placed = sent.iter().zip(from..);
    placed
        .map(|(r, offset)| Record {
            offset,
            ..r.clone()
        })
        .collect()
}

/// Every record of partition 0 from offset 0 up to `end`.
fn read_to(client: &mut Client, topic: &str, end: i64) -> Vec<Record> {
    let mut read: Vec<Record> = Vec::new();
    let mut next = 0;
    while next < end {
        let (error, more) = fetch(client, topic, 0, next, 1_000);
        assert_eq!(error, 0, "fetch at {next}");
        let Some(last) = more.last().map(|r| r.offset) else {
            panic!("nothing at {next}, below {end}");
        };
        read.extend(more.into_iter().filter(|r| r.offset >= next));
        next = last + 1;
    }
    read
}

fn leader_epoch(client: &mut Client, topic: &str) -> i32 {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let response: MetadataResponse = client.call(&request, 12);
    response.topics[0].partitions[0].leader_epoch
}

/// (error code, partitionLeaderEpoch and base offset of each batch) of a Fetch v12 from
/// `offset` by a client that believes `current_leader_epoch` current.
fn fetch_in(
    client: &mut Client,
    topic: &str,
    offset: i64,
    current_leader_epoch: i32,
) -> (i16, Vec<(i32, i64)>) {
    let mut request: FetchRequest = fetch_request(topic, 0, offset, 0);
    request.topics[0].partitions[0].current_leader_epoch = current_leader_epoch;
    let response: FetchResponse = client.call(&request, 12);
    let data = &response.responses[0].partitions[0];
    let mut batches = Vec::new();
    let mut bytes = data.records.clone().unwrap_or_default();
    while bytes.len() >= 61 {
        let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let base = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let epoch = i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        batches.push((epoch, base));
        if bytes.len() < 12 + length {
            break;
        }
        let _ = bytes.split_to(12 + length);
    }
    (data.error_code, batches)
}

/// OffsetForLeaderEpoch of partition 0: (error code, epoch, end offset).
fn epoch_end(client: &mut Client, topic: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])]);
    let response: OffsetForLeaderEpochResponse = client.call(&request, 4);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// A counter of tidegate's /metrics, summed over the shards.
fn counted(server: &Server, counter: &str) -> f64 {
    let of_counter = format!("{counter}{{");
    let samples = scrape(server);
    let shards = samples
        .iter()
        .filter(|(series, _)| series.starts_with(&of_counter));
    shards.map(|(_, count)| count).sum()
}

#[test]
fn records_smq_lost_are_a_log_truncation_clients_can_detect() {
    let Some((_only_user, dir, ports)) = killable_seaweedfs() else {
        return;
    };
    let topic = format!("truncated-{}", uuid::Uuid::new_v4().simple());
    let server = start(&ports["MASTER"]);
    let mut client = server.client();
    create_topic(&mut client, &topic, 1);
    // A first flushed file, so that what SMQ loses is only what the kill takes.
    let flushed = encode_batch(&records(0, 20, None), Compression::None);
    assert_eq!(produce(&mut client, &topic, flushed), (0, 0));
    wait_first_flush(&ports["FILER_PORT"], &topic, 1);
    // acks=1 (as acks=all does with `--smq-acks-all memory`), answered from SMQ's memory: these
    // sit in the broker's memory until its next flush, which the kill comes before.
    let doomed = encode_batch(&records(0, 30, None), Compression::None);
    assert_eq!(produce(&mut client, &topic, doomed), (0, 20));
    // A consumer reads them: epoch 0, and its position is 50.
    let (error, batches) = fetch_in(&mut client, &topic, 20, 0);
    assert_eq!((error, batches.first().copied()), (0, Some((0, 20))));
    kill_and_restart(&dir, &ports);

    // The consumer fetches on at 50 in epoch 0, retrying while tidegate's connections to
    // SeaweedFS come back: the fetch that finds the log truncated fences it, so that it asks
    // where its epoch ended. OFFSET_OUT_OF_RANGE would send it to its reset policy instead.
    let fenced_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (error, _) = fetch_in(&mut client, &topic, 50, 0);
        if error == FENCED_LEADER_EPOCH || error == OFFSET_OUT_OF_RANGE {
            assert_eq!(error, FENCED_LEADER_EPOCH, "the consumer at 50 in epoch 0");
            break;
        }
        assert!(
            Instant::now() < fenced_deadline,
            "fetch at 50 in epoch 0 after the restart: still error {error}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100)); // the client's retry backoff
    }

    // New records, fewer than were lost, produced as a client does (retrying while
    // tidegate's connections to SeaweedFS come back).
    let fresh = encode_batch(&records(0, 5, None), Compression::None);
    let reused_from = produce_after_restart(&mut client, &topic, fresh);
    // Every shard learns the new epoch once it is stored.
    let epoch_deadline = Instant::now() + Duration::from_secs(60);
    while leader_epoch(&mut client, &topic) != 1 {
        assert!(
            Instant::now() < epoch_deadline,
            "metadata still says epoch {} (new records at {reused_from})\n{}",
            leader_epoch(&mut client, &topic),
            server.log()
        );
        let _ = fetch_in(&mut client, &topic, 50, -1);
        std::thread::sleep(Duration::from_millis(100)); // nothing to wait on but metadata
    }

    // Where epoch 0 ended: at or after the flushed 20, before the 50 acknowledged.
    let (error, epoch, end) = epoch_end(&mut client, &topic, 1, 0);
    assert_eq!((error, epoch), (0, 0), "OffsetForLeaderEpoch(0)");
    assert!((20..50).contains(&end), "epoch 0 ends at {end}");
    assert!(reused_from <= 50, "new records at {reused_from}");
    // The consumer at 50 in epoch 0 is fenced, then learns its records past `end` are gone.
    assert_eq!(fetch_in(&mut client, &topic, 50, 0).0, FENCED_LEADER_EPOCH);
    assert_eq!(fetch_in(&mut client, &topic, 0, 2).0, UNKNOWN_LEADER_EPOCH);
    assert_eq!(epoch_end(&mut client, &topic, 0, 0).0, FENCED_LEADER_EPOCH);
    assert_eq!(latest_in(&mut client, &topic, 0).0, FENCED_LEADER_EPOCH);
    assert_eq!(latest_in(&mut client, &topic, 2).0, UNKNOWN_LEADER_EPOCH);
    assert_eq!(
        latest_in(&mut client, &topic, 1),
        (0, latest_offset(&mut client, &topic))
    );
    // Records kept are served in epoch 0, the new ones in epoch 1.
    let (error, kept) = fetch_in(&mut client, &topic, 0, 1);
    assert_eq!((error, kept.first().map(|b| b.0)), (0, Some(0)));
    if reused_from >= end {
        let (error, new) = fetch_in(&mut client, &topic, reused_from, 1);
        assert_eq!(error, 0);
        assert!(new.iter().all(|b| b.0 == 1), "new batches {new:?}");
    }
    // A consumer that read the new records waits at their end. The restarted broker, which
    // lost count of the partition's first flush window (proto/README.md), puts its mark
    // below the files' end; what tidegate acknowledged still bounds the log. Answered
    // OFFSET_OUT_OF_RANGE, the consumer would reset and read the whole log again, forever.
    let (error, _) = fetch_in(&mut client, &topic, reused_from + 5, 1);
    assert_eq!(
        error,
        0,
        "fetch at the end of the new records, {}",
        reused_from + 5
    );

    let log = server.log();
    let lines: Vec<_> = log.lines().filter(|l| l.contains(LOST_LINE)).collect();
    assert_eq!(lines.len(), 1, "one error line per truncation:\n{log}");
    assert!(lines[0].contains(&topic) && lines[0].contains(&format!("first={end}")));
    assert_eq!(counted(&server, "tidegate_truncations_detected_total"), 1.0);

    // A restarted tidegate still knows: epoch 0 ended at `end`.
    drop(server);
    let server = start(&ports["MASTER"]);
    let mut client = server.client();
    assert_eq!(leader_epoch(&mut client, &topic), 1);
    assert_eq!(epoch_end(&mut client, &topic, -1, 0), (0, 0, end));
}

/// SMQ's offset manager recovers from `checkpoint.offset` alone, so a `weed` killed after a
/// flush and before its next checkpoint (every 2 s) hands out flushed offsets again. Made
/// certain here: the checkpoint is removed before the kill, and the restarted broker counts
/// from 0 over a file holding 0..19. New records must land past the file, be read at the
/// offsets they were acknowledged at, leave the flushed ones as they were, and the mark must
/// be the true one; nothing was lost, so no truncation.
#[test]
fn offsets_smq_hands_out_again_over_flushed_records_are_filled_not_reused() {
    let Some((_only_user, dir, ports)) = killable_seaweedfs() else {
        return;
    };
    let filer = &ports["FILER_PORT"];
    let topic = format!("refilled-{}", uuid::Uuid::new_v4().simple());
    let server = start(&ports["MASTER"]);
    let mut client = server.client();
    create_topic(&mut client, &topic, 1);
    let flushed = records(0, 20, None);
    let batch = encode_batch(&flushed, Compression::None);
    assert_eq!(produce(&mut client, &topic, batch), (0, 0));
    wait_first_flush(filer, &topic, 1);
    let checkpoint = loop {
        let versions = filer_list(filer, &format!("/topics/kafka/{topic}"));
        let ranges = versions.iter().max().map(|v| filer_list(filer, v));
        let found = ranges.into_iter().flatten().flat_map(|range| {
            let files = filer_list(filer, &range);
            files
                .into_iter()
                .filter(|f| f.ends_with("checkpoint.offset"))
        });
        if let Some(found) = found.max() {
            break found;
        }
        // The offset manager checkpoints every 2 s; nothing to wait on but the listing.
        std::thread::sleep(Duration::from_millis(200));
    };
    let status = http_delete(filer, &checkpoint);
    assert!(
        (200..300).contains(&status),
        "delete {checkpoint}: {status}"
    );
    kill_and_restart(&dir, &ports);

    let fresh = records(0, 5, None);
    let batch = encode_batch(&fresh, Compression::None);
    let at = produce_after_restart(&mut client, &topic, batch);
    assert!(
        at >= 20,
        "new records at {at}, over the flushed 0..19\n{}",
        server.log()
    );
    let mut expected = placed(&flushed, 0);
    expected.extend(placed(&fresh, at));
    let read = read_to(&mut client, &topic, at + 5);
    assert_eq!(
        visible(&read),
        visible(&expected),
        "every record once, at its offset"
    );
    let response: kafka_protocol::messages::FetchResponse =
        client.call(&fetch_request(&topic, 0, at + 5, 0), 12);
    assert_eq!(response.responses[0].partitions[0].high_watermark, at + 5);
    let log = server.log();
    assert!(!log.contains(LOST_LINE), "nothing was lost:\n{log}");
    // The case itself happened: the broker handed out offsets the file holds.
    assert!(
        log.contains(FILLED_LINE),
        "no offsets were handed out again:\n{log}"
    );
}

/// A batch larger than SMQ's 8 MiB log buffer makes the broker flush its first part at once
/// and keep the rest in memory until its next flush (every 5 s); `weed` is killed in between.
/// With `--smq-acks-all flushed` the batch is answered as lost, all of it (Kafka batches are
/// all or nothing), and its idempotent producer sends it again, to new offsets. What SMQ
/// kept of the first copy must not be read: every record once, at the offsets of the copy
/// acknowledged, also after tidegate restarts.
#[test]
fn what_smq_kept_of_a_batch_it_lost_is_not_read_again() {
    const RECORDS: i32 = 160;
    const VALUE_BYTES: usize = 64 << 10; // 10 MiB in all
    let Some((_only_user, dir, ports)) = killable_seaweedfs() else {
        return;
    };
    let extra = [
        "--smq-acks-all",
        "flushed",
        "--message-max-bytes",
        "16777216",
    ];
    let server = start_with(&ports["MASTER"], &extra);
    // SMQ may flush the rest on its own timer between the last record arriving and the
    // kill; then nothing is lost, and it is tried again.
    for _attempt in 0..3 {
        let mut client = server.client();
        let (topic, sent, batch) =
            topic_and_idempotent_batch(&mut client, "half-flushed", RECORDS, VALUE_BYTES);
        // The idempotent producer: the same batch again after every retriable error
        // (REQUEST_TIMED_OUT while SeaweedFS restarts, KAFKA_STORAGE_ERROR once lost).
        let producing = {
            let (bootstrap, topic) = (server.bootstrap, topic.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(bootstrap);
                let deadline = Instant::now() + Duration::from_secs(180);
                loop {
                    let request = produce_request(&topic, 0, batch.clone(), -1);
                    let response: ProduceResponse = client.call(&request, PRODUCE_VERSION);
                    let partition = &response.responses[0].partition_responses[0];
                    match partition.error_code {
                        0 => return partition.base_offset,
                        7 | 56 if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(100)); // retry.backoff.ms
                        }
                        error => panic!("produce: error {error}"),
                    }
                }
            })
        };
        // The broker holds the whole batch, and has flushed part of it.
        let held_by = Instant::now() + Duration::from_secs(60);
        while latest_offset(&mut client, &topic) < i64::from(RECORDS) {
            assert!(Instant::now() < held_by, "SMQ never held the batch");
            std::thread::sleep(Duration::from_millis(10)); // nothing to wait on but the offset
        }
        wait_first_flush(&ports["FILER_PORT"], &topic, 1);
        kill_and_restart(&dir, &ports);
        let at = producing.join().expect("producer thread");

        let log = server.log();
        let lost: Vec<_> = log
            .lines()
            .filter(|l| l.contains(LOST_LINE) && l.contains(&topic))
            .collect();
        if lost.is_empty() {
            assert_eq!(at, 0, "nothing lost, so acknowledged where first stored");
            continue;
        }
        // Its first part was kept: the copy acknowledged is past it.
        assert_eq!(lost.len(), 1, "one truncation:\n{log}");
        assert!(lost[0].contains("first=0"), "{}", lost[0]);
        assert!(!lost[0].contains("records_from=0 "), "{}", lost[0]);
        assert!(at > 0, "sent again to {at}");
        let expected = placed(&sent, at);
        let end = at + i64::from(RECORDS);
        assert_eq!(
            visible(&read_to(&mut client, &topic, end)),
            visible(&expected)
        );
        // A consumer that read the first copy in epoch 0 learns it ended at 0.
        assert_eq!(epoch_end(&mut client, &topic, -1, 0), (0, 0, 0));

        drop(client);
        drop(server);
        let server = start(&ports["MASTER"]);
        let mut client = server.client();
        assert_eq!(
            visible(&read_to(&mut client, &topic, end)),
            visible(&expected)
        );
        return;
    }
    panic!("SMQ flushed every batch whole before the kill, 3 times");
}

#[test]
fn an_idempotent_batch_cut_short_by_a_tidegate_crash_is_read_once() {
    // Many small records: SMQ takes a fraction of a second to store them one by one.
    const RECORDS: i32 = 20_000;
    const VALUE_BYTES: usize = 400;
    const TORN_LINE: &str = "an idempotent batch was cut short when tidegate stopped";
    let Some(ports) = seaweedfs() else { return };
    let extra = ["--message-max-bytes", "16777216"];
    // The kill may come after SMQ stored the whole batch; then it is tried again.
    for _attempt in 0..5 {
        let server = start_with(&ports["MASTER"], &extra);
        let mut client = server.client();
        let (topic, sent, batch) =
            topic_and_idempotent_batch(&mut client, "torn", RECORDS, VALUE_BYTES);
        // A first record, flushed: past a new topic's first flush window, which SMQ cannot
        // serve after a reload (proto/README.md), so recovery can read the torn part.
        let lead_in = records(0, 1, None);
        let lead_in_batch = encode_batch(&lead_in, Compression::None);
        assert_eq!(produce(&mut client, &topic, lead_in_batch), (0, 0));
        wait_first_flush(&ports["FILER_PORT"], &topic, 1);
        let mut producing = Client::connect(server.bootstrap);
        let request = produce_request(&topic, 0, batch.clone(), 1);
        producing.send_frame(&request_frame(&request, PRODUCE_VERSION, 1));
        // tidegate is SIGKILLed as soon as SMQ holds part of the batch.
        let held_by = Instant::now() + Duration::from_secs(60);
        while latest_offset(&mut client, &topic) == 1 {
            assert!(Instant::now() < held_by, "SMQ never took the batch");
        }
        drop(server);

        let server = start_with(&ports["MASTER"], &extra);
        let mut client = server.client();
        // The retry: stored whole already, or after what the first tidegate left of it.
        let stored = produce_after_restart(&mut client, &topic, batch);
        if stored == 1 {
            continue;
        }
        server.wait_for_log(TORN_LINE, Duration::from_secs(10));
        assert_eq!(counted(&server, "tidegate_torn_batches_skipped_total"), 1.0);
        let end = stored + i64::from(RECORDS);
        let expected = [placed(&lead_in, 0), placed(&sent, stored)].concat();
        assert_same(
            &read_to(&mut client, &topic, end),
            &expected,
            "the batch once, whole, where it was acknowledged",
        );
        // A consumer that read the torn part in epoch 0 learns that epoch ended before it.
        assert_eq!(epoch_end(&mut client, &topic, -1, 0), (0, 0, 1));

        drop(client);
        drop(server);
        let server = start(&ports["MASTER"]);
        let mut client = server.client();
        assert_same(
            &read_to(&mut client, &topic, end),
            &expected,
            "and after another restart",
        );
        return;
    }
    panic!("SMQ stored every batch whole before the kill, 5 times");
}

/// SMQ's broker flushes a partition as soon as its last publisher goes, and checkpoints the
/// offsets it handed out only every 2 s: a tidegate restarted within those 2 s finds the
/// files ending past the checkpoint, as after a broker crash. The live broker's next
/// checkpoint catches up; tidegate must wait for it, not publish a filler, which would
/// leave a gap before the next record (a Kafka partition's offsets are consecutive).
#[test]
fn a_tidegate_restarted_soon_after_producing_leaves_no_gap_in_the_offsets() {
    const WAITED_LINE: &str = "waited for SeaweedMQ's offset checkpoint";
    let Some(ports) = seaweedfs() else { return };
    let topic = format!("consecutive-{}", uuid::Uuid::new_v4().simple());
    let mut server = start(&ports["MASTER"]);
    let mut client = server.client();
    create_topic(&mut client, &topic, 1);
    // Past a new topic's first flush window, which SMQ cannot serve after a reload.
    let mut expected = records(0, 1, None);
    let lead_in = encode_batch(&expected, Compression::None);
    assert_eq!(produce(&mut client, &topic, lead_in), (0, 0));
    wait_first_flush(&ports["FILER_PORT"], &topic, 1);
    // The restart may come after the broker's checkpoint; then it is tried again.
    for round in 1..=10 {
        // Records told apart by their round and side of the restart.
        let before = records(2 * round, 3, None);
        let at = expected.len() as i64;
        let batch = encode_batch(&before, Compression::None);
        assert_eq!(produce(&mut client, &topic, batch), (0, at));
        expected.extend(placed(&before, at));
        drop(client);
        drop(server);

        server = start(&ports["MASTER"]);
        client = server.client();
        let after = records(2 * round + 1, 2, None);
        let at = expected.len() as i64;
        let batch = encode_batch(&after, Compression::None);
        // The broker may still be unloading the partition: retried, as a client does.
        let stored = produce_after_restart(&mut client, &topic, batch);
        assert_eq!(
            stored,
            at,
            "the next offset after a restart\n{}",
            server.log()
        );
        expected.extend(placed(&after, at));
        if server.log().contains(WAITED_LINE) {
            let read = read_to(&mut client, &topic, expected.len() as i64);
            assert_same(&read, &expected, "every record once, at its offset");
            return;
        }
    }
    panic!("the broker had checkpointed before every restart, 10 times");
}

/// A new one-partition topic named after `prefix`, and one batch of `count` records of
/// `value_bytes` each from a new idempotent producer: the records, and the batch encoded.
fn topic_and_idempotent_batch(
    client: &mut Client,
    prefix: &str,
    count: i32,
    value_bytes: usize,
) -> (String, Vec<Record>, Bytes) {
    let topic = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    create_topic(client, &topic, 1);
    let init = client.call(&InitProducerIdRequest::default(), 4);
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch, 0);
    let mut sent = records(0, count, Some(producer));
    for (i, record) in sent.iter_mut().enumerate() {
        record.value = Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_bytes]));
    }
    let batch = encode_batch(&sent, Compression::None);
    (topic, sent, batch)
}

/// Asserts `read` is `expected`, naming the first record that differs (thousands of
/// records are too many to print).
fn assert_same(read: &[Record], expected: &[Record], what: &str) {
    let (read, expected) = (visible(read), visible(expected));
    let differs = read.iter().zip(&expected).position(|(r, e)| r != e);
    if let Some(at) = differs {
        panic!(
            "{what}: record {at} is {:?}, not {:?}",
            read[at], expected[at]
        );
    }
    assert_eq!(read.len(), expected.len(), "{what}: records read");
}
