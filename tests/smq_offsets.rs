//! Committed consumer-group offsets of the SMQ backend against a real SeaweedFS: stored
//! through tidegate's own code path (the SMQ offset store on a glommio executor, broker and filer
//! discovered from the master), read back, and checked as SeaweedFS's Go Kafka gateway
//! sees them: the file over the filer's HTTP port, and the Go gateway's own
//! `consumer_offset.FilerStorage` (`.cache/bin/go-offsets`) in both directions.
//!
//! Needs `TIDEGATE_SEAWEEDFS=DIR`, a directory `scripts/seaweedfs start DIR` runs in
//! (`scripts/test` provides one); without it the tests say so and pass.

use crate::common::{http_get, seaweedfs};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tidegate::backend::smq::discovery::{self, Endpoints};
use tidegate::backend::smq::Settings;
use tidegate::backend::{Backend, CommittedOffset, GroupOffsets};
use tidegate::error::Error;
use tidegate::TopicPartition;

/// Runs `body` on a glommio executor of its own, as a shard would.
fn on_executor<F, T>(body: impl FnOnce() -> F + Send + 'static) -> T
where
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(body)
        .expect("executor")
        .join()
        .expect("executor ran")
}

fn endpoints(ports: &HashMap<String, String>) -> Endpoints {
    Endpoints {
        broker: ports["BROKER"].clone(),
        filer: format!("127.0.0.1:{}", ports["FILER_GRPC_PORT"]),
    }
}

