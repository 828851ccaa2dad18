//! The shards' snapshots in Prometheus's text exposition format (version 0.0.4), every
//! series labelled by shard.

use super::histogram::{upper_bound_seconds, LatencyBuckets};
use super::seaweedfs::RpcSnapshot;
use super::{GroupCounts, SmqCounts, Snapshot, TopicCounts};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use std::borrow::Cow;
use std::fmt::Write;

/// The Content-Type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric with one series per shard: name, TYPE, HELP, and its value in a snapshot.
type PerShard = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Snapshot) -> u64,
);

/// Every metric of every shard, each family once with its HELP and TYPE.
pub fn render(shards: &[Snapshot]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "tidegate_build_info",
        "gauge",
        "version and commit built from",
    );
    let _ = writeln!(
        out,
        "tidegate_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        env!("TIDEGATE_COMMIT")
    );
    let per_shard: [PerShard; 10] = [
        (
            "tidegate_shard_listening",
            "gauge",
            "1 while the shard accepts connections on every listener",
            |s| u64::from(s.listening),
        ),
        (
            "tidegate_received_bytes_total",
            "counter",
            "bytes of requests read, length prefixes included",
            |s| s.bytes_in,
        ),
        (
            "tidegate_sent_bytes_total",
            "counter",
            "bytes of responses written",
            |s| s.bytes_out,
        ),
        (
            "tidegate_connections_open",
            "gauge",
            "client connections open",
            |s| s.connections_accepted.saturating_sub(s.connections_closed),
        ),
        (
            "tidegate_connections_accepted_total",
            "counter",
            "client connections accepted",
            |s| s.connections_accepted,
        ),
        (
            "tidegate_connections_refused_total",
            "counter",
            "connections closed on accept: --max-connections or --max-connections-per-ip",
            |s| s.connections_refused,
        ),
        (
            "tidegate_connections_closed_for_protocol_errors_total",
            "counter",
            "connections closed for bytes that are not a request tidegate can answer",
            |s| s.protocol_errors,
        ),
        (
            "tidegate_requests_total",
            "counter",
            "requests answered, all APIs",
            |s| s.requests.iter().map(|r| r.1).sum(),
        ),
        (
            "tidegate_shard_memory_used_bytes",
            "gauge",
            "bytes the shard holds in requests being read and handled and answers not yet \
             written (its --shard-memory-bytes budget in use)",
            |s| s.memory_used as u64,
        ),
        (
            "tidegate_shard_memory_limit_bytes",
            "gauge",
            "the shard's --shard-memory-bytes budget",
            |s| s.memory_limit as u64,
        ),
    ];
    for (name, kind, help, value) in per_shard {
        family(&mut out, name, kind, help);
        for shard in shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", shard.shard, value(shard));
        }
    }
    let name = "tidegate_reading_paused_seconds_total";
    family(
        &mut out,
        name,
        "counter",
        "time the shard's connections waited for room in a memory budget (theirs or the \
         shard's) before reading more, summed over connections",
    );
    for shard in shards {
        let paused = shard.reading_paused.as_secs_f64();
        let _ = writeln!(out, "{name}{{shard=\"{}\"}} {paused}", shard.shard);
    }
    if shards.iter().any(|s| s.smq_counts.is_some()) {
        let name = "tidegate_batch_cache_reads_total";
        family(
            &mut out,
            name,
            "counter",
            "SeaweedMQ reads answered from the shard's cache of recent batches (hit) and \
             sent to the broker (miss)",
        );
        for shard in shards {
            if let Some(reads) = shard.smq_counts {
                for (result, count) in [("hit", reads.cache_hits), ("miss", reads.cache_misses)] {
                    let labels = format!("shard=\"{}\",result=\"{result}\"", shard.shard);
                    let _ = writeln!(out, "{name}{{{labels}}} {count}");
                }
            }
        }
        type Count = fn(&SmqCounts) -> u64;
        let per_shard: [(&str, &str, Count); 4] = [
            (
                "tidegate_flushed_file_reads_total",
                "SeaweedMQ reads (cache misses and reads ahead) answered from the log files the \
                 broker flushed to the filer rather than by the broker",
                |counts| counts.from_files,
            ),
            (
                "tidegate_reads_ahead_total",
                "SeaweedMQ: flushed log files read into the batch cache ahead of consumers \
                 catching up",
                |counts| counts.reads_ahead,
            ),
            (
                "tidegate_truncations_detected_total",
                "SeaweedMQ: acknowledged offset ranges the broker was found to have lost (it \
                 stopped before flushing them), each logged as an error; their producers were \
                 told to send them again",
                |counts| counts.truncations,
            ),
            (
                "tidegate_torn_batches_skipped_total",
                "SeaweedMQ: idempotent batches a crashed tidegate left stored in part, skipped \
                 after its restart in a new leader epoch, each logged as a warning; their \
                 producers' retries were stored whole after them",
                |counts| counts.torn_batches,
            ),
        ];
        for (name, help, count) in per_shard {
            family(&mut out, name, "counter", help);
            for shard in shards {
                if let Some(counts) = &shard.smq_counts {
                    let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", shard.shard, count(counts));
                }
            }
        }
    }
    family(
        &mut out,
        "tidegate_api_requests_total",
        "counter",
        "requests answered, by API",
    );
    for shard in shards {
        for (key, count, _) in &shard.requests {
            let _ = writeln!(
                out,
                "tidegate_api_requests_total{{shard=\"{}\",api=\"{}\"}} {count}",
                shard.shard,
                api_name(*key)
            );
        }
    }
    family(
        &mut out,
        "tidegate_api_errors_total",
        "counter",
        "error codes in answers, by API and code (one per partition or group that has one)",
    );
    for shard in shards {
        for (key, code, count) in &shard.errors {
            let error = ResponseError::try_from_code(*code)
                .map_or_else(|| "Unknown".to_string(), |e| format!("{e:?}"));
            let _ = writeln!(
                out,
                "tidegate_api_errors_total{{shard=\"{}\",api=\"{}\",error_code=\"{code}\",\
                 error=\"{error}\"}} {count}",
                shard.shard,
                api_name(*key)
            );
        }
    }
    let name = "tidegate_request_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "time from a request read to its answer ready, by API",
    );
    for shard in shards {
        for (key, count, latency) in &shard.requests {
            let labels = format!("shard=\"{}\",api=\"{}\"", shard.shard, api_name(*key));
            histogram(&mut out, name, &labels, latency, *count);
        }
    }
    render_topics(&mut out, shards);
    render_seaweedfs(&mut out, shards);
    render_groups(&mut out, shards);
    out
}

