//! Topic configuration: the Kafka topic configs tidegate knows, their defaults, which of
//! them it enforces, and the one validation a config value passes before it is stored.
//!
//! Kafka refuses a config name it does not know (INVALID_CONFIG), so a client that sets one
//! by mistake hears about it; tidegate does the same. A config whose promise tidegate
//! cannot keep is refused too, rather than stored and ignored: a topic created with
//! `cleanup.policy=compact` would silently never compact. Configs that concern a broker's
//! own log segments or replicas (`segment.bytes`, `min.insync.replicas`, …) have no
//! meaning for a gateway: they are accepted, stored and reported, and change nothing.

use crate::backend::TopicMeta;
use crate::config::Config;
use crate::error::{Error, Result};

pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const CLEANUP_POLICY: &str = "cleanup.policy";

/// What a config's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number at least this.
    Int(i64),
    Double,
    Bool,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Anything (lists of replicas, …).
    Text,
}

/// Every topic config Kafka 4.x knows, with what its value must look like.
const KNOWN: &[(&str, Kind)] = &[
    (CLEANUP_POLICY, Kind::OneOf(&["delete"])),
    (
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
    ("compression.gzip.level", Kind::Int(-1)),
    ("compression.lz4.level", Kind::Int(1)),
    ("compression.zstd.level", Kind::Int(-131_072)),
    ("delete.retention.ms", Kind::Int(0)),
    ("file.delete.delay.ms", Kind::Int(0)),
    ("flush.messages", Kind::Int(1)),
    ("flush.ms", Kind::Int(0)),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int(0)),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Int(-2)),
    ("local.retention.ms", Kind::Int(-2)),
    ("max.compaction.lag.ms", Kind::Int(1)),
    (MAX_MESSAGE_BYTES, Kind::Int(0)),
    ("message.downconversion.enable", Kind::Bool),
    ("message.timestamp.after.max.ms", Kind::Int(0)),
    ("message.timestamp.before.max.ms", Kind::Int(0)),
    ("message.timestamp.difference.max.ms", Kind::Int(0)),
    ("message.timestamp.type", Kind::OneOf(&["CreateTime"])),
    ("min.cleanable.dirty.ratio", Kind::Double),
    ("min.compaction.lag.ms", Kind::Int(0)),
    ("min.insync.replicas", Kind::Int(1)),
    ("preallocate", Kind::Bool),
    ("remote.log.copy.disable", Kind::Bool),
    ("remote.log.delete.on.disable", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Int(-1)),
    ("retention.ms", Kind::Int(-1)),
    ("segment.bytes", Kind::Int(14)),
    ("segment.index.bytes", Kind::Int(4)),
    ("segment.jitter.ms", Kind::Int(0)),
    ("segment.ms", Kind::Int(1)),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Checks one config as CreateTopics (or an alter) would store it: a known name, and a
/// value of the right shape that tidegate can honour.
pub fn validate(name: &str, value: &str) -> Result<()> {
    let Some((_, kind)) = KNOWN.iter().find(|(known, _)| *known == name) else {
        return Err(Error::InvalidConfig(format!("unknown topic config {name}")));
    };
    let invalid = |why: String| Err(Error::InvalidConfig(format!("{name}={value}: {why}")));
    match *kind {
        Kind::Int(min) => match value.trim().parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(_) => invalid(format!("must be at least {min}")),
            Err(_) => invalid("not a whole number".into()),
        },
        Kind::Double => match value.trim().parse::<f64>() {
            Ok(_) => Ok(()),
            Err(_) => invalid("not a number".into()),
        },
        Kind::Bool => match value.trim() {
            "true" | "false" => Ok(()),
            _ => invalid("must be true or false".into()),
        },
        Kind::OneOf(allowed) if allowed.contains(&value.trim()) => Ok(()),
        Kind::OneOf(allowed) => invalid(format!(
            "tidegate supports only {} (compaction and LogAppendTime are not implemented)",
            allowed.join(", ")
        )),
        Kind::Text => Ok(()),
    }
}

/// Where a config's value comes from, numbered as DescribeConfigs and CreateTopics say it.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// A topic's configs as a client is shown them: (name, value, source), the ones set on the
/// topic over tidegate's defaults, by name.
pub fn of_topic(topic: &TopicMeta, config: &Config) -> Vec<(String, String, i8)> {
    let mut entries: Vec<_> = defaults(config)
        .into_iter()
        .filter(|(name, _)| !topic.configs.contains_key(*name))
        .map(|(name, value)| (name.to_string(), value, SOURCE_DEFAULT))
        .chain(
            topic
                .configs
                .iter()
                .map(|(name, value)| (name.clone(), value.clone(), SOURCE_TOPIC)),
        )
        .collect();
    entries.sort();
    entries
}

/// The defaults reported for a topic config nobody set.
fn defaults(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        (CLEANUP_POLICY, "delete".to_string()),
        ("compression.type", "producer".to_string()),
        (MAX_MESSAGE_BYTES, config.message_max_bytes.to_string()),
        ("message.timestamp.type", "CreateTime".to_string()),
        ("min.insync.replicas", "1".to_string()),
        ("retention.bytes", "-1".to_string()),
        ("retention.ms", "604800000".to_string()),
    ]
}

/// The largest record batch the topic accepts, in bytes after compression: its own
/// `max.message.bytes`, else the broker-wide `--message-max-bytes`.
pub fn max_message_bytes(topic: &TopicMeta, config: &Config) -> usize {
    topic
        .configs
        .get(MAX_MESSAGE_BYTES)
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(config.message_max_bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_the_configs_kind() {
        for (name, value) in [
            ("retention.ms", "-1"),
            ("max.message.bytes", "51200"),
            ("cleanup.policy", "delete"),
            ("compression.type", "zstd"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("preallocate", "false"),
            ("leader.replication.throttled.replicas", "*"),
        ] {
            assert!(validate(name, value).is_ok(), "{name}={value}");
        }
        for (name, value) in [
            ("retention.ms", "soon"),
            ("max.message.bytes", "-5"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("preallocate", "yes"),
            ("no.such.config", "1"),
        ] {
            let refused = validate(name, value);
            assert!(
                matches!(refused, Err(Error::InvalidConfig(_))),
                "{name}={value}: {refused:?}"
            );
        }
    }
}
