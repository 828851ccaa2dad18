//! tidegate against a SeaweedFS whose gRPC is mutual TLS (its security.toml): with
//! --smq-tls-ca, --smq-tls-certificate and --smq-tls-key it discovers the broker and filer
//! from the master, produces, fetches and commits offsets, every call over TLS; without
//! them, or with the wrong CA, it fails start-up at once, saying which flag to look at; and
//! so it does with them against a SeaweedFS without TLS.
//!
//! Needs `TIDEGATE_SEAWEEDFS_TLS=DIR`, a directory `SEAWEEDFS_TLS=1 scripts/seaweedfs start
//! DIR` runs in, and for the last test `TIDEGATE_SEAWEEDFS` (a plain one) too;
//! `scripts/test` provides both. Without them the tests say so and pass.

use crate::common::{
    create_topic, encode_batch, fetch, filer_list, http_get, produce, records, seaweedfs,
    seaweedfs_tls, start_up_failure, visible, Client, Server,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, OffsetCommitRequest};
use kafka_protocol::records::Compression;
use std::collections::HashMap;
use std::time::Duration;

const PARTITIONS: i32 = 2;

/// The flags that point tidegate at the TLS SeaweedFS, with its CA, certificate and key.
fn tls_flags(ports: &HashMap<String, String>) -> Vec<String> {
    [
        ("--smq-master", "MASTER"),
        ("--smq-tls-ca", "TLS_CA"),
        ("--smq-tls-certificate", "TLS_CERT"),
        ("--smq-tls-key", "TLS_KEY"),
    ]
    .into_iter()
    .flat_map(|(flag, key)| [flag.to_string(), ports[key].clone()])
    .collect()
}

#[test]
fn records_and_offsets_go_through_to_a_seaweedfs_with_grpc_mutual_tls() {
    let Some(ports) = seaweedfs_tls() else { return };
    let topic = format!("tls-{}", uuid::Uuid::new_v4().simple());
    let mut args = vec!["--backend", "smq", "--shards", "2"];
    let flags = tls_flags(&ports);
    args.extend(flags.iter().map(String::as_str));
    // Start-up went over TLS already: discovery (master), the checks (broker and filer),
    // users, ACLs and producer states read back (filer).
    let server = Server::start(&args);
    let mut client = server.client();
    create_topic(&mut client, &topic, PARTITIONS);
    for partition in 0..PARTITIONS {
        let sent = records(partition, 20, None);
        let batch = encode_batch(&sent, Compression::Lz4);
        assert_eq!(produce(&mut client, &topic, partition, batch), (0, 0));
        let (error, fetched) = fetch(&mut client, &topic, partition, 0, 5_000);
        assert_eq!(error, 0, "fetch {topic}/{partition}");
        assert_eq!(visible(&fetched), visible(&sent), "{topic}/{partition}");
    }

    // A committed offset is a file the coordinator writes into the filer.
    let group = format!("tls-group-{}", uuid::Uuid::new_v4().simple());
    let mut coordinator = coordinator_of(&server, &group);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(group.clone().into()))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(crate::common::topic_name(&topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(17)
                .with_committed_leader_epoch(-1)])]);
    let response = coordinator.call(&commit, 9);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    let file = format!("/topics/kafka/.meta/consumer_offsets/{group}/{topic}/1/offset");
    let (status, body) = http_get(&ports["FILER_PORT"], &file);
    assert_eq!(status, 200, "{file}: {body}");
    let stored: serde_json::Value = serde_json::from_str(&body).expect("offset JSON");
    assert_eq!(stored["value"], 17, "{body}");
    assert!(!filer_list(&ports["FILER_PORT"], &format!("/topics/kafka/{topic}")).is_empty());
}

/// The shard that coordinates `group`, connected to.
fn coordinator_of(server: &Server, group: &str) -> Client {
    let request =
        FindCoordinatorRequest::default().with_coordinator_keys(vec![group.to_string().into()]);
    let found = server.client().call(&request, 4).coordinators.remove(0);
    assert_eq!(found.error_code, 0);
    let address = server
        .brokers
        .iter()
        .find(|b| i32::from(b.port()) == found.port)
        .expect("the coordinator is one of the advertised brokers");
    Client::connect(*address)
}

#[test]
fn without_the_right_tls_flags_start_up_fails_at_once_saying_which() {
    let Some(ports) = seaweedfs_tls() else { return };
    let master = ["--smq-master".to_string(), ports["MASTER"].clone()];
    let mut wrong_ca = tls_flags(&ports);
    // The client certificate is no CA: SeaweedFS's certificate does not chain to it.
    wrong_ca[3] = ports["TLS_CERT"].clone();
    let mut wrong_name = tls_flags(&ports);
    wrong_name.extend(["--smq-tls-server-name".into(), "elsewhere.example".into()]);
    let ca_only = tls_flags(&ports)[..4].to_vec();
    for (args, says) in [
        (
            &master[..],
            "--smq-tls-ca, --smq-tls-certificate and --smq-tls-key",
        ),
        (&wrong_ca[..], "not signed by a CA in --smq-tls-ca"),
        (&wrong_name[..], "--smq-tls-server-name"),
        (
            &ca_only[..],
            "--smq-tls-certificate and --smq-tls-key must be",
        ),
    ] {
        let (status, stderr) = start_up_failure(&smq(args), Duration::from_secs(10));
        assert_eq!(status, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn tls_flags_against_a_seaweedfs_without_tls_fail_start_up_saying_so() {
    let (Some(plain), Some(tls)) = (seaweedfs(), seaweedfs_tls()) else {
        return;
    };
    let mut args = tls_flags(&tls);
    args[1] = plain["MASTER"].clone();
    let (status, stderr) = start_up_failure(&smq(&args), Duration::from_secs(10));
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains("does not speak TLS") && stderr.contains("drop the --smq-tls-* flags"),
        "{stderr}"
    );
}

/// The SMQ backend on one shard, with `args`. (The start-up timeout is the default 30 s:
/// refusals must not wait for it.)
fn smq(args: &[String]) -> Vec<&str> {
    let mut all = vec!["--backend", "smq", "--shards", "1"];
    all.extend(args.iter().map(String::as_str));
    all
}
