//! The topic APIs: each topic (or partition) the client may not act on is taken out of the
//! request and answered TOPIC_AUTHORIZATION_FAILED in the place Kafka answers it.

use super::{run_amended, take_denied, Admitted, Who};
use crate::error::Error;
use crate::security::acl::{AclOperation, ResourceType};
use crate::shard::Shard;
use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_producers_response;
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use uuid::Uuid;
use AclOperation::*;

fn denied() -> i16 {
    Error::TopicAuthorizationFailed.code()
}

/// Whether a request names a topic by id only, which must be resolved to be checked.
pub fn names_by_id(request: &RequestKind) -> bool {
    let by_id = |name: &str, id: &Uuid| name.is_empty() && !id.is_nil();
    match request {
        RequestKind::Produce(r) => r.topic_data.iter().any(|t| by_id(&t.name, &t.topic_id)),
        RequestKind::Fetch(r) => r.topics.iter().any(|t| by_id(&t.topic, &t.topic_id)),
        RequestKind::DeleteTopics(r) => r.topics.iter().any(|t| t.name.is_none()),
        _ => false,
    }
}

/// Fills in the names of the topics `names_by_id` found, where the id is known.
pub async fn resolve_ids(shard: &Shard, mut request: RequestKind) -> RequestKind {
    let name_of = |id: Uuid| async move {
        match shard.topics.by_id(id).await {
            Ok(Some(meta)) => Some(TopicName(crate::handlers::str_bytes(&*meta.name))),
            _ => None,
        }
    };
    match &mut request {
        RequestKind::Produce(r) => {
            for t in r.topic_data.iter_mut().filter(|t| t.name.is_empty()) {
                if let Some(name) = name_of(t.topic_id).await {
                    t.name = name;
                }
            }
        }
        RequestKind::Fetch(r) => {
            for t in r.topics.iter_mut().filter(|t| t.topic.is_empty()) {
                if let Some(name) = name_of(t.topic_id).await {
                    t.topic = name;
                }
            }
        }
        RequestKind::DeleteTopics(r) => {
            for t in r.topics.iter_mut().filter(|t| t.name.is_none()) {
                t.name = name_of(t.topic_id).await;
            }
        }
        _ => {}
    }
    request
}

/// Produce: Write on each Topic; a transactional one first needs Write on its
/// TransactionalId (the whole request fails without it).
pub fn produce(who: &Who, mut request: ProduceRequest) -> Admitted {
    let partition = |index| {
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(denied())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
    };
    let topic = |t: &produce_request::TopicProduceData| {
        TopicProduceResponse::default()
            .with_name(t.name.clone())
            .with_topic_id(t.topic_id)
            .with_partition_responses(
                t.partition_data
                    .iter()
                    .map(|p| partition(p.index))
                    .collect(),
            )
    };
    if let Some(id) = &request.transactional_id {
        if !who.may(Write, ResourceType::TransactionalId, id) {
            let error = Error::TransactionalIdAuthorizationFailed.code();
            let responses = request
                .topic_data
                .iter()
                .map(|t| {
                    let mut response = topic(t);
                    for p in &mut response.partition_responses {
                        p.error_code = error;
                    }
                    response
                })
                .collect();
            return Admitted::Answer(Some(ResponseKind::Produce(
                ProduceResponse::default().with_responses(responses),
            )));
        }
    }
    // An id that did not resolve is the handler's UNKNOWN_TOPIC_ID.
    let denied_topics = take_denied(&mut request.topic_data, |t| {
        t.name.is_empty() || who.may_topic(Write, &t.name)
    });
    if denied_topics.is_empty() {
        return Admitted::Run(RequestKind::Produce(request), None);
    }
    let entries: Vec<_> = denied_topics.iter().map(topic).collect();
    if request.topic_data.is_empty() {
        let response = ProduceResponse::default().with_responses(entries);
        return Admitted::Answer(Some(ResponseKind::Produce(response)));
    }
    run_amended(RequestKind::Produce(request), true, move |_, response| {
        if let ResponseKind::Produce(r) = response {
            r.responses.extend(entries);
        }
    })
}

