//! Topic configs as a Kafka user relies on them, on both backends: `max.message.bytes`
//! (per topic, and the broker-wide `--message-max-bytes`) refuses a larger batch with
//! MESSAGE_TOO_LARGE and stores nothing of it; configs tidegate cannot honour or does not
//! know are refused with INVALID_CONFIG; on SMQ the configs survive a restart and every
//! shard sees them. `message.timestamp.type=LogAppendTime` gives every record the time the
//! gateway appended it; on memory, `retention.ms` and `retention.bytes` drop old batches.
//!
//! The SMQ half needs `TIDEGATE_SEAWEEDFS=DIR` (`scripts/test` provides one).

use crate::common::*;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DescribeConfigsRequest, ListOffsetsRequest, ProduceResponse,
};
use kafka_protocol::records::{Compression, Record, TimestampType};
use kafka_protocol::ResponseError;
use std::time::{Duration, Instant};
use uuid::Uuid;

const TOPIC_LIMIT: usize = 51_200;
const BROKER_LIMIT: usize = 100_000;

fn args(extra: &[&str]) -> Vec<String> {
    let limit = BROKER_LIMIT.to_string();
    ["--shards", "2", "--message-max-bytes", &limit]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

fn start(extra: &[&str]) -> Server {
    let args = args(extra);
    Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Creates a topic with these configs; the error code of the answer.
fn create(client: &mut Client, name: &str, configs: &[(&str, &str)]) -> i16 {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(k.to_string().into())
                .with_value(Some(v.to_string().into()))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(2)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(30_000);
    client.call(&request, 7).topics[0].error_code
}

/// One record whose value is `size` bytes of noise that does not compress.
fn batch_of(size: usize) -> Bytes {
    let mut value = Vec::with_capacity(size);
    let mut x: u32 = 0x9e37_79b9;
    while value.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        value.push(x as u8);
    }
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    encode_batch(&[record], Compression::Zstd)
}

fn produce_to(server: &Server, topic: &str, batch: Bytes) -> (i16, i64) {
    // Partition 0 through every broker port: each shard must apply the topic's limit.
    let mut answers = Vec::new();
    for broker in &server.brokers {
        let mut client = Client::connect(*broker);
        // Retried like a client retries (retry.backoff.ms): right after a tidegate restart
        // SMQ may still be unloading the partition its predecessor published to.
        let deadline = Instant::now() + Duration::from_secs(20);
        let answer = loop {
            let response: ProduceResponse = client.call(
                &produce_request(topic, 0, batch.clone(), -1),
                PRODUCE_VERSION,
            );
            let partition = &response.responses[0].partition_responses[0];
            let retriable = ResponseError::try_from_code(partition.error_code)
                .is_some_and(|e| e.is_retriable());
            if !retriable || Instant::now() > deadline {
                break (partition.error_code, partition.base_offset);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        answers.push(answer);
    }
    assert!(
        answers.windows(2).all(|w| w[0].0 == w[1].0),
        "shards disagree: {answers:?}"
    );
    answers[0]
}

/// The offset ListOffsets gives for partition 0 (-2 earliest, -1 latest); no error.
fn offset_of(client: &mut Client, topic: &str, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)])]);
    let response = client.call(&request, 7);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.offset
}

fn described(client: &mut Client, topic: &str) -> Vec<(String, String, i8)> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(topic.to_string().into())]);
    let response = client.call(&request, 4);
    assert_eq!(response.results[0].error_code, 0);
    response.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_deref().unwrap_or_default().to_string();
            (c.name.to_string(), value, c.config_source)
        })
        .collect()
}

const TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
const INVALID_CONFIG: i16 = ResponseError::InvalidConfig.code();

