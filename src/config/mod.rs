//! Configuration: one clap struct, checked once by `validate`. Flags, `TIDEGATE_*`
//! environment variables and the `--config` file all fill it ([`sources`]).

pub mod sources;

use clap::{Parser, ValueEnum};
use std::net::{IpAddr, SocketAddr};

/// Where `weed server` runs its master by default.
pub const DEFAULT_SMQ_MASTER: &str = "127.0.0.1:9333";

/// Where records are kept.
/// Whether TLS clients present a certificate (Kafka's ssl.client.auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// Not asked for.
    None,
    /// Asked for; a client without one is let in, unauthenticated.
    Requested,
    /// A client without a valid one is refused during the handshake.
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// In this process's memory: no SeaweedFS needed; lost on exit.
    Memory,
    /// In SeaweedMQ: brokers and filer from --smq-master, or --smq-broker and --smq-filer.
    Smq,
}

/// tidegate: a Kafka wire-protocol gateway for SeaweedMQ, one shard per CPU core.
///
/// Every shard is advertised to clients as its own Kafka broker on `--broker-port-base +
/// shard`; the bootstrap `--port` is served by all shards.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tidegate",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TIDEGATE_COMMIT"), ")")
)]
pub struct Config {
    /// Listeners, each `NAME=PROTOCOL://HOST:PORT` with PROTOCOL one of PLAINTEXT, SSL,
    /// SASL_PLAINTEXT, SASL_SSL (repeat the flag for several, or separate them with commas:
    /// one environment variable holds them all). PORT is the listener's bootstrap port,
    /// served by every shard; shard i is advertised on PORT + 1 + i. PORT 0 picks free
    /// ports. Clients are only ever sent to addresses of the listener they
    /// connected to. Default: one PLAINTEXT listener from --listen, --port and
    /// --broker-port-base.
    #[arg(long = "listener", value_name = "NAME=PROTOCOL://HOST:PORT", value_parser = ListenerSpec::parse, value_delimiter = ',')]
    pub listeners: Vec<ListenerSpec>,

    /// Host name a listener gives clients in Metadata and FindCoordinator answers,
    /// `NAME=HOST` (repeat for several, or separate them with commas). Default: the
    /// listener's address, or this machine's host name for a listener on every address.
    #[arg(long = "advertised-listener", value_name = "NAME=HOST", value_parser = advertised_listener, value_delimiter = ',')]
    pub advertised_listeners: Vec<(String, String)>,

    /// Short form of one PLAINTEXT listener: the address to listen on (an IP address or a
    /// host name). Loopback by default: a listener that does not authenticate clients is
    /// opened on another address only with --allow-unauthenticated.
    /// [default: 127.0.0.1]
    #[arg(long, value_parser = listen_address)]
    pub listen: Option<IpAddr>,

    /// Short form of one PLAINTEXT listener: the host name given to clients. Default: the
    /// --listen address, or this machine's host name when listening on every address.
    #[arg(long)]
    pub advertised_host: Option<String>,

    /// Short form of one PLAINTEXT listener: bootstrap port, served by every shard
    /// (SO_REUSEPORT). 0 picks a free port. [default: 9092]
    #[arg(long)]
    pub port: Option<u16>,

    /// Short form of one PLAINTEXT listener: port of shard 0's broker; shard i listens on
    /// this plus i. 0 gives each shard a free port of its own. [default: 9093]
    #[arg(long)]
    pub broker_port_base: Option<u16>,

    /// Lets a listener that does not authenticate its clients (PLAINTEXT, or SSL without
    /// required client certificates) listen on an address other than loopback. Anyone who
    /// can reach it may then do anything ACLs allow the ANONYMOUS user; tidegate logs a
    /// warning naming it at start-up.
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// SSL and SASL_SSL listeners: the server's certificate chain, PEM. Read again, with
    /// --ssl-key and --ssl-ca, on SIGHUP (connections already open keep theirs).
    #[arg(long, value_name = "FILE")]
    pub ssl_certificate: Option<std::path::PathBuf>,

    /// SSL and SASL_SSL listeners: the private key of --ssl-certificate, PEM (PKCS#8, PKCS#1
    /// or SEC1).
    #[arg(long, value_name = "FILE")]
    pub ssl_key: Option<std::path::PathBuf>,

    /// SSL listeners: whether clients present a certificate (Kafka's ssl.client.auth). With
    /// one, the client's principal is its certificate's subject, as
    /// --ssl-principal-mapping-rules turn it into a user name. SASL_SSL listeners do not ask
    /// for one: their clients authenticate with SASL.
    #[arg(long, value_enum, default_value_t = ClientAuth::None)]
    pub ssl_client_auth: ClientAuth,

    /// CA certificates, PEM, that client certificates must chain to. Needed when
    /// --ssl-client-auth is requested or required.
    #[arg(long, value_name = "FILE")]
    pub ssl_ca: Option<std::path::PathBuf>,

    /// How a client certificate's subject (RFC 2253, "CN=alice,OU=eng,O=example") becomes
    /// a user name: Kafka's ssl.principal.mapping.rules, e.g.
    /// "RULE:^CN=([^,]*),.*$/$1/L,DEFAULT". The first rule that matches applies; DEFAULT
    /// keeps the whole subject.
    #[arg(long, default_value = "DEFAULT")]
    pub ssl_principal_mapping_rules: String,

    /// SSL and SASL_SSL listeners: how long a client may take over its TLS handshake, in
    /// milliseconds; then the connection is closed.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ssl_handshake_timeout_ms: u64,

