//! Every API at every version tidegate advertises, on both backends.
//!
//! The list of APIs and versions is taken from tidegate's own ApiVersions answer, so a
//! handler added later is walked too (and fails here until it has a scenario). For each
//! version a scenario sends requests with the fields that version has, down the paths that
//! fill the interesting parts of the answer (data found, errors, a static member's return),
//! and checks the answer decodes at that version and says what a client would check.
//!
//! The class of bug this guards: an answer with a field set that the negotiated version does
//! not have cannot be encoded, and tidegate closes the connection (seen: ListOffsets v1-v3
//! with `leader_epoch`, JoinGroup below v9 with `skip_assignment` — what Debian's librdkafka
//! sends).
//!
//! The SMQ half needs `TIDEGATE_SEAWEEDFS=DIR` (`scripts/test` provides one); without it
//! the test says so and runs on memory only.

use crate::common::*;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as CghTopic;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use uuid::Uuid;

type Check = Result<(), String>;

/// `ensure!(condition, "what a client would have seen", args…)`
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// Records produced into partition 0 of the shared topic before the scenarios run.
const RECORDS: i32 = 5;
const UNKNOWN_PARTITION: i32 = 99;
const TIMESTAMP_BASE: i64 = 1_700_000_000_000;

fn code(error: ResponseError) -> i16 {
    error.code()
}

#[test]
fn every_advertised_version_of_every_api_answers() {
    let mut failures = Vec::new();
    failures.extend(walk("memory", Server::start(&server_args(&[]))));
    if let Some(ports) = seaweedfs() {
        let args = server_args(&["--backend", "smq", "--smq-master", &ports["MASTER"]]);
        failures.extend(walk("smq", Server::start(&args)));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn server_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    // Joins complete at once: the walk joins groups at every version.
    let mut args = vec!["--shards", "2", "--group-initial-rebalance-delay-ms", "0"];
    args.extend_from_slice(extra);
    args
}

/// What every scenario shares: the server, and a topic with records in partition 0.
struct Env {
    backend: &'static str,
    server: Server,
    /// Makes names unique per run: SeaweedFS keeps topics (they cannot be deleted there).
    tag: String,
    topic: String,
    topic_id: Uuid,
}

impl Env {
    fn smq(&self) -> bool {
        self.backend == "smq"
    }

    /// What an operation SMQ cannot do answers: done (0) on memory, `refusal` on SMQ.
    fn done_unless_smq(&self, refusal: ResponseError) -> i16 {
        match self.smq() {
            true => code(refusal),
            false => 0,
        }
    }

    fn name(&self, what: &str, version: i16) -> String {
        format!("{}-{what}-v{version}", self.tag)
    }

    fn bootstrap(&self) -> SocketAddr {
        self.server.bootstrap
    }

    fn is_broker(&self, node_id: i32, host: &str, port: i32) -> bool {
        self.server.brokers.iter().enumerate().any(|(shard, b)| {
            node_id == shard as i32 && host == b.ip().to_string() && port == i32::from(b.port())
        })
    }

    /// The broker that coordinates `group` (asked at a fixed version).
    fn coordinator(&self, group: &str) -> Result<SocketAddr, String> {
        let request = FindCoordinatorRequest::default().with_key(group.to_string().into());
        let found = call(self.bootstrap(), &request, 3)?;
        ensure!(
            found.error_code == 0,
            "FindCoordinator: {}",
            found.error_code
        );
        self.server
            .brokers
            .iter()
            .copied()
            .find(|b| i32::from(b.port()) == found.port)
            .ok_or_else(|| format!("coordinator port {} is not advertised", found.port))
    }
}

fn walk(backend: &'static str, server: Server) -> Vec<String> {
    let tag = format!("ev{}", Uuid::new_v4().simple().to_string().split_at(8).0);
    let topic = format!("{tag}-shared");
    let mut client = server.client();
    create_topic(&mut client, &topic, 2);
    let batch = encode_batch(&records(0, RECORDS, None), Compression::None);
    let (error, base) = produce(&mut client, &topic, 0, batch);
    assert_eq!((error, base), (0, 0), "{backend}: first produce");
    let metadata = client.call(
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(&topic)))
        ])),
        12,
    );
    let env = Env {
        backend,
        topic_id: metadata.topics[0].topic_id,
        server,
        tag,
        topic,
    };

    let advertised = client.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(advertised.error_code, 0);
    let mut failures = Vec::new();
    for api in &advertised.api_keys {
        let Ok(key) = ApiKey::try_from(api.api_key) else {
            failures.push(format!("{backend}: advertises unknown key {}", api.api_key));
            continue;
        };
        let Some(scenario) = scenario(key) else {
            failures.push(format!(
                "{backend}: {key:?} is advertised but this test has no scenario for it"
            ));
            continue;
        };
        for version in api.min_version..=api.max_version {
            if let Err(why) = scenario(&env, version) {
                failures.push(format!("{backend}: {key:?} v{version}: {why}"));
            }
        }
    }
    failures
}

type Scenario = fn(&Env, i16) -> Check;

fn scenario(key: ApiKey) -> Option<Scenario> {
    Some(match key {
        ApiKey::Produce => produce_scenario,
        ApiKey::Fetch => fetch_scenario,
        ApiKey::ListOffsets => list_offsets,
        ApiKey::Metadata => metadata,
        ApiKey::ApiVersions => api_versions,
        ApiKey::CreateTopics => create_topics,
        ApiKey::DeleteTopics => delete_topics,
        ApiKey::InitProducerId => init_producer_id,
        ApiKey::DescribeConfigs => describe_configs,
        ApiKey::CreatePartitions => create_partitions,
        ApiKey::DescribeCluster => describe_cluster,
        ApiKey::FindCoordinator => find_coordinator,
        ApiKey::JoinGroup => join_group,
        ApiKey::SyncGroup => sync_group,
        ApiKey::Heartbeat => heartbeat,
        ApiKey::LeaveGroup => leave_group,
        ApiKey::OffsetCommit => offset_commit,
        ApiKey::OffsetFetch => offset_fetch,
        ApiKey::DescribeGroups => describe_groups,
        ApiKey::ListGroups => list_groups,
        ApiKey::DeleteGroups => delete_groups,
        ApiKey::OffsetDelete => offset_delete,
        ApiKey::ConsumerGroupHeartbeat => consumer_group_heartbeat,
        ApiKey::ElectLeaders => elect_leaders,
        ApiKey::ListPartitionReassignments => list_partition_reassignments,
        ApiKey::AlterPartitionReassignments => alter_partition_reassignments,
        ApiKey::DeleteRecords => delete_records,
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch,
        ApiKey::AlterConfigs => alter_configs,
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs,
        ApiKey::DescribeLogDirs => describe_log_dirs,
        ApiKey::DescribeProducers => describe_producers,
        ApiKey::DescribeQuorum => describe_quorum,
        ApiKey::ConsumerGroupDescribe => consumer_group_describe,
        ApiKey::ListConfigResources => list_config_resources,
        ApiKey::DescribeTopicPartitions => describe_topic_partitions,
        ApiKey::CreateAcls => create_acls,
        ApiKey::DescribeAcls => describe_acls,
        ApiKey::DeleteAcls => delete_acls,
        ApiKey::DescribeClientQuotas => describe_client_quotas,
        ApiKey::DescribeUserScramCredentials => describe_user_scram_credentials,
        ApiKey::AlterUserScramCredentials => alter_user_scram_credentials,
        ApiKey::SaslHandshake => sasl_handshake,
        ApiKey::SaslAuthenticate => sasl_authenticate,
        _ => return None,
    })
}

/// One request on a connection of its own, answered at `version`. An answer tidegate could
/// not encode shows up as the connection closing.
fn call<R: Request>(to: SocketAddr, request: &R, version: i16) -> Result<R::Response, String> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some("tidegate-every-version".into()))
        .encode(&mut body, R::header_version(version))
        .map_err(|e| format!("test bug, request header: {e}"))?;
    request
        .encode(&mut body, version)
        .map_err(|e| format!("test bug, request does not encode: {e}"))?;
    let mut stream = TcpStream::connect(to).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).map_err(|e| format!("send: {e}"))?;
    let mut length = [0u8; 4];
    stream
        .read_exact(&mut length)
        .map_err(|e| format!("no answer, the connection ended ({e})"))?;
    let mut answer = vec![0u8; i32::from_be_bytes(length) as usize];
    stream
        .read_exact(&mut answer)
        .map_err(|e| format!("answer cut short ({e})"))?;
    let mut answer = Bytes::from(answer);
    let header = ResponseHeader::decode(&mut answer, R::Response::header_version(version))
        .map_err(|e| format!("response header does not decode: {e}"))?;
    ensure!(
        header.correlation_id == 7,
        "correlation id {}",
        header.correlation_id
    );
    let response = R::Response::decode(&mut answer, version)
        .map_err(|e| format!("response does not decode: {e}"))?;
    ensure!(
        answer.is_empty(),
        "{} bytes after the response",
        answer.len()
    );
    Ok(response)
}

fn str(text: &str) -> StrBytes {
    text.to_string().into()
}

fn group_id(name: &str) -> GroupId {
    GroupId(str(name))
}

// ---------------------------------------------------------------------------------------
// Partitions: produce, fetch, list offsets, metadata.

