//! What an operator watches: /healthz, /readyz and /metrics on --metrics-addr, moved by
//! real produce and fetch traffic by exactly what was sent; JSON log lines; the one
//! rate-limited line per connection closed for a protocol error.

use crate::common::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, FindCoordinatorRequest, GroupId, JoinGroupRequest,
    OffsetCommitRequest, ProduceRequest,
};
use kafka_protocol::protocol::Request;
use kafka_protocol::records::{Compression, Record};
use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn sample(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[test]
fn health_and_readiness_answer_and_metrics_are_off_by_default() {
    let server = Server::start(&["--shards", "2", "--metrics-addr", "127.0.0.1:0"]);
    let port = metrics_port(&server);
    assert_eq!(http_get(&port, "/healthz"), (200, "ok\n".to_string()));
    // A shard may still be between binding its sockets (when "ready" is printed) and
    // serving them: asked as a probe asks, until it answers.
    wait_ready(&port);
    assert_eq!(http_get(&port, "/readyz"), (200, "ready\n".to_string()));
    assert_eq!(http_get(&port, "/nothing").0, 404);
    let samples = scrape(&server);
    for shard in ["0", "1"] {
        let listening = format!("tidegate_shard_listening{{shard=\"{shard}\"}}");
        assert_eq!(sample(&samples, &listening), 1.0);
    }
    assert!(
        Server::start(&[]).metrics.is_none(),
        "served without --metrics-addr"
    );
}

#[test]
fn readiness_follows_seaweedfs() {
    let Some(ports) = seaweedfs() else { return };
    let broker = Forwarder::start(&ports["BROKER"]);
    let filer = Forwarder::start(&ports["FILER_GRPC"]);
    let (broker_address, filer_address) = (broker.address.to_string(), filer.address.to_string());
    let server = Server::start(&[
        "--backend",
        "smq",
        "--smq-broker",
        &broker_address,
        "--smq-filer",
        &filer_address,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let port = metrics_port(&server);
    wait_ready(&port);
    broker.cut();
    filer.cut();
    let (status, reason) = http_get(&port, "/readyz");
    assert_eq!(status, 503, "{reason}");
    assert!(reason.starts_with("not ready: backend: "), "{reason}");
    assert_eq!(
        http_get(&port, "/healthz").0,
        200,
        "the process still answers"
    );
    broker.restore();
    filer.restore();
    wait_ready(&port);
    // A consumer right behind its producer is answered from the batch cache; one that
    // reads from before the cache's first batch goes to the broker.
    let topic = format!("cache-{}", std::process::id());
    let mut client = server.client();
    let failed_lookups = |samples: &HashMap<String, f64>| -> f64 {
        let failed = samples.iter().filter(|(series, _)| {
            series.starts_with("tidegate_seaweedfs_errors_total{")
                && series.contains("rpc=\"LookupTopicBrokers\",code=\"Unknown\"")
        });
        failed.map(|(_, count)| count).sum()
    };
    let before_creation = scrape(&server);
    create_topic(&mut client, &topic, 1);
    // The broker answers a lookup of a topic it does not have yet with an error (status
    // Unknown, "topic not found"): a failed call, counted with its code.
    assert!(failed_lookups(&scrape(&server)) > failed_lookups(&before_creation));
    let batch = encode_batch(&records(0, 3, None), Compression::None);
    assert_eq!(produce(&mut client, &topic, 0, batch).0, 0);
    let before = scrape(&server);
    let (error, fetched) = fetch(&mut client, &topic, 0, 0, 0);
    assert_eq!((error, fetched.len()), (0, 3));
    let after = scrape(&server);
    // Summed over the shards: whichever owns the partition counts it.
    let hits = |samples: &HashMap<String, f64>| -> f64 {
        let hit = samples.iter().filter(|(series, _)| {
            series.starts_with("tidegate_batch_cache_reads_total{")
                && series.contains("result=\"hit\"")
        });
        hit.map(|(_, count)| count).sum()
    };
    assert_eq!(hits(&after) - hits(&before), 1.0);
    // Every gRPC call to SeaweedFS counted by RPC, with its latency: the topic's creation
    // (ConfigureTopic to the broker), its partition's publish stream (once, opened).
    let calls = |samples: &HashMap<String, f64>, rpc: &str| -> f64 {
        seaweedfs_calls(samples, "messaging_pb.SeaweedMessaging", rpc)
    };
    assert!(calls(&after, "ConfigureTopic") >= 1.0);
    assert_eq!(calls(&after, "PublishMessage"), 1.0);
    let timed: f64 = after
        .iter()
        .filter(|(series, _)| {
            series.starts_with("tidegate_seaweedfs_call_duration_seconds_count{")
                && series.contains("rpc=\"ConfigureTopic\"")
        })
        .map(|(_, count)| count)
        .sum();
    assert_eq!(timed, calls(&after, "ConfigureTopic"));
}

/// Calls of one SeaweedFS RPC made so far, summed over the shards.
fn seaweedfs_calls(samples: &HashMap<String, f64>, service: &str, rpc: &str) -> f64 {
    let labels = format!("service=\"{service}\",rpc=\"{rpc}\"");
    let of_rpc = samples.iter().filter(|(series, _)| {
        series.starts_with("tidegate_seaweedfs_calls_total{") && series.contains(&labels)
    });
    of_rpc.map(|(_, count)| count).sum()
}

#[test]
fn durable_acks_learn_of_flushes_from_the_filer_rather_than_by_listing_it() {
    let Some(ports) = seaweedfs() else { return };
    let filer = Forwarder::start(&ports["FILER_GRPC"]);
    let filer_address = filer.address.to_string();
    // acks=all waits for SMQ's flush by default (`--smq-acks-all flushed`). One shard: its
    // filer calls are all this test's.
    let server = Server::start(&[
        "--shards",
        "1",
        "--backend",
        "smq",
        "--smq-broker",
        &ports["BROKER"],
        "--smq-filer",
        &filer_address,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    wait_ready(&metrics_port(&server));
    let topic = format!("watched-{}", std::process::id());
    let mut client = server.client();
    create_topic(&mut client, &topic, 1);
    let mut sent = Vec::new();
    let mut produce_next = |client: &mut Client| {
        let batch = records(0, 3, None);
        let (error, base) = produce(client, &topic, 0, encode_batch(&batch, Compression::None));
        assert_eq!((error, base), (0, sent.len() as i64));
        let placed = batch.into_iter().zip(base..);
        sent.extend(placed.map(|(record, offset)| Record { offset, ..record }));
    };
    // The first wait starts the shard's subscription to the filer's changes.
    produce_next(&mut client);
    // With it live, a wait for the broker's next flush (up to weed's flush interval) lists
    // the partition's files at most once a second, as a check, not every 100 ms (a wait
    // of 5 s made 50 listings before); and the produce itself may read what it reads.
    let filer_calls = |samples: &HashMap<String, f64>, rpc: &str| -> f64 {
        seaweedfs_calls(samples, "filer_pb.SeaweedFiler", rpc)
    };
    let before = scrape(&server);
    let started = std::time::Instant::now();
    produce_next(&mut client);
    let waited = started.elapsed().as_secs_f64();
    let listings =
        filer_calls(&scrape(&server), "ListEntries") - filer_calls(&before, "ListEntries");
    assert!(
        listings <= waited.ceil() + 2.0,
        "{listings} listings in a wait of {waited:.1} s"
    );
    assert_eq!(filer_calls(&before, "SubscribeMetadata"), 1.0);
    // Cut from the filer, the subscription breaks: the next durable ack comes once the
    // filer is back, by listing or by a new subscription, and nothing is lost or moved.
    filer.cut();
    filer.restore();
    produce_next(&mut client);
    let (error, fetched) = fetch(&mut client, &topic, 0, 0, 0);
    assert_eq!(error, 0);
    assert_eq!(visible(&fetched), visible(&sent));
}

#[test]
fn fetches_waiting_at_a_partitions_end_share_the_brokers_reads() {
    let Some(ports) = seaweedfs() else { return };
    let smq = [
        "--shards",
        "1",
        "--backend",
        "smq",
        "--smq-broker",
        &ports["BROKER"],
        "--smq-filer",
        &ports["FILER_GRPC"],
    ];
    let server = Server::start(&[&smq[..], &["--metrics-addr", "127.0.0.1:0"]].concat());
    // Another gateway on the same SeaweedFS: what it writes, the first learns of only by
    // asking the broker.
    let other = Server::start(&smq);
    let topic = format!("idle-{}", std::process::id());
    create_topic(&mut server.client(), &topic, 1);
    let fetch_messages = |samples: &HashMap<String, f64>| {
        seaweedfs_calls(samples, "messaging_pb.SeaweedMessaging", "FetchMessage")
    };
    // Ten consumers (ten groups') wait at the end of the partition for 3 s, each fetch up
    // to 500 ms, the default --smq-fetch-poll-ms.
    let before = scrape(&server);
    let started = std::time::Instant::now();
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let (address, topic) = (server.bootstrap, topic.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(address);
                let mut fetches = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    let (error, records) = fetch(&mut client, &topic, 0, 0, 500);
                    assert_eq!((error, records.len()), (0, 0));
                    fetches += 1;
                }
                fetches
            })
        })
        .collect();
    let fetches: u32 = waiting.into_iter().map(|t| t.join().expect("waits")).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let calls = fetch_messages(&scrape(&server)) - fetch_messages(&before);
    // One FetchMessage per interval, shared by every waiting fetch (and the one that ends
    // each wait); each fetch reading for itself made two (~120 here).
    let intervals = (elapsed / 0.5).ceil();
    assert!(
        fetches >= 30 && calls <= 2.0 * intervals + 2.0,
        "{calls} FetchMessage calls for {fetches} fetches in {elapsed:.1} s"
    );
    // What another gateway writes still reaches a waiting consumer within the interval.
    let batch = records(0, 2, None);
    let (error, base) = produce(
        &mut other.client(),
        &topic,
        0,
        encode_batch(&batch, Compression::None),
    );
    assert_eq!((error, base), (0, 0));
    let written = std::time::Instant::now();
    let mut client = server.client();
    let placed: Vec<Record> = batch
        .into_iter()
        .zip(0..)
        .map(|(record, offset)| Record { offset, ..record })
        .collect();
    loop {
        let (error, fetched) = fetch(&mut client, &topic, 0, 0, 500);
        assert_eq!(error, 0);
        if !fetched.is_empty() {
            assert_eq!(visible(&fetched), visible(&placed));
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "another gateway's records not seen in 5 s"
        );
    }
}

/// Asks /readyz, as a probe does, until it answers 200 (failing after 30 s).
fn wait_ready(port: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(port, "/readyz");
        if status == 200 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TCP forwarder to a SeaweedFS server that can be cut (connections open are closed, new
/// ones closed at once) and restored: SeaweedFS unreachable without stopping it.
struct Forwarder {
    address: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    fn start(target: &str) -> Forwarder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
        let forwarder = Forwarder {
            address: listener.local_addr().expect("forwarder address"),
            cut: Arc::default(),
            open: Arc::default(),
        };
        let (cut, open, target) = (
            forwarder.cut.clone(),
            forwarder.open.clone(),
            target.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: closed
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let clones = [client.try_clone(), server.try_clone()];
                open.lock()
                    .expect("open")
                    .extend(clones.into_iter().map_while(Result::ok));
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (Ok(server), Ok(client)),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        forwarder
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().expect("open").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Sends `request` as one frame and reads its answer: the bytes each way, prefixes included.
fn exchange<R: Request>(client: &mut Client, request: &R, version: i16) -> (usize, usize) {
    let body = request_frame(request, version, 7);
    client.send_frame(&body);
    let answer = client.read_frame().expect("answer");
    (4 + body.len(), 4 + answer.len())
}

#[test]
fn produce_and_fetch_move_the_counters_by_what_was_sent() {
    let server = Server::start(&["--shards", "1", "--metrics-addr", "127.0.0.1:0"]);
    let mut client = server.client();
    create_topic(&mut client, "watched", 1);
    let before = scrape(&server);
    let series = |name: &str, api: &str| format!("{name}{{shard=\"0\",api=\"{api}\"}}");
    let mut sent = 0;
    let mut received = 0;
    for _ in 0..3 {
        let batch = encode_batch(&records(0, 10, None), Compression::None);
        let request: ProduceRequest = produce_request("watched", 0, batch, -1);
        let (up, down) = exchange(&mut client, &request, PRODUCE_VERSION);
        sent += up;
        received += down;
    }
    // A partition the topic does not have: UNKNOWN_TOPIC_OR_PARTITION (3).
    let batch = encode_batch(&records(0, 1, None), Compression::None);
    let (up, down) = exchange(
        &mut client,
        &produce_request("watched", 5, batch, -1),
        PRODUCE_VERSION,
    );
    sent += up;
    received += down;
    let (up, down) = exchange(
        &mut client,
        &fetch_request("watched", 0, 0, 0),
        FETCH_VERSION,
    );
    sent += up;
    received += down;
    let after = scrape(&server);
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved(&series("tidegate_api_requests_total", "Produce")),
        4.0
    );
    assert_eq!(moved(&series("tidegate_api_requests_total", "Fetch")), 1.0);
    assert_eq!(
        moved("tidegate_api_errors_total{shard=\"0\",api=\"Produce\",error_code=\"3\",error=\"UnknownTopicOrPartition\"}"),
        1.0
    );
    assert_eq!(
        moved("tidegate_received_bytes_total{shard=\"0\"}"),
        sent as f64
    );
    assert_eq!(
        moved("tidegate_sent_bytes_total{shard=\"0\"}"),
        received as f64
    );
    // 3 batches of 10 records stored; the Fetch from offset 0 carried all of them.
    let topic = |name: &str| format!("{name}{{shard=\"0\",topic=\"watched\"}}");
    assert_eq!(moved(&topic("tidegate_topic_produced_records_total")), 30.0);
    assert_eq!(moved(&topic("tidegate_topic_fetched_records_total")), 30.0);
    let batch_bytes = encode_batch(&records(0, 10, None), Compression::None).len() as f64;
    assert_eq!(
        moved(&topic("tidegate_topic_produced_bytes_total")),
        3.0 * batch_bytes
    );
    assert_eq!(
        moved(&topic("tidegate_topic_fetched_bytes_total")),
        3.0 * batch_bytes
    );
    let histogram = "tidegate_request_duration_seconds";
    let count = sample(&after, &series(&format!("{histogram}_count"), "Produce"));
    assert_eq!(
        count,
        sample(&after, &series("tidegate_api_requests_total", "Produce"))
    );
    let everything = format!("{histogram}_bucket{{shard=\"0\",api=\"Produce\",le=\"+Inf\"}}");
    assert_eq!(sample(&after, &everything), count);
    assert_eq!(
        sample(&after, "tidegate_connections_open{shard=\"0\"}"),
        1.0
    );
    assert!(after.contains_key(&format!(
        "tidegate_build_info{{version=\"{}\",commit=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        commit(&server)
    )));
}

#[test]
fn topics_past_the_limit_share_one_series_and_zero_turns_them_off() {
    let produced = "tidegate_topic_produced_records_total";
    for (limit, expected) in [("1", vec![("first", 2.0), ("_other", 5.0)]), ("0", vec![])] {
        // Set as a deployment would, in the environment (the flag and the file work alike).
        let server = Server::start_with_env(
            &["--shards", "1", "--metrics-addr", "127.0.0.1:0"],
            &[("TIDEGATE_METRICS_TOPIC_LIMIT", limit)],
        );
        let mut client = server.client();
        for (topic, count) in [("first", 2), ("second", 3), ("third", 2)] {
            create_topic(&mut client, topic, 1);
            let batch = encode_batch(&records(0, count, None), Compression::None);
            assert_eq!(produce(&mut client, topic, 0, batch).0, 0);
        }
        let samples = scrape(&server);
        let mut counted: Vec<_> = samples
            .iter()
            .filter(|(series, _)| series.starts_with(produced))
            .map(|(series, count)| (series.clone(), *count))
            .collect();
        counted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected: Vec<_> = expected
            .iter()
            .map(|(topic, count)| {
                (
                    format!("{produced}{{shard=\"0\",topic=\"{topic}\"}}"),
                    *count,
                )
            })
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(counted, expected, "--metrics-topic-limit {limit}");
    }
}

#[test]
fn group_members_rebalances_and_lag() {
    group_metrics_on(&[]);
}

#[test]
fn group_members_rebalances_and_lag_on_seaweedfs() {
    let Some(ports) = seaweedfs() else { return };
    group_metrics_on(&["--backend", "smq", "--smq-master", &ports["MASTER"]]);
}

/// A group with one member, and a group that committed offsets behind the high-water marks
/// of a topic produced through this gateway (names unique: SeaweedMQ keeps them).
fn group_metrics_on(backend: &[&str]) {
    let mut args = vec![
        "--shards",
        "2",
        "--metrics-addr",
        "127.0.0.1:0",
        "--group-initial-rebalance-delay-ms",
        "0",
    ];
    args.extend_from_slice(backend);
    let server = Server::start(&args);
    let run = format!("{}-{}", std::process::id(), backend.len());
    let (topic, members_group, reader_group) = (
        format!("lagged-{run}"),
        format!("members-{run}"),
        format!("reader-{run}"),
    );
    let mut client = server.client();
    create_topic(&mut client, &topic, 4);
    for partition in 0..4 {
        let batch = encode_batch(&records(partition, 10, None), Compression::None);
        assert_eq!(produce(&mut client, &topic, partition, batch).0, 0);
    }
    // One member joins its group (asked for a member id first, as clients are since KIP-394).
    let coordinator = |group: &str| {
        let request =
            FindCoordinatorRequest::default().with_coordinator_keys(vec![group.to_string().into()]);
        let found = server.client().call(&request, 4).coordinators.remove(0);
        let port = u16::try_from(found.port).expect("port");
        Client::connect(SocketAddr::from(([127, 0, 0, 1], port)))
    };
    let mut members = coordinator(&members_group);
    let mut member_id = String::new();
    let joined = loop {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(members_group.clone().into()))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member_id.clone().into())
            .with_protocol_type("consumer".into())
            .with_protocols(vec![
                JoinGroupRequestProtocol::default().with_name("range".into())
            ]);
        let joined = members.call(&request, 9);
        if joined.error_code == 0 {
            break joined;
        }
        member_id = joined.member_id.to_string();
        assert!(!member_id.is_empty(), "error {}", joined.error_code);
    };
    assert_eq!(joined.generation_id, 1);
    // And one joins a KIP-848 group with its first heartbeat.
    let consumers_group = format!("consumers-{run}");
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(consumers_group.clone().into()))
        .with_member_id(format!("member-{run}").into())
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(&topic)]))
        .with_topic_partitions(Some(Vec::new()));
    let joined = coordinator(&consumers_group).call(&heartbeat, 1);
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1));
    // the reader group commits offsets as a consumer without membership does (generation -1).
    let mut reader = coordinator(&reader_group);
    let commits = [(0, 10), (1, 4), (2, 0)].map(|(partition, offset)| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(partition)
            .with_committed_offset(offset)
    });
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(reader_group.clone().into()))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(&topic))
            .with_partitions(commits.to_vec())]);
    let committed = reader.call(&request, 8);
    assert!(committed.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == 0));

    // Series of a group are on its coordinator's shard: summed over shards here.
    let samples = scrape(&server);
    let total = |prefix: &str, labels: &str| -> f64 {
        let found = samples
            .iter()
            .filter(|(series, _)| series.starts_with(prefix) && series.contains(labels));
        found.map(|(_, value)| value).sum()
    };
    for group in [&members_group, &consumers_group] {
        let labels = format!("group=\"{group}\"");
        assert_eq!(total("tidegate_group_members{", &labels), 1.0, "{group}");
        assert_eq!(
            total("tidegate_group_rebalances_total{", &labels),
            1.0,
            "{group}"
        );
    }
    assert_eq!(
        reader_lag(&samples, &reader_group, &topic),
        [0.0, 6.0, 10.0]
    );
    // Nothing committed for partition 3: no lag series for it.
    assert_eq!(
        total(
            "tidegate_consumer_group_lag{",
            &format!("topic=\"{topic}\",partition=\"3\"")
        ),
        0.0
    );
    if backend.is_empty() {
        return;
    }
    // On SeaweedMQ the offsets outlive the gateway: a consumer that died before a restart
    // still shows its lag, with nobody reading or committing since.
    drop(server);
    let restarted = Server::start(&args);
    let samples = scrape(&restarted);
    assert_eq!(
        reader_lag(&samples, &reader_group, &topic),
        [0.0, 6.0, 10.0]
    );
    // And records appended through another gateway count at once (SeaweedMQ may leave an
    // offset unused after the restart: the lag is counted in offsets, as Kafka's is).
    let other = Server::start(backend);
    let batch = encode_batch(&records(1, 5, None), Compression::None);
    let at = produce_retrying(&mut other.client(), &topic, 1, batch);
    let samples = scrape(&restarted);
    let lag = (at + 5 - 4) as f64;
    assert_eq!(
        reader_lag(&samples, &reader_group, &topic),
        [0.0, lag, 10.0]
    );
}

