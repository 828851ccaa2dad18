//! Topic configuration: the Kafka topic configs tidegate knows, their types, defaults and
//! broker-level synonyms, which of them it enforces, the one validation a value passes
//! before it is stored, and how an alter request changes a topic's set.
//!
//! Kafka refuses a config name it does not know (INVALID_CONFIG), so a client that sets one
//! by mistake hears about it; tidegate does the same. A config whose promise tidegate
//! cannot keep is refused too, rather than stored and ignored: a topic created with
//! `cleanup.policy=compact` would silently never compact. Configs that concern a broker's
//! own log segments or replicas (`segment.bytes`, `min.insync.replicas`, …) have no
//! meaning for a gateway: they are accepted, stored and reported, and change nothing.
//!
//! Enforced: `max.message.bytes` (produce), `message.timestamp.type` (produce stamps
//! LogAppendTime batches), `retention.ms` and `retention.bytes` (memory backend).

use crate::backend::TopicMeta;
use crate::config::{BackendKind, Config};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";

/// Kafka's default `retention.ms` (and `log.retention.ms`): seven days.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// What a config's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A 32-bit whole number at least this.
    Int(i64),
    /// A 64-bit whole number at least this.
    Long(i64),
    Double,
    Bool,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A comma-separated list, each item one of these words.
    ListOf(&'static [&'static str]),
    /// A comma-separated list of anything (replicas, …).
    List,
}

impl Kind {
    /// The ConfigType code DescribeConfigs reports (v3+).
    fn config_type(self) -> i8 {
        const BOOLEAN: i8 = 1;
        const STRING: i8 = 2;
        const INT: i8 = 3;
        const LONG: i8 = 5;
        const DOUBLE: i8 = 6;
        const LIST: i8 = 7;
        match self {
            Kind::Int(_) => INT,
            Kind::Long(_) => LONG,
            Kind::Double => DOUBLE,
            Kind::Bool => BOOLEAN,
            Kind::OneOf(_) => STRING,
            Kind::ListOf(_) | Kind::List => LIST,
        }
    }
}

/// One topic config Kafka knows: its value's kind, the broker config that supplies its
/// default (its synonym), and a line of documentation.
struct Known {
    name: &'static str,
    kind: Kind,
    broker_synonym: Option<&'static str>,
    doc: &'static str,
}

const fn known(
    name: &'static str,
    kind: Kind,
    broker_synonym: Option<&'static str>,
    doc: &'static str,
) -> Known {
    Known {
        name,
        kind,
        broker_synonym,
        doc,
    }
}