    /// SASL mechanisms SASL_PLAINTEXT and SASL_SSL listeners offer, in order of
    /// preference (Kafka's sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN"
    )]
    pub sasl_mechanisms: Vec<String>,

    /// Users to start with, one `NAME:PASSWORD` per line (# starts a comment); each gets
    /// SCRAM-SHA-256 and SCRAM-SHA-512 credentials (salted; the password is not kept).
    /// Users added with kafka-configs (AlterUserScramCredentials) are kept by the backend:
    /// in SeaweedFS's filer on SeaweedMQ, in memory on the memory backend.
    #[arg(long, value_name = "FILE")]
    pub users_file: Option<std::path::PathBuf>,

    /// How long a SASL authentication is good for, in milliseconds (Kafka's
    /// connections.max.reauth.ms, KIP-368): clients are told, and re-authenticate in time;
    /// a connection that has not is closed at its next request. 0: for the connection's
    /// life.
    #[arg(long, default_value_t = 0)]
    pub connections_max_reauth_ms: u64,

    /// How long a failed SASL authentication waits before it is answered, in milliseconds
    /// (Kafka's connection.failed.authentication.delay.ms): it slows password guessing.
    #[arg(long, default_value_t = 100)]
    pub connection_failed_authentication_delay_ms: u64,

    /// Principals allowed everything whatever the ACLs say, separated by ';'
    /// (Kafka's super.users), e.g. "User:admin;User:CN=ops".
    #[arg(long, value_delimiter = ';')]
    pub super_users: Vec<String>,

    /// SMQ backend: how often the users and ACLs in SeaweedFS's filer are read again to
    /// take other gateways' changes, in milliseconds; 0: never (changes made here are still
    /// written at once).
    #[arg(long, default_value_t = 5000)]
    pub security_refresh_ms: u64,

    /// Whether a resource that no ACL names is open to everyone (Kafka's
    /// allow.everyone.if.no.acl.found). Default: true when no listener authenticates
    /// clients (every client is then User:ANONYMOUS), false otherwise.
    #[arg(long, action = clap::ArgAction::Set)]
    pub allow_everyone_if_no_acl_found: Option<bool>,

    /// Kafka node id of shard 0; shard i is this plus i.
    #[arg(long, default_value_t = 0)]
    pub node_id_base: i32,

    /// Number of shards (one executor thread each). Default: one per CPU in --cpus.
    #[arg(long)]
    pub shards: Option<usize>,

    /// CPUs to pin shards to, e.g. "0-3,6"; shard i runs on the i-th. Default: every online
    /// CPU.
    #[arg(long)]
    pub cpus: Option<String>,

    /// Where records are kept.
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    pub backend: BackendKind,

    /// SeaweedFS master to discover the MQ broker and the filer from: HOST:PORT (its HTTP
    /// port; gRPC is PORT + 10000) or HOST:PORT.GRPC_PORT, several separated by commas.
    /// Default: 127.0.0.1:9333 when none of --smq-master, --smq-broker, --smq-filer is
    /// given.
    #[arg(long)]
    pub smq_master: Option<String>,

    /// SeaweedMQ broker (gRPC host:port) for topic administration; partition data goes to
    /// each partition's leader broker, as the broker reports it. Default: the first broker
    /// the master lists.
    #[arg(long)]
    pub smq_broker: Option<String>,

    /// SeaweedFS filer (gRPC host:port, e.g. 127.0.0.1:18888) that keeps committed
    /// consumer-group offsets. Default: the first filer the master lists.
    #[arg(long)]
    pub smq_filer: Option<String>,

    /// What a producer's acks=all waits for on SeaweedMQ: `flushed`, until the broker has
    /// written the records to the filer, so they survive the loss of the `weed` process (up
    /// to its -mq.broker.logFlushInterval later, which caps each producer connection at five
    /// requests per interval), or `memory`, the broker's acknowledgement from memory, as
    /// acks=1 (lost if `weed` dies before its next flush).
    #[arg(long, value_enum, default_value_t = SmqAcksAll::Flushed)]
    pub smq_acks_all: SmqAcksAll,

    /// How often a fetch waiting at the end of a SeaweedMQ partition reads it again, in
    /// milliseconds, for records written there by others than this gateway (another
    /// tidegate, SeaweedFS's own clients); records produced through this gateway wake the
    /// fetch at once. Each read is one FetchMessage to the broker per partition, shared by
    /// the fetches waiting there, so idle consumers cost the broker this often.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub smq_fetch_poll_ms: u64,

    /// Bytes of Kafka batches each shard keeps of its SeaweedMQ partitions: those recently
    /// produced (a consumer that follows its producers is answered without asking the
    /// broker) and the flushed files read for consumers catching up (a partition's next
    /// file is read ahead while less than half the cache is unread). More lets more
    /// consumers catch up at once without waiting on file reads; each shard holds up to it.
    #[arg(long, default_value = "64MiB", value_parser = byte_size)]
    pub smq_batch_cache_bytes: usize,

    /// How often each shard writes its idempotent producers' state to SeaweedFS's filer,
    /// in milliseconds (one write per shard covering every partition that changed). The
    /// state is kept with the records as well; a restarted shard reads the records written
    /// since the last write to recover it, so a longer interval means fewer filer writes
    /// and more to read after a crash.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub smq_producer_snapshot_interval_ms: u64,

    /// SeaweedMQ namespace of Kafka topics (SeaweedFS's own Kafka gateway uses "kafka").
    #[arg(long, default_value = "kafka")]
    pub smq_namespace: String,

    /// How long start-up waits for SeaweedFS (the master to list a broker and a filer, and
    /// those to answer), in milliseconds; then it fails, naming the flag whose address did
    /// not answer.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub smq_startup_timeout_ms: u64,

    /// SeaweedFS with gRPC TLS (certificates in its security.toml): the CA certificates,
    /// PEM, that its servers' certificates must chain to (its `[grpc] ca`). With it, every
    /// connection to the master, the filer and the brokers is TLS.
    #[arg(long, value_name = "FILE")]
    pub smq_tls_ca: Option<std::path::PathBuf>,

    /// The certificate chain, PEM, tidegate presents to SeaweedFS, which wants one signed
    /// by its `grpc.ca` for client authentication (as its own `[grpc.client] cert`). Goes
    /// with --smq-tls-key and --smq-tls-ca.
    #[arg(long, value_name = "FILE")]
    pub smq_tls_certificate: Option<std::path::PathBuf>,

    /// The private key of --smq-tls-certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub smq_tls_key: Option<std::path::PathBuf>,

    /// The name SeaweedFS's servers' certificates must carry (a DNS name or IP address
    /// among their subject alternative names), for certificates shared by every server.
    /// Default: the host of each address dialled.
    #[arg(long, value_name = "NAME")]
    pub smq_tls_server_name: Option<String>,

    /// Partitions of a topic created without a partition count (auto-created, or
    /// CreateTopics with -1).
    #[arg(long, default_value_t = 1)]
    pub default_partitions: i32,

    /// Most bytes one produced record batch may decompress to; a batch past it gets
    /// MESSAGE_TOO_LARGE (a decompression bomb is stopped as it streams). Used where
    /// records are read one by one (SeaweedMQ), and where a compressed batch is opened to
    /// check its record count (the memory backend).
    #[arg(long, default_value = "64MiB", value_parser = byte_size)]
    pub max_decompressed_batch_bytes: usize,

    /// Most partitions one topic may have; CreateTopics and CreatePartitions above it get
    /// INVALID_PARTITIONS. Every partition is in each Metadata answer that lists all
    /// topics, so this and `--max-partitions` bound that answer's size and time.
    #[arg(long, default_value_t = 10_000, value_parser = clap::builder::RangedI64ValueParser::<i32>::new().range(1..=1_000_000))]
    pub max_partitions_per_topic: i32,

    /// Most partitions of all topics together; creating or growing a topic past it gets
    /// POLICY_VIOLATION. Checked at each creation, not reserved: creations racing on
    /// several shards may pass it by what they add.
    #[arg(long, default_value_t = 100_000, value_parser = clap::builder::RangedI64ValueParser::<i64>::new().range(1..=10_000_000))]
    pub max_partitions: i64,

    /// Create a topic when a client produces to it or asks Metadata for it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Largest request accepted, in bytes (Kafka's socket.request.max.bytes). A larger frame
    /// closes the connection.
    #[arg(long, default_value = "100MiB", value_parser = byte_size)]
    pub max_request_size: usize,

    /// Largest record batch a Produce may carry, in bytes after compression (Kafka's
    /// message.max.bytes); a topic's max.message.bytes overrides it. A larger batch is
    /// refused with MESSAGE_TOO_LARGE and nothing of it is stored.
    #[arg(long, default_value = "1048588", value_parser = kafka_byte_size)]
    pub message_max_bytes: i32,

    /// Upper bound on a Fetch response, in bytes, whatever the client asks for.
    #[arg(long, default_value = "55MiB", value_parser = kafka_byte_size)]
    pub fetch_max_bytes: i32,

    /// Upper bound on how long a Fetch may wait for data, in milliseconds, whatever the
    /// client asks for.
    #[arg(long, default_value_t = 30_000)]
    pub fetch_max_wait_ms: u32,

    /// Memory backend: bytes kept per partition before the oldest batches are dropped.
    #[arg(long, default_value = "1GiB", value_parser = byte_size)]
    pub memory_retention_bytes: usize,

    /// Memory backend: how often batches older than their topic's `retention.ms` are
    /// dropped, in milliseconds (Kafka's log.retention.check.interval.ms).
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_retention_check_interval_ms: u64,

    /// Messages each shard's cross-shard inbox holds (work forwarded from a shard that does
    /// not own a partition or group to the one that does); when it is full, the forwarding
    /// request waits for room instead of queueing more.
    #[arg(long, default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_048_576))]
    pub mesh_queue_capacity: usize,

    /// Consumer groups: how long the first rebalance of an empty group waits for more
    /// members to join, in milliseconds (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, default_value_t = 3000)]
    pub group_initial_rebalance_delay_ms: u64,

    /// Shortest session timeout a consumer may ask for, in milliseconds
    /// (Kafka's group.min.session.timeout.ms).
    #[arg(long, default_value_t = 6000)]
    pub group_min_session_timeout_ms: u64,

    /// Longest session timeout a consumer may ask for, in milliseconds
    /// (Kafka's group.max.session.timeout.ms).
    #[arg(long, default_value_t = 1_800_000)]
    pub group_max_session_timeout_ms: u64,

    /// Consumer groups on the new protocol (KIP-848): a member that sends no heartbeat for
    /// this long is removed, in milliseconds (Kafka's group.consumer.session.timeout.ms).
    #[arg(long, default_value_t = 45_000)]
    pub group_consumer_session_timeout_ms: u64,

    /// Consumer groups on the new protocol: how often members heartbeat, in milliseconds
    /// (Kafka's group.consumer.heartbeat.interval.ms).
    #[arg(long, default_value_t = 5000)]
    pub group_consumer_heartbeat_interval_ms: u64,

    /// Client connections this process holds at once, on all its ports; more are closed as
    /// they are accepted, with a log line.
    #[arg(long, default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,

    /// Client connections from one IP address at once (Kafka's max.connections.per.ip).
    #[arg(long, default_value_t = 1_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections_per_ip: usize,

    /// Bytes one shard may hold for its connections: requests being read and handled, and
    /// responses waiting to be written. When it is spent the shard stops reading from its
    /// sockets until answers go out. Default: half the host's memory, shared by the shards.
    #[arg(long, value_parser = byte_size)]
    pub shard_memory_bytes: Option<usize>,

    /// Bytes one connection may hold the same way (within its shard's): a client that
    /// pipelines requests and never reads its answers stops being read past it, and gets
    /// smaller Fetch answers as it nears it.
    #[arg(long, default_value = "64MiB", value_parser = byte_size)]
    pub connection_memory_bytes: usize,

    /// Requests one connection may have in progress at once; reading stops beyond it.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,

    /// On SIGTERM or SIGINT, how long answering the requests already read and flushing the
    /// stores may take, in milliseconds; past it tidegate exits at once with status 1 (as
    /// it does on a second signal).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub shutdown_timeout_ms: u64,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive such as
    /// "tidegate=debug"). The RUST_LOG environment variable overrides it.
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// How log lines are written to stderr: text for people, json for log collectors (one
    /// object per line, the event's fields as its keys).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve /metrics (Prometheus text format), /healthz and /readyz over HTTP on this
    /// address, e.g. 127.0.0.1:9644 (port 0 picks a free one, named in the ready line).
    /// Default: not served.
    #[arg(long, value_name = "HOST:PORT", value_parser = metrics_address)]
    pub metrics_addr: Option<SocketAddr>,

    /// Topics each shard counts produced and fetched records of under their own `topic`
    /// label; the records of topics past it are counted under `topic="_other"`. 0: no
    /// per-topic metrics (and nothing counted per topic).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub metrics_topic_limit: usize,

    /// Consumer groups each coordinating shard reports members, rebalances and lag of under
    /// their own `group` label; members and rebalances of groups past it are counted under
    /// `group="_other"`, their lag not at all. 0: no per-group metrics.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub metrics_group_limit: usize,

    /// A TOML file of settings: one key per flag, named as the long flag
    /// (`shard-memory-bytes = "1GiB"`, `shards = 2`, `listener = ["A=…", "B=…"]`). A flag
    /// wins over its TIDEGATE_* environment variable, which wins over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Check the configuration (flags, environment, file, and the certificate, key and
    /// users files they name) without starting: print the settings in effect and exit 0,
    /// or name what is wrong and exit 2.
    #[arg(long)]
    pub check_config: bool,
}