/// Fetch: Read on each Topic; a follower's fetch (replica id set) needs ClusterAction on the
/// Cluster for all of it.
pub fn fetch(who: &Who, mut request: FetchRequest) -> Admitted {
    let follower = request.replica_id.0 >= 0 || request.replica_state.replica_id.0 >= 0;
    let denied_topics = match follower {
        true if who.may_cluster(ClusterAction) => Vec::new(),
        true => std::mem::take(&mut request.topics),
        false => take_denied(&mut request.topics, |t| {
            t.topic.is_empty() || who.may_topic(Read, &t.topic)
        }),
    };
    if denied_topics.is_empty() {
        return Admitted::Run(RequestKind::Fetch(request), None);
    }
    let entries: Vec<_> = denied_topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(denied())
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
                    .with_records(Some(Bytes::new()))
            });
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(partitions.collect())
        })
        .collect();
    // Nothing left to read: answer now rather than long-poll on nothing, as Kafka does.
    if request.topics.is_empty() {
        return Admitted::Answer(Some(ResponseKind::Fetch(
            FetchResponse::default().with_responses(entries),
        )));
    }
    run_amended(RequestKind::Fetch(request), true, move |_, response| {
        if let ResponseKind::Fetch(r) = response {
            r.responses.extend(entries);
        }
    })
}

/// ListOffsets: Describe on each Topic.
pub fn list_offsets(who: &Who, mut request: ListOffsetsRequest) -> Admitted {
    let denied_topics = take_denied(&mut request.topics, |t| who.may_topic(Describe, &t.name));
    let entries: Vec<_> = denied_topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(denied())
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1)
            });
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions.collect())
        })
        .collect();
    let denied = !entries.is_empty();
    if denied && request.topics.is_empty() {
        return Admitted::Answer(Some(ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(entries),
        )));
    }
    run_amended(
        RequestKind::ListOffsets(request),
        denied,
        move |_, response| {
            if let ResponseKind::ListOffsets(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// Metadata: Describe on each Topic. All topics: those not described are left out. Named
/// topics not described: TOPIC_AUTHORIZATION_FAILED with a zero id (and no name when named by
/// id). Auto-creation needs Create too, checked when a topic would be created
/// (`super::may_create_topic`). The `*_authorized_operations` fields are the client's.
pub fn metadata(who: &Who, version: i16, mut request: MetadataRequest) -> Admitted {
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let mut entries = Vec::new();
    let mut none_left = false;
    if let (Some(topics), false) = (&mut request.topics, all_topics) {
        let denied_topics = take_denied(topics, |t| match &t.name {
            Some(name) => who.may_topic(Describe, name),
            // By id: the handler resolves it, the answer is checked below.
            None => true,
        });
        entries = denied_topics
            .into_iter()
            .map(|t| {
                MetadataResponseTopic::default()
                    .with_name(t.name)
                    .with_topic_id(Uuid::nil())
                    .with_error_code(denied())
                    .with_topic_authorized_operations(i32::MIN)
            })
            .collect();
        // An empty list is "all topics" in v0: what the handler lists then is not wanted.
        none_left = topics.is_empty();
    }
    let topic_operations = request.include_topic_authorized_operations;
    let cluster_operations = request.include_cluster_authorized_operations;
    run_amended(
        RequestKind::Metadata(request),
        true,
        move |who, response| {
            let ResponseKind::Metadata(r) = response else {
                return;
            };
            if none_left {
                r.topics.clear();
            }
            match all_topics {
                true => r.topics.retain(|t| {
                    t.error_code != 0 || t.name.as_ref().is_some_and(|n| who.may_topic(Describe, n))
                }),
                false => {
                    for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                        // Only topics named by id can still be undescribable here.
                        if !t.name.as_ref().is_some_and(|n| who.may_topic(Describe, n)) {
                            *t = MetadataResponseTopic::default()
                                .with_topic_id(t.topic_id)
                                .with_error_code(denied())
                                .with_topic_authorized_operations(i32::MIN);
                        }
                    }
                }
            }
            if topic_operations {
                for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                    if let Some(name) = &t.name {
                        t.topic_authorized_operations = who.operations(ResourceType::Topic, name);
                    }
                }
            }
            if cluster_operations {
                r.cluster_authorized_operations = cluster_bits(who);
            }
            r.topics.extend(entries);
        },
    )
}

/// `cluster_authorized_operations`: the bitfield if the client may describe the cluster,
/// else none (Metadata v8–10, DescribeCluster).
pub fn cluster_bits(who: &Who) -> i32 {
    match who.may_cluster(Describe) {
        true => who.operations(ResourceType::Cluster, crate::security::acl::CLUSTER_NAME),
        false => 0,
    }
}

/// CreateTopics: Create on the Cluster, else Create on each Topic. A created topic's configs
/// are returned only with DescribeConfigs on it.
pub fn create_topics(who: &Who, mut request: CreateTopicsRequest) -> Admitted {
    let denied_topics = match who.may_cluster(Create) {
        true => Vec::new(),
        false => take_denied(&mut request.topics, |t| who.may_topic(Create, &t.name)),
    };
    let entries: Vec<_> = denied_topics
        .iter()
        .map(|t| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(denied())
                .with_topic_config_error_code(denied())
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_configs(None)
        })
        .collect();
    run_amended(
        RequestKind::CreateTopics(request),
        true,
        move |who, response| {
            let ResponseKind::CreateTopics(r) = response else {
                return;
            };
            for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                if !who.may_topic(DescribeConfigs, &t.name) {
                    t.topic_config_error_code = denied();
                    t.configs = None;
                }
            }
            r.topics.extend(entries);
        },
    )
}