/// Every topic config Kafka 4.x knows.
const KNOWN: &[Known] = &[
    known(
        CLEANUP_POLICY,
        Kind::ListOf(&["delete"]),
        Some("log.cleanup.policy"),
        "What happens to old log segments: delete (compaction is not implemented by tidegate).",
    ),
    known(
        "compression.type",
        Kind::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        Some("compression.type"),
        "Stored as the producer sent it: tidegate never recompresses (\"producer\").",
    ),
    known(
        "compression.gzip.level",
        Kind::Int(-1),
        Some("compression.gzip.level"),
        "Accepted and stored; tidegate does not recompress.",
    ),
    known(
        "compression.lz4.level",
        Kind::Int(1),
        Some("compression.lz4.level"),
        "Accepted and stored; tidegate does not recompress.",
    ),
    known(
        "compression.zstd.level",
        Kind::Int(-131_072),
        Some("compression.zstd.level"),
        "Accepted and stored; tidegate does not recompress.",
    ),
    known(
        "delete.retention.ms",
        Kind::Long(0),
        Some("log.cleaner.delete.retention.ms"),
        "Compaction setting; accepted and stored.",
    ),
    known(
        "file.delete.delay.ms",
        Kind::Long(0),
        Some("log.segment.delete.delay.ms"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "flush.messages",
        Kind::Long(1),
        Some("log.flush.interval.messages"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "flush.ms",
        Kind::Long(0),
        Some("log.flush.interval.ms"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "follower.replication.throttled.replicas",
        Kind::List,
        Some("follower.replication.throttled.replicas"),
        "Replication setting; accepted and stored.",
    ),
    known(
        "index.interval.bytes",
        Kind::Int(0),
        Some("log.index.interval.bytes"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "leader.replication.throttled.replicas",
        Kind::List,
        Some("leader.replication.throttled.replicas"),
        "Replication setting; accepted and stored.",
    ),
    known(
        "local.retention.bytes",
        Kind::Long(-2),
        Some("log.local.retention.bytes"),
        "Tiered storage setting; accepted and stored.",
    ),
    known(
        "local.retention.ms",
        Kind::Long(-2),
        Some("log.local.retention.ms"),
        "Tiered storage setting; accepted and stored.",
    ),
    known(
        "max.compaction.lag.ms",
        Kind::Long(1),
        Some("log.cleaner.max.compaction.lag.ms"),
        "Compaction setting; accepted and stored.",
    ),
    known(
        MAX_MESSAGE_BYTES,
        Kind::Int(0),
        Some("message.max.bytes"),
        "The largest record batch the topic accepts, in bytes after compression.",
    ),
    known(
        "message.downconversion.enable",
        Kind::Bool,
        Some("log.message.downconversion.enable"),
        "Accepted and stored; tidegate serves record batches as stored.",
    ),
    known(
        "message.timestamp.after.max.ms",
        Kind::Long(0),
        Some("log.message.timestamp.after.max.ms"),
        "Accepted and stored.",
    ),
    known(
        "message.timestamp.before.max.ms",
        Kind::Long(0),
        Some("log.message.timestamp.before.max.ms"),
        "Accepted and stored.",
    ),
    known(
        "message.timestamp.difference.max.ms",
        Kind::Long(0),
        Some("log.message.timestamp.difference.max.ms"),
        "Accepted and stored.",
    ),
    known(
        MESSAGE_TIMESTAMP_TYPE,
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with \
         the time the gateway appends it.",
    ),
    known(
        "min.cleanable.dirty.ratio",
        Kind::Double,
        Some("log.cleaner.min.cleanable.ratio"),
        "Compaction setting; accepted and stored.",
    ),
    known(
        "min.compaction.lag.ms",
        Kind::Long(0),
        Some("log.cleaner.min.compaction.lag.ms"),
        "Compaction setting; accepted and stored.",
    ),
    known(
        "min.insync.replicas",
        Kind::Int(1),
        Some("min.insync.replicas"),
        "Replication setting; accepted and stored (durability is the storage's).",
    ),
    known(
        "preallocate",
        Kind::Bool,
        Some("log.preallocate"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "remote.log.copy.disable",
        Kind::Bool,
        None,
        "Tiered storage setting; accepted and stored.",
    ),
    known(
        "remote.log.delete.on.disable",
        Kind::Bool,
        None,
        "Tiered storage setting; accepted and stored.",
    ),
    known(
        "remote.storage.enable",
        Kind::Bool,
        None,
        "Tiered storage setting; accepted and stored.",
    ),
    known(
        RETENTION_BYTES,
        Kind::Long(-1),
        Some("log.retention.bytes"),
        "Bytes a partition keeps before its oldest batches are deleted (-1: no limit). \
         Enforced on the memory backend.",
    ),
    known(
        RETENTION_MS,
        Kind::Long(-1),
        Some("log.retention.ms"),
        "How long a batch is kept after its newest timestamp, in ms (-1: forever). \
         Enforced on the memory backend.",
    ),
    known(
        "segment.bytes",
        Kind::Int(14),
        Some("log.segment.bytes"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "segment.index.bytes",
        Kind::Int(4),
        Some("log.index.size.max.bytes"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "segment.jitter.ms",
        Kind::Long(0),
        Some("log.roll.jitter.ms"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "segment.ms",
        Kind::Long(1),
        Some("log.roll.ms"),
        "Log segment setting; accepted and stored.",
    ),
    known(
        "unclean.leader.election.enable",
        Kind::Bool,
        Some("unclean.leader.election.enable"),
        "Replication setting; accepted and stored.",
    ),
];

fn lookup(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

/// Checks one config as CreateTopics (or an alter) would store it: a known name, and a
/// value of the right shape that tidegate can honour.
pub fn validate(name: &str, value: &str) -> Result<()> {
    let Some(known) = lookup(name) else {
        return Err(Error::InvalidConfig(format!("unknown topic config {name}")));
    };
    let invalid = |why: String| Err(Error::InvalidConfig(format!("{name}={value}: {why}")));
    let whole = |min: i64, max: i64| match value.trim().parse::<i64>() {
        Ok(n) if n < min => invalid(format!("must be at least {min}")),
        Ok(n) if n > max => invalid(format!("must be at most {max}")),
        Ok(_) => Ok(()),
        Err(_) => invalid("not a whole number".into()),
    };
    let unsupported = |allowed: &[&str]| {
        invalid(format!(
            "tidegate supports only {} (compaction is not implemented)",
            allowed.join(", ")
        ))
    };
    match known.kind {
        Kind::Int(min) => whole(min, i64::from(i32::MAX)),
        Kind::Long(min) => whole(min, i64::MAX),
        Kind::Double => match value.trim().parse::<f64>() {
            Ok(_) => Ok(()),
            Err(_) => invalid("not a number".into()),
        },
        Kind::Bool => match value.trim() {
            "true" | "false" => Ok(()),
            _ => invalid("must be true or false".into()),
        },
        Kind::OneOf(allowed) if allowed.contains(&value.trim()) => Ok(()),
        Kind::OneOf(allowed) => unsupported(allowed),
        Kind::ListOf(allowed) => match list_items(value).all(|v| allowed.contains(&v)) {
            true => Ok(()),
            false => unsupported(allowed),
        },
        Kind::List => Ok(()),
    }
}

fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// One change an IncrementalAlterConfigs request asks for, as Kafka numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl Change {
    /// From the request's operation code and value.
    pub fn from_request(operation: i8, value: Option<&str>) -> Result<Self> {
        let value = || {
            value
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidConfig("the operation needs a value".into()))
        };
        Ok(match operation {
            0 => Change::Set(value()?),
            1 => Change::Delete,
            2 => Change::Append(value()?),
            3 => Change::Subtract(value()?),
            other => {
                return Err(Error::InvalidRequest(format!(
                    "unknown config operation {other}"
                )))
            }
        })
    }
}

/// The configs `current` becomes after `changes`, each name changed once and the result
/// validated. APPEND and SUBTRACT apply only to list configs, as in Kafka; a list's current
/// value is the topic's own, or the default.
pub fn changed(
    current: &BTreeMap<String, String>,
    changes: &[(String, Change)],
    config: &Config,
) -> Result<BTreeMap<String, String>> {
    let mut next = current.clone();
    for (index, (name, change)) in changes.iter().enumerate() {
        if changes[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(Error::InvalidRequest(format!(
                "{name} is changed more than once"
            )));
        }
        let Some(known) = lookup(name) else {
            return Err(Error::InvalidConfig(format!("unknown topic config {name}")));
        };
        let is_list = matches!(known.kind, Kind::List | Kind::ListOf(_));
        let list_now = || -> Vec<String> {
            let value = next
                .get(name.as_str())
                .cloned()
                .or_else(|| default_of(name, config))
                .unwrap_or_default();
            list_items(&value).map(str::to_string).collect()
        };
        match change {
            Change::Set(value) => {
                validate(name, value)?;
                next.insert(name.clone(), value.clone());
            }
            Change::Delete => {
                next.remove(name.as_str());
            }
            Change::Append(_) | Change::Subtract(_) if !is_list => {
                return Err(Error::InvalidConfig(format!(
                    "{name} is not a list: APPEND and SUBTRACT do not apply"
                )))
            }
            Change::Append(value) => {
                let mut items = list_now();
                items.extend(
                    list_items(value)
                        .map(str::to_string)
                        .filter(|v| !items.contains(v))
                        .collect::<Vec<_>>(),
                );
                let joined = items.join(",");
                validate(name, &joined)?;
                next.insert(name.clone(), joined);
            }
            Change::Subtract(value) => {
                let removed: Vec<&str> = list_items(value).collect();
                let items: Vec<String> = list_now()
                    .into_iter()
                    .filter(|v| !removed.contains(&v.as_str()))
                    .collect();
                next.insert(name.clone(), items.join(","));
            }
        }
    }
    Ok(next)
}

/// Where a config's value comes from, numbered as DescribeConfigs and CreateTopics say it.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// A config as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub value: String,
    pub source: i8,
    /// The ConfigType code.
    pub config_type: i8,
    pub documentation: &'static str,
    /// Whether no request can alter it (topic configs can be).
    pub read_only: bool,
    /// Where the value comes from, most specific first: (name, value, source).
    pub synonyms: Vec<(String, String, i8)>,
}

/// A topic's configs as a client is shown them: the ones set on the topic over tidegate's
/// defaults, by name.
pub fn of_topic(topic: &TopicMeta, config: &Config) -> Vec<Described> {
    let mut names: Vec<&str> = defaults(config).iter().map(|(n, _, _)| *n).collect();
    names.extend(topic.configs.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| describe(name, topic.configs.get(name), config))
        .collect()
}

fn describe(name: &str, set: Option<&String>, config: &Config) -> Option<Described> {
    let known = lookup(name)?;
    let default = defaults(config)
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, value, source)| {
            (
                known.broker_synonym.unwrap_or(name).to_string(),
                value,
                source,
            )
        });
    let mut synonyms: Vec<(String, String, i8)> = set
        .map(|value| (name.to_string(), value.clone(), SOURCE_TOPIC))
        .into_iter()
        .collect();
    synonyms.extend(default);
    let (_, value, source) = synonyms.first()?.clone();
    Some(Described {
        name: name.to_string(),
        value,
        source,
        config_type: known.kind.config_type(),
        documentation: known.doc,
        read_only: false,
        synonyms,
    })
}

fn default_of(name: &str, config: &Config) -> Option<String> {
    defaults(config)
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, value, _)| value)
}

/// The bytes a partition keeps when its topic sets no `retention.bytes`, and where that
/// comes from: the memory backend bounds every partition by its flag; SMQ keeps everything.
pub fn default_retention_bytes(config: &Config) -> (String, i8) {
    match config.backend {
        BackendKind::Memory => (
            config.memory_retention_bytes.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        BackendKind::Smq => ("-1".to_string(), SOURCE_DEFAULT),
    }
}

/// The defaults reported for a topic config nobody set, with where they come from.
fn defaults(config: &Config) -> Vec<(&'static str, String, i8)> {
    let (retention_bytes, retention_source) = default_retention_bytes(config);
    vec![
        (CLEANUP_POLICY, "delete".to_string(), SOURCE_DEFAULT),
        ("compression.type", "producer".to_string(), SOURCE_DEFAULT),
        (
            MAX_MESSAGE_BYTES,
            config.message_max_bytes.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            MESSAGE_TIMESTAMP_TYPE,
            "CreateTime".to_string(),
            SOURCE_DEFAULT,
        ),
        ("min.insync.replicas", "1".to_string(), SOURCE_DEFAULT),
        (RETENTION_BYTES, retention_bytes, retention_source),
        (
            RETENTION_MS,
            DEFAULT_RETENTION_MS.to_string(),
            SOURCE_DEFAULT,
        ),
    ]
}

fn int_config(topic: &TopicMeta, name: &str) -> Option<i64> {
    topic.configs.get(name)?.trim().parse().ok()
}

/// The largest record batch the topic accepts, in bytes after compression: its own
/// `max.message.bytes`, else the broker-wide `--message-max-bytes`.
pub fn max_message_bytes(topic: &TopicMeta, config: &Config) -> usize {
    int_config(topic, MAX_MESSAGE_BYTES)
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(config.message_max_bytes as usize)
}

/// Whether the gateway stamps the topic's batches with their append time.
pub fn log_append_time(topic: &TopicMeta) -> bool {
    topic
        .configs
        .get(MESSAGE_TIMESTAMP_TYPE)
        .is_some_and(|v| v.trim() == "LogAppendTime")
}

/// How long the topic keeps a batch after its newest timestamp, in ms; `None`: forever.
pub fn retention_ms(topic: &TopicMeta) -> Option<i64> {
    let ms = int_config(topic, RETENTION_MS).unwrap_or(DEFAULT_RETENTION_MS);
    (ms >= 0).then_some(ms)
}

/// Bytes each partition of the topic keeps, by its own `retention.bytes`; `None`: no limit
/// of its own.
pub fn retention_bytes(topic: &TopicMeta) -> Option<u64> {
    int_config(topic, RETENTION_BYTES).and_then(|v| u64::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn values_are_checked_by_the_configs_kind() {
        for (name, value) in [
            ("retention.ms", "-1"),
            ("max.message.bytes", "51200"),
            ("cleanup.policy", "delete"),
            ("compression.type", "zstd"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("preallocate", "false"),
            ("leader.replication.throttled.replicas", "*"),
        ] {
            assert!(validate(name, value).is_ok(), "{name}={value}");
        }
        for (name, value) in [
            ("retention.ms", "soon"),
            ("max.message.bytes", "-5"),
            ("max.message.bytes", "4294967296"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "Now"),
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

    fn config() -> Config {
        Config::parse_from(["tidegate"])
    }

    #[test]
    fn incremental_changes_set_delete_and_edit_lists() {
        let current = BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            (
                "leader.replication.throttled.replicas".to_string(),
                "0:1".to_string(),
            ),
        ]);
        let changes = [
            ("retention.ms".to_string(), Change::Delete),
            ("max.message.bytes".to_string(), Change::Set("51200".into())),
            (
                "leader.replication.throttled.replicas".to_string(),
                Change::Append("1:1,0:1".into()),
            ),
            (
                "cleanup.policy".to_string(),
                Change::Subtract("delete".into()),
            ),
        ];
        let next = changed(&current, &changes, &config()).expect("valid changes");
        assert_eq!(
            next,
            BTreeMap::from([
                ("cleanup.policy".to_string(), String::new()),
                (
                    "leader.replication.throttled.replicas".to_string(),
                    "0:1,1:1".to_string()
                ),
                ("max.message.bytes".to_string(), "51200".to_string()),
            ])
        );
        for bad in [
            vec![("retention.ms".to_string(), Change::Append("5".into()))],
            vec![(
                "cleanup.policy".to_string(),
                Change::Append("compact".into()),
            )],
            vec![("max.message.bytes".to_string(), Change::Set("big".into()))],
            vec![("no.such".to_string(), Change::Delete)],
        ] {
            let refused = changed(&current, &bad, &config());
            assert!(
                matches!(refused, Err(Error::InvalidConfig(_))),
                "{bad:?}: {refused:?}"
            );
        }
        let twice = [
            ("retention.ms".to_string(), Change::Delete),
            ("retention.ms".to_string(), Change::Set("5".into())),
        ];
        assert!(matches!(
            changed(&current, &twice, &config()),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_set_config_is_described_with_its_default_as_synonym() {
        let topic = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: 1,
            configs: BTreeMap::from([("max.message.bytes".to_string(), "51200".to_string())]),
            leader_epochs: BTreeMap::new(),
        };
        let described = of_topic(&topic, &config());
        let max = described
            .iter()
            .find(|d| d.name == "max.message.bytes")
            .expect("reported");
        assert_eq!((max.value.as_str(), max.source), ("51200", SOURCE_TOPIC));
        assert_eq!(
            max.synonyms,
            vec![
                (
                    "max.message.bytes".to_string(),
                    "51200".to_string(),
                    SOURCE_TOPIC
                ),
                (
                    "message.max.bytes".to_string(),
                    "1048588".to_string(),
                    SOURCE_STATIC_BROKER
                ),
            ]
        );
        let retention = described
            .iter()
            .find(|d| d.name == "retention.ms")
            .expect("reported");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("604800000", SOURCE_DEFAULT)
        );
        assert_eq!(retention.config_type, 5);
    }
}