/// What acks=all waits for on SeaweedMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmqAcksAll {
    /// The records are in a file the broker flushed to the filer.
    Flushed,
    /// The broker holds the records in memory (its acknowledgement).
    Memory,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event: timestamp, level, target, message and the event's fields.
    Json,
}

impl Config {
    /// Rejects settings that cannot work, with a message that says which and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.shards == Some(0) {
            return Err("--shards must be at least 1".into());
        }
        if self.default_partitions < 1 {
            return Err("--default-partitions must be at least 1".into());
        }
        if self.default_partitions > self.max_partitions_per_topic {
            return Err(format!(
                "--default-partitions {} is over --max-partitions-per-topic {}",
                self.default_partitions, self.max_partitions_per_topic
            ));
        }
        let too_small = |bytes: usize| bytes < 64 << 10;
        if too_small(self.connection_memory_bytes) || self.shard_memory_bytes.is_some_and(too_small)
        {
            return Err(
                "--connection-memory-bytes and --shard-memory-bytes must be at least 64KiB".into(),
            );
        }
        if self.max_request_size < 1024 || self.max_request_size > i32::MAX as usize {
            return Err("--max-request-size must be between 1024 and 2147483647 bytes".into());
        }
        if self.message_max_bytes < 1 {
            return Err("--message-max-bytes must be positive".into());
        }
        if self.max_decompressed_batch_bytes < 1024 {
            return Err("--max-decompressed-batch-bytes must be at least 1KiB".into());
        }
        if self.fetch_max_bytes < 1 {
            return Err("--fetch-max-bytes must be positive".into());
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(
                "--group-min-session-timeout-ms is above --group-max-session-timeout-ms".into(),
            );
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.backend == BackendKind::Smq {
            self.validate_smq()?;
        } else {
            let smq_flags = [
                ("--smq-master", self.smq_master.is_some()),
                ("--smq-broker", self.smq_broker.is_some()),
                ("--smq-filer", self.smq_filer.is_some()),
                ("--smq-tls-ca", self.smq_tls_ca.is_some()),
                ("--smq-tls-certificate", self.smq_tls_certificate.is_some()),
                ("--smq-tls-key", self.smq_tls_key.is_some()),
                ("--smq-tls-server-name", self.smq_tls_server_name.is_some()),
            ];
            if let Some((flag, _)) = smq_flags.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} applies to --backend smq only; add --backend smq, or drop {flag}"
                ));
            }
        }
        if let Some(cpus) = &self.cpus {
            shards::parse_cpu_list(cpus).map_err(|e| e.to_string())?;
        }
        let listeners = self.validate_listeners()?;
        self.validate_security(&listeners)
    }

    fn validate_smq(&self) -> Result<(), String> {
        use crate::backend::smq::discovery::valid_address;
        if let Some(masters) = &self.smq_master {
            if let Some(bad) = masters.split(',').find(|m| !valid_address(m.trim(), true)) {
                return Err(format!(
                    "--smq-master {bad:?} is not HOST:PORT or HOST:PORT.GRPC_PORT"
                ));
            }
        }
        for (flag, value) in [
            ("--smq-broker", &self.smq_broker),
            ("--smq-filer", &self.smq_filer),
        ] {
            if let Some(address) = value.as_deref().filter(|a| !valid_address(a, false)) {
                return Err(format!(
                    "{flag} {address:?} is not HOST:PORT (its gRPC port)"
                ));
            }
        }
        if self.smq_tls_certificate.is_some() != self.smq_tls_key.is_some() {
            return Err("--smq-tls-certificate and --smq-tls-key go together".into());
        }
        if self.smq_tls_ca.is_none() {
            let needs_ca = [
                ("--smq-tls-certificate", self.smq_tls_certificate.is_some()),
                ("--smq-tls-server-name", self.smq_tls_server_name.is_some()),
            ];
            if let Some((flag, _)) = needs_ca.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} needs --smq-tls-ca, the CA SeaweedFS's certificates chain to \
                     (its security.toml [grpc] ca)"
                ));
            }
        }
        // Offsets written to a filer guessed from a default could land in another
        // cluster's filer: with a broker given, the filer must be given too (or a master).
        if self.smq_master.is_none() {
            match (&self.smq_broker, &self.smq_filer) {
                (Some(_), None) => {
                    return Err(
                        "--smq-broker needs --smq-filer HOST:GRPC_PORT too (SeaweedFS's \
                         filer keeps committed consumer-group offsets), or give --smq-master \
                         HOST:PORT to discover both"
                            .into(),
                    )
                }
                (None, Some(_)) => {
                    return Err("--smq-filer needs --smq-broker HOST:PORT too, or give \
                         --smq-master HOST:PORT to discover the broker"
                        .into())
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The listeners to open, in order: `--listener`s, or the one PLAINTEXT listener of
    /// the short form. The first is the one "tidegate ready bootstrap=" names.
    pub fn listeners(&self) -> Vec<Listener> {
        let advertised = |name: &str, fallback: Option<&String>, address: IpAddr| {
            self.advertised_listeners
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, host)| host)
                .or(fallback)
                .cloned()
                .unwrap_or_else(|| host_name_for(address))
        };
        if self.listeners.is_empty() {
            let address = self.listen.unwrap_or(IpAddr::from([127, 0, 0, 1]));
            let name = SecurityProtocol::Plaintext.name();
            return vec![Listener {
                name: name.to_string(),
                protocol: SecurityProtocol::Plaintext,
                address,
                port: self.port.unwrap_or(9092),
                broker_port_base: self.broker_port_base.unwrap_or(9093),
                advertised_host: advertised(name, self.advertised_host.as_ref(), address),
            }];
        }
        self.listeners
            .iter()
            .map(|spec| Listener {
                name: spec.name.clone(),
                protocol: spec.protocol,
                address: spec.address,
                port: spec.port,
                // Shard i on PORT + 1 + i; validate() keeps that below 65536.
                broker_port_base: if spec.port == 0 { 0 } else { spec.port + 1 },
                advertised_host: advertised(&spec.name, None, spec.address),
            })
            .collect()
    }

    fn validate_listeners(&self) -> Result<Vec<Listener>, String> {
        if !self.listeners.is_empty() {
            let short = [
                ("--listen", self.listen.is_some()),
                ("--port", self.port.is_some()),
                ("--broker-port-base", self.broker_port_base.is_some()),
                ("--advertised-host", self.advertised_host.is_some()),
            ];
            if let Some((flag, _)) = short.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{flag} is the short form of one PLAINTEXT listener; with --listener, give \
                     every listener as --listener NAME=PROTOCOL://HOST:PORT"
                ));
            }
        }
        let listeners = self.listeners();
        for (i, listener) in listeners.iter().enumerate() {
            if listeners[..i].iter().any(|l| l.name == listener.name) {
                return Err(format!("two listeners are named {}", listener.name));
            }
        }
        for (name, _) in &self.advertised_listeners {
            if !listeners.iter().any(|l| &l.name == name) {
                return Err(format!(
                    "--advertised-listener {name}=…: there is no listener named {name}"
                ));
            }
        }
        // Every fixed port once: bootstrap ports and each shard's broker port.
        let nr_shards = self.nr_shards();
        let mut taken: Vec<(u16, String)> = Vec::new();
        for listener in &listeners {
            let mut ports = vec![(u32::from(listener.port), "bootstrap port".to_string())];
            if listener.broker_port_base != 0 {
                for shard in 0..nr_shards {
                    let port = u32::from(listener.broker_port_base) + shard as u32;
                    ports.push((port, format!("shard {shard}'s broker port")));
                }
            }
            for (port, what) in ports.into_iter().filter(|(port, _)| *port != 0) {
                let what = format!("listener {}'s {what}", listener.name);
                let port = u16::try_from(port).map_err(|_| {
                    format!("{what} would be {port}, past 65535: choose a lower port")
                })?;
                if let Some((_, other)) = taken.iter().find(|(p, _)| *p == port) {
                    return Err(format!("port {port} is both {other} and {what}"));
                }
                taken.push((port, what));
            }
        }
        Ok(listeners)
    }

    fn validate_security(&self, listeners: &[Listener]) -> Result<(), String> {
        if listeners.iter().any(|l| l.protocol.uses_tls())
            && (self.ssl_certificate.is_none() || self.ssl_key.is_none())
        {
            return Err("SSL and SASL_SSL listeners need --ssl-certificate and --ssl-key".into());
        }
        if self.ssl_client_auth != ClientAuth::None && self.ssl_ca.is_none() {
            return Err(
                "--ssl-client-auth requested or required needs --ssl-ca, the CA \
                        certificates client certificates must chain to"
                    .into(),
            );
        }
        for mechanism in &self.sasl_mechanisms {
            if crate::security::scram::SaslMechanism::from_name(mechanism).is_none() {
                return Err(format!(
                    "--sasl-mechanisms: {mechanism:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                ));
            }
        }
        if listeners.iter().any(|l| l.protocol.uses_sasl()) && self.sasl_mechanisms.is_empty() {
            return Err("SASL listeners need at least one of --sasl-mechanisms".into());
        }
        crate::security::tls::PrincipalMapper::parse(&self.ssl_principal_mapping_rules)
            .map_err(|e| format!("--ssl-principal-mapping-rules: {e}"))?;
        if let Some(open) = self.exposed_unauthenticated_listener(listeners) {
            if !self.allow_unauthenticated {
                return Err(format!(
                    "listener {} ({}) does not authenticate clients and listens on {}, not \
                     on loopback: anyone who can reach it could use it. Listen on 127.0.0.1, \
                     use SASL_SSL, SASL_PLAINTEXT or SSL with --ssl-client-auth required, or \
                     accept it with --allow-unauthenticated",
                    open.name,
                    open.protocol.name(),
                    open.address
                ));
            }
        }
        Ok(())
    }

    /// Whether `listener` lets clients in without proving who they are.
    pub fn authenticates(&self, listener: &Listener) -> bool {
        listener.protocol.uses_sasl()
            || (listener.protocol == SecurityProtocol::Ssl
                && self.ssl_client_auth == ClientAuth::Required)
    }

    /// The first listener that does not authenticate and is not on loopback.
    pub fn exposed_unauthenticated_listener<'a>(
        &self,
        listeners: &'a [Listener],
    ) -> Option<&'a Listener> {
        listeners
            .iter()
            .find(|l| !self.authenticates(l) && !l.address.is_loopback())
    }

    /// `--allow-everyone-if-no-acl-found`, or its default: open when nothing authenticates.
    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
            .unwrap_or_else(|| !self.listeners().iter().any(|l| self.authenticates(l)))
    }

    /// The master(s) to ask for what --smq-broker and --smq-filer leave open; `None` when
    /// both are given.
    pub fn smq_master(&self) -> Option<&str> {
        match (&self.smq_master, &self.smq_broker, &self.smq_filer) {
            (_, Some(_), Some(_)) => None,
            (Some(master), _, _) => Some(master),
            (None, None, None) => Some(DEFAULT_SMQ_MASTER),
            (None, _, _) => None, // refused by validate()
        }
    }

    /// The CPUs shards are pinned to.
    pub fn cpu_list(&self) -> Vec<usize> {
        match &self.cpus {
            Some(list) => shards::parse_cpu_list(list).unwrap_or_default(),
            None => (0..std::thread::available_parallelism().map_or(1, usize::from)).collect(),
        }
    }

    /// The number of shards to run.
    pub fn nr_shards(&self) -> usize {
        self.shards.unwrap_or_else(|| self.cpu_list().len().max(1))
    }

    /// `--shard-memory-bytes`, or half of the host's memory shared by the shards (at least
    /// 64 MiB each).
    pub fn shard_memory_bytes(&self) -> usize {
        self.shard_memory_bytes.unwrap_or_else(|| {
            let host = host_memory_bytes().unwrap_or(8 << 30);
            (host / 2 / self.nr_shards()).max(64 << 20)
        })
    }
}