/// What a user checks of max.message.bytes, on a server that is already running.
fn limits_hold(server: &Server, limited: &str, unlimited: &str) {
    let mut client = server.client();
    // Under the topic's limit: stored. Over it: refused, nothing stored.
    let (error, _) = produce_to(server, limited, batch_of(TOPIC_LIMIT - 1_000));
    assert_eq!(error, 0, "a batch under the topic's limit");
    let before = offset_of(&mut client, limited, -1);
    let (error, offset) = produce_to(server, limited, batch_of(TOPIC_LIMIT + 1_000));
    assert_eq!((error, offset), (TOO_LARGE, -1), "over the topic's limit");
    assert_eq!(
        offset_of(&mut client, limited, -1),
        before,
        "nothing stored"
    );
    // A topic without its own limit has the broker-wide one.
    let (error, _) = produce_to(server, unlimited, batch_of(TOPIC_LIMIT + 1_000));
    assert_eq!(
        error, 0,
        "over the topic limit of another topic, under the broker's"
    );
    let (error, _) = produce_to(server, unlimited, batch_of(BROKER_LIMIT + 1_000));
    assert_eq!(error, TOO_LARGE, "over --message-max-bytes");

    let configs = described(&mut client, limited);
    let limit = TOPIC_LIMIT.to_string();
    assert!(
        configs.contains(&("max.message.bytes".into(), limit, 1)),
        "{configs:?}"
    );
    // The broker's --message-max-bytes, as Kafka reports a server.properties setting.
    let configs = described(&mut client, unlimited);
    let limit = BROKER_LIMIT.to_string();
    const STATIC_BROKER_CONFIG: i8 = 4;
    assert!(
        configs.contains(&("max.message.bytes".into(), limit, STATIC_BROKER_CONFIG)),
        "{configs:?}"
    );
}

fn refused_configs(server: &Server, tag: &str) {
    let mut client = server.client();
    for (i, (name, value)) in [
        ("cleanup.policy", "compact"),
        ("cleanup.policy", "compact,delete"),
        ("max.message.bytes", "lots"),
        ("retention.ms", "-7"),
        ("no.such.config", "1"),
    ]
    .into_iter()
    .enumerate()
    {
        let topic = format!("{tag}-refused-{i}");
        let error = create(&mut client, &topic, &[(name, value)]);
        assert_eq!(error, INVALID_CONFIG, "{name}={value}");
        let error = create(&mut client, &topic, &[]);
        assert_eq!(error, 0, "{topic} was not created by the refused request");
    }
}

/// A consumer's view of a partition from offset 0: (offset, timestamp) of every record, the
/// timestamp as the Java client reads it (a LogAppendTime batch's time is its records').
fn timestamps(client: &mut Client, topic: &str) -> Vec<(i64, i64)> {
    let response: kafka_protocol::messages::FetchResponse =
        client.call(&fetch_request(topic, 0, 0, 1000), FETCH_VERSION);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    let bytes = data.records.clone().unwrap_or_default();
    let mut seen = Vec::new();
    for batch in tidegate::record_batch::split_stored_batches(&bytes).expect("whole batches") {
        let mut raw = batch.bytes.clone();
        let decoded =
            kafka_protocol::records::RecordBatchDecoder::decode(&mut raw).expect("decodes");
        for record in decoded.records {
            let timestamp = match batch.header.is_log_append_time() {
                true => batch.header.max_timestamp,
                false => record.timestamp,
            };
            seen.push((record.offset, timestamp));
        }
    }
    seen
}

/// LogAppendTime: the produce answer says when the batch was appended, and a consumer reads
/// that time as every record's timestamp, whatever the producer stamped (2023 here).
fn log_append_time_holds(server: &Server, topic: &str) {
    let mut client = server.client();
    let before = tidegate::unix_time().as_millis() as i64;
    let batch = encode_batch(&records(0, 3, None), Compression::Lz4);
    let response: ProduceResponse =
        client.call(&produce_request(topic, 0, batch, -1), PRODUCE_VERSION);
    let after = tidegate::unix_time().as_millis() as i64;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 0);
    let appended_at = answer.log_append_time_ms;
    assert!(
        (before..=after).contains(&appended_at),
        "log_append_time_ms {appended_at} not within {before}..={after}"
    );
    let base = answer.base_offset;
    let want: Vec<(i64, i64)> = (base..base + 3).map(|o| (o, appended_at)).collect();
    assert_eq!(timestamps(&mut client, topic), want);
}