/// DeleteTopics: Delete on the Cluster, else Delete on each Topic. A topic named by id keeps
/// its name out of the error unless the client may describe it.
pub fn delete_topics(who: &Who, version: i16, mut request: DeleteTopicsRequest) -> Admitted {
    if who.may_cluster(Delete) {
        return Admitted::Run(RequestKind::DeleteTopics(request), None);
    }
    let entry = |name: Option<TopicName>, id: Uuid| {
        DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(id)
            .with_error_code(denied())
    };
    let entries: Vec<_> = match version >= 6 {
        true => take_denied(&mut request.topics, |t| match &t.name {
            Some(name) => who.may_topic(Delete, name),
            None => true,
        })
        .into_iter()
        .map(|t| {
            let by_id = !t.topic_id.is_nil();
            let name = t.name.filter(|n| !by_id || who.may_topic(Describe, n));
            entry(name, t.topic_id)
        })
        .collect(),
        false => take_denied(&mut request.topic_names, |name| who.may_topic(Delete, name))
            .into_iter()
            .map(|name| entry(Some(name), Uuid::nil()))
            .collect(),
    };
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::DeleteTopics(request),
        denied,
        move |_, response| {
            if let ResponseKind::DeleteTopics(r) = response {
                r.responses.extend(entries);
            }
        },
    )
}

/// CreatePartitions: Alter on each Topic.
pub fn create_partitions(who: &Who, mut request: CreatePartitionsRequest) -> Admitted {
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Alter, &t.name))
        .into_iter()
        .map(|t| {
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(denied())
        })
        .collect();
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::CreatePartitions(request),
        denied,
        move |_, response| {
            if let ResponseKind::CreatePartitions(r) = response {
                r.results.extend(entries);
            }
        },
    )
}

/// DeleteRecords: Delete on each Topic.
pub fn delete_records(who: &Who, mut request: DeleteRecordsRequest) -> Admitted {
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Delete, &t.name))
        .into_iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1)
                    .with_error_code(denied())
            });
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        })
        .collect();
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::DeleteRecords(request),
        denied,
        move |_, response| {
            if let ResponseKind::DeleteRecords(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// OffsetForLeaderEpoch: ClusterAction on the Cluster, else Describe on each Topic.
pub fn offset_for_leader_epoch(who: &Who, mut request: OffsetForLeaderEpochRequest) -> Admitted {
    if who.may_cluster(ClusterAction) {
        return Admitted::Run(RequestKind::OffsetForLeaderEpoch(request), None);
    }
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Describe, &t.topic))
        .into_iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(denied())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)
            });
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions.collect())
        })
        .collect();
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::OffsetForLeaderEpoch(request),
        denied,
        move |_, response| {
            if let ResponseKind::OffsetForLeaderEpoch(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// DescribeProducers: Read on each Topic.
pub fn describe_producers(who: &Who, mut request: DescribeProducersRequest) -> Admitted {
    use describe_producers_response::{PartitionResponse, TopicResponse};
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Read, &t.name))
        .into_iter()
        .map(|t| {
            let partitions = t.partition_indexes.iter().map(|&p| {
                PartitionResponse::default()
                    .with_partition_index(p)
                    .with_error_code(denied())
            });
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions.collect())
        })
        .collect();
    let denied = !entries.is_empty();
    run_amended(
        RequestKind::DescribeProducers(request),
        denied,
        move |_, response| {
            if let ResponseKind::DescribeProducers(r) = response {
                r.topics.extend(entries);
            }
        },
    )
}