fn produce_scenario(env: &Env, version: i16) -> Check {
    let batch = |count| encode_batch(&records(1, count, None), Compression::Zstd);
    let topic = TopicProduceData::default().with_partition_data(vec![
        PartitionProduceData::default()
            .with_index(1)
            .with_records(Some(batch(3))),
        PartitionProduceData::default()
            .with_index(UNKNOWN_PARTITION)
            .with_records(Some(batch(1))),
    ]);
    let topic = match version {
        13.. => topic.with_topic_id(env.topic_id),
        _ => topic.with_name(topic_name(&env.topic)),
    };
    let request = ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.responses.len() == 1,
        "{} topics",
        response.responses.len()
    );
    let answered = &response.responses[0];
    match version {
        13.. => ensure!(
            answered.topic_id == env.topic_id,
            "topic id {}",
            answered.topic_id
        ),
        _ => ensure!(
            answered.name.as_str() == env.topic,
            "topic {:?}",
            answered.name
        ),
    }
    let [stored, unknown] = &answered.partition_responses[..] else {
        return Err(format!("{} partitions", answered.partition_responses.len()));
    };
    ensure!(
        stored.index == 1 && stored.error_code == 0 && stored.base_offset >= 0,
        "partition 1: error {} at {}",
        stored.error_code,
        stored.base_offset
    );
    ensure!(
        unknown.index == UNKNOWN_PARTITION
            && unknown.error_code == code(ResponseError::UnknownTopicOrPartition),
        "unknown partition: error {}",
        unknown.error_code
    );
    Ok(())
}

fn fetch_scenario(env: &Env, version: i16) -> Check {
    let partition = |index, offset| {
        FetchPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(if version >= 9 { 0 } else { -1 })
            .with_fetch_offset(offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(if version >= 5 { 0 } else { -1 })
            .with_partition_max_bytes(1 << 20)
    };
    let topic = FetchTopic::default()
        .with_partitions(vec![partition(0, 0), partition(UNKNOWN_PARTITION, 0)]);
    let topic = match version {
        13.. => topic.with_topic_id(env.topic_id),
        _ => topic.with_topic(topic_name(&env.topic)),
    };
    let mut request = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(0)
        .with_topics(vec![topic]);
    if version < 15 {
        request = request.with_replica_id(BrokerId(-1));
    }
    if version >= 7 {
        request = request.with_session_id(0).with_session_epoch(-1);
    }
    if version >= 11 {
        request = request.with_rack_id(str("rack-a"));
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let [topic] = &response.responses[..] else {
        return Err(format!("{} topics", response.responses.len()));
    };
    let [data, unknown] = &topic.partitions[..] else {
        return Err(format!("{} partitions", topic.partitions.len()));
    };
    ensure!(
        data.error_code == 0,
        "partition 0: error {}",
        data.error_code
    );
    ensure!(
        data.high_watermark >= i64::from(RECORDS),
        "high watermark {}",
        data.high_watermark
    );
    let mut bytes = data.records.clone().unwrap_or_default();
    let fetched: Vec<_> = RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| format!("records do not decode: {e}"))?
        .into_iter()
        .flat_map(|set| set.records)
        .collect();
    let want = visible(&records(0, RECORDS, None));
    ensure!(
        visible(&fetched) == want,
        "records differ: {:?}",
        visible(&fetched)
    );
    ensure!(
        unknown.error_code == code(ResponseError::UnknownTopicOrPartition),
        "unknown partition: error {}",
        unknown.error_code
    );
    Ok(())
}

fn list_offsets(env: &Env, version: i16) -> Check {
    const LATEST: i64 = -1;
    const EARLIEST: i64 = -2;
    const MAX_TIMESTAMP: i64 = -3;
    let query = |index, timestamp| {
        ListOffsetsPartition::default()
            .with_partition_index(index)
            .with_current_leader_epoch(if version >= 4 { 0 } else { -1 })
            .with_timestamp(timestamp)
    };
    let ask = |partitions| {
        let mut request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(&env.topic))
                .with_partitions(partitions)]);
        if version >= 2 {
            request = request.with_isolation_level(1);
        }
        if version >= 10 {
            request = request.with_timeout_ms(5_000);
        }
        let response = call(env.bootstrap(), &request, version)?;
        ensure!(
            response.topics.len() == 1,
            "{} topics",
            response.topics.len()
        );
        let found = response.topics[0].partitions.clone();
        for partition in &found {
            let want = if version >= 4 && partition.error_code == 0 {
                0
            } else {
                -1
            };
            ensure!(
                partition.leader_epoch == want,
                "partition {}: leader epoch {}",
                partition.partition_index,
                partition.leader_epoch
            );
        }
        Ok(found)
    };
    let found = ask(vec![
        query(0, LATEST),
        query(1, EARLIEST),
        query(UNKNOWN_PARTITION, LATEST),
    ])?;
    let offsets: Vec<_> = found.iter().map(|p| (p.error_code, p.offset)).collect();
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    ensure!(
        offsets == [(0, i64::from(RECORDS)), (0, 0), (unknown, -1)],
        "latest, earliest, unknown: {offsets:?}"
    );
    // The second record's timestamp finds the second record.
    let found = ask(vec![query(0, TIMESTAMP_BASE + 1)])?;
    ensure!(
        (found[0].error_code, found[0].offset) == (0, 1),
        "by timestamp: {:?}",
        (found[0].error_code, found[0].offset)
    );
    if version >= 4 {
        // A current leader epoch newer than the partition's is one this leader does not know.
        let newer = ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_current_leader_epoch(1)
            .with_timestamp(LATEST);
        let found = ask(vec![newer])?;
        let got = (found[0].error_code, found[0].offset);
        let want = (code(ResponseError::UnknownLeaderEpoch), -1);
        ensure!(got == want, "current leader epoch 1: {got:?}");
    }
    if version >= 7 {
        let found = ask(vec![query(0, MAX_TIMESTAMP)])?;
        let want = (
            0,
            i64::from(RECORDS) - 1,
            TIMESTAMP_BASE + i64::from(RECORDS) - 1,
        );
        let got = (found[0].error_code, found[0].offset, found[0].timestamp);
        ensure!(got == want, "max timestamp: {got:?}");
    }
    Ok(())
}

fn metadata(env: &Env, version: i16) -> Check {
    let missing = env.name("never-created", version);
    let mut wanted = vec![MetadataRequestTopic::default().with_name(Some(topic_name(&env.topic)))];
    // Below v4 asking for a topic creates it.
    if version >= 4 {
        wanted.push(MetadataRequestTopic::default().with_name(Some(topic_name(&missing))));
    }
    let mut request = MetadataRequest::default().with_topics(Some(wanted));
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(false);
    }
    if (8..=10).contains(&version) {
        request = request.with_include_cluster_authorized_operations(true);
    }
    if version >= 8 {
        request = request.with_include_topic_authorized_operations(true);
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.brokers.len() == env.server.brokers.len(),
        "{} brokers",
        response.brokers.len()
    );
    for broker in &response.brokers {
        ensure!(
            env.is_broker(broker.node_id.0, &broker.host, broker.port),
            "broker {broker:?} is not an advertised shard"
        );
    }
    let topic = &response.topics[0];
    ensure!(topic.error_code == 0, "topic: error {}", topic.error_code);
    ensure!(
        topic.partitions.len() == 2,
        "{} partitions",
        topic.partitions.len()
    );
    if version >= 10 {
        ensure!(
            topic.topic_id == env.topic_id,
            "topic id {}",
            topic.topic_id
        );
    }
    if version >= 8 {
        ensure!(
            allows(topic.topic_authorized_operations, &[READ, WRITE, DESCRIBE]),
            "topic authorized operations {:#x}",
            topic.topic_authorized_operations
        );
    }
    if (8..=10).contains(&version) {
        ensure!(
            allows(response.cluster_authorized_operations, &[DESCRIBE, CREATE]),
            "cluster authorized operations {:#x}",
            response.cluster_authorized_operations
        );
    }
    for partition in &topic.partitions {
        ensure!(
            partition.error_code == 0 && (0..2).contains(&partition.leader_id.0),
            "partition {}: error {}, leader {}",
            partition.partition_index,
            partition.error_code,
            partition.leader_id.0
        );
    }
    if version >= 4 {
        ensure!(
            response.topics[1].error_code == code(ResponseError::UnknownTopicOrPartition),
            "missing topic: error {}",
            response.topics[1].error_code
        );
    }
    if version >= 1 {
        // A null topic list asks for every topic.
        let all = call(
            env.bootstrap(),
            &MetadataRequest::default().with_topics(None),
            version,
        )?;
        ensure!(
            all.topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| n.as_str() == env.topic)),
            "all topics: {} listed, ours not among them",
            all.topics.len()
        );
    }
    Ok(())
}

// AclOperation codes, for the authorized-operations bit sets.
const READ: i32 = 3;
const WRITE: i32 = 4;
const CREATE: i32 = 5;
const DESCRIBE: i32 = 8;

/// An authorized-operations field that was filled in and allows `operations`. Only the
/// operation codes are bits: kafka-python 2.3 fails on the "not provided" value's bit 31.
fn allows(bits: i32, operations: &[i32]) -> bool {
    bits != i32::MIN && bits >= 0 && operations.iter().all(|op| bits & (1 << op) != 0)
}

fn api_versions(env: &Env, version: i16) -> Check {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request = request
            .with_client_software_name(str("tidegate-every-version"))
            .with_client_software_version(str("1.0"));
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16);
    ensure!(produce.is_some(), "Produce is not listed");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Topics and producers.

