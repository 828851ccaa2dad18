//! Topic administration and offsets as an admin client sees them.

use crate::common::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, ListOffsetsRequest, MetadataRequest,
};
use kafka_protocol::records::Compression;

fn partition_count(client: &mut Client, topic: &str) -> (i16, usize) {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ]));
    let metadata = client.call(&request, 12);
    (
        metadata.topics[0].error_code,
        metadata.topics[0].partitions.len(),
    )
}

#[test]
fn topics_are_created_validated_grown_described_and_deleted() {
    let server = Server::start(&["--shards", "2", "--auto-create-topics", "false"]);
    let mut client = server.client();

    let validate = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name("checked"))
                .with_num_partitions(3)
                .with_replication_factor(1),
            CreatableTopic::default()
                .with_name(topic_name("bad name!"))
                .with_num_partitions(1)
                .with_replication_factor(1),
            CreatableTopic::default()
                .with_name(topic_name("zero"))
                .with_num_partitions(0)
                .with_replication_factor(1),
        ]);
    let results = client.call(&validate, 7).topics;
    let codes: Vec<i16> = results.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 17, 37],
        "ok, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS"
    );
    assert_eq!(
        partition_count(&mut client, "checked").0,
        3,
        "validate_only created nothing"
    );

    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name("admin"))
        .with_num_partitions(2)
        .with_replication_factor(-1)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name("retention.ms".into())
            .with_value(Some("1000".into()))])]);
    assert_eq!(client.call(&create, 7).topics[0].error_code, 0);
    assert_eq!(
        client.call(&create, 7).topics[0].error_code,
        36,
        "TOPIC_ALREADY_EXISTS"
    );

    let describe =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name("admin".into())]);
    let configs = &client.call(&describe, 4).results[0];
    assert_eq!(configs.error_code, 0);
    let value = |name: &str| {
        configs
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .and_then(|c| c.value.as_ref())
            .map(|v| v.to_string())
    };
    assert_eq!(
        value("retention.ms").as_deref(),
        Some("1000"),
        "the topic's own config"
    );
    assert_eq!(
        value("cleanup.policy").as_deref(),
        Some("delete"),
        "a default"
    );

    let shrink =
        CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name("admin"))
            .with_count(1)]);
    assert_eq!(
        client.call(&shrink, 3).results[0].error_code,
        37,
        "cannot shrink"
    );
    let grow =
        CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name("admin"))
            .with_count(5)]);
    assert_eq!(client.call(&grow, 3).results[0].error_code, 0);
    assert_eq!(partition_count(&mut client, "admin"), (0, 5));
    let batch = encode_batch(&records(4, 3, None), Compression::None);
    assert_eq!(
        produce(&mut client, "admin", 4, batch),
        (0, 0),
        "the new partition takes records"
    );

    let delete = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name("admin")))
    ]);
    assert_eq!(client.call(&delete, 6).responses[0].error_code, 0);
    assert_eq!(
        partition_count(&mut client, "admin").0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION once deleted"
    );
    assert_eq!(client.call(&delete, 6).responses[0].error_code, 3);
}

#[test]
fn offsets_by_timestamp_and_acks_zero() {
    let server = Server::start(&["--shards", "2"]);
    let mut client = server.client();
    create_topic(&mut client, "times", 1);
    // Two batches; record i of each has timestamp 1_700_000_000_000 + i.
    let batch = encode_batch(&records(0, 5, None), Compression::Zstd);
    assert_eq!(produce(&mut client, "times", 0, batch.clone()), (0, 0));

    // acks=0: no answer at all, and the next request on the connection is still answered
    // with its own correlation id.
    client.send_frame(&request_frame(
        &produce_request("times", 0, batch, 0),
        PRODUCE_VERSION,
        77,
    ));
    let versions = client.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(versions.error_code, 0);

    // A failed acks=0 produce cannot be answered; as in Kafka, the connection closes so
    // that the producer notices, reconnects and refreshes its metadata.
    let mut unanswered = server.client();
    let missing_partition = produce_request(
        "times",
        7,
        encode_batch(&records(7, 1, None), Compression::None),
        0,
    );
    unanswered.send_frame(&request_frame(&missing_partition, PRODUCE_VERSION, 78));
    assert!(
        unanswered.is_closed_by_server(),
        "acks=0 produce to a missing partition"
    );

    let query = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("times"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])])
    };
    let mut offset_at = |timestamp: i64| {
        let response = client.call(&query(timestamp), 7);
        let partition = &response.topics[0].partitions[0];
        (partition.error_code, partition.offset, partition.timestamp)
    };
    let ts = 1_700_000_000_000;
    assert_eq!(offset_at(-2).1, 0, "earliest");
    assert_eq!(offset_at(-1).1, 10, "latest: the acks=0 batch was stored");
    assert_eq!(
        offset_at(ts + 3),
        (0, 3, ts + 3),
        "first record at or after"
    );
    assert_eq!(offset_at(ts + 60_000), (0, -1, -1), "nothing that late");
    assert_eq!(offset_at(-3), (0, 4, ts + 4), "max timestamp");
}

#[test]
fn partition_limits_refuse_topics_past_them_and_bound_metadata() {
    let server = Server::start(&[
        "--max-partitions-per-topic",
        "8",
        "--max-partitions",
        "12",
        "--default-partitions",
        "4",
    ]);
    let mut client = server.client();
    let create = |client: &mut Client, name: &str, partitions: i32| {
        let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
        client.call(&request, 7).topics[0].error_code
    };
    assert_eq!(create(&mut client, "wide", 9), 37, "INVALID_PARTITIONS");
    assert_eq!(partition_count(&mut client, "wide").0, 3, "not created");
    assert_eq!(create(&mut client, "a", 8), 0);
    assert_eq!(create(&mut client, "b", 5), 44, "POLICY_VIOLATION: 13 > 12");
    assert_eq!(create(&mut client, "b", 4), 0, "12 in all");
    assert_eq!(
        create(&mut client, "b", 4),
        36,
        "an existing topic is named as such"
    );

    let grow =
        CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name("b"))
            .with_count(5)]);
    assert_eq!(client.call(&grow, 3).results[0].error_code, 44);
    assert_eq!(partition_count(&mut client, "b"), (0, 4));

    // Auto-creation counts too: produce to a new topic past the total is refused.
    let batch = encode_batch(&records(0, 1, None), Compression::None);
    let (error, _) = produce(&mut client, "c", 0, batch);
    assert_eq!(error, 44, "POLICY_VIOLATION");
    assert_eq!(partition_count(&mut client, "c").0, 3, "not auto-created");

    let delete = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name("b")))
    ]);
    assert_eq!(client.call(&delete, 6).responses[0].error_code, 0);
    assert_eq!(create(&mut client, "c", 4), 0, "room again once b is gone");

    let all = client.call(&MetadataRequest::default().with_topics(None), 12);
    let mut listed: Vec<(String, usize)> = all
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            (name, t.partitions.len())
        })
        .collect();
    listed.sort();
    assert_eq!(listed, vec![("a".to_string(), 8), ("c".to_string(), 4)]);
}