/// The lag of `group` on partitions 0, 1 and 2 of `topic`, each in exactly one series.
fn reader_lag(samples: &HashMap<String, f64>, group: &str, topic: &str) -> Vec<f64> {
    (0..3)
        .map(|partition| {
            let labels = format!("group=\"{group}\",topic=\"{topic}\",partition=\"{partition}\"");
            let series: Vec<f64> = samples
                .iter()
                .filter(|(s, _)| {
                    s.starts_with("tidegate_consumer_group_lag{") && s.contains(&labels)
                })
                .map(|(_, value)| *value)
                .collect();
            assert_eq!(
                series.len(),
                1,
                "one series for partition {partition}: {series:?}"
            );
            series[0]
        })
        .collect()
}

/// The commit the server names in `tidegate_build_info`.
fn commit(server: &Server) -> String {
    let (_, body) = http_get(&metrics_port(server), "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix("tidegate_build_info{"))
        .and_then(|l| l.split("commit=\"").nth(1))
        .and_then(|l| l.split('"').next())
        .expect("build info")
        .to_string()
}

#[test]
fn refused_and_failed_connections_are_counted() {
    let server = Server::start(&[
        "--shards",
        "1",
        "--max-connections",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let mut first = server.client();
    let mut second = server.client();
    assert!(second.is_closed_by_server(), "over --max-connections");
    first.send_frame(&raw_header(9999, 0, 1));
    assert!(first.is_closed_by_server(), "an unknown API closes");
    let samples = scrape(&server);
    assert_eq!(
        sample(&samples, "tidegate_connections_refused_total{shard=\"0\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "tidegate_connections_closed_for_protocol_errors_total{shard=\"0\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&samples, "tidegate_connections_accepted_total{shard=\"0\"}"),
        1.0
    );
}

#[test]
fn json_log_lines_parse_and_protocol_errors_are_logged_within_a_rate() {
    let server = Server::start_logged(&["--shards", "1", "--log-format", "json"]);
    // Bad clients in a loop, faster than the shard logs them.
    let bad_clients = 50;
    for _ in 0..bad_clients {
        let mut client = server.client();
        client.send_frame(&raw_header(9999, 0, 1));
        assert!(client.is_closed_by_server());
    }
    // A second later the next one is logged, with how many were held back before it.
    std::thread::sleep(Duration::from_millis(1100));
    let mut last = server.client();
    last.send_frame(&raw_header(9999, 0, 1));
    assert!(last.is_closed_by_server());
    let closed = |log: &str| {
        log.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect(line))
            .filter(|event| event["message"] == "closing connection")
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = closed(&server.log());
        let accounted: u64 = lines
            .iter()
            .map(|l| 1 + l["suppressed"].as_u64().expect("count"))
            .sum();
        if accounted == bad_clients + 1 || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let accounted: u64 = lines
        .iter()
        .map(|l| 1 + l["suppressed"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        accounted,
        bad_clients + 1,
        "every close written or counted: {lines:?}"
    );
    assert!(
        lines.len() < 30,
        "{} lines for {bad_clients} closes",
        lines.len()
    );
    let line = &lines[0];
    assert_eq!(line["level"], "WARN");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown API key 9999")),
        "{line}"
    );
    assert!(
        line["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{line}"
    );
    assert!(closed(&server.log()).len() < server.log().lines().count());
}

#[test]
fn a_client_that_never_reads_shows_in_the_shard_budget_and_paused_reading() {
    let server = Server::start(&[
        "--shards",
        "1",
        "--connection-memory-bytes",
        "1MiB",
        "--shard-memory-bytes",
        "256MiB",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let mut producer = server.client();
    create_topic(&mut producer, "unread", 1);
    let mut record = records(0, 1, None);
    record[0].value = Some(vec![1u8; 100 << 10].into());
    for _ in 0..16 {
        let batch = encode_batch(&record, Compression::None);
        assert_eq!(produce(&mut producer, "unread", 0, batch).0, 0);
    }
    let idle = scrape(&server);
    assert_eq!(
        sample(&idle, "tidegate_shard_memory_used_bytes{shard=\"0\"}"),
        0.0
    );
    assert_eq!(
        sample(&idle, "tidegate_shard_memory_limit_bytes{shard=\"0\"}"),
        f64::from(256 << 20)
    );
    // 64 pipelined Fetches of 1.6 MiB each, never read: the answers fill the connection's
    // budget, and then its reading pauses for as long as the client does not read.
    let mut reader = server.client();
    reader.send_raw(&pipelined_fetches("unread", 64));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let paused = "tidegate_reading_paused_seconds_total{shard=\"0\"}";
    let held = loop {
        let samples = scrape(&server);
        let used = sample(&samples, "tidegate_shard_memory_used_bytes{shard=\"0\"}");
        if sample(&samples, paused) >= 0.2 {
            break used;
        }
        assert!(std::time::Instant::now() < deadline, "reading never paused");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        held >= f64::from(1 << 20),
        "{held} bytes held by unread answers"
    );
    drop(reader);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sample(
        &scrape(&server),
        "tidegate_shard_memory_used_bytes{shard=\"0\"}",
    ) > 0.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "budget not given back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