fn create_topics(env: &Env, version: i16) -> Check {
    let created = env.name("created", version);
    let topic = |name: &str, partitions| {
        CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(str("retention.ms"))
                .with_value(Some(str("3600000")))])
    };
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            topic(&created, 3),
            topic(&env.topic, 2),
            topic("not a name!", 1),
        ])
        .with_timeout_ms(30_000);
    let response = call(env.bootstrap(), &request, version)?;
    let codes: Vec<_> = response.topics.iter().map(|t| t.error_code).collect();
    let want = [
        0,
        code(ResponseError::TopicAlreadyExists),
        code(ResponseError::InvalidTopicException),
    ];
    ensure!(codes == want, "created, existing, invalid: {codes:?}");
    if version >= 5 {
        let answered = &response.topics[0];
        ensure!(
            answered.num_partitions == 3 && answered.replication_factor == 1,
            "created: {} partitions, replication {}",
            answered.num_partitions,
            answered.replication_factor
        );
        ensure!(
            answered
                .configs
                .as_ref()
                .is_some_and(|c| c
                    .iter()
                    .any(|c| c.name.as_str() == "retention.ms"
                        && c.value.as_deref() == Some("3600000"))),
            "created: configs {:?}",
            answered.configs
        );
    }
    if version >= 7 {
        ensure!(
            !response.topics[0].topic_id.is_nil(),
            "created: no topic id"
        );
    }
    // validate_only checks and creates nothing.
    let checked = env.name("validated", version);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic(&checked, 1)])
        .with_timeout_ms(30_000)
        .with_validate_only(true);
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.topics[0].error_code == 0,
        "validate_only: error {}",
        response.topics[0].error_code
    );
    let exists = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(&checked)))
        ]))
        .with_allow_auto_topic_creation(false);
    let found = call(env.bootstrap(), &exists, 12)?;
    ensure!(
        found.topics[0].error_code != 0,
        "validate_only created {checked}"
    );
    Ok(())
}

fn delete_topics(env: &Env, version: i16) -> Check {
    let doomed = env.name("doomed", version);
    let missing = env.name("never-created", version);
    let mut client = Client::connect(env.bootstrap());
    create_topic(&mut client, &doomed, 1);
    let mut request = DeleteTopicsRequest::default().with_timeout_ms(30_000);
    request = match version {
        6.. => request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(&doomed))),
            DeleteTopicState::default().with_name(Some(topic_name(&missing))),
        ]),
        _ => request.with_topic_names(vec![topic_name(&doomed), topic_name(&missing)]),
    };
    let response = call(env.bootstrap(), &request, version)?;
    let codes: Vec<_> = response.responses.iter().map(|r| r.error_code).collect();
    let deleted = env.done_unless_smq(ResponseError::TopicDeletionDisabled);
    let want = [deleted, code(ResponseError::UnknownTopicOrPartition)];
    ensure!(codes == want, "doomed, missing: {codes:?}");
    Ok(())
}

fn init_producer_id(env: &Env, version: i16) -> Check {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let request = match version {
        3.. => request
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        _ => request,
    };
    let first = call(env.bootstrap(), &request, version)?;
    ensure!(
        first.error_code == 0 && first.producer_id.0 >= 0 && first.producer_epoch == 0,
        "error {}, id {}, epoch {}",
        first.error_code,
        first.producer_id.0,
        first.producer_epoch
    );
    if version >= 3 {
        // KIP-360: the producer asks again with its id and epoch and gets the next epoch.
        let again = request
            .clone()
            .with_producer_id(first.producer_id)
            .with_producer_epoch(first.producer_epoch);
        let bumped = call(env.bootstrap(), &again, version)?;
        ensure!(
            (bumped.error_code, bumped.producer_id, bumped.producer_epoch)
                == (0, first.producer_id, 1),
            "bump: error {}, id {}, epoch {}",
            bumped.error_code,
            bumped.producer_id.0,
            bumped.producer_epoch
        );
    }
    let transactional = request.with_transactional_id(Some(TransactionalId(str("tx"))));
    let refused = call(env.bootstrap(), &transactional, version)?;
    ensure!(refused.error_code != 0, "a transactional id was accepted");
    Ok(())
}

fn describe_configs(env: &Env, version: i16) -> Check {
    const TOPIC: i8 = 2;
    const BROKER: i8 = 4;
    let resource = |kind, name: &str| {
        DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str(name))
    };
    let mut request = DescribeConfigsRequest::default()
        .with_resources(vec![
            resource(TOPIC, &env.topic),
            resource(BROKER, "0"),
            resource(TOPIC, &env.name("never-created", version)),
        ])
        .with_include_synonyms(true);
    if version >= 3 {
        request = request.with_include_documentation(true);
    }
    let response = call(env.bootstrap(), &request, version)?;
    let [topic, broker, missing] = &response.results[..] else {
        return Err(format!("{} results", response.results.len()));
    };
    ensure!(topic.error_code == 0, "topic: error {}", topic.error_code);
    let retention = topic
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms");
    let Some(retention) = retention else {
        return Err(format!(
            "topic: no retention.ms among {} configs",
            topic.configs.len()
        ));
    };
    // A default, alterable, with its broker-level synonym; typed and documented from v3.
    const DEFAULT_CONFIG: i8 = 5;
    const LONG: i8 = 5;
    ensure!(
        retention.value.as_deref() == Some("604800000")
            && !retention.read_only
            && retention.config_source == DEFAULT_CONFIG
            && retention
                .synonyms
                .iter()
                .any(|s| s.name.as_str() == "log.retention.ms"),
        "retention.ms: {retention:?}"
    );
    if version >= 3 {
        ensure!(
            retention.config_type == LONG && retention.documentation.is_some(),
            "retention.ms type {} documentation {:?}",
            retention.config_type,
            retention.documentation
        );
    }
    ensure!(
        broker.error_code == 0,
        "broker: error {}",
        broker.error_code
    );
    for name in [
        "advertised.listeners",
        "log.retention.ms",
        "message.max.bytes",
    ] {
        let found = broker.configs.iter().find(|c| c.name.as_str() == name);
        ensure!(
            found.is_some_and(|c| c.read_only && c.value.is_some()),
            "broker config {name}: {found:?}"
        );
    }
    ensure!(
        missing.error_code == code(ResponseError::UnknownTopicOrPartition),
        "missing topic: error {}",
        missing.error_code
    );
    Ok(())
}

fn create_partitions(env: &Env, version: i16) -> Check {
    let grown = env.name("grown", version);
    let mut client = Client::connect(env.bootstrap());
    create_topic(&mut client, &grown, 1);
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(topic_name(&grown))
                .with_count(2),
            CreatePartitionsTopic::default()
                .with_name(topic_name(&env.name("never-created", version)))
                .with_count(2),
        ])
        .with_timeout_ms(30_000);
    let response = call(env.bootstrap(), &request, version)?;
    let codes: Vec<_> = response.results.iter().map(|r| r.error_code).collect();
    let grew = env.done_unless_smq(ResponseError::InvalidPartitions);
    let want = [grew, code(ResponseError::UnknownTopicOrPartition)];
    ensure!(codes == want, "grown, missing: {codes:?}");
    Ok(())
}

fn describe_cluster(env: &Env, version: i16) -> Check {
    let mut request =
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    if version >= 1 {
        request = request.with_endpoint_type(1);
    }
    if version >= 2 {
        request = request.with_include_fenced_brokers(true);
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    ensure!(!response.cluster_id.is_empty(), "no cluster id");
    ensure!(
        allows(response.cluster_authorized_operations, &[DESCRIBE, CREATE]),
        "cluster authorized operations {:#x}",
        response.cluster_authorized_operations
    );
    ensure!(
        response.brokers.len() == env.server.brokers.len()
            && response
                .brokers
                .iter()
                .all(|b| env.is_broker(b.broker_id.0, &b.host, b.port)),
        "brokers {:?}",
        response.brokers
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Cluster administration a gateway answers truthfully: nothing to elect or move.

fn elect_leaders(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let mut request = ElectLeadersRequest::default()
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(topic_name(&env.topic))
                .with_partitions(vec![0, UNKNOWN_PARTITION]),
            TopicPartitions::default()
                .with_topic(topic_name(&env.name("never-created", version)))
                .with_partitions(vec![0]),
        ]))
        .with_timeout_ms(30_000);
    if version >= 1 {
        request = request.with_election_type(0);
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let codes: Vec<Vec<i16>> = response
        .replica_election_results
        .iter()
        .map(|t| t.partition_result.iter().map(|p| p.error_code).collect())
        .collect();
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    let want = vec![
        vec![code(ResponseError::ElectionNotNeeded), unknown],
        vec![unknown],
    ];
    ensure!(codes == want, "partition codes {codes:?}");
    let all = call(
        env.bootstrap(),
        &request.with_topic_partitions(None),
        version,
    )?;
    ensure!(
        all.error_code == 0 && all.replica_election_results.is_empty(),
        "all partitions: error {}, {} results",
        all.error_code,
        all.replica_election_results.len()
    );
    Ok(())
}

fn list_partition_reassignments(env: &Env, version: i16) -> Check {
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(None);
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.error_code == 0 && response.topics.is_empty(),
        "error {}, {} topics being reassigned",
        response.error_code,
        response.topics.len()
    );
    Ok(())
}

