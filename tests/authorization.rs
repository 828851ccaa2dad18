//! ACLs as a client sees them: on a SASL listener with no ACLs, an authenticated user who is
//! not a super user may do nothing (Kafka's default once listeners authenticate), and sees no
//! topic in Metadata, while a super user on another connection works as usual. Once the
//! super user grants alice a topic and a group through CreateAcls, alice works while bob,
//! at the same time, is still denied.

use crate::common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateTopicsRequest, DeleteTopicsRequest, InitProducerIdRequest,
    JoinGroupRequest, MetadataRequest, ProduceResponse, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion};
use kafka_protocol::records::Compression;
use uuid::Uuid;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// A connection authenticated with SASL PLAIN.
fn login(server: &Server, user: &str, password: &str) -> Client {
    let mut client = server.client();
    let handshake = SaslHandshakeRequest::default().with_mechanism("PLAIN".into());
    assert_eq!(client.call(&handshake, 1).error_code, 0);
    let token = format!("\0{user}\0{password}");
    let authenticate =
        SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into());
    assert_eq!(
        client.call(&authenticate, 2).error_code,
        0,
        "{user} logs in"
    );
    client
}

fn listed_topics(client: &mut Client) -> Vec<String> {
    let request = MetadataRequest::default().with_topics(None);
    let response = client.call(&request, 12);
    let names = response.topics.iter().filter_map(|t| t.name.as_ref());
    names.map(|n| n.to_string()).collect()
}