/// Records and bytes by topic (`--metrics-topic-limit`); nothing when it is 0.
fn render_topics(out: &mut String, shards: &[Snapshot]) {
    type Count = fn(&TopicCounts) -> u64;
    let families: [(&str, &str, Count); 4] = [
        (
            "tidegate_topic_produced_records_total",
            "records stored, by topic",
            |c| c.produced_records,
        ),
        (
            "tidegate_topic_produced_bytes_total",
            "bytes of record batches stored, by topic",
            |c| c.produced_bytes,
        ),
        (
            "tidegate_topic_fetched_records_total",
            "records in the batches Fetch answers carried, by topic",
            |c| c.fetched_records,
        ),
        (
            "tidegate_topic_fetched_bytes_total",
            "bytes of record batches Fetch answers carried, by topic",
            |c| c.fetched_bytes,
        ),
    ];
    if shards.iter().all(|s| s.topics.is_empty()) {
        return;
    }
    for (name, help, count) in families {
        family(out, name, "counter", help);
        for shard in shards {
            for (topic, counts) in &shard.topics {
                let topic = escape(topic);
                let labels = format!("shard=\"{}\",topic=\"{topic}\"", shard.shard);
                let _ = writeln!(out, "{name}{{{labels}}} {}", count(counts));
            }
        }
    }
}

/// gRPC calls to SeaweedFS by service and RPC: how many, how many failed, how long they took.
fn render_seaweedfs(out: &mut String, shards: &[Snapshot]) {
    if shards.iter().all(|s| s.seaweedfs.is_empty()) {
        return;
    }
    let labels = |shard: &Snapshot, rpc: &RpcSnapshot| {
        format!(
            "shard=\"{}\",service=\"{}\",rpc=\"{}\"",
            shard.shard, rpc.service, rpc.rpc
        )
    };
    let name = "tidegate_seaweedfs_calls_total";
    family(
        out,
        name,
        "counter",
        "gRPC calls to SeaweedFS (a stream counts once, opened)",
    );
    for shard in shards {
        for rpc in &shard.seaweedfs {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(shard, rpc), rpc.calls);
        }
    }
    let name = "tidegate_seaweedfs_errors_total";
    family(
        out,
        name,
        "counter",
        "gRPC calls to SeaweedFS that failed, by gRPC status (transport: the connection failed)",
    );
    for shard in shards {
        for rpc in &shard.seaweedfs {
            for (code, count) in &rpc.errors {
                let labels = labels(shard, rpc);
                let _ = writeln!(out, "{name}{{{labels},code=\"{code}\"}} {count}");
            }
        }
    }
    let name = "tidegate_seaweedfs_call_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "time from a gRPC call to SeaweedFS to its answer (a stream: to its opening)",
    );
    for shard in shards {
        for rpc in &shard.seaweedfs {
            let count = rpc.latency.counts.iter().sum();
            histogram(out, name, &labels(shard, rpc), &rpc.latency, count);
        }
    }
}