fn alter_partition_reassignments(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    let partition = |index, replicas: Option<Vec<i32>>| {
        ReassignablePartition::default()
            .with_partition_index(index)
            .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
    };
    let mut request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(&env.topic))
            .with_partitions(vec![
                partition(0, Some(vec![1])),
                partition(1, None),
                partition(UNKNOWN_PARTITION, Some(vec![0])),
            ])]);
    if version >= 1 {
        request = request.with_allow_replication_factor_change(true);
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let codes: Vec<i16> = response.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    let want = [
        code(ResponseError::InvalidReplicaAssignment),
        code(ResponseError::NoReassignmentInProgress),
        code(ResponseError::UnknownTopicOrPartition),
    ];
    ensure!(codes == want, "move, cancel, unknown: {codes:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Consumer groups.

fn find_coordinator(env: &Env, version: i16) -> Check {
    let (group, other) = (env.name("fc", version), env.name("fc-other", version));
    let mut request = FindCoordinatorRequest::default();
    if version >= 1 {
        request = request.with_key_type(0);
    }
    let found: Vec<(i16, i32, String, i32)> = match version {
        4.. => {
            let request = request.with_coordinator_keys(vec![str(&group), str(&other)]);
            let response = call(env.bootstrap(), &request, version)?;
            response
                .coordinators
                .iter()
                .map(|c| (c.error_code, c.node_id.0, c.host.to_string(), c.port))
                .collect()
        }
        _ => {
            let response = call(env.bootstrap(), &request.with_key(str(&group)), version)?;
            vec![(
                response.error_code,
                response.node_id.0,
                response.host.to_string(),
                response.port,
            )]
        }
    };
    for (error, node_id, host, port) in &found {
        ensure!(
            *error == 0 && env.is_broker(*node_id, host, *port),
            "error {error}, coordinator {node_id} at {host}:{port}"
        );
    }
    Ok(())
}

/// A member of a classic group, joined and synced.
struct Joined {
    coordinator: SocketAddr,
    group: String,
    member_id: String,
    instance_id: Option<String>,
    generation: i32,
}

const ASSIGNMENT: &[u8] = b"assignment-bytes";

fn join_request(
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    version: i16,
) -> JoinGroupRequest {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_member_id(str(member_id))
        .with_protocol_type(str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(str("range"))
            .with_metadata(Bytes::from_static(b"subscription"))]);
    if version >= 1 {
        request = request.with_rebalance_timeout_ms(30_000);
    }
    if version >= 5 {
        request = request.with_group_instance_id(instance_id.map(str));
    }
    if version >= 8 {
        request = request.with_reason(Some(str("every-version test")));
    }
    request
}

/// Joins `group` as its only member at JoinGroup `version` (v4+ asks for a member id first).
fn join(env: &Env, group: &str, instance_id: Option<&str>, version: i16) -> Result<Joined, String> {
    let coordinator = env.coordinator(group)?;
    let mut response = call(
        coordinator,
        &join_request(group, "", instance_id, version),
        version,
    )?;
    if response.error_code == code(ResponseError::MemberIdRequired) {
        ensure!(
            version >= 4 && instance_id.is_none(),
            "MEMBER_ID_REQUIRED at v{version}"
        );
        let member_id = response.member_id.to_string();
        response = call(
            coordinator,
            &join_request(group, &member_id, instance_id, version),
            version,
        )?;
    }
    ensure!(
        response.error_code == 0,
        "join: error {}",
        response.error_code
    );
    ensure!(
        response.leader == response.member_id && response.members.len() == 1,
        "join: leader {:?}, member {:?}, {} members",
        response.leader,
        response.member_id,
        response.members.len()
    );
    if version >= 7 {
        ensure!(
            response.protocol_type.as_deref() == Some("consumer")
                && response.protocol_name.as_deref() == Some("range"),
            "join: protocol {:?}/{:?}",
            response.protocol_type,
            response.protocol_name
        );
    }
    ensure!(!response.skip_assignment, "skip_assignment on a first join");
    Ok(Joined {
        coordinator,
        group: group.to_string(),
        member_id: response.member_id.to_string(),
        instance_id: instance_id.map(str::to_string),
        generation: response.generation_id,
    })
}

/// SyncGroup as the leader at `version`; returns the assignment handed back.
fn sync(joined: &Joined, version: i16) -> Result<Bytes, String> {
    let mut request = SyncGroupRequest::default()
        .with_group_id(group_id(&joined.group))
        .with_generation_id(joined.generation)
        .with_member_id(str(&joined.member_id))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(str(&joined.member_id))
            .with_assignment(Bytes::from_static(ASSIGNMENT))]);
    if version >= 3 {
        request = request.with_group_instance_id(joined.instance_id.as_deref().map(str));
    }
    if version >= 5 {
        request = request
            .with_protocol_type(Some(str("consumer")))
            .with_protocol_name(Some(str("range")));
    }
    let response = call(joined.coordinator, &request, version)?;
    ensure!(
        response.error_code == 0,
        "sync: error {}",
        response.error_code
    );
    if version >= 5 {
        ensure!(
            response.protocol_type.as_deref() == Some("consumer")
                && response.protocol_name.as_deref() == Some("range"),
            "sync: protocol {:?}/{:?}",
            response.protocol_type,
            response.protocol_name
        );
    }
    Ok(response.assignment)
}

/// A stable group with one member: joined and synced at the newest versions.
fn stable_group(env: &Env, group: &str, instance_id: Option<&str>) -> Result<Joined, String> {
    let joined = join(env, group, instance_id, 9)?;
    let assignment = sync(&joined, 5)?;
    ensure!(assignment == ASSIGNMENT, "assignment {assignment:?}");
    Ok(joined)
}

fn heartbeat_at(joined: &Joined, version: i16) -> Result<i16, String> {
    let mut request = HeartbeatRequest::default()
        .with_group_id(group_id(&joined.group))
        .with_generation_id(joined.generation)
        .with_member_id(str(&joined.member_id));
    if version >= 3 {
        request = request.with_group_instance_id(joined.instance_id.as_deref().map(str));
    }
    Ok(call(joined.coordinator, &request, version)?.error_code)
}

fn join_group(env: &Env, version: i16) -> Check {
    // A dynamic member.
    let joined = join(env, &env.name("join", version), None, version)?;
    ensure!(
        sync(&joined, 5)? == ASSIGNMENT,
        "dynamic member's assignment"
    );
    if version < 5 {
        return Ok(());
    }
    // A static member that comes back with a new member id (a restarted consumer) takes its
    // old place without a rebalance; from v9 the returning leader is told to skip the
    // assignment (KIP-814), below v9 the field does not exist and must not be sent.
    let group = env.name("static", version);
    let first = join(env, &group, Some("instance-a"), version)?;
    ensure!(sync(&first, 5)? == ASSIGNMENT, "static member's assignment");
    let request = join_request(&group, "", Some("instance-a"), version);
    let returned = call(first.coordinator, &request, version)?;
    ensure!(
        returned.error_code == 0,
        "static rejoin: error {}",
        returned.error_code
    );
    ensure!(
        returned.generation_id == first.generation,
        "static rejoin rebalanced: generation {} -> {}",
        first.generation,
        returned.generation_id
    );
    ensure!(
        returned.skip_assignment == (version >= 9),
        "static rejoin: skip_assignment {}",
        returned.skip_assignment
    );
    let again = Joined {
        member_id: returned.member_id.to_string(),
        ..first
    };
    ensure!(
        sync(&again, 5)? == ASSIGNMENT,
        "static member's assignment after rejoin"
    );
    ensure!(
        heartbeat_at(&again, 4)? == 0,
        "heartbeat after the static rejoin"
    );
    Ok(())
}

fn sync_group(env: &Env, version: i16) -> Check {
    let joined = join(env, &env.name("sync", version), None, 9)?;
    let assignment = sync(&joined, version)?;
    ensure!(assignment == ASSIGNMENT, "assignment {assignment:?}");
    Ok(())
}

fn heartbeat(env: &Env, version: i16) -> Check {
    let joined = stable_group(env, &env.name("heartbeat", version), None)?;
    ensure!(
        heartbeat_at(&joined, version)? == 0,
        "heartbeat of a member"
    );
    let stranger = Joined {
        member_id: "stranger".to_string(),
        ..joined
    };
    let error = heartbeat_at(&stranger, version)?;
    ensure!(
        error == code(ResponseError::UnknownMemberId),
        "heartbeat of a stranger: error {error}"
    );
    Ok(())
}

fn leave(joined: &Joined, version: i16) -> Check {
    let mut request = LeaveGroupRequest::default().with_group_id(group_id(&joined.group));
    request = match version {
        3.. => {
            let mut member = MemberIdentity::default()
                .with_member_id(str(&joined.member_id))
                .with_group_instance_id(joined.instance_id.as_deref().map(str));
            if version >= 5 {
                member = member.with_reason(Some(str("every-version test")));
            }
            request.with_members(vec![member])
        }
        _ => request.with_member_id(str(&joined.member_id)),
    };
    let response = call(joined.coordinator, &request, version)?;
    ensure!(
        response.error_code == 0,
        "leave: error {}",
        response.error_code
    );
    if version >= 3 {
        ensure!(
            response.members.len() == 1 && response.members[0].error_code == 0,
            "leave: members {:?}",
            response.members
        );
    }
    Ok(())
}

fn describe(env: &Env, group: &str, version: i16) -> Result<DescribedGroup, String> {
    let mut request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    if version >= 3 {
        request = request.with_include_authorized_operations(true);
    }
    let mut response = call(env.coordinator(group)?, &request, version)?;
    ensure!(
        response.groups.len() == 1,
        "{} groups",
        response.groups.len()
    );
    Ok(response.groups.remove(0))
}