/// DescribeTopicPartitions: Describe on each Topic (TOPIC_AUTHORIZATION_FAILED, zero id; all
/// topics: the rest left out); `topic_authorized_operations` is the client's.
pub fn describe_topic_partitions(
    who: &Who,
    mut request: DescribeTopicPartitionsRequest,
) -> Admitted {
    let all_topics = request.topics.is_empty();
    let entries: Vec<_> = take_denied(&mut request.topics, |t| who.may_topic(Describe, &t.name))
        .into_iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(t.name))
                .with_topic_id(Uuid::nil())
                .with_error_code(denied())
                .with_topic_authorized_operations(i32::MIN)
        })
        .collect();
    // Every named topic denied would leave "all topics": answer without the handler.
    if !all_topics && request.topics.is_empty() {
        return Admitted::Answer(Some(ResponseKind::DescribeTopicPartitions(
            DescribeTopicPartitionsResponse::default().with_topics(entries),
        )));
    }
    run_amended(
        RequestKind::DescribeTopicPartitions(request),
        true,
        move |who, response| {
            let ResponseKind::DescribeTopicPartitions(r) = response else {
                return;
            };
            if all_topics {
                r.topics
                    .retain(|t| t.name.as_ref().is_some_and(|n| who.may_topic(Describe, n)));
            }
            for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                if let Some(name) = &t.name {
                    t.topic_authorized_operations = who.operations(ResourceType::Topic, name);
                }
            }
            r.topics.extend(entries);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::security::acl::PatternType::{Literal, Prefixed};
    use ResourceType::{Cluster, Topic};

    const DENIED: i16 = 29; // TOPIC_AUTHORIZATION_FAILED

    fn produce_topic(name: &str, partitions: &[i32]) -> produce_request::TopicProduceData {
        produce_request::TopicProduceData::default()
            .with_name(TopicName(name.to_string().into()))
            .with_partition_data(
                partitions
                    .iter()
                    .map(|&i| produce_request::PartitionProduceData::default().with_index(i))
                    .collect(),
            )
    }

    fn names<T>(items: &[T], name: impl Fn(&T) -> String) -> Vec<String> {
        items.iter().map(name).collect()
    }

    #[test]
    fn produce_keeps_allowed_topics_and_answers_the_denied_per_partition() {
        let access = access(&[(Topic, "orders", Literal, Write)]);
        let who = who(&access);
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            produce_topic("orders", &[0, 1]),
            produce_topic("secret", &[2]),
        ]);
        let (request, amend) = run(produce(&who, request));
        let RequestKind::Produce(request) = request else {
            panic!()
        };
        assert_eq!(
            names(&request.topic_data, |t| t.name.to_string()),
            ["orders"]
        );
        let handler =
            ProduceResponse::default()
                .with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName("orders".to_string().into()))]);
        let ResponseKind::Produce(response) = amended(&who, amend, ResponseKind::Produce(handler))
        else {
            panic!()
        };
        assert_eq!(
            names(&response.responses, |t| t.name.to_string()),
            ["orders", "secret"]
        );
        let secret = &response.responses[1].partition_responses;
        assert_eq!(
            (secret[0].index, secret[0].error_code, secret[0].base_offset),
            (2, 29, -1)
        );
    }

    #[test]
    fn produce_all_denied_is_answered_without_the_handler() {
        let access = access(&[(Topic, "orders", Literal, Read)]);
        let who = who(&access);
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![produce_topic("orders", &[0])]);
        let ResponseKind::Produce(response) = answer(produce(&who, request)) else {
            panic!()
        };
        assert_eq!(
            response.responses[0].partition_responses[0].error_code,
            DENIED
        );
        // acks=0 too: dispatch sends nothing and closes the connection.
        let request =
            ProduceRequest::default().with_topic_data(vec![produce_topic("secret", &[0])]);
        let ResponseKind::Produce(response) = answer(produce(&who, request)) else {
            panic!()
        };
        assert_eq!(
            response.responses[0].partition_responses[0].error_code,
            DENIED
        );
    }

    #[test]
    fn produce_allowed_passes_unchanged_without_amend() {
        let access = access(&[(Topic, "ord", Prefixed, Write)]);
        let who = who(&access);
        let request =
            ProduceRequest::default().with_topic_data(vec![produce_topic("orders", &[0])]);
        let (request, amend) = run(produce(&who, request));
        assert!(amend.is_none());
        let RequestKind::Produce(request) = request else {
            panic!()
        };
        assert_eq!(request.topic_data.len(), 1);
    }

    #[test]
    fn transactional_produce_needs_write_on_its_transactional_id() {
        let access = access(&[(Topic, "orders", Literal, Write)]);
        let who = who(&access);
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_transactional_id(Some(TransactionalId("tx".to_string().into())))
            .with_topic_data(vec![produce_topic("orders", &[0])]);
        let ResponseKind::Produce(response) = answer(produce(&who, request)) else {
            panic!()
        };
        assert_eq!(response.responses[0].partition_responses[0].error_code, 53);
    }

    fn fetch_topic(name: &str) -> fetch_request::FetchTopic {
        fetch_request::FetchTopic::default()
            .with_topic(TopicName(name.to_string().into()))
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition(0)
            ])
    }

    #[test]
    fn fetch_needs_read_and_a_follower_needs_cluster_action() {
        let access = access(&[(Topic, "orders", Literal, Read)]);
        let who = who(&access);
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![fetch_topic("orders"), fetch_topic("secret")]);
        let (request, amend) = run(fetch(&who, request));
        let RequestKind::Fetch(request) = request else {
            panic!()
        };
        assert_eq!(names(&request.topics, |t| t.topic.to_string()), ["orders"]);
        let ResponseKind::Fetch(response) =
            amended(&who, amend, ResponseKind::Fetch(FetchResponse::default()))
        else {
            panic!()
        };
        let secret = &response.responses[0];
        assert_eq!(secret.topic.as_str(), "secret");
        assert_eq!(secret.partitions[0].error_code, DENIED);
        assert_eq!(secret.partitions[0].high_watermark, -1);
        // Only denied topics: answered at once, no long-poll.
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![fetch_topic("secret")]);
        assert!(matches!(fetch(&who, request), Admitted::Answer(Some(_))));
        // A follower without ClusterAction is denied everything.
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(1))
            .with_topics(vec![fetch_topic("orders")]);
        let ResponseKind::Fetch(response) = answer(fetch(&who, request)) else {
            panic!()
        };
        assert_eq!(response.responses[0].partitions[0].error_code, DENIED);
    }

    #[test]
    fn list_offsets_needs_describe() {
        let access = access(&[(Topic, "orders", Literal, Read)]);
        let who = who(&access);
        let topic = |n: &str| {
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(n.to_string().into()))
                .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()])
        };
        let request = ListOffsetsRequest::default().with_topics(vec![topic("orders"), topic("x")]);
        let (request, amend) = run(list_offsets(&who, request));
        let RequestKind::ListOffsets(request) = request else {
            panic!()
        };
        assert_eq!(request.topics.len(), 1);
        let ResponseKind::ListOffsets(response) = amended(
            &who,
            amend,
            ResponseKind::ListOffsets(ListOffsetsResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(response.topics[0].name.as_str(), "x");
        assert_eq!(response.topics[0].partitions[0].error_code, DENIED);
    }

    fn metadata_topic(name: &str) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(name.to_string().into())))
            .with_topic_id(Uuid::from_u128(7))
    }

    #[test]
    fn metadata_for_all_topics_leaves_out_what_is_not_described() {
        let access = access(&[
            (Topic, "orders", Literal, Write),
            (Cluster, "kafka-cluster", Literal, Describe),
        ]);
        let who = who(&access);
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_include_topic_authorized_operations(true)
            .with_include_cluster_authorized_operations(true);
        let (_, amend) = run(metadata(&who, 12, request));
        let handler = MetadataResponse::default()
            .with_topics(vec![metadata_topic("orders"), metadata_topic("secret")]);
        let ResponseKind::Metadata(response) =
            amended(&who, amend, ResponseKind::Metadata(handler))
        else {
            panic!()
        };
        assert_eq!(response.topics.len(), 1);
        let ops = response.topics[0].topic_authorized_operations;
        // Write implies Describe; nothing else.
        assert_eq!(ops, 1 << Write.code() | 1 << Describe.code());
        assert_eq!(response.cluster_authorized_operations, 1 << Describe.code());
    }

    #[test]
    fn metadata_named_topics_denied_get_an_error_and_a_zero_id() {
        let access = access(&[(Topic, "orders", Literal, Describe)]);
        let who = who(&access);
        let named = |n: &str| {
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(n.to_string().into())))
        };
        let request =
            MetadataRequest::default().with_topics(Some(vec![named("orders"), named("secret")]));
        let (request, amend) = run(metadata(&who, 12, request));
        let RequestKind::Metadata(request) = request else {
            panic!()
        };
        assert_eq!(request.topics.as_ref().map(Vec::len), Some(1));
        let handler = MetadataResponse::default().with_topics(vec![metadata_topic("orders")]);
        let ResponseKind::Metadata(response) =
            amended(&who, amend, ResponseKind::Metadata(handler))
        else {
            panic!()
        };
        assert_eq!(response.topics.len(), 2);
        assert_eq!(response.topics[1].error_code, DENIED);
        assert!(response.topics[1].topic_id.is_nil());
        // v0 with every named topic denied must not become "all topics".
        let request = MetadataRequest::default().with_topics(Some(vec![named("secret")]));
        let (_, amend) = run(metadata(&who, 0, request));
        let handler = MetadataResponse::default().with_topics(vec![metadata_topic("orders")]);
        let ResponseKind::Metadata(response) =
            amended(&who, amend, ResponseKind::Metadata(handler))
        else {
            panic!()
        };
        assert_eq!(response.topics.len(), 1);
        assert_eq!(response.topics[0].error_code, DENIED);
    }

    #[test]
    fn create_and_delete_topics_check_the_cluster_then_each_topic() {
        let access = access(&[
            (Topic, "mine-", Prefixed, Create),
            (Topic, "mine-", Prefixed, Delete),
        ]);
        let who = who(&access);
        let creatable = |n: &str| {
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(n.to_string().into()))
        };
        let request = CreateTopicsRequest::default()
            .with_topics(vec![creatable("mine-a"), creatable("other")]);
        let (request, amend) = run(create_topics(&who, request));
        let RequestKind::CreateTopics(request) = request else {
            panic!()
        };
        assert_eq!(request.topics.len(), 1);
        let handler =
            CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default()
                .with_name(TopicName("mine-a".to_string().into()))
                .with_configs(Some(Vec::new()))]);
        let ResponseKind::CreateTopics(response) =
            amended(&who, amend, ResponseKind::CreateTopics(handler))
        else {
            panic!()
        };
        // Created, but its configs are not the client's to see.
        assert_eq!(response.topics[0].error_code, 0);
        assert_eq!(response.topics[0].topic_config_error_code, DENIED);
        assert_eq!(response.topics[1].error_code, DENIED);

        let request = DeleteTopicsRequest::default().with_topic_names(vec![
            TopicName("mine-a".to_string().into()),
            TopicName("other".to_string().into()),
        ]);
        let (request, amend) = run(delete_topics(&who, 5, request));
        let RequestKind::DeleteTopics(request) = request else {
            panic!()
        };
        assert_eq!(request.topic_names.len(), 1);
        let ResponseKind::DeleteTopics(response) = amended(
            &who,
            amend,
            ResponseKind::DeleteTopics(DeleteTopicsResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(response.responses[0].error_code, DENIED);
        assert_eq!(
            response.responses[0].name.as_deref().map(|n| n.as_str()),
            Some("other")
        );
    }

    #[test]
    fn partition_admin_apis_answer_denied_topics() {
        let access = access(&[]);
        let who = who(&access);
        let request = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName("t".to_string().into())),
        ]);
        let (_, amend) = run(create_partitions(&who, request));
        let ResponseKind::CreatePartitions(response) = amended(
            &who,
            amend,
            ResponseKind::CreatePartitions(CreatePartitionsResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(response.results[0].error_code, DENIED);

        let request = DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(TopicName("t".to_string().into()))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default(),
                ]),
        ]);
        let (_, amend) = run(delete_records(&who, request));
        let ResponseKind::DeleteRecords(response) = amended(
            &who,
            amend,
            ResponseKind::DeleteRecords(DeleteRecordsResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(response.topics[0].partitions[0].error_code, DENIED);

        let request = DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(TopicName("t".to_string().into()))
                .with_partition_indexes(vec![0]),
        ]);
        let (_, amend) = run(describe_producers(&who, request));
        let ResponseKind::DescribeProducers(response) = amended(
            &who,
            amend,
            ResponseKind::DescribeProducers(DescribeProducersResponse::default()),
        ) else {
            panic!()
        };
        assert_eq!(response.topics[0].partitions[0].error_code, DENIED);
    }
}