#[test]
fn retention_on_memory_drops_old_and_excess_batches() {
    // One shard: one retention pass covers every partition.
    let server = Server::start(&["--shards", "1", "--log-retention-check-interval-ms", "100"]);
    let mut client = server.client();
    assert_eq!(create(&mut client, "aged", &[("retention.ms", "60000")]), 0);
    assert_eq!(create(&mut client, "kept", &[("retention.ms", "-1")]), 0);
    let batch = batch_of(1_000);
    assert_eq!(
        create(
            &mut client,
            "sized",
            &[("retention.bytes", &(batch.len() * 2).to_string())]
        ),
        0
    );
    // Records stamped in 2023: older than a minute, within no limit of "kept".
    for topic in ["aged", "kept"] {
        for _ in 0..2 {
            let (error, _) = produce(
                &mut client,
                topic,
                0,
                encode_batch(&records(0, 3, None), Compression::None),
            );
            assert_eq!(error, 0);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while offset_of(&mut client, "aged", -2) != 6 {
        assert!(
            Instant::now() < deadline,
            "retention.ms never dropped the old batches"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(offset_of(&mut client, "aged", -1), 6, "the log end stays");
    assert_eq!(
        offset_of(&mut client, "kept", -2),
        0,
        "retention.ms=-1 keeps everything"
    );
    let (error, offset) = produce(
        &mut client,
        "aged",
        0,
        encode_batch(&records(0, 1, None), Compression::None),
    );
    assert_eq!((error, offset), (0, 6), "appends go on after the log end");

    for _ in 0..4 {
        assert_eq!(produce(&mut client, "sized", 0, batch.clone()).0, 0);
    }
    assert_eq!(
        offset_of(&mut client, "sized", -2),
        2,
        "two batches fit in retention.bytes"
    );
}

#[test]
fn topic_configs_on_memory() {
    let server = start(&[]);
    let mut client = server.client();
    let limit = TOPIC_LIMIT.to_string();
    assert_eq!(
        create(&mut client, "limited", &[("max.message.bytes", &limit)]),
        0
    );
    assert_eq!(
        create(&mut client, "unlimited", &[("retention.ms", "3600000")]),
        0
    );
    limits_hold(&server, "limited", "unlimited");
    refused_configs(&server, "memory");
    let stamped = [("message.timestamp.type", "LogAppendTime")];
    assert_eq!(create(&mut client, "stamped", &stamped), 0);
    log_append_time_holds(&server, "stamped");
}

#[test]
fn topic_configs_on_smq_survive_a_restart() {
    let Some(ports) = seaweedfs() else { return };
    let tag = format!("cfg-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let smq = ["--backend", "smq", "--smq-master", &ports["MASTER"]];
    let (limited, unlimited) = (format!("{tag}-limited"), format!("{tag}-unlimited"));
    {
        let server = start(&smq);
        let mut client = server.client();
        let limit = TOPIC_LIMIT.to_string();
        assert_eq!(
            create(&mut client, &limited, &[("max.message.bytes", &limit)]),
            0
        );
        assert_eq!(create(&mut client, &unlimited, &[]), 0);
        limits_hold(&server, &limited, &unlimited);
        refused_configs(&server, &tag);
        let stamped = format!("{tag}-stamped");
        let configs = [("message.timestamp.type", "LogAppendTime")];
        assert_eq!(create(&mut client, &stamped, &configs), 0);
        log_append_time_holds(&server, &stamped);
    }
    // A new process knows the topics only from SeaweedFS.
    let server = start(&smq);
    limits_hold(&server, &limited, &unlimited);
}