use kafka_protocol::messages::describe_groups_response::DescribedGroup;

fn leave_group(env: &Env, version: i16) -> Check {
    let group = env.name("leave", version);
    let joined = stable_group(env, &group, None)?;
    leave(&joined, version)?;
    let described = describe(env, &group, 5)?;
    ensure!(
        described.group_state.as_str() == "Empty" && described.members.is_empty(),
        "after leaving: {} with {} members",
        described.group_state,
        described.members.len()
    );
    Ok(())
}

fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    partitions: &[(i32, i64)],
    version: i16,
) -> OffsetCommitRequest {
    let partitions = partitions
        .iter()
        .map(|&(index, offset)| {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(str("meta")));
            match version {
                6.. => partition.with_committed_leader_epoch(0),
                _ => partition,
            }
        })
        .collect();
    let mut request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    if (2..=4).contains(&version) {
        request = request.with_retention_time_ms(-1);
    }
    request
}

/// Commits offsets for a group with no members, as an admin tool would.
fn admin_commit(env: &Env, group: &str, partitions: &[(i32, i64)]) -> Check {
    let request = commit_request(group, -1, "", &env.topic, partitions, 9);
    let response = call(env.coordinator(group)?, &request, 9)?;
    let codes: Vec<_> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    ensure!(codes.iter().all(|c| *c == 0), "admin commit: {codes:?}");
    Ok(())
}

/// The committed offsets of partitions 0 and 1 (-1: none), asked at OffsetFetch v9.
fn committed(env: &Env, group: &str) -> Result<Vec<i64>, String> {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(&env.topic))
                .with_partition_indexes(vec![0, 1])]))]);
    let response = call(env.coordinator(group)?, &request, 9)?;
    let group = &response.groups[0];
    ensure!(
        group.error_code == 0,
        "offset fetch: error {}",
        group.error_code
    );
    Ok(group.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect())
}

fn offset_commit(env: &Env, version: i16) -> Check {
    let group = env.name("commit", version);
    let joined = stable_group(env, &group, None)?;
    let request = commit_request(
        &group,
        joined.generation,
        &joined.member_id,
        &env.topic,
        &[(0, 3), (UNKNOWN_PARTITION, 1)],
        version,
    );
    let response = call(joined.coordinator, &request, version)?;
    let codes: Vec<_> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    let want = [0, code(ResponseError::UnknownTopicOrPartition)];
    ensure!(codes == want, "committed, unknown partition: {codes:?}");
    let offsets = committed(env, &group)?;
    ensure!(offsets == [3, -1], "committed offsets {offsets:?}");
    Ok(())
}

fn offset_fetch(env: &Env, version: i16) -> Check {
    let group = env.name("fetch-offsets", version);
    admin_commit(env, &group, &[(0, 4)])?;
    let coordinator = env.coordinator(&group)?;
    let mut request = OffsetFetchRequest::default();
    if version >= 7 {
        request = request.with_require_stable(true);
    }
    let found: Vec<(i32, i64, Option<String>)> = match version {
        8.. => {
            let request = request.with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(&group))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name(&env.topic))
                    .with_partition_indexes(vec![0, 1])]))]);
            let response = call(coordinator, &request, version)?;
            let [answered] = &response.groups[..] else {
                return Err(format!("{} groups", response.groups.len()));
            };
            ensure!(answered.error_code == 0, "error {}", answered.error_code);
            answered.topics[0]
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.error_code.into(),
                        p.committed_offset,
                        p.metadata.as_deref().map(str::to_string),
                    )
                })
                .collect()
        }
        _ => {
            let request = request
                .with_group_id(group_id(&group))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(&env.topic))
                    .with_partition_indexes(vec![0, 1])]));
            let response = call(coordinator, &request, version)?;
            ensure!(response.error_code == 0, "error {}", response.error_code);
            response.topics[0]
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.error_code.into(),
                        p.committed_offset,
                        p.metadata.as_deref().map(str::to_string),
                    )
                })
                .collect()
        }
    };
    let want = vec![
        (0, 4, Some("meta".to_string())),
        (0, -1, found.get(1).and_then(|f| f.2.clone())),
    ];
    ensure!(found == want, "partitions 0 and 1: {found:?}");
    Ok(())
}

fn describe_groups(env: &Env, version: i16) -> Check {
    let group = env.name("describe", version);
    let joined = stable_group(env, &group, None)?;
    let described = describe(env, &group, version)?;
    ensure!(
        described.error_code == 0
            && described.group_state.as_str() == "Stable"
            && described.protocol_type.as_str() == "consumer"
            && described.protocol_data.as_str() == "range",
        "error {}, {} {}/{}",
        described.error_code,
        described.group_state,
        described.protocol_type,
        described.protocol_data
    );
    ensure!(
        described.members.len() == 1
            && described.members[0].member_id.as_str() == joined.member_id
            && described.members[0].member_assignment.as_ref() == ASSIGNMENT,
        "members {:?}",
        described.members
    );
    if version >= 3 {
        ensure!(
            allows(described.authorized_operations, &[READ, DESCRIBE]),
            "authorized operations {:#x}",
            described.authorized_operations
        );
    }
    let unknown = describe(env, &env.name("never-joined", version), version)?;
    let want = match version {
        6.. => code(ResponseError::GroupIdNotFound),
        _ => 0,
    };
    ensure!(
        unknown.error_code == want && unknown.group_state.as_str() == "Dead",
        "unknown group: error {}, {}",
        unknown.error_code,
        unknown.group_state
    );
    Ok(())
}

fn list_groups(env: &Env, version: i16) -> Check {
    let group = env.name("listed", version);
    let joined = stable_group(env, &group, None)?;
    let mut request = ListGroupsRequest::default();
    if version >= 4 {
        request = request.with_states_filter(vec![str("Stable")]);
    }
    if version >= 5 {
        request = request.with_types_filter(vec![str("classic")]);
    }
    let response = call(joined.coordinator, &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let listed = response
        .groups
        .iter()
        .find(|g| g.group_id.as_str() == group);
    let Some(listed) = listed else {
        return Err(format!("{group} is not listed"));
    };
    ensure!(
        listed.protocol_type.as_str() == "consumer",
        "protocol type {}",
        listed.protocol_type
    );
    if version >= 4 {
        ensure!(
            listed.group_state.as_str() == "Stable",
            "state {}",
            listed.group_state
        );
    }
    if version >= 5 {
        ensure!(
            listed.group_type.as_str() == "classic",
            "type {}",
            listed.group_type
        );
    }
    Ok(())
}

fn delete_groups(env: &Env, version: i16) -> Check {
    // A group that only has committed offsets, one whose only member just left without
    // committing (Kafka keeps it as Empty), and one that never existed.
    let committed_only = env.name("delete-committed", version);
    admin_commit(env, &committed_only, &[(0, 1)])?;
    let left = env.name("delete-left", version);
    leave(&stable_group(env, &left, None)?, 5)?;
    let never = env.name("delete-never", version);
    let mut codes = Vec::new();
    for group in [&committed_only, &left, &never] {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = call(env.coordinator(group)?, &request, version)?;
        codes.push(response.results[0].error_code);
    }
    let want = [0, 0, code(ResponseError::GroupIdNotFound)];
    ensure!(
        codes == want,
        "committed only, member left, never existed: {codes:?}"
    );
    let offsets = committed(env, &committed_only)?;
    ensure!(offsets == [-1, -1], "offsets after the delete: {offsets:?}");
    Ok(())
}

fn offset_delete(env: &Env, version: i16) -> Check {
    let group = env.name("offset-delete", version);
    admin_commit(env, &group, &[(0, 2), (1, 2)])?;
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(&group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(topic_name(&env.topic))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let response = call(env.coordinator(&group)?, &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let codes: Vec<_> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    ensure!(codes == [0], "partition codes {codes:?}");
    let offsets = committed(env, &group)?;
    ensure!(offsets == [-1, 2], "offsets after the delete: {offsets:?}");
    Ok(())
}

fn consumer_group_heartbeat(env: &Env, version: i16) -> Check {
    let group = env.name("kip848", version);
    let coordinator = env.coordinator(&group)?;
    // From v1 the client makes up its member id (KIP-1082); v0 leaves it to the coordinator.
    let member_id = match version {
        0 => String::new(),
        _ => Uuid::new_v4().to_string(),
    };
    let beat = |member_id: &str, epoch, owned: Option<Vec<CghTopic>>| {
        let mut request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group_id(&group))
            .with_member_id(str(member_id))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(30_000)
            .with_topic_partitions(owned);
        if epoch == 0 {
            request = request
                .with_subscribed_topic_names(Some(vec![topic_name(&env.topic)]))
                .with_server_assignor(Some(str("range")));
        }
        call(coordinator, &request, version)
    };
    let joined = beat(&member_id, 0, Some(Vec::new()))?;
    ensure!(
        joined.error_code == 0 && joined.member_epoch >= 1,
        "join: error {} {:?}, epoch {}",
        joined.error_code,
        joined.error_message,
        joined.member_epoch
    );
    let member_id = joined.member_id.as_deref().unwrap_or_default().to_string();
    ensure!(!member_id.is_empty(), "no member id");
    let mut assigned: Vec<i32> = joined
        .assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter())
        .filter(|t| t.topic_id == env.topic_id)
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    assigned.sort_unstable();
    ensure!(assigned == [0, 1], "assigned {assigned:?}");
    let owned = vec![CghTopic::default()
        .with_topic_id(env.topic_id)
        .with_partitions(assigned)];
    let steady = beat(&member_id, joined.member_epoch, Some(owned))?;
    ensure!(
        steady.error_code == 0 && steady.member_epoch == joined.member_epoch,
        "heartbeat: error {}, epoch {}",
        steady.error_code,
        steady.member_epoch
    );
    let left = beat(&member_id, -1, None)?;
    ensure!(
        left.error_code == 0 && left.member_epoch == -1,
        "leave: error {}, epoch {}",
        left.error_code,
        left.member_epoch
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Partition administration: log start, leader epochs, producers, log dirs.

/// The offset ListOffsets gives for `timestamp` (-1 latest, -2 earliest), asked at v7.
fn list_offset(env: &Env, topic: &str, partition: i32, timestamp: i64) -> Result<i64, String> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response = call(env.bootstrap(), &request, 7)?;
    let answer = &response.topics[0].partitions[0];
    ensure!(
        answer.error_code == 0,
        "ListOffsets: error {}",
        answer.error_code
    );
    Ok(answer.offset)
}

/// A new one-partition topic holding `RECORDS` records.
fn topic_with_records(env: &Env, what: &str, version: i16) -> Result<String, String> {
    let topic = env.name(what, version);
    let mut client = Client::connect(env.bootstrap());
    create_topic(&mut client, &topic, 1);
    let batch = encode_batch(&records(0, RECORDS, None), Compression::None);
    let (error, base) = produce(&mut client, &topic, 0, batch);
    ensure!(
        (error, base) == (0, 0),
        "produce: error {error}, base {base}"
    );
    Ok(topic)
}

fn delete_records(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    let topic = topic_with_records(env, "delete-records", version)?;
    let request = |topic: &str, partitions: &[(i32, i64)]| {
        DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&(p, offset)| {
                            DeleteRecordsPartition::default()
                                .with_partition_index(p)
                                .with_offset(offset)
                        })
                        .collect(),
                )])
            .with_timeout_ms(30_000)
    };
    let answers = |response: DeleteRecordsResponse| -> Vec<(i16, i64)> {
        response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.low_watermark))
            .collect()
    };
    let deleted = answers(call(
        env.bootstrap(),
        &request(&topic, &[(0, 3), (UNKNOWN_PARTITION, 0)]),
        version,
    )?);
    let unknown = (code(ResponseError::UnknownTopicOrPartition), -1);
    let want = match env.smq() {
        true => vec![(code(ResponseError::PolicyViolation), -1), unknown],
        false => vec![(0, 3), unknown],
    };
    ensure!(
        deleted == want,
        "partition 0 to 3, unknown partition: {deleted:?}"
    );
    let earliest = list_offset(env, &topic, 0, -2)?;
    let want = if env.smq() { 0 } else { 3 };
    ensure!(
        earliest == want,
        "earliest offset after the delete: {earliest}"
    );
    let past_end = answers(call(
        env.bootstrap(),
        &request(&topic, &[(0, 100)]),
        version,
    )?);
    let refusal = env.done_unless_smq(ResponseError::PolicyViolation);
    let want = if env.smq() {
        refusal
    } else {
        code(ResponseError::OffsetOutOfRange)
    };
    ensure!(past_end == [(want, -1)], "past the end: {past_end:?}");
    let missing = answers(call(
        env.bootstrap(),
        &request(&env.name("never-created", version), &[(0, 0)]),
        version,
    )?);
    ensure!(missing == [unknown], "missing topic: {missing:?}");
    Ok(())
}