/// How a listener's clients are authenticated, as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether the connection is TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL before anything else.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One `--listener` as given: `NAME=PROTOCOL://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub address: IpAddr,
    pub port: u16,
}

impl ListenerSpec {
    fn parse(text: &str) -> Result<Self, String> {
        let usage = || format!("{text:?} is not NAME=PROTOCOL://HOST:PORT");
        let (name, url) = text.split_once('=').ok_or_else(usage)?;
        let (protocol, address) = url.split_once("://").ok_or_else(usage)?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "listener name {name:?} must be letters, digits and _"
            ));
        }
        let protocol = SecurityProtocol::from_name(protocol).ok_or_else(|| {
            format!("{protocol:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        })?;
        let (host, port) = address.rsplit_once(':').ok_or_else(usage)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port"))?;
        Ok(Self {
            name,
            protocol,
            address: listen_address(host)?,
            port,
        })
    }
}

/// A listener to open: its own bootstrap port and one broker port per shard, advertised
/// under its own host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub address: IpAddr,
    /// Bootstrap port; 0 for a free one.
    pub port: u16,
    /// Shard i's broker port is this plus i; 0 for free ones.
    pub broker_port_base: u16,
    pub advertised_host: String,
}

impl Listener {
    /// Shard `shard`'s fixed broker port, or `None` for any free one.
    pub fn broker_port(&self, shard: usize) -> Option<u16> {
        match self.broker_port_base {
            0 => None,
            base => Some(base + shard as u16), // validated to stay below 65536
        }
    }
}

