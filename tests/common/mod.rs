//! Shared by the Rust integration tests: the release binary started as a subprocess on
//! loopback, and a minimal blocking Kafka client that speaks raw frames.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running tidegate; stopped when dropped.
pub struct Server {
    child: Child,
    pub bootstrap: SocketAddr,
    pub brokers: Vec<SocketAddr>,
    /// Each listener's bootstrap address, by name.
    pub listeners: HashMap<String, SocketAddr>,
    /// Where /metrics, /healthz and /readyz are served, with `--metrics-addr`.
    pub metrics: Option<SocketAddr>,
    /// What it logged at info level, when started with `start_logged`.
    log: Option<Arc<Mutex<String>>>,
}

impl Server {
    /// Starts tidegate on loopback with free ports and waits for its ready line.
    pub fn start(extra_args: &[&str]) -> Server {
        Server::start_on(0, 0, extra_args)
    }

    /// Starts tidegate on loopback on the given ports (0: any free one).
    pub fn start_on(port: u16, broker_port_base: u16, extra_args: &[&str]) -> Server {
        Server::spawn(port, broker_port_base, extra_args, false, &[])
    }

    /// As `start`, keeping what tidegate logs at info level (see `log`).
    pub fn start_logged(extra_args: &[&str]) -> Server {
        Server::spawn(0, 0, extra_args, true, &[])
    }

    /// Starts tidegate with these `--listener NAME=PROTOCOL://HOST:PORT`s instead of the one
    /// PLAINTEXT listener, logged; `listeners` maps each name to its bootstrap address.
    pub fn start_listeners(listeners: &[&str], extra_args: &[&str]) -> Server {
        let mut args: Vec<&str> = Vec::new();
        for listener in listeners {
            args.extend(["--listener", listener]);
        }
        args.extend_from_slice(extra_args);
        Server::launch(&args, true, &[])
    }

    /// As `start_logged`, with these environment variables set (`TIDEGATE_*` settings).
    pub fn start_with_env(extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(0, 0, extra_args, true, env)
    }

    fn spawn(
        port: u16,
        broker_port_base: u16,
        extra_args: &[&str],
        logged: bool,
        env: &[(&str, &str)],
    ) -> Server {
        let (port, base) = (port.to_string(), broker_port_base.to_string());
        let mut args = vec!["--listen", "127.0.0.1", "--port", &port];
        args.extend(["--broker-port-base", &base]);
        args.extend_from_slice(extra_args);
        Server::launch(&args, logged, env)
    }