fn offset_for_leader_epoch(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let end = list_offset(env, &env.topic, 0, -1)?;
    // (partition, current leader epoch, leader epoch asked about)
    let asked = [
        (0, -1, 0),
        (0, 0, 0),
        (0, 5, 0),
        (0, 0, 3),
        (UNKNOWN_PARTITION, -1, 0),
    ];
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic_name(&env.topic))
            .with_partitions(
                asked
                    .iter()
                    .map(|&(p, current, epoch)| {
                        OffsetForLeaderPartition::default()
                            .with_partition(p)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(epoch)
                    })
                    .collect(),
            )]);
    let response = call(env.bootstrap(), &request, version)?;
    let found: Vec<(i16, i32, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
        .collect();
    let want = vec![
        (0, 0, end),
        (0, 0, end),
        (code(ResponseError::UnknownLeaderEpoch), -1, -1),
        (0, -1, -1),
        (code(ResponseError::UnknownTopicOrPartition), -1, -1),
    ];
    ensure!(found == want, "epoch ends {found:?}, high watermark {end}");
    Ok(())
}

fn describe_producers(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let topic = env.name("producers", version);
    let mut client = Client::connect(env.bootstrap());
    create_topic(&mut client, &topic, 1);
    let init = call(
        env.bootstrap(),
        &InitProducerIdRequest::default().with_transaction_timeout_ms(-1),
        4,
    )?;
    ensure!(
        init.error_code == 0,
        "InitProducerId: error {}",
        init.error_code
    );
    let producer = (init.producer_id.0, init.producer_epoch, 0);
    let batch = encode_batch(&records(0, 3, Some(producer)), Compression::None);
    let (error, _) = produce(&mut client, &topic, 0, batch);
    ensure!(error == 0, "idempotent produce: error {error}");
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(topic_name(&topic))
        .with_partition_indexes(vec![0, UNKNOWN_PARTITION])]);
    let response = call(env.bootstrap(), &request, version)?;
    let [known, unknown] = &response.topics[0].partitions[..] else {
        return Err(format!("{:?}", response.topics));
    };
    let active: Vec<(i64, i32, i32)> = known
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.producer_epoch, p.last_sequence))
        .collect();
    ensure!(
        known.error_code == 0 && active == [(producer.0, i32::from(producer.1), 2)],
        "partition 0: error {}, producers {active:?}",
        known.error_code
    );
    ensure!(
        unknown.error_code == code(ResponseError::UnknownTopicOrPartition),
        "unknown partition: error {}",
        unknown.error_code
    );
    Ok(())
}

fn describe_log_dirs(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let asked =
        DescribeLogDirsRequest::default()
            .with_topics(Some(vec![DescribableLogDirTopic::default()
                .with_topic(topic_name(&env.topic))
                .with_partitions(vec![0, 1])]));
    // Each broker lists the partitions it leads, each exactly once over all of them.
    let mut seen = Vec::new();
    for (shard, broker) in env.server.brokers.iter().enumerate() {
        let response = call(*broker, &asked, version)?;
        ensure!(response.error_code == 0, "error {}", response.error_code);
        let [dir] = &response.results[..] else {
            return Err(format!("{} log dirs", response.results.len()));
        };
        ensure!(
            dir.error_code == 0 && !dir.log_dir.is_empty(),
            "log dir {dir:?}"
        );
        for topic in &dir.topics {
            ensure!(
                topic.name.as_str() == env.topic,
                "topic {}",
                topic.name.as_str()
            );
            for partition in &topic.partitions {
                // Partition 0 holds the records (SMQ: once its broker flushed them).
                let size_known = match (env.smq(), partition.partition_index) {
                    (false, 0) => partition.partition_size > 0,
                    _ => partition.partition_size >= 0,
                };
                ensure!(size_known, "partition {partition:?}");
                seen.push((partition.partition_index, shard as i32));
            }
        }
    }
    seen.sort_unstable();
    let leaders: Vec<(i32, i32)> = (0..2).map(|p| (p, leader(env, &env.topic, p))).collect();
    ensure!(
        seen == leaders,
        "partitions by broker {seen:?}, leaders {leaders:?}"
    );
    let everything = call(
        env.server.brokers[0],
        &DescribeLogDirsRequest::default().with_topics(None),
        version,
    )?;
    ensure!(
        everything.results.len() == 1,
        "{} log dirs",
        everything.results.len()
    );
    Ok(())
}

/// The node that leads a partition, by Metadata.
fn leader(env: &Env, topic: &str, partition: i32) -> i32 {
    let metadata: MetadataResponse = Client::connect(env.bootstrap()).call(
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ])),
        12,
    );
    metadata.topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .map_or(-1, |p| p.leader_id.0)
}

// ---------------------------------------------------------------------------------------
// Config administration.

/// Whether a batch of `bytes` of value goes into `topic` through every broker: 0 or the
/// error each broker answers, all of them the same.
fn produce_everywhere(env: &Env, topic: &str, bytes: usize) -> Result<i16, String> {
    let mut codes = Vec::new();
    for broker in &env.server.brokers {
        let mut record = records(0, 1, None).remove(0);
        record.value = Some(Bytes::from(vec![b'x'; bytes]));
        let batch = encode_batch(&[record], Compression::None);
        codes.push(produce(&mut Client::connect(*broker), topic, 0, batch).0);
    }
    codes.dedup();
    match codes[..] {
        [one] => Ok(one),
        _ => Err(format!("brokers disagree: {codes:?}")),
    }
}

/// A topic config as DescribeConfigs v4 reports it: (value, source).
fn topic_config(env: &Env, topic: &str, name: &str) -> Result<Option<(String, i8)>, String> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(str(topic))]);
    let response = call(env.bootstrap(), &request, 4)?;
    let result = &response.results[0];
    ensure!(
        result.error_code == 0,
        "DescribeConfigs: error {}",
        result.error_code
    );
    Ok(result
        .configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .map(|c| {
            (
                c.value.as_deref().unwrap_or_default().to_string(),
                c.config_source,
            )
        }))
}