/// `--advertised-listener NAME=HOST`.
fn advertised_listener(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, host)) if !name.is_empty() && !host.is_empty() => {
            Ok((name.trim().to_ascii_uppercase(), host.trim().to_string()))
        }
        _ => Err(format!("{text:?} is not NAME=HOST")),
    }
}

/// The host name clients are told for a listener on `address`: the address itself, or
/// this machine's host name for every address.
fn host_name_for(address: IpAddr) -> String {
    if !address.is_unspecified() {
        return address.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A byte count as flags take it: a number of bytes, or one with a binary unit (`512KiB`,
/// `64MiB`, `1GiB`, `1TiB`; `B` for bytes; case does not matter).
pub fn byte_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count such as 1048576, 512KiB or 64MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use B, KiB, MiB, GiB or TiB"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{text} is too large"))
}

/// MemTotal from /proc/meminfo.
fn host_memory_bytes() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: usize = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// [`byte_size`] for a setting Kafka keeps in an int32.
fn kafka_byte_size(text: &str) -> Result<i32, String> {
    let bytes = byte_size(text)?;
    i32::try_from(bytes).map_err(|_| format!("{text} is over 2GiB - 1, the most Kafka allows"))
}

/// `--metrics-addr`: `IP:PORT`, or `HOST:PORT` resolved once at start-up.
fn metrics_address(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(SocketAddr::new(listen_address(host)?, port))
}