fn denied_without_acls(backend: &str, extra: &[&str]) {
    let dir = std::env::temp_dir().join(format!("tidegate-authz-{}-{backend}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let users = dir.join("users");
    std::fs::write(
        &users,
        "admin:admin-secret\nalice:alice-secret\nbob:bob-secret\n",
    )
    .expect("users file");
    let users = users.to_str().expect("utf-8 path");
    let mut args = vec![
        "--users-file",
        users,
        "--super-users",
        "User:admin",
        "--shards",
        "2",
    ];
    args.extend_from_slice(extra);
    let server = Server::start_listeners(&["SASL=SASL_PLAINTEXT://127.0.0.1:0"], &args);
    let topic = format!("authz-{}-{backend}", std::process::id());

    let mut admin = login(&server, "admin", "admin-secret");
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(&topic))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    assert_eq!(admin.call(&create, 7).topics[0].error_code, 0);
    let batch = encode_batch(&records(0, 2, None), Compression::None);
    assert_eq!(
        produce(&mut admin, &topic, 0, batch.clone()).0,
        0,
        "the super user produces"
    );

    let mut alice = login(&server, "alice", "alice-secret");
    assert_eq!(
        produce(&mut alice, &topic, 0, batch.clone()).0,
        TOPIC_AUTHORIZATION_FAILED
    );
    let fetched = alice.call(&fetch_request(&topic, 0, 0, 0), 12);
    assert_eq!(
        fetched.responses[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let join = JoinGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId("app".into()))
        .with_protocol_type("consumer".into())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000);
    assert_eq!(alice.call(&join, 5).error_code, GROUP_AUTHORIZATION_FAILED);
    let delete = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(topic_name(&topic)))
    ]);
    assert_eq!(
        alice.call(&delete, 6).responses[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let init = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    assert_eq!(
        alice.call(&init, 4).error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    // Metadata lists only what the client may describe; auto-creation needs Create.
    assert!(listed_topics(&mut alice).is_empty());
    let unknown = format!("{topic}-new");
    assert_eq!(
        produce(&mut alice, &unknown, 0, batch.clone()).0,
        TOPIC_AUTHORIZATION_FAILED
    );

    // The super user, on its own connection, still works, and its topic survived.
    assert!(listed_topics(&mut admin).contains(&topic));
    assert!(
        !listed_topics(&mut admin).contains(&unknown),
        "not auto-created"
    );
    assert_eq!(produce(&mut admin, &topic, 0, batch.clone()).0, 0);
    let fetched = admin.call(&fetch_request(&topic, 0, 0, 0), 12);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);

    // Granted a topic and a group (ACL codes: topic 2, group 3; literal 3; write 4, read 3;
    // allow 3), alice works; bob, on his own connection at the same time, does not.
    let allow = |resource_type: i8, name: &str, operation: i8| {
        AclCreation::default()
            .with_resource_type(resource_type)
            .with_resource_name(name.to_string().into())
            .with_resource_pattern_type(3)
            .with_principal("User:alice".into())
            .with_host("*".into())
            .with_operation(operation)
            .with_permission_type(3)
    };
    let grant = CreateAclsRequest::default().with_creations(vec![
        allow(2, &topic, 4),
        allow(2, &topic, 3),
        allow(3, "app", 3),
    ]);
    let created = admin.call(&grant, 3);
    assert!(
        created.results.iter().all(|r| r.error_code == 0),
        "{created:?}"
    );
    let mut bob = login(&server, "bob", "bob-secret");
    let (error, offset) = produce(&mut alice, &topic, 0, batch.clone());
    assert_eq!((error, offset), (0, 4), "alice produces after the grant");
    assert_eq!(
        produce(&mut bob, &topic, 0, batch.clone()).0,
        TOPIC_AUTHORIZATION_FAILED,
        "bob is still denied"
    );
    let fetched = alice.call(&fetch_request(&topic, 0, 0, 0), 12);
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);
    assert_eq!(
        listed_topics(&mut alice),
        vec![topic.clone()],
        "Describe comes with Read"
    );
    assert!(listed_topics(&mut bob).is_empty());
    assert_ne!(alice.call(&join, 5).error_code, GROUP_AUTHORIZATION_FAILED);
    assert_eq!(bob.call(&join, 5).error_code, GROUP_AUTHORIZATION_FAILED);

    if extra.contains(&"smq") {
        // A gateway that has not seen the topic yet must look its id up (on the filer)
        // before authorizing a Produce v13. A Produce by name pipelined behind it must not
        // overtake it: a producer's requests are appended in the order it sent them.
        let id = topic_id(&mut admin, &topic);
        let fresh = Server::start_listeners(&["SASL=SASL_PLAINTEXT://127.0.0.1:0"], &args);
        let mut alice = login(&fresh, "alice", "alice-secret");
        let mut by_id = produce_request("", 0, batch.clone(), -1);
        by_id.topic_data[0].topic_id = id;
        alice.send_frame(&request_frame(&by_id, 13, 100));
        let by_name = produce_request(&topic, 0, batch, -1);
        alice.send_frame(&request_frame(&by_name, PRODUCE_VERSION, 101));
        let first = read_produce(&mut alice, 13);
        let second = read_produce(&mut alice, PRODUCE_VERSION);
        assert_eq!((first.0, second.0), (0, 0), "both appended");
        assert_eq!(
            second.1,
            first.1 + 2,
            "the Produce by id was appended first, as it was sent"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn topic_id(client: &mut Client, topic: &str) -> Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    client.call(&request, 12).topics[0].topic_id
}

/// The (error code, base offset) of the next answer on the connection, a Produce's.
fn read_produce(client: &mut Client, version: i16) -> (i16, i64) {
    let mut frame = client.read_frame().expect("a produce answer");
    let header_version = ProduceResponse::header_version(version);
    ResponseHeader::decode(&mut frame, header_version).expect("header");
    let response = ProduceResponse::decode(&mut frame, version).expect("produce answer");
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[test]
fn a_user_without_acls_is_denied_and_a_super_user_is_not() {
    denied_without_acls("memory", &[]);
    if let Some(ports) = seaweedfs() {
        // A namespace of its own: the users and ACLs it stores stay out of other tests.
        let namespace = format!("authz-{}", std::process::id());
        denied_without_acls(
            "smq",
            &[
                "--backend",
                "smq",
                "--smq-master",
                &ports["MASTER"],
                "--smq-namespace",
                &namespace,
            ],
        );
    }
}