    fn launch(args: &[&str], logged: bool, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidegate"))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", if logged { "info" } else { "warn" })
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(if logged {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("start tidegate");
        let log = child.stderr.take().map(|stderr| {
            let log = Arc::new(Mutex::new(String::new()));
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut sink = sink.lock().expect("log lock");
                    sink.push_str(&line);
                    sink.push('\n');
                }
            });
            log
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("ready line");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .to_string()
        };
        let bootstrap = field("bootstrap=").parse().expect("bootstrap address");
        let brokers = field("brokers=")
            .split(',')
            .map(|b| b.parse().expect("broker address"))
            .collect();
        let listeners = field("listeners=")
            .split(',')
            .filter_map(|l| l.split_once('@'))
            .map(|(name, address)| (name.to_string(), address.parse().expect("listener address")))
            .collect();
        let metrics = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("metrics="))
            .map(|address| address.parse().expect("metrics address"));
        Server {
            child,
            bootstrap,
            brokers,
            listeners,
            metrics,
            log,
        }
    }

    /// What tidegate has logged so far (empty unless started with `start_logged`).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .map(|log| log.lock().expect("log lock").clone())
            .unwrap_or_default()
    }

    /// Waits until tidegate has logged a line containing `text`.
    pub fn wait_for_log(&self, text: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.log().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} logged within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` ("TERM", "INT", "KILL", "STOP", "CONT") to tidegate.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for tidegate to exit, failing the test if it has not within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for tidegate") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tidegate still running {limit:?} after being told to stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.bootstrap)
    }

    /// The server's resident memory now, in bytes, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        self.proc_status_kib("VmRSS:") * 1024
    }

    /// The most resident memory the server has had, in bytes, from /proc.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.proc_status_kib("VmHWM:") * 1024
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status of tidegate");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client that sends one request at a time.
pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Client {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends `request` at `version` and decodes the answer.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some("tidegate-tests".into()));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        request.encode(&mut body, version).expect("encode request");
        self.send_frame(&body);
        let mut frame = self.read_frame().expect("response frame");
        let response_header =
            ResponseHeader::decode(&mut frame, R::Response::header_version(version))
                .expect("header");
        assert_eq!(response_header.correlation_id, self.correlation_id);
        R::Response::decode(&mut frame, version).expect("decode response")
    }

    pub fn send_frame(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).expect("send");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next frame, or `None` if the server closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut frame).ok()?;
        Some(Bytes::from(frame))
    }

    /// True once the server has closed this connection (reads end without data).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// The first bytes of a frame body: api key, version, correlation id.
pub fn raw_header(api_key: i16, version: i16, correlation_id: i32) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i16(api_key);
    body.put_i16(version);
    body.put_i32(correlation_id);
    body.put_i16(-1); // null client id
    body
}

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, TimestampType};

pub const PRODUCE_VERSION: i16 = 9;
pub const FETCH_VERSION: i16 = 12;

pub fn topic_name(name: &str) -> TopicName {
    TopicName(name.to_string().into())
}

pub fn create_topic(client: &mut Client, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let response = client.call(&request, 5);
    assert_eq!(response.topics[0].error_code, 0, "create {name}");
}

/// Records as a producer would make them: key, value, a header and a timestamp.
pub fn records(partition: i32, count: i32, producer: Option<(i64, i16, i32)>) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            headers.insert(
                "h".to_string().into(),
                Some(Bytes::from(format!("{partition}/{i}"))),
            );
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: producer.map_or(-1, |p| p.1),
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // The encoder starts a new batch when offset - sequence changes.
                sequence: producer.map_or(i - 1, |p| p.2 + i),
                timestamp: 1_700_000_000_000 + i64::from(i),
                key: Some(Bytes::from(format!("key-{partition}-{i}"))),
                value: Some(Bytes::from(format!("value-{partition}-{i}").repeat(10))),
                headers,
            }
        })
        .collect()
}

pub fn encode_batch(records: &[Record], compression: Compression) -> Bytes {
    tidegate::record_batch::encode_batch(records, compression).expect("encode batch")
}

pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])])
}

/// Produces one batch and returns (error code, base offset).
pub fn produce(client: &mut Client, topic: &str, partition: i32, batch: Bytes) -> (i16, i64) {
    let response: ProduceResponse = client.call(
        &produce_request(topic, partition, batch, -1),
        PRODUCE_VERSION,
    );
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// Produces as a client does: a retriable error (here KAFKA_STORAGE_ERROR while SMQ still
/// unloads the partition the old process published to) is retried after a backoff.
pub fn produce_retrying(client: &mut Client, topic: &str, partition: i32, batch: Bytes) -> i64 {
    const KAFKA_STORAGE_ERROR: i16 = 56;
    for _ in 0..100 {
        match produce(client, topic, partition, batch.clone()) {
            (0, offset) => return offset,
            (KAFKA_STORAGE_ERROR, _) => std::thread::sleep(Duration::from_millis(100)),
            (error, _) => panic!("produce to {topic}/{partition}: error {error}"),
        }
    }
    panic!("produce to {topic}/{partition}: still failing after 100 retries");
}

/// Every sample of a scrape, by its series (`name{labels}`).
pub fn scrape(server: &Server) -> HashMap<String, f64> {
    let (status, body) = http_get(&metrics_port(server), "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            (series.to_string(), value.parse().expect("sample value"))
        })
        .collect()
}

/// Where the server serves /metrics (it was started with `--metrics-addr`).
pub fn metrics_port(server: &Server) -> String {
    server.metrics.expect("metrics address").port().to_string()
}

/// `count` Fetches of `topic`'s partition 0 from its start, framed back to back for one
/// write, with correlation ids 0, 1, …: a client that pipelines.
pub fn pipelined_fetches(topic: &str, count: i32) -> Vec<u8> {
    let mut wire = Vec::new();
    for correlation_id in 0..count {
        let fetch = request_frame(
            &fetch_request(topic, 0, 0, 0),
            FETCH_VERSION,
            correlation_id,
        );
        wire.extend_from_slice(&(fetch.len() as i32).to_be_bytes());
        wire.extend_from_slice(&fetch);
    }
    wire
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(10 << 20)])])
}

/// Fetches from `offset` and decodes the records, with their offsets.
pub fn fetch(
    client: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, Vec<Record>) {
    let response: FetchResponse = client.call(
        &fetch_request(topic, partition, offset, max_wait_ms),
        FETCH_VERSION,
    );
    let data = &response.responses[0].partitions[0];
    let mut records = Vec::new();
    if let Some(bytes) = &data.records {
        let mut bytes = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut bytes).expect("decode fetched batches") {
            records.extend(set.records);
        }
    }
    (data.error_code, records)
}

/// What a consumer compares of a record: offset, key, value, headers, timestamp.
pub type Visible = (
    i64,
    Option<Bytes>,
    Option<Bytes>,
    Vec<(String, Option<Bytes>)>,
    i64,
);

pub fn visible(records: &[Record]) -> Vec<Visible> {
    records
        .iter()
        .map(|r| {
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            (
                r.offset,
                r.key.clone(),
                r.value.clone(),
                headers,
                r.timestamp,
            )
        })
        .collect()
}

/// A request frame body (header and request) without sending it.
pub fn request_frame<R: Request>(request: &R, version: i16, correlation_id: i32) -> BytesMut {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .encode(&mut body, R::header_version(version))
        .expect("encode header");
    request.encode(&mut body, version).expect("encode request");
    body
}

/// The ports `scripts/seaweedfs` wrote to DIR/ports.env, or `None` to skip.
pub fn seaweedfs() -> Option<HashMap<String, String>> {
    ports_env("TIDEGATE_SEAWEEDFS", "scripts/seaweedfs start")
}

/// As [`seaweedfs`], for a SeaweedFS with gRPC mutual TLS: `TIDEGATE_SEAWEEDFS_TLS`, a
/// directory `SEAWEEDFS_TLS=1 scripts/seaweedfs start` runs in (its ports.env also names
/// the CA and a client certificate and key: TLS_CA, TLS_CERT, TLS_KEY).
pub fn seaweedfs_tls() -> Option<HashMap<String, String>> {
    ports_env(
        "TIDEGATE_SEAWEEDFS_TLS",
        "SEAWEEDFS_TLS=1 scripts/seaweedfs start",
    )
}

fn ports_env(variable: &str, start: &str) -> Option<HashMap<String, String>> {
    let Some(dir) = std::env::var_os(variable) else {
        // Straight to stderr: the test harness would swallow eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: set {variable} to a directory `{start}` runs in (scripts/test does)"
        );
        return None;
    };
    let path = PathBuf::from(dir).join("ports.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (is SeaweedFS running there?)", path.display()));
    Some(
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// GET on a local HTTP port (the filer's, where directories are listed as JSON, or
/// tidegate's --metrics-addr): (status, body).
pub fn http_get(port: &str, path: &str) -> (u16, String) {
    http(port, "GET", path)
}

/// A DELETE of `path` (the filer removes the file there): its status.
pub fn http_delete(port: &str, path: &str) -> u16 {
    http(port, "DELETE", path).0
}

fn http(port: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("http connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}

/// Names in a filer directory's JSON listing (none if it does not exist).
pub fn filer_list(filer_port: &str, path: &str) -> Vec<String> {
    let (status, body) = http_get(filer_port, &format!("{path}/?limit=1000"));
    if status == 404 {
        return Vec::new();
    }
    let listing: serde_json::Value = serde_json::from_str(&body).expect("filer listing");
    listing["Entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["FullPath"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until SMQ has flushed a first file of every partition of `topic`. Until then a
/// partition reloaded after its publishers went away reads as empty (an SMQ bug, see
/// proto/README.md "Partition unloading"), which is not what this test is about.
pub fn wait_first_flush(filer_port: &str, topic: &str, partitions: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let versions = filer_list(filer_port, &format!("/topics/kafka/{topic}"));
        let flushed = versions.iter().max().map_or(0, |version| {
            filer_list(filer_port, version)
                .iter()
                .filter(|range| {
                    filer_list(filer_port, range)
                        .iter()
                        .any(|file| !file.ends_with("checkpoint.offset"))
                })
                .count()
        });
        if flushed == partitions as usize {
            return;
        }
        assert!(Instant::now() < deadline, "SMQ flushed no file of {topic}");
        // The broker flushes every few seconds; there is nothing to wait on but the listing.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// tidegate's arguments for SeaweedMQ at `master` with two shards (partitions on both), then
/// `extra`.
pub fn smq_args<'a>(master: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--backend", "smq", "--smq-master", master, "--shards", "2"];
    args.extend_from_slice(extra);
    args
}

/// Starts tidegate on loopback with `args`, expecting its start-up to fail within `limit`
/// without printing its ready line: its exit code and what it logged.
pub fn start_up_failure(args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidegate"))
        .args([
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--broker-port-base",
            "0",
        ])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tidegate");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tidegate") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: tidegate still starting after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    assert!(
        !stdout.contains("tidegate ready"),
        "{args:?}: ready: {stdout}"
    );
    (status.code(), stderr)
}