const TOPIC_CONFIG: i8 = 1;
const LIMITED: usize = 51_200;

fn alter_configs(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let topic = env.name("alter-configs", version);
    create_topic(&mut Client::connect(env.bootstrap()), &topic, 1);
    let resource = |kind: i8, name: &str, configs: &[(&str, &str)]| {
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(str(k))
                            .with_value(Some(str(v)))
                    })
                    .collect(),
            )
    };
    let alter = |resources, validate_only| -> Result<Vec<i16>, String> {
        let request = AlterConfigsRequest::default()
            .with_resources(resources)
            .with_validate_only(validate_only);
        let response = call(env.bootstrap(), &request, version)?;
        Ok(response.responses.iter().map(|r| r.error_code).collect())
    };
    let limit = LIMITED.to_string();
    let codes = alter(
        vec![
            resource(
                2,
                &topic,
                &[("max.message.bytes", &limit), ("retention.ms", "3600000")],
            ),
            resource(
                2,
                &env.name("never-created", version),
                &[("retention.ms", "1")],
            ),
            resource(4, "0", &[("message.max.bytes", "1")]),
            resource(2, &topic, &[("cleanup.policy", "compact")]),
        ],
        false,
    )?;
    let invalid = code(ResponseError::InvalidConfig);
    let want = [
        0,
        code(ResponseError::UnknownTopicOrPartition),
        invalid,
        invalid,
    ];
    ensure!(
        codes == want,
        "topic, missing topic, broker, compaction: {codes:?}"
    );
    let found = topic_config(env, &topic, "max.message.bytes")?;
    ensure!(
        found == Some((limit.clone(), TOPIC_CONFIG)),
        "max.message.bytes {found:?}"
    );
    let too_large = produce_everywhere(env, &topic, LIMITED + 1000)?;
    ensure!(
        too_large == code(ResponseError::MessageTooLarge),
        "a batch over the new limit: error {too_large}"
    );
    // Validation only changes nothing; the legacy form replaces the whole set.
    ensure!(
        alter(vec![resource(2, &topic, &[])], true)? == [0],
        "validate only"
    );
    ensure!(
        produce_everywhere(env, &topic, LIMITED + 1000)? != 0,
        "validate-only altered"
    );
    ensure!(
        alter(vec![resource(2, &topic, &[])], false)? == [0],
        "clearing"
    );
    let found = topic_config(env, &topic, "retention.ms")?;
    ensure!(
        found
            .as_ref()
            .is_some_and(|(_, source)| *source != TOPIC_CONFIG),
        "retention.ms {found:?}"
    );
    ensure!(
        produce_everywhere(env, &topic, LIMITED + 1000)? == 0,
        "limit still enforced"
    );
    Ok(())
}

fn incremental_alter_configs(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    let topic = env.name("incremental-configs", version);
    create_topic(&mut Client::connect(env.bootstrap()), &topic, 1);
    let alter = |configs: &[(&str, i8, Option<&str>)], validate_only| -> Result<i16, String> {
        let resource = AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(str(&topic))
            .with_configs(
                configs
                    .iter()
                    .map(|&(name, operation, value)| {
                        AlterableConfig::default()
                            .with_name(str(name))
                            .with_config_operation(operation)
                            .with_value(value.map(str))
                    })
                    .collect(),
            );
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![resource])
            .with_validate_only(validate_only);
        Ok(call(env.bootstrap(), &request, version)?.responses[0].error_code)
    };
    let limit = LIMITED.to_string();
    let set = alter(
        &[
            ("max.message.bytes", SET, Some(&limit)),
            ("retention.ms", SET, Some("3600000")),
        ],
        false,
    )?;
    ensure!(set == 0, "SET: error {set}");
    ensure!(
        topic_config(env, &topic, "retention.ms")? == Some(("3600000".into(), TOPIC_CONFIG)),
        "retention.ms after SET"
    );
    let too_large = produce_everywhere(env, &topic, LIMITED + 1000)?;
    ensure!(
        too_large == code(ResponseError::MessageTooLarge),
        "over the limit: {too_large}"
    );
    ensure!(
        alter(&[("retention.ms", DELETE, None)], false)? == 0,
        "DELETE"
    );
    let found = topic_config(env, &topic, "retention.ms")?;
    ensure!(
        found
            .as_ref()
            .is_some_and(|(v, s)| v == "604800000" && *s != TOPIC_CONFIG),
        "after DELETE {found:?}"
    );
    let refused = alter(&[("retention.ms", APPEND, Some("5"))], false)?;
    ensure!(
        refused == code(ResponseError::InvalidConfig),
        "APPEND to a number: {refused}"
    );
    let refused = alter(&[("max.message.bytes", SET, Some("big"))], true)?;
    ensure!(
        refused == code(ResponseError::InvalidConfig),
        "a bad value: {refused}"
    );
    ensure!(
        produce_everywhere(env, &topic, LIMITED - 1000)? == 0,
        "under the limit"
    );
    Ok(())
}

fn list_config_resources(env: &Env, version: i16) -> Check {
    let mut request = ListConfigResourcesRequest::default();
    if version >= 1 {
        request = request.with_resource_types(vec![2, 4]);
    }
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let names: Vec<&str> = response
        .config_resources
        .iter()
        .map(|r| r.resource_name.as_str())
        .collect();
    match version {
        // v0 lists client-metrics resources, of which there are none.
        0 => ensure!(names.is_empty(), "client metrics resources {names:?}"),
        _ => ensure!(
            names.contains(&env.topic.as_str()) && names.contains(&"0"),
            "resources {names:?}"
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ACLs and SCRAM users (kafka-acls, kafka-configs --entity-type users).

/// An ALLOW READ binding on a topic of the scenario's own (ACLs stay in SMQ's filer).
fn acl_creation(topic: &str) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(str(topic))
        .with_resource_pattern_type(3)
        .with_principal(str("User:every-version"))
        .with_host(str("*"))
        .with_operation(3)
        .with_permission_type(3)
}

fn create_acl(env: &Env, topic: &str) -> Check {
    let request = CreateAclsRequest::default().with_creations(vec![acl_creation(topic)]);
    let response = call(env.bootstrap(), &request, 1)?;
    ensure!(
        response.results[0].error_code == 0,
        "create: {:?}",
        response.results
    );
    Ok(())
}

fn create_acls(env: &Env, version: i16) -> Check {
    let topic = format!("acl-create-{version}-{}", Uuid::new_v4());
    let request = CreateAclsRequest::default().with_creations(vec![
        acl_creation(&topic),
        acl_creation(&topic).with_resource_pattern_type(2), // MATCH: filters only
    ]);
    let response = call(env.bootstrap(), &request, version)?;
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    ensure!(
        codes == [0, ResponseError::InvalidRequest.code()],
        "codes {codes:?}"
    );
    Ok(())
}

fn describe_acls(env: &Env, version: i16) -> Check {
    let topic = format!("acl-describe-{version}-{}", Uuid::new_v4());
    create_acl(env, &topic)?;
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(str(&topic)))
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    ensure!(
        response.resources.len() == 1 && response.resources[0].acls.len() == 1,
        "resources {:?}",
        response.resources
    );
    let unknown = call(
        env.bootstrap(),
        &request.with_pattern_type_filter(0),
        version,
    )?;
    ensure!(
        unknown.error_code == ResponseError::InvalidRequest.code(),
        "UNKNOWN pattern: error {}",
        unknown.error_code
    );
    Ok(())
}

fn delete_acls(env: &Env, version: i16) -> Check {
    let topic = format!("acl-delete-{version}-{}", Uuid::new_v4());
    create_acl(env, &topic)?;
    let filter = delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(Some(str(&topic)))
        .with_pattern_type_filter(3)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1);
    let request =
        DeleteAclsRequest::default().with_filters(vec![filter.clone(), filter.with_operation(0)]);
    let response = call(env.bootstrap(), &request, version)?;
    let results: Vec<(i16, usize)> = response
        .filter_results
        .iter()
        .map(|r| (r.error_code, r.matching_acls.len()))
        .collect();
    ensure!(
        results == [(0, 1), (ResponseError::InvalidRequest.code(), 0)],
        "results {results:?}"
    );
    Ok(())
}

fn describe_client_quotas(env: &Env, version: i16) -> Check {
    let request = DescribeClientQuotasRequest::default();
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    ensure!(
        response.entries.as_ref().is_some_and(Vec::is_empty),
        "entries {:?}",
        response.entries
    );
    Ok(())
}

/// On this PLAINTEXT listener SASL is out of place: ILLEGAL_SASL_STATE, with the mechanisms
/// SASL listeners offer (authenticating is tests/security.rs).
fn sasl_handshake(env: &Env, version: i16) -> Check {
    let request = kafka_protocol::messages::SaslHandshakeRequest::default()
        .with_mechanism(str("SCRAM-SHA-512"));
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.error_code == code(ResponseError::IllegalSaslState),
        "error {}",
        response.error_code
    );
    let offered: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
    ensure!(
        offered == ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"],
        "mechanisms {offered:?}"
    );
    Ok(())
}

fn sasl_authenticate(env: &Env, version: i16) -> Check {
    let request = kafka_protocol::messages::SaslAuthenticateRequest::default()
        .with_auth_bytes(Bytes::from_static(b"\0alice\0secret"));
    let response = call(env.bootstrap(), &request, version)?;
    ensure!(
        response.error_code == code(ResponseError::IllegalSaslState),
        "error {}",
        response.error_code
    );
    ensure!(response.error_message.is_some(), "no message");
    Ok(())
}