/// Members, rebalances and lag of the groups each shard coordinates
/// (`--metrics-group-limit`).
fn render_groups(out: &mut String, shards: &[Snapshot]) {
    type Count = fn(&GroupCounts) -> u64;
    let families: [(&str, &str, &str, Count); 2] = [
        (
            "tidegate_group_members",
            "gauge",
            "members of the group",
            |c| c.members,
        ),
        (
            "tidegate_group_rebalances_total",
            "counter",
            "rebalances the group completed (new generations, or KIP-848 group epochs)",
            |c| c.rebalances,
        ),
    ];
    if shards.iter().any(|s| !s.groups.is_empty()) {
        for (name, kind, help, count) in families {
            family(out, name, kind, help);
            for shard in shards {
                for (group, counts) in &shard.groups {
                    let group = escape(group);
                    let labels = format!("shard=\"{}\",group=\"{group}\"", shard.shard);
                    let _ = writeln!(out, "{name}{{{labels}}} {}", count(counts));
                }
            }
        }
    }
    if shards.iter().all(|s| s.lag.is_empty()) {
        return;
    }
    let name = "tidegate_consumer_group_lag";
    family(
        out,
        name,
        "gauge",
        "records between a group's committed offset and the partition's high-water mark",
    );
    for shard in shards {
        for lag in &shard.lag {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\",group=\"{}\",topic=\"{}\",partition=\"{}\"}} {}",
                shard.shard,
                escape(&lag.group),
                escape(&lag.tp.topic),
                lag.tp.partition,
                lag.lag
            );
        }
    }
}

/// A histogram's series: cumulative `le` buckets, sum and count.
fn histogram(out: &mut String, name: &str, labels: &str, latency: &LatencyBuckets, count: u64) {
    let mut cumulative = 0;
    for (index, in_bucket) in latency.counts.iter().enumerate() {
        cumulative += in_bucket;
        let le = upper_bound_seconds(index).map_or("+Inf".into(), |s| s.to_string());
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let sum = latency.sum_micros as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

/// A label value as the text format quotes it: a group id may hold any character.
fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    Cow::Owned(escaped)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The API's name as Kafka spells it in code (`Produce`, `OffsetCommit`).
fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| key.to_string(), |api| format!("{api:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Lag, ShardMetrics};
    use std::time::Duration;

    #[test]
    fn counters_and_histograms_in_text_format() {
        let metrics = ShardMetrics::default();
        metrics.answered(0, Duration::from_micros(20), &[]);
        metrics.answered(0, Duration::from_micros(20), &[3]);
        metrics.received(100);
        let mut busy = ShardMetrics::default().snapshot(1);
        busy.memory_used = 4096;
        busy.reading_paused = Duration::from_millis(1500);
        busy.smq_counts = Some(SmqCounts {
            cache_hits: 7,
            cache_misses: 2,
            from_files: 1,
            reads_ahead: 5,
            truncations: 3,
            torn_batches: 4,
        });
        let text = render(&[metrics.snapshot(0), busy]);
        for line in [
            "tidegate_api_requests_total{shard=\"0\",api=\"Produce\"} 2",
            "tidegate_api_errors_total{shard=\"0\",api=\"Produce\",error_code=\"3\",\
             error=\"UnknownTopicOrPartition\"} 1",
            "tidegate_request_duration_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"0.000016\"} 0",
            "tidegate_request_duration_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"0.000032\"} 2",
            "tidegate_request_duration_seconds_bucket{shard=\"0\",api=\"Produce\",le=\"+Inf\"} 2",
            "tidegate_request_duration_seconds_count{shard=\"0\",api=\"Produce\"} 2",
            "tidegate_received_bytes_total{shard=\"0\"} 100",
            "tidegate_received_bytes_total{shard=\"1\"} 0",
            "tidegate_shard_memory_used_bytes{shard=\"1\"} 4096",
            "tidegate_reading_paused_seconds_total{shard=\"1\"} 1.5",
            "tidegate_batch_cache_reads_total{shard=\"1\",result=\"hit\"} 7",
            "tidegate_batch_cache_reads_total{shard=\"1\",result=\"miss\"} 2",
            "tidegate_flushed_file_reads_total{shard=\"1\"} 1",
            "tidegate_reads_ahead_total{shard=\"1\"} 5",
            "tidegate_truncations_detected_total{shard=\"1\"} 3",
            "tidegate_torn_batches_skipped_total{shard=\"1\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(text.matches("# TYPE tidegate_requests_total ").count(), 1);
    }

    #[test]
    fn topics_groups_and_lag_with_label_values_escaped() {
        let metrics = ShardMetrics::default();
        metrics.produced("orders", 16, 1600);
        let mut snapshot = metrics.snapshot(0);
        let counts = GroupCounts {
            members: 2,
            rebalances: 3,
        };
        snapshot.groups = vec![("a \"quoted\" \\ group".into(), counts)];
        snapshot.lag = vec![Lag {
            group: "g".into(),
            tp: crate::TopicPartition::new("orders", 1),
            lag: 7,
        }];
        let text = render(&[snapshot]);
        for line in [
            "tidegate_topic_produced_records_total{shard=\"0\",topic=\"orders\"} 16",
            "tidegate_topic_produced_bytes_total{shard=\"0\",topic=\"orders\"} 1600",
            "tidegate_topic_fetched_records_total{shard=\"0\",topic=\"orders\"} 0",
            "tidegate_group_members{shard=\"0\",group=\"a \\\"quoted\\\" \\\\ group\"} 2",
            "tidegate_group_rebalances_total{shard=\"0\",group=\"a \\\"quoted\\\" \\\\ group\"} 3",
            "tidegate_consumer_group_lag{shard=\"0\",group=\"g\",topic=\"orders\",partition=\"1\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