fn unique_group(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn committed(offset: i64, leader_epoch: i32, metadata: &str) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch,
        metadata: metadata.to_string(),
        committed_at_ms: 1_795_634_087_054,
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn sorted(mut offsets: GroupOffsets) -> GroupOffsets {
    offsets.sort_by(|a, b| (&a.0.topic, a.0.partition).cmp(&(&b.0.topic, b.0.partition)));
    offsets
}

/// SeaweedFS's Go gateway's offset storage, run as `.cache/bin/go-offsets`.
fn go_offsets(ports: &HashMap<String, String>, args: &[&str]) -> String {
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/bin/go-offsets");
    let output = Command::new(&binary)
        .arg("-filer")
        .arg(&ports["FILER"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/seaweedfs build makes it)",
                binary.display()
            )
        });
    assert!(
        output.status.success(),
        "go-offsets {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn offsets_round_trip_through_the_filer_in_the_go_gateways_layout() {
    let Some(ports) = seaweedfs() else { return };
    let group = unique_group("tidegate-offsets");
    let offsets: GroupOffsets = vec![
        (tp("orders", 0), committed(10, 3, "first \"batch\" é")),
        (tp("orders", 1), committed(20, -1, "")),
        (tp("payments", 0), committed(0, 7, "p")),
    ];

    let master = ports["MASTER"].clone();
    let (found, stored_back) = {
        let (group, offsets) = (group.clone(), offsets.clone());
        on_executor(move || async move {
            // As start-up does with --smq-master: broker and filer from the master.
            let found =
                discovery::resolve(Some(&master), None, None, None, Duration::from_secs(30))
                    .await
                    .expect("discovery");
            let store = Backend::Smq(found.clone(), settings("kafka"))
                .open_shard(0)
                .offsets;
            store.store(&group, &offsets).await.expect("store");
            let stored = store.load(&group).await.expect("load");
            (found, stored)
        })
    };
    assert_eq!(found, endpoints(&ports), "discovered from the master");
    assert_eq!(sorted(stored_back), sorted(offsets.clone()));

    // The file as SeaweedFS's Go gateway reads it (LookupDirectoryEntry, inline content).
    let path = format!("/topics/kafka/.meta/consumer_offsets/{group}/orders/0/offset");
    let (status, body) = http_get(&ports["FILER_PORT"], &path);
    assert_eq!(status, 200, "{path}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["type"], "offset");
    assert_eq!(json["value"], 10);
    assert_eq!(json["committed_at"], 1_795_634_087_054_i64);
    assert_eq!(json["metadata"], "first \"batch\" é");
    assert_eq!(json["leader_epoch"], 3);

    // The Go gateway's own code sees every partition...
    assert_eq!(
        go_offsets(&ports, &["fetch", &group]),
        "orders 0 10 first \"batch\" é\norders 1 20 \npayments 0 0 p\n"
    );
    assert!(go_offsets(&ports, &["groups"]).lines().any(|g| g == group));
    // ...and what it commits, tidegate reads (no epoch: -1), next to a tidegate overwrite.
    go_offsets(&ports, &["commit", &group, "orders", "2", "42", "from-go"]);
    let later = on_executor({
        let (group, endpoints) = (group.clone(), endpoints(&ports));
        move || async move {
            let store = Backend::Smq(endpoints, settings("kafka"))
                .open_shard(1)
                .offsets;
            let update = vec![(tp("orders", 1), committed(21, 4, "again"))];
            store.store(&group, &update).await.expect("overwrite");
            store.load(&group).await.expect("load")
        }
    });
    let later = sorted(later);
    assert_eq!(later.len(), 4);
    assert_eq!(later[1], (tp("orders", 1), committed(21, 4, "again")));
    assert_eq!(later[2].0, tp("orders", 2));
    assert_eq!((later[2].1.offset, later[2].1.leader_epoch), (42, -1));
    assert_eq!(later[2].1.metadata, "from-go");
    go_offsets(&ports, &["delete", &group]);
}

#[test]
fn deleting_offsets_removes_partitions_topics_and_empty_groups() {
    let Some(ports) = seaweedfs() else { return };
    let group = unique_group("tidegate-delete");
    let whole = unique_group("tidegate-delete-all");
    let endpoints = endpoints(&ports);
    let (after_partial, listed_partial, after_emptied, listed_emptied, whole_after, listed_whole) =
        on_executor({
            let (group, whole) = (group.clone(), whole.clone());
            move || async move {
                let store = Backend::Smq(endpoints, settings("kafka"))
                    .open_shard(0)
                    .offsets;
                let offsets = vec![
                    (tp("a", 0), committed(1, -1, "")),
                    (tp("a", 1), committed(2, -1, "")),
                    (tp("b", 0), committed(3, -1, "")),
                ];
                store.store(&group, &offsets).await.expect("store");
                store.store(&whole, &offsets).await.expect("store");

                // Partition b-0 and a never-committed one: b's directory goes with it.
                let some = [tp("b", 0), tp("c", 9)];
                store
                    .delete(&group, Some(&some))
                    .await
                    .expect("delete some");
                let after_partial = store.load(&group).await.expect("load");
                let listed_partial = store.list_groups().await.expect("list");
                // The rest: the group's directory goes too, so it is no longer listed.
                let rest = [tp("a", 0), tp("a", 1)];
                store
                    .delete(&group, Some(&rest))
                    .await
                    .expect("delete rest");
                let after_emptied = store.load(&group).await.expect("load");
                let listed_emptied = store.list_groups().await.expect("list");

                store.delete(&whole, None).await.expect("delete group");
                let whole_after = store.load(&whole).await.expect("load");
                let listed_whole = store.list_groups().await.expect("list");
                // Deleting what is not there is not an error.
                store.delete(&whole, None).await.expect("delete again");
                (
                    after_partial,
                    listed_partial,
                    after_emptied,
                    listed_emptied,
                    whole_after,
                    listed_whole,
                )
            }
        });
    assert_eq!(
        sorted(after_partial),
        vec![
            (tp("a", 0), committed(1, -1, "")),
            (tp("a", 1), committed(2, -1, ""))
        ]
    );
    assert!(listed_partial.contains(&group));
    let b_dir = format!("/topics/kafka/.meta/consumer_offsets/{group}/b/");
    assert_eq!(
        http_get(&ports["FILER_PORT"], &b_dir).0,
        404,
        "{b_dir} left behind"
    );
    assert_eq!(after_emptied, vec![]);
    assert!(
        !listed_emptied.contains(&group),
        "emptied group still listed"
    );
    assert_eq!(whole_after, vec![]);
    assert!(!listed_whole.contains(&whole));
    assert!(!go_offsets(&ports, &["groups"])
        .lines()
        .any(|g| g == group || g == whole));
}

#[test]
fn groups_that_cannot_be_a_directory_are_refused_and_unknown_groups_are_empty() {
    let Some(ports) = seaweedfs() else { return };
    let endpoints = endpoints(&ports);
    let unknown = unique_group("tidegate-never-committed");
    let (refused, unknown_offsets, no_base_dir) = on_executor(move || async move {
        // A namespace nobody committed in: its base directory does not exist.
        let fresh = Backend::Smq(endpoints.clone(), settings(unique_group("tidegate-ns")))
            .open_shard(0)
            .offsets;
        let no_base_dir = fresh.list_groups().await;
        let store = Backend::Smq(endpoints, settings("kafka"))
            .open_shard(0)
            .offsets;
        let offsets = vec![(tp("t", 0), committed(1, -1, ""))];
        let refused = [
            store.store("team/app", &offsets).await.err(),
            store.load("team/app").await.err(),
            store.delete("..", None).await.err(),
        ];
        (refused, store.load(&unknown).await, no_base_dir)
    });
    for error in refused {
        assert!(matches!(error, Some(Error::InvalidGroupId(_))), "{error:?}");
    }
    let team = "/topics/kafka/.meta/consumer_offsets/team/app/t/0/offset";
    assert_eq!(http_get(&ports["FILER_PORT"], team).0, 404);
    assert_eq!(unknown_offsets, Ok(vec![]));
    assert_eq!(no_base_dir, Ok(vec![]));
}

/// The SMQ backend's settings for a namespace.
fn settings(namespace: impl Into<String>) -> Settings {
    Settings {
        namespace: namespace.into(),
        decompressed_limit: 64 << 20,
        tls: None,
        acks_all: tidegate::config::SmqAcksAll::Flushed,
        fetch_poll: std::time::Duration::from_millis(500),
        batch_cache_bytes: 64 << 20,
    }
}