/// A SCRAM-SHA-512 upsertion for `user` (8192 iterations).
fn scram_upsertion(user: &str) -> alter_user_scram_credentials_request::ScramCredentialUpsertion {
    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(str(user))
        .with_mechanism(2)
        .with_iterations(8192)
        .with_salt(Bytes::from_static(b"every-version-salt"))
        .with_salted_password(Bytes::from(vec![7u8; 64]))
}

fn scram_deletion(user: &str) -> alter_user_scram_credentials_request::ScramCredentialDeletion {
    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
        .with_name(str(user))
        .with_mechanism(2)
}

fn describe_user_scram_credentials(env: &Env, version: i16) -> Check {
    use describe_user_scram_credentials_request::UserName;
    let user = format!("describe-{version}-{}", Uuid::new_v4());
    let alter =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![scram_upsertion(&user)]);
    let altered = call(env.bootstrap(), &alter, 0)?;
    ensure!(
        altered.results[0].error_code == 0,
        "alter: {:?}",
        altered.results
    );
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
        UserName::default().with_name(str(&user)),
        UserName::default().with_name(str("no-such-user")),
    ]));
    let response = call(env.bootstrap(), &request, version)?;
    type Described = (String, i16, Vec<(i8, i32)>);
    let results: Vec<Described> = response
        .results
        .iter()
        .map(|r| {
            let infos = r
                .credential_infos
                .iter()
                .map(|c| (c.mechanism, c.iterations));
            (r.user.to_string(), r.error_code, infos.collect())
        })
        .collect();
    ensure!(
        results
            == [
                (user.clone(), 0, vec![(2, 8192)]),
                (
                    "no-such-user".to_string(),
                    ResponseError::ResourceNotFound.code(),
                    vec![]
                ),
            ],
        "results {results:?}"
    );
    let delete =
        AlterUserScramCredentialsRequest::default().with_deletions(vec![scram_deletion(&user)]);
    call(env.bootstrap(), &delete, 0)?;
    Ok(())
}

fn alter_user_scram_credentials(env: &Env, version: i16) -> Check {
    let user = format!("alter-{version}-{}", Uuid::new_v4());
    let codes = |request: &AlterUserScramCredentialsRequest| -> Result<Vec<i16>, String> {
        let response = call(env.bootstrap(), request, version)?;
        Ok(response.results.iter().map(|r| r.error_code).collect())
    };
    let upsert =
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![scram_upsertion(&user)]);
    ensure!(codes(&upsert)? == [0], "upsert");
    let delete =
        AlterUserScramCredentialsRequest::default().with_deletions(vec![scram_deletion(&user)]);
    ensure!(codes(&delete)? == [0], "delete");
    let again = codes(&delete)?;
    ensure!(
        again == [ResponseError::ResourceNotFound.code()],
        "delete again: {again:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Cluster and group views of Kafka 4.x tools.

fn describe_quorum(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let ask = |topic: &str| {
        DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(topic))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])])
    };
    let response = call(env.bootstrap(), &ask("__cluster_metadata"), version)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    let partition = &response.topics[0].partitions[0];
    let voters: Vec<i32> = partition
        .current_voters
        .iter()
        .map(|v| v.replica_id.0)
        .collect();
    let observers = partition.observers.len();
    ensure!(
        partition.error_code == 0
            && voters == [partition.leader_id.0]
            && env.server.brokers.len() == observers + 1
            && (partition.leader_id.0 as usize) < env.server.brokers.len(),
        "leader {}, voters {voters:?}, {observers} observers, error {}",
        partition.leader_id.0,
        partition.error_code
    );
    if version >= 2 {
        let node = response
            .nodes
            .iter()
            .find(|n| n.node_id == partition.leader_id);
        let endpoint_advertised = node.is_some_and(|n| {
            n.listeners
                .iter()
                .any(|l| env.is_broker(n.node_id.0, &l.host, i32::from(l.port)))
        });
        ensure!(endpoint_advertised, "leader's node {node:?}");
    }
    let other = call(env.bootstrap(), &ask(&env.topic), version)?;
    ensure!(
        other.topics[0].partitions[0].error_code == code(ResponseError::UnknownTopicOrPartition),
        "another topic's quorum: {:?}",
        other.topics
    );
    Ok(())
}

fn consumer_group_describe(env: &Env, version: i16) -> Check {
    let group = env.name("kip848-describe", version);
    let coordinator = env.coordinator(&group)?;
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group_id(&group))
        .with_member_id(str(&Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(&env.topic)]))
        .with_server_assignor(Some(str("uniform")))
        .with_topic_partitions(Some(Vec::new()));
    let joined = call(coordinator, &join, 1)?;
    ensure!(joined.error_code == 0, "join: error {}", joined.error_code);
    let member_id = joined.member_id.as_deref().unwrap_or_default().to_string();
    let classic = env.name("classic-not-consumer", version);
    stable_group(env, &classic, None)?;
    let describe = |group: &str| -> Result<_, String> {
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![group_id(group)])
            .with_include_authorized_operations(true);
        let mut response = call(env.coordinator(group)?, &request, version)?;
        Ok(response.groups.remove(0))
    };
    let described = describe(&group)?;
    ensure!(
        described.error_code == 0
            && described.group_state.as_str() == "Stable"
            && described.group_epoch == joined.member_epoch
            && allows(described.authorized_operations, &[READ, DESCRIBE]),
        "error {}, state {}, epoch {} (member's {})",
        described.error_code,
        described.group_state,
        described.group_epoch,
        joined.member_epoch
    );
    let [member] = &described.members[..] else {
        return Err(format!("members {:?}", described.members));
    };
    let assigned: Vec<(Uuid, String, Vec<i32>)> = member
        .assignment
        .topic_partitions
        .iter()
        .map(|t| (t.topic_id, t.topic_name.to_string(), t.partitions.clone()))
        .collect();
    ensure!(
        member.member_id.as_str() == member_id
            && member.member_epoch == joined.member_epoch
            && assigned == [(env.topic_id, env.topic.clone(), vec![0, 1])]
            && member.target_assignment == member.assignment
            && member
                .subscribed_topic_names
                .iter()
                .map(|t| t.as_str())
                .eq([env.topic.as_str()])
            && (version < 1 || member.member_type == 1),
        "member {member:?}"
    );
    let not_found = code(ResponseError::GroupIdNotFound);
    for other in [classic, env.name("never-joined", version)] {
        let described = describe(&other)?;
        ensure!(
            described.error_code == not_found,
            "{other}: error {}",
            described.error_code
        );
    }
    Ok(())
}

/// (name, error code, (partition, leader) of each partition listed)
type DescribedTopic = (String, i16, Vec<(i32, i32)>);

fn describe_topic_partitions(env: &Env, version: i16) -> Check {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let missing = env.name("never-created", version);
    let request = |limit: i32, cursor: Option<Cursor>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                TopicRequest::default().with_name(topic_name(&env.topic)),
                TopicRequest::default().with_name(topic_name(&missing)),
            ])
            .with_response_partition_limit(limit)
            .with_cursor(cursor)
    };
    let summary = |response: &DescribeTopicPartitionsResponse| -> Vec<DescribedTopic> {
        response
            .topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map_or_else(String::new, |n| n.to_string());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.leader_id.0))
                    .collect();
                (name, t.error_code, partitions)
            })
            .collect()
    };
    let leaders: Vec<(i32, i32)> = (0..2).map(|p| (p, leader(env, &env.topic, p))).collect();
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    // Sorted by name: the shared topic ("…-shared") comes after "…-never-created…".
    let whole = call(env.bootstrap(), &request(2000, None), version)?;
    let want = vec![
        (missing.clone(), unknown, vec![]),
        (env.topic.clone(), 0, leaders.clone()),
    ];
    ensure!(
        summary(&whole) == want && whole.next_cursor.is_none(),
        "{:?}",
        summary(&whole)
    );
    ensure!(
        whole.topics[1].topic_id == env.topic_id,
        "topic id {}",
        whole.topics[1].topic_id
    );
    // The Java admin client (kafka-topics --describe) fails on null lists here.
    ensure!(
        whole.topics[1]
            .partitions
            .iter()
            .all(|p| p.eligible_leader_replicas.is_some() && p.last_known_elr.is_some()),
        "null ELR lists {:?}",
        whole.topics[1].partitions
    );
    // One partition per page, from a cursor on the shared topic.
    let cursor = |topic: &str, partition: i32| {
        Cursor::default()
            .with_topic_name(topic_name(topic))
            .with_partition_index(partition)
    };
    let first = call(
        env.bootstrap(),
        &request(1, Some(cursor(&env.topic, 0))),
        version,
    )?;
    let next = first.next_cursor.clone();
    ensure!(
        summary(&first) == [(env.topic.clone(), 0, leaders[..1].to_vec())]
            && next
                .as_ref()
                .is_some_and(|c| c.topic_name.as_str() == env.topic && c.partition_index == 1),
        "first page {:?}, next {next:?}",
        summary(&first)
    );
    let next = next.map(|c| cursor(&c.topic_name, c.partition_index));
    let second = call(env.bootstrap(), &request(1, next), version)?;
    ensure!(
        summary(&second) == [(env.topic.clone(), 0, leaders[1..].to_vec())]
            && second.next_cursor.is_none(),
        "second page {:?}, next {:?}",
        summary(&second),
        second.next_cursor
    );
    Ok(())
}