/// The address to listen on: an IP address, or a host name resolved once at start-up.
fn listen_address(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    let resolved = (text, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?}: {e}"))?
        .map(|a| a.ip())
        .collect::<Vec<_>>();
    // IPv4 first: what `localhost` most often means to a Kafka client.
    resolved
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["tidegate"];
        argv.extend_from_slice(args);
        Config::parse_from(argv)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(parse(&[]).validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_rejected_with_the_flag_named() {
        let cases: [&[&str]; 5] = [
            &["--shards", "0"],
            &["--default-partitions", "0"],
            &["--cpus", "3-1"],
            &["--port", "9094", "--shards", "4"],
            // Four shards by default on four CPUs: ports 9093-9096.
            &["--port", "9096", "--cpus", "0-3"],
        ];
        for args in cases {
            assert!(parse(args).validate().is_err(), "{args:?}");
        }
    }

    #[test]
    fn byte_flags_take_units_and_listen_takes_host_names() {
        assert_eq!(byte_size("1048576"), Ok(1 << 20));
        assert_eq!(byte_size("64MiB"), Ok(64 << 20));
        assert_eq!(byte_size("512kib"), Ok(512 << 10));
        assert_eq!(byte_size("1 GiB"), Ok(1 << 30));
        assert!(byte_size("64MB").is_err());
        assert!(byte_size("-1").is_err());
        assert!(byte_size("99999999999TiB").is_err());
        let config = parse(&["--max-request-size", "2MiB", "--listen", "localhost"]);
        assert_eq!(config.max_request_size, 2 << 20);
        assert!(config.listeners()[0].address.is_loopback());
        assert_eq!(parse(&[]).max_decompressed_batch_bytes, 64 << 20);
    }

    #[test]
    fn smq_flags_without_the_smq_backend_are_refused() {
        let memory = parse(&["--smq-master", "10.0.0.1:9333"]);
        let refused = memory.validate().expect_err("--smq-master on memory");
        assert!(refused.contains("--smq-master") && refused.contains("--backend smq"));
        assert!(parse(&["--smq-filer", "f:18888"]).validate().is_err());
    }

    #[test]
    fn smq_needs_a_filer_for_group_offsets() {
        let smq = |extra: &[&str]| {
            let mut args = vec!["--backend", "smq"];
            args.extend_from_slice(extra);
            parse(&args)
        };
        // Nothing given: the master of a local `weed server`.
        assert_eq!(smq(&[]).validate(), Ok(()));
        assert_eq!(smq(&[]).smq_master(), Some(DEFAULT_SMQ_MASTER));
        let master = smq(&["--smq-master", "10.0.0.1:9333"]);
        assert_eq!(
            (master.validate(), master.smq_master()),
            (Ok(()), Some("10.0.0.1:9333"))
        );
        let both = smq(&["--smq-broker", "b:17777", "--smq-filer", "f:18888"]);
        assert_eq!((both.validate(), both.smq_master()), (Ok(()), None));
        assert!(
            smq(&["--smq-broker", "b:17777", "--smq-master", "m:9333.19333"])
                .validate()
                .is_ok()
        );
        let refused = smq(&["--smq-broker", "b:17777"]).validate();
        assert!(refused.is_err_and(|e| e.contains("--smq-filer") && e.contains("--smq-master")));
        for bad in [
            &["--smq-filer", "f:18888"][..],
            &["--smq-master", "m"],
            &["--smq-master", "m:9333,x"],
            &["--smq-broker", "b", "--smq-filer", "f:1"],
            &["--smq-broker", "b:1", "--smq-filer", "f:1.2"],
        ] {
            assert!(smq(bad).validate().is_err(), "{bad:?}");
        }
        // The memory backend refuses them rather than ignore them.
        assert!(parse(&["--smq-broker", "b:17777"]).validate().is_err());
    }

    #[test]
    fn smq_tls_flags_go_together() {
        let smq = |extra: &[&str]| {
            let mut args = vec!["--backend", "smq"];
            args.extend_from_slice(extra);
            parse(&args).validate()
        };
        let mutual = [
            "--smq-tls-ca=ca",
            "--smq-tls-certificate=c",
            "--smq-tls-key=k",
        ];
        assert_eq!(smq(&mutual), Ok(()));
        assert_eq!(smq(&["--smq-tls-ca=ca"]), Ok(()));
        assert_eq!(smq(&["--smq-tls-ca=ca", "--smq-tls-server-name=s"]), Ok(()));
        let refused = |extra: &[&str], says: &str| {
            let error = smq(extra).expect_err("refused");
            assert!(error.contains(says), "{extra:?}: {error}");
        };
        refused(
            &["--smq-tls-ca=ca", "--smq-tls-certificate=c"],
            "go together",
        );
        refused(&["--smq-tls-ca=ca", "--smq-tls-key=k"], "go together");
        refused(&mutual[1..], "needs --smq-tls-ca");
        refused(&["--smq-tls-server-name=s"], "needs --smq-tls-ca");
        let memory = parse(&mutual).validate().expect_err("memory backend");
        assert!(memory.contains("--smq-tls-ca") && memory.contains("--backend smq"));
    }

    #[test]
    fn advertised_host_follows_listen_address() {
        let host = |args: &[&str]| parse(args).listeners()[0].advertised_host.clone();
        assert_eq!(host(&["--listen", "127.0.0.1"]), "127.0.0.1");
        assert_eq!(
            host(&["--advertised-host", "kafka.example"]),
            "kafka.example"
        );
    }

    #[test]
    fn the_short_form_is_one_plaintext_listener_on_loopback() {
        let listeners = parse(&[]).listeners();
        assert_eq!(listeners.len(), 1);
        let plain = &listeners[0];
        assert_eq!(
            (
                plain.name.as_str(),
                plain.protocol,
                plain.port,
                plain.broker_port(2)
            ),
            ("PLAINTEXT", SecurityProtocol::Plaintext, 9092, Some(9095))
        );
        assert!(plain.address.is_loopback());
    }

    #[test]
    fn listeners_are_named_with_their_protocol_and_ports() {
        let tls = ["--ssl-certificate", "c.pem", "--ssl-key", "k.pem"];
        let mut args = vec![
            "--listener",
            "internal=PLAINTEXT://127.0.0.1:9092",
            "--listener",
            "EXTERNAL=SASL_SSL://0.0.0.0:9192",
            "--advertised-listener",
            "EXTERNAL=kafka.example",
            "--shards",
            "2",
        ];
        args.extend_from_slice(&tls);
        let config = parse(&args);
        assert_eq!(config.validate(), Ok(()));
        let listeners = config.listeners();
        assert_eq!(listeners[0].name, "INTERNAL");
        assert_eq!(listeners[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(listeners[1].broker_port(1), Some(9194));
        assert_eq!(listeners[1].advertised_host, "kafka.example");
        assert_eq!(listeners[0].advertised_host, "127.0.0.1");
        let free = parse(&["--listener", "A=PLAINTEXT://localhost:0"]);
        assert_eq!(free.listeners()[0].broker_port(0), None);
        for bad in [
            "A=PLAINTEXT:/127.0.0.1:1",
            "A=TLS://127.0.0.1:1",
            "=PLAINTEXT://127.0.0.1:1",
            "A=PLAINTEXT://127.0.0.1",
            "A-B=PLAINTEXT://127.0.0.1:1",
        ] {
            assert!(
                Config::try_parse_from(["tidegate", "--listener", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn listener_mistakes_are_refused_with_the_reason() {
        let refused = |args: &[&str], says: &str| {
            let error = parse(args).validate().expect_err("refused");
            assert!(error.contains(says), "{args:?}: {error}");
        };
        refused(
            &["--listener", "A=PLAINTEXT://127.0.0.1:9092", "--port", "1"],
            "short form",
        );
        refused(
            &[
                "--listener",
                "A=PLAINTEXT://127.0.0.1:9092",
                "--listener",
                "a=SASL_PLAINTEXT://127.0.0.1:9192",
            ],
            "two listeners",
        );
        // A's shards 9093 and 9094 meet B's bootstrap.
        refused(
            &[
                "--shards",
                "2",
                "--listener",
                "A=PLAINTEXT://127.0.0.1:9092",
                "--listener",
                "B=SASL_PLAINTEXT://127.0.0.1:9094",
            ],
            "port 9094",
        );
        refused(
            &["--advertised-listener", "NOPE=h"],
            "no listener named NOPE",
        );
        refused(
            &["--listener", "S=SSL://127.0.0.1:9092"],
            "--ssl-certificate",
        );
        refused(
            &[
                "--listener",
                "S=SSL://127.0.0.1:9092",
                "--ssl-certificate",
                "c",
                "--ssl-key",
                "k",
                "--ssl-client-auth",
                "required",
            ],
            "--ssl-ca",
        );
        refused(&["--sasl-mechanisms", "GSSAPI"], "GSSAPI");
        refused(&["--ssl-principal-mapping-rules", "RULE:x"], "mapping");
    }

    #[test]
    fn an_unauthenticated_listener_beyond_loopback_needs_consent() {
        for open in [
            &["--listen", "0.0.0.0"][..],
            &["--listener", "P=PLAINTEXT://0.0.0.0:9092"],
            &[
                "--listener",
                "S=SSL://0.0.0.0:9092",
                "--ssl-certificate",
                "c",
                "--ssl-key",
                "k",
            ],
        ] {
            let error = parse(open).validate().expect_err("refused");
            assert!(error.contains("--allow-unauthenticated"), "{error}");
            let mut allowed = open.to_vec();
            allowed.push("--allow-unauthenticated");
            assert_eq!(parse(&allowed).validate(), Ok(()));
        }
        // Listeners that authenticate may listen anywhere.
        let mutual = parse(&[
            "--listener=M=SSL://0.0.0.0:9092",
            "--ssl-certificate=c",
            "--ssl-key=k",
            "--ssl-client-auth=required",
            "--ssl-ca=ca",
        ]);
        assert_eq!(mutual.validate(), Ok(()));
        assert!(!mutual.allow_everyone_if_no_acl_found());
        assert!(parse(&[]).allow_everyone_if_no_acl_found());
        let sasl = parse(&["--listener", "S=SASL_PLAINTEXT://0.0.0.0:9092"]);
        assert_eq!(sasl.validate(), Ok(()));
        assert!(!sasl.allow_everyone_if_no_acl_found());
    }
}
