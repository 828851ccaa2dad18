"""perf/run's body: every speed figure of the project, side by side, in one run.

Contenders (--contenders), all on this machine and interleaved workload by workload, so
machine drift hits them alike:

  kafka         a single Apache Kafka 4.x broker in KRaft mode (.cache/kafka-server, from
                Maven Central via perf/kafka/server/pom.xml), JVM options of kafka-server-start.sh
  go-gateway    SeaweedFS's own Kafka gateway (tools/cmd/go-gateway) in front of SMQ
  tidegate-smq  tidegate --backend smq in front of the same SMQ, once per --shards value
  tidegate-mem  tidegate --backend memory, once per --shards value
  tidegate-mem-tls  the same over a SASL_SSL listener (SCRAM-SHA-512, a certificate made with
                openssl in --out/tls), once per --shards value: what TLS and SASL cost; its
                ratio column is its records/s ÷ tidegate-mem's. The harness's admin client
                creates topics on a second, PLAINTEXT listener
  tidegate-mem-acl  tidegate-mem with an ACL in force on every perf topic (User:ANONYMOUS
                allowed all on the prefix "perf-"), so each request's topics are decided
                through the shard's ACL decision cache: what authorization costs; its ratio
                column is its records/s ÷ tidegate-mem's
  smq-direct    tools/cmd/smq-publish: a pipelined gRPC publisher straight into SMQ, the
                ceiling of what SMQ itself ingests (produce only)

With --tidegate-bin-b PATH every tidegate contender runs a second time with that binary,
right after the first at the same shard count (rows "tidegate smq B ×N"): an interleaved
A/B of two builds, whose ratio column is A ÷ B.

Workloads (--workloads): produce (kafka-producer-perf-test over the --sizes x --acks x
--compression x --partitions matrix), consume (kafka-consumer-perf-test reading each topic
back right after producing it, once per size/compression/partitions: acks does not change
what is stored; the tailing consumer), catchup (SMQ contenders: --catchup-records records
written once, flushed by SMQ to the filer, then read from the start by every contender, each
in a freshly started server process, so nothing but SMQ's files holds them: a consumer
catching up on data written minutes earlier), e2e (Kafka's EndToEndLatency tool), callgrind
(instructions per produced record in tidegate, memory backend, 1 shard, under valgrind: a
figure machine noise does not move).

Every Kafka contender is driven by the same Java tools: kafka-tools 3.9.1 by default, since
the 4.x client cannot parse the Go gateway's ApiVersions answer (perf/RESULTS.md); with
--client 4 the 4.4.0 tools of tests/java are used for the others and 3.9.1 still for the
Go gateway (the table says so). With --producer java,franz the produce workload runs a
second time with tools/cmd/go-clients/perf-producer, the same load from franz-go (rows
marked [franz-go]): the Java producer spends tens of µs of CPU per record, and on a client
core of its own that, not the gateway, can bound the rate.

Per run: records/s, MB/s, latency percentiles as the tool prints them, CPU seconds of the
server process and of the SMQ process (`weed server`: master, volume, filer and broker in
one process) from /proc/PID/stat before and after, their peak RSS (VmHWM, reset before each
run through /proc/PID/clear_refs), and the client's CPU seconds (rusage of the child).

Output: one table on stdout (Markdown), and in --out: results.json, results.csv, table.md,
perf.png and the logs of every server and client.
"""

import argparse
import base64
import csv
import ctypes
import datetime
import functools
import json
import os
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# kafka-run-class.sh's JVM options (KAFKA_JVM_PERFORMANCE_OPTS), used for broker and tools.
JVM_PERF_OPTS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                 "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]
# kafka-server-start.sh's heap; kafka-producer-perf-test.sh's and kafka-consumer-perf-test.sh's.
BROKER_HEAP = ["-Xmx1G", "-Xms1G"]
TOOL_HEAP = ["-Xmx512M"]
# tidegate-mem-tls: the SCRAM user of its users file, and what the Java tools are told.
TLS_USER, TLS_PASSWORD = "perf", "perf-secret"

ALL_CONTENDERS = ["kafka", "go-gateway", "tidegate-smq", "tidegate-mem", "tidegate-mem-tls", "tidegate-mem-acl",
                  "smq-direct"]
ALL_WORKLOADS = ["produce", "consume", "catchup", "e2e", "callgrind"]
SMQ_CONTENDERS = {"go-gateway", "tidegate-smq", "smq-direct"}

PRODUCER_RE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99.9th")
E2E_AVG_RE = re.compile(r"Avg latency: ([\d.]+) ms")
E2E_PCT_RE = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")


def log(msg):
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes

def _die_with_parent():
    # Runs in the child before exec: servers go when the harness is killed.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taskset(cpus):
    return ["taskset", "-c", cpus] if cpus else []


class Server:
    """A server process the harness started; stdout is read for a ready line, stderr logged."""

    def __init__(self, name, cmd, log_path, env=None):
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.stdout_lines = []
        with open(log_path, "ab") as logf:  # a restarted server (catchup) logs on after its first life
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf,
                                         env=dict(os.environ, NO_COLOR="1", **(env or {})),
                                         start_new_session=True, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid

    def wait_line(self, pattern, timeout):
        """The first stdout line matching pattern (a regex match), then keeps draining stdout."""
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        try:
            while True:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode(errors="replace").strip()
                    self.stdout_lines.append(text)
                    m = re.search(pattern, text)
                    if m:
                        threading.Thread(target=self._drain, daemon=True).start()
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}: no line matching {pattern!r} within {timeout:.0f}s")
                if sel.select(timeout=min(left, 1)):
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                    if not chunk:
                        raise RuntimeError(f"{self.name} exited (status {self.proc.wait()}) before it was "
                                           f"ready; {self.log_path}:\n{self.log_tail(10)}")
                    buf += chunk
        finally:
            sel.close()

    def _drain(self):
        for line in self.proc.stdout:
            self.stdout_lines.append(line.decode(errors="replace").rstrip())

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def cpu_seconds(pid):
    """utime + stime of a whole process (all its threads), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def peak_rss_mb(pid):
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid):
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid, field):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss(pid):
    # "5" resets VmHWM to the current RSS (proc(5), Linux 4.0+): a per-run peak.
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------ clients

@dataclass
class JavaTools:
    """Kafka's perf tools at one version; the 3.x and 4.x command lines differ."""
    version: str
    classpath: str

    def _java(self, main):
        return ["java", *TOOL_HEAP, *JVM_PERF_OPTS, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", self.classpath, main]

    @property
    def v3(self):
        return self.version.startswith("3.")

    # config: a client properties file (security settings), or None.
    def producer(self, bootstrap, topic, records, size, props, config=None):
        cmd = self._java("org.apache.kafka.tools.ProducerPerformance") + [
            "--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1"]
        if config:
            cmd += ["--producer.config" if self.v3 else "--command-config", str(config)]
        if self.v3:
            return cmd + ["--producer-props", f"bootstrap.servers={bootstrap}", *props]
        return cmd + ["--bootstrap-server", bootstrap, "--command-property", *props]

    def consumer(self, bootstrap, topic, records, group, timeout_ms, config=None):
        cmd = self._java("org.apache.kafka.tools.ConsumerPerformance") + [
            "--bootstrap-server", bootstrap, "--topic", topic, "--group", group, "--hide-header",
            "--timeout", str(timeout_ms)]
        if config:
            cmd += ["--consumer.config" if self.v3 else "--command-config", str(config)]
        return cmd + (["--messages", str(records)] if self.v3 else ["--num-records", str(records)])

    def e2e(self, bootstrap, topic, records, acks, size, config=None):
        main = "org.apache.kafka.tools.EndToEndLatency"
        if self.v3:
            return self._java(main) + [bootstrap, topic, str(records), acks, str(size),
                                       *([str(config)] if config else [])]
        return self._java(main) + ["--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
                                   "--producer-acks", acks, "--record-size", str(size),
                                   *(["--command-config", str(config)] if config else [])]


def client3():
    return JavaTools("3.9.1", f"{CACHE}/kafka-client3/lib/*")


def client4():
    java = REPO / "tests" / "java" / "target"
    return JavaTools("4.4.0", f"{java}/classes:{java}/dependency/*")


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})  # readiness polls: no noise


def grant_perf_topics(bootstrap, timeout=30):
    """tidegate-mem-acl: User:ANONYMOUS (every PLAINTEXT client) allowed all on topics named
    perf-…; the cluster and groups stay unnamed by any ACL, so open to all as before."""
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, ResourcePatternType,
                                       ResourceType)
    binding = AclBinding(ResourceType.TOPIC, "perf-", ResourcePatternType.PREFIXED, "User:ANONYMOUS", "*",
                         AclOperation.ALL, AclPermissionType.ALLOW)
    client = admin(bootstrap)  # kept until the answer: a dropped client ends its requests
    for future in client.create_acls([binding], request_timeout=timeout).values():
        future.result(timeout=timeout)


def create_topic(bootstrap, topic, partitions, timeout=60):
    from confluent_kafka.admin import NewTopic
    client = admin(bootstrap)  # kept alive until the future resolves: dropping it cancels the request
    futures = client.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                   operation_timeout=timeout, request_timeout=timeout)
    futures[topic].result(timeout=timeout)


def end_offsets(bootstrap, topic, partitions):
    """Each partition's high-water mark (the offset its next record gets)."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"perf-offsets-{uuid.uuid4()}", "log_level": 0})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(partitions)]
    finally:
        consumer.close()


def _seaweedfs_script(*cmd, env=None):
    return subprocess.run([str(REPO / "scripts" / "seaweedfs"), *cmd], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=900)


def seaweedfs_running(directory):
    return _seaweedfs_script("status", str(directory)).returncode == 0


def stop_seaweedfs(directory):
    _seaweedfs_script("stop", str(directory))


def seaweedfs(directory, port_offset):
    """The SeaweedFS (with its MQ broker) running in `directory`, started there if none is:
    (its ports.env as a dict, with its "pid"; whether this call started it)."""
    started = False
    if not seaweedfs_running(directory):
        log(f"starting SeaweedFS in {directory} (port offset {port_offset}; ~30 s)")
        res = _seaweedfs_script("start", str(directory), env={"SEAWEEDFS_PORT_OFFSET": str(port_offset)})
        if res.returncode != 0:
            raise RuntimeError(f"SeaweedFS did not start:\n{res.stderr[-3000:]}")
        started = True
    else:
        log(f"using the SeaweedFS running in {directory}")
    res = _seaweedfs_script("build")
    if res.returncode != 0:
        raise RuntimeError(f"scripts/seaweedfs build failed:\n{res.stderr[-3000:]}")
    ports = dict(line.split("=", 1) for line in (directory / "ports.env").read_text().splitlines() if "=" in line)
    ports["pid"] = int((directory / "weed.pid").read_text().strip())
    return ports, started


def filer_list(filer, path, limit=1000, timeout=10):
    """The entries of a directory in the filer (its HTTP listing), [] when there is none."""
    req = urllib.request.Request(f"http://{filer}{path}/?limit={limit}", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp).get("Entries") or []
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def flushed_offset_max(filer, topic):
    """Per SMQ partition (Kafka partition order): the offset_max of each data file SMQ has
    flushed to the filer, None for a file without one (a partition's first file)."""
    versions = sorted(e["FullPath"] for e in filer_list(filer, f"/topics/kafka/{topic}")
                      if e["FullPath"].rsplit("/", 1)[1].startswith("v"))
    out = []
    for part in sorted(e["FullPath"] for e in filer_list(filer, versions[-1])) if versions else []:
        maxima = []
        for e in filer_list(filer, part):
            name = e["FullPath"].rsplit("/", 1)[1]
            if name == "checkpoint.offset" or name.endswith(".parquet"):
                continue
            raw = (e.get("Extended") or {}).get("offset_max")
            maxima.append(int.from_bytes(base64.b64decode(raw), "big") if raw else None)
        out.append(maxima)
    return out


def wait_flushed(filer, topic, last_offsets, timeout=120):
    """Waits until SMQ has flushed, for each partition p of last_offsets, a file whose offset
    range reaches last_offsets[p] (None: any file)."""
    deadline = time.monotonic() + timeout
    while True:
        files = flushed_offset_max(filer, topic)

        def flushed(p, last):
            maxima = files[p] if p < len(files) else []
            return bool(maxima) if last is None else any(m is not None and m >= last for m in maxima)
        if all(flushed(p, last) for p, last in last_offsets.items()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"SMQ did not flush {topic} up to {last_offsets} within {timeout}s "
                               f"(offset_max per file: {files})")
        time.sleep(0.2)  # nothing to wait on but the filer's listing


def delete_topics(bootstrap, topics):
    if not topics:
        return
    client = admin(bootstrap)
    try:
        for fut in client.delete_topics(list(topics), operation_timeout=30).values():
            fut.result(timeout=30)
    except Exception as e:  # memory reclaimed or not, the run goes on
        log(f"delete topics on {bootstrap}: {e}")


# ------------------------------------------------------------------ contenders

@dataclass
class Contender:
    key: str            # one of ALL_CONTENDERS
    label: str          # as shown in the table
    family: str         # "kafka", "mem" or "smq": which tidegate a row is compared with
    bootstrap: str = ""
    shards: int = 0
    client_config: Path = None  # properties file the Java tools need (tidegate-mem-tls: SASL_SSL)
    admin_bootstrap: str = ""   # where the harness creates and deletes topics, if not bootstrap
    tools: JavaTools = None
    pids: dict = field(default_factory=dict)  # "server"/"smq" -> pid whose CPU and RSS are measured
    broker: str = ""    # SMQ broker, for smq-direct
    deletes_topics: bool = False
    expected_to_fail: bool = False  # failures are reported, not fatal (the Go gateway)
    server: "Server" = None     # the process the harness started, if any
    start: object = None        # starts it again and returns a new Contender (Harness.launch)

    @property
    def is_tidegate(self):
        return self.key.startswith("tidegate")

    @property
    def admin(self):
        return self.admin_bootstrap or self.bootstrap


@dataclass
class Result:
    test: str
    workload: str
    contender: str
    label: str
    shards: int = 0
    size: int = 0
    acks: str = ""
    compression: str = ""
    partitions: int = 0
    records: int = 0
    records_s: float = None
    mb_s: float = None
    avg_ms: float = None
    p50_ms: float = None
    p99_ms: float = None
    p999_ms: float = None
    server_cpu_s: float = None
    smq_cpu_s: float = None
    server_rss_mb: float = None
    smq_rss_mb: float = None
    client_cpu_s: float = None
    wall_s: float = None
    client: str = ""
    status: str = "ok"
    extra: dict = field(default_factory=dict)
    command: str = ""


class Harness:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        (self.out / "logs").mkdir(parents=True, exist_ok=True)
        self.servers = []
        self.contenders = []
        self.results = []
        self.notes = []
        self.smq = None          # dict from ports.env, plus "pid"
        self.smq_started = False
        self.seq = 0

    # -------------------------------------------------------------- set-up

    def start_all(self):
        a = self.args
        want = a.contenders
        if SMQ_CONTENDERS & set(want):
            self.start_smq()
            if self.smq is None:
                want = [c for c in want if c not in SMQ_CONTENDERS]
        tools = client4() if a.client == "4" else client3()
        if a.tidegate_bin_b:
            self.notes.append(f"A/B: tidegate = {a.tidegate_bin} {a.tidegate_args}".rstrip()
                              + f", tidegate B = {a.tidegate_bin_b} {a.tidegate_args_b}".rstrip())
        for key in want:
            if key == "kafka":
                self.contenders.append(self.launch(functools.partial(self.start_kafka, tools)))
            elif key == "go-gateway":
                self.contenders.append(self.launch(self.start_go_gateway))
            elif key in ("tidegate-smq", "tidegate-mem", "tidegate-mem-tls", "tidegate-mem-acl"):
                tls = self.tls_files() if key == "tidegate-mem-tls" else None
                acl = key == "tidegate-mem-acl"
                for n in a.shards:
                    for b in [False, True] if a.tidegate_bin_b else [False]:
                        self.contenders.append(self.launch(functools.partial(
                            self.start_tidegate, n, smq=key == "tidegate-smq", tools=tools, tls=tls, acl=acl, b=b)))
            elif key == "smq-direct":  # no server of its own: nothing to launch
                self.contenders.append(Contender("smq-direct", "SMQ direct gRPC", "smq", broker=self.smq["BROKER"],
                                                 pids={"smq": self.smq["pid"]}))

    def launch(self, start):
        """start() starts a contender's server and returns the contender; it keeps start, so
        restart() can do the same again."""
        c = start()
        c.start = start
        return c

    def restart(self, c):
        """A fresh server process for c, started with the same command: nothing it read or wrote
        before is cached in it. Returns the new contender, which also takes c's place in the run."""
        c.server.stop()
        self.servers.remove(c.server)
        fresh = self.launch(c.start)
        self.contenders[self.contenders.index(c)] = fresh
        return fresh

    def start_smq(self):
        a = self.args
        d = a.smq_dir
        if not seaweedfs_running(d) and a.smoke:
            note = (f"SMQ contenders skipped: no SeaweedFS running in {d} (smoke mode starts none; "
                    f"`SEAWEEDFS_PORT_OFFSET={a.smq_port_offset} scripts/seaweedfs start {d}` starts one)")
            log(note)
            self.notes.append(note)
            return
        ports, self.smq_started = seaweedfs(d, a.smq_port_offset)
        if a.server_cpus:
            subprocess.run(["taskset", "-a", "-p", "-c", a.server_cpus, str(ports["pid"])], capture_output=True)
        self.smq = ports

    def start_kafka(self, tools):
        a = self.args
        lib = CACHE / "kafka-server" / "lib"
        jars = sorted(lib.glob("kafka_2.13-*.jar"))
        if not jars:
            raise RuntimeError(f"no Kafka broker in {lib}: run `scripts/deps perf`")
        version = jars[0].name[len("kafka_2.13-"):-len(".jar")]
        d = self.out / "kafka"
        shutil.rmtree(d, ignore_errors=True)  # a reused --out: format needs an empty log dir
        d.mkdir()
        port, cport = free_port(), free_port()
        props = d / "server.properties"
        # One combined broker+controller, defaults otherwise (3 network and 8 I/O threads,
        # no fsync per write: the page cache, as shipped). Replication factors of internal
        # topics are 1 because there is one broker; no initial rebalance delay, so the
        # consumer runs measure fetching, not a timer.
        props.write_text(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={d}/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
""")
        java = ["java", f"-Dlog4j2.configurationFile={REPO}/perf/kafka/log4j2.properties", "-cp", f"{lib}/*"]
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        fmt = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
                                     "--standalone"], capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            raise RuntimeError(f"Kafka storage format failed:\n{fmt.stdout[-2000:]}\n{fmt.stderr[-2000:]}")
        cmd = taskset(a.server_cpus) + java[:1] + BROKER_HEAP + JVM_PERF_OPTS + java[1:] + ["kafka.Kafka", str(props)]
        log(f"starting Kafka {version} (KRaft) on 127.0.0.1:{port}")
        srv = Server("kafka", cmd, self.out / "logs" / "kafka.log")
        self.servers.append(srv)
        bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # ready when it answers Metadata
            if not srv.alive():
                raise RuntimeError(f"Kafka exited (status {srv.proc.returncode}):\n{srv.log_tail()}")
            try:
                admin(bootstrap).list_topics(timeout=2)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kafka not ready after 120 s:\n{srv.log_tail()}")
                time.sleep(0.3)
        return Contender("kafka", f"Kafka {version}", "kafka", bootstrap=bootstrap, tools=tools,
                         pids={"server": srv.pid}, deletes_topics=True, server=srv)

    def start_go_gateway(self):
        a = self.args
        port = free_port()
        cmd = taskset(a.server_cpus) + [str(CACHE / "bin" / "go-gateway"), "-listen", f"127.0.0.1:{port}",
                                        "-master", self.smq["MASTER"], "-defaultPartitions", "1"]
        srv = Server("go-gateway", cmd, self.out / "logs" / "go-gateway.log")
        self.servers.append(srv)
        srv.wait_line(r"^go-gateway ready listen=", 60)
        # The 4.x Java client cannot parse its ApiVersions answer: always the 3.x tools.
        return Contender("go-gateway", "Go gateway", "smq", bootstrap=f"127.0.0.1:{port}", tools=client3(),
                         pids={"server": srv.pid, "smq": self.smq["pid"]}, expected_to_fail=True, server=srv)

    def tls_files(self):
        """tidegate-mem-tls's files in --out/tls, made with openssl as README.md's "Security" does:
        a CA, a server certificate for 127.0.0.1 signed by it, a users file, the client's properties."""
        d = self.out / "tls"
        d.mkdir(exist_ok=True)

        def openssl(*args):
            res = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
            if res.returncode != 0:
                raise RuntimeError(f"openssl {' '.join(args)}:\n{res.stderr[-2000:]}")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=perf CA")
        openssl("req", *ec, "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost")
        (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "2", "-extfile", "server.ext", "-out", "server.pem")
        (d / "users").write_text(f"{TLS_USER}:{TLS_PASSWORD}\n")
        (d / "client.properties").write_text("\n".join([
            "security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{TLS_USER}" password="{TLS_PASSWORD}";',
            "ssl.truststore.type=PEM", f"ssl.truststore.location={d / 'ca.pem'}", ""]))
        return d

    def start_tidegate(self, shards, smq, tools, tls=None, acl=False, b=False):
        """tidegate at one shard count; b: the --tidegate-bin-b build, keyed "tidegate-smq-b";
        tls: tls_files()' directory, for a PLAINTEXT listener (the harness's admin client) and a
        SASL_SSL one (the Java tools); acl: an ACL in force on the perf topics."""
        a = self.args
        binary = a.tidegate_bin_b if b else a.tidegate_bin
        cmd = taskset(a.server_cpus) + [str(binary), "--shards", str(shards), "--default-partitions", "1"]
        if tls:
            cmd += ["--listener", "PLAIN=PLAINTEXT://127.0.0.1:0", "--listener", "SECURE=SASL_SSL://127.0.0.1:0",
                    "--ssl-certificate", str(tls / "server.pem"), "--ssl-key", str(tls / "server-key.pem"),
                    "--users-file", str(tls / "users"), "--allow-everyone-if-no-acl-found", "true"]
        else:
            cmd += ["--listen", "127.0.0.1", "--port", "0", "--broker-port-base", "0"]
        if a.server_cpus:
            cmd += ["--cpus", a.server_cpus]
        if smq:
            cmd += ["--backend", "smq", "--smq-broker", self.smq["BROKER"]]
            if "--smq-filer" in self.tidegate_help(binary):  # committed offsets live in the filer
                cmd += ["--smq-filer", f"127.0.0.1:{self.smq['FILER_GRPC_PORT']}"]
        else:
            cmd += ["--backend", "memory"]
        extra = shlex.split(a.tidegate_args_b if b else a.tidegate_args)
        if smq and "--smq-acks-all" not in extra and "--smq-acks-all" in self.tidegate_help(binary):
            # acks=all as fast as acks=1, as the direct publisher and the Go gateway answer it:
            # the durable default waits for weed's flush (README: SeaweedMQ).
            extra = ["--smq-acks-all", "memory", *extra]
        cmd += extra
        key = f"tidegate-{'smq' if smq else 'mem'}" + ("-tls" if tls else "") + ("-acl" if acl else "") \
            + ("-b" if b else "")
        name = f"{key}-{shards}"
        srv = Server(name, cmd, self.out / "logs" / f"{name}.log")
        self.servers.append(srv)
        m = srv.wait_line(r"^tidegate ready bootstrap=(\S+) .*?(?:listeners=(\S+))?$", 60)
        pids = {"server": srv.pid}
        if smq:
            pids["smq"] = self.smq["pid"]
        label = (f"tidegate {'smq' if smq else 'mem'}{' SASL_SSL' if tls else ''}{' ACLs' if acl else ''}"
                 f"{' B' if b else ''} ×{shards}")
        c = Contender(key, label, "smq" if smq else "mem", bootstrap=m.group(1), shards=shards, tools=tools,
                      pids=pids, deletes_topics=not smq, server=srv)
        if tls:
            listeners = dict(x.split("@", 1) for x in (m.group(2) or "").split(",") if "@" in x)
            c.bootstrap, c.admin_bootstrap = listeners["SECURE"], listeners["PLAIN"]
            c.client_config = tls / "client.properties"
        if acl:
            grant_perf_topics(c.bootstrap)
        return c

    def tidegate_help(self, binary):
        if not hasattr(self, "_help"):
            self._help = {}
        if binary not in self._help:
            self._help[binary] = subprocess.run([str(binary), "--help"], capture_output=True, text=True).stdout
        return self._help[binary]

    def stop_all(self):
        for srv in reversed(self.servers):
            srv.stop()
        if self.smq_started and not self.args.keep_smq:
            log("stopping SeaweedFS")
            stop_seaweedfs(self.args.smq_dir)

    # -------------------------------------------------------------- measuring

    def topic(self, c, what):
        self.seq += 1
        return f"perf-{what}-{c.key}{c.shards or ''}-{os.getpid()}-{self.seq}"

    def measured(self, c, res, cmd, timeout):
        """Runs a client command while measuring the contender's processes; fills res."""
        for pid in c.pids.values():
            reset_peak_rss(pid)
        before = {role: cpu_seconds(pid) for role, pid in c.pids.items()}
        cpu0, t0 = children_cpu(), time.monotonic()
        res.command = shlex.join(cmd)
        try:
            proc = subprocess.run(taskset(self.args.client_cpus) + cmd, capture_output=True, text=True,
                                  timeout=timeout, cwd=self.out)
            stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            rc = None
        res.wall_s = time.monotonic() - t0
        res.client_cpu_s = children_cpu() - cpu0
        for role, pid in c.pids.items():
            after = cpu_seconds(pid)
            cpu = after - before[role] if after is not None and before[role] is not None else None
            setattr(res, f"{role}_cpu_s", cpu)
            setattr(res, f"{role}_rss_mb", peak_rss_mb(pid))
        logname = f"{res.test}-{c.key}{c.shards or ''}-{self.seq}.log"
        (self.out / "logs" / logname).write_text(
            f"$ {res.command}\nexit status: {rc}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
        if rc is None:
            res.status = f"FAILED: timed out after {timeout}s (logs/{logname})"
        elif rc != 0:
            res.status = f"FAILED: exit status {rc}: {last_error(stdout + stderr)} (logs/{logname})"
        return stdout, logname

    def producers(self, c):
        """The produce clients (--producer) contender c runs with: smq-direct is its own client;
        franz-go has no SASL_SSL settings here, so the SASL_SSL contender keeps Java, and so
        does the Go gateway, whose produce rate (one SMQ round trip per record) no client
        bounds."""
        if c.key == "smq-direct":
            return ["direct"]
        if c.client_config or c.key == "go-gateway":
            return ["java"]
        return self.args.producer

    def produce(self, c, wl, producer="java"):
        a = self.args
        size, acks, comp, parts = wl
        records = a.go_records if c.key == "go-gateway" else a.records
        res = Result("produce", wl_name(wl), c.key, c.label, c.shards, size, acks, comp, parts, records,
                     client=c.tools.version if c.tools else "smq-publish")
        topic = self.topic(c, "p")
        if c.key == "smq-direct":
            cmd = [str(CACHE / "bin" / "smq-publish"), "-broker", c.broker, "-topic", topic,
                   "-partitions", str(parts), "-records", str(records), "-record-size", str(size)]
        else:
            try:
                create_topic(c.admin, topic, parts)
            except Exception as e:
                res.status = f"FAILED: CreateTopics: {e}"
                return res, None
            if producer == "franz":
                # The same requests from a client that costs a few µs per record: what the
                # gateway takes when the Java producer is not what bounds the rate.
                res.client = "franz-go"
                cmd = [str(CACHE / "bin" / "perf-producer"), "-bootstrap", c.bootstrap, "-topic", topic,
                       "-records", str(records), "-record-size", str(size), "-acks", str(acks),
                       "-compression", comp, "-linger", "5ms"]
            else:
                # linger.ms=5 is the 4.x default; the 3.x tools would otherwise send at once.
                props = [f"acks={acks}", f"compression.type={comp}", "linger.ms=5"]
                cmd = c.tools.producer(c.bootstrap, topic, records, size, props, c.client_config)
        stdout, logname = self.measured(c, res, cmd, timeout=120 + records // 500)
        m = None
        for m in PRODUCER_RE.finditer(stdout):
            pass
        if m is None:
            if res.status == "ok":
                res.status = f"FAILED: no result line (logs/{logname})"
            return res, topic
        sent = int(m.group(1))
        res.records_s, res.mb_s, res.avg_ms = float(m.group(2)), float(m.group(3)), float(m.group(4))
        res.p50_ms, res.p99_ms, res.p999_ms = float(m.group(6)), float(m.group(8)), float(m.group(9))
        if sent != records and res.status == "ok":
            res.status = f"FAILED: {sent} of {records} records acknowledged (logs/{logname})"
        return res, topic

    def consume(self, c, wl, topic, records, test="consume"):
        """ConsumerPerformance reading topic from the start in a new group; test names the row."""
        size, acks, comp, parts = wl
        res = Result(test, wl_name(wl, acks=False), c.key, c.label, c.shards, size, "", comp, parts, records,
                     client=c.tools.version)
        self.seq += 1  # catchup: several contenders read one topic, each in a group of its own
        group = f"perf-{os.getpid()}-{self.seq}"
        cmd = c.tools.consumer(c.bootstrap, topic, records, group, timeout_ms=15000, config=c.client_config)
        stdout, logname = self.measured(c, res, cmd, timeout=120 + records // 500)
        # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
        # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
        line = next((l for l in reversed(stdout.splitlines()) if l.count(",") == 9), None)
        if line is None:
            if res.status == "ok":
                res.status = f"FAILED: no result line (logs/{logname})"
            return res
        f = [x.strip() for x in line.split(",")]
        got = int(float(f[4]))
        # The fetch phase (after the group join): what the data path delivers.
        res.records_s, res.mb_s = float(f[9]), float(f[8])
        res.extra = {"rebalance_ms": float(f[6]), "fetch_ms": float(f[7]), "total_records_s": float(f[5])}
        if got != records and res.status == "ok":
            res.status = f"FAILED: {got} of {records} records consumed (logs/{logname})"
        return res

    def catchup(self, wl):
        """Catch-up consume: --catchup-records records written once, flushed by SMQ, then read
        from the start by each SMQ contender in a freshly started server process."""
        a = self.args
        size, acks, comp, parts = wl
        readers = [c for c in self.contenders if c.family == "smq" and c.key != "smq-direct"]
        if not readers:
            return []
        # One topic for every reader, written through tidegate (the Go gateway does one SMQ
        # round trip per record: --catchup-records through it would take minutes), so all read
        # the same records, as many. The Go gateway reads tidegate's topics: both keep them in
        # SMQ namespace "kafka", Kafka partition i being the i-th range of SMQ's ring.
        writer = next((c for c in readers if c.key == "tidegate-smq"), readers[0])
        # The writer reads first: restarting it closes its publishers, so SMQ unloads the
        # partitions before anyone reads them.
        readers.sort(key=lambda c: c is not writer)
        records = a.catchup_records
        topic = self.topic(writer, "c")
        try:
            self.write_flushed(writer, topic, wl, records)
        except Exception as e:
            return [Result("catchup", wl_name(wl, acks=False), c.key, c.label, c.shards, size, "", comp, parts,
                           records, client=c.tools.version, status=f"FAILED: writing the topic: {e}")
                    for c in readers]
        return [self.consume(self.restart(c), wl, topic, records, test="catchup") for c in readers]

    def write_flushed(self, c, topic, wl, records):
        """Writes records into a new topic through c and waits until SMQ has flushed them all to
        the filer. In two halves, the second written once the first is flushed: a partition's
        first file carries no offset range, and SMQ reloads a partition whose data all sits in it
        as empty (proto/README.md, "Partition unloading")."""
        size, acks, comp, parts = wl
        create_topic(c.admin, topic, parts)
        props = [f"acks={acks}", f"compression.type={comp}", "linger.ms=5"]
        before = None  # each partition's end offset after the first half
        for half in (records // 2, records - records // 2):
            cmd = c.tools.producer(c.bootstrap, topic, half, size, props, c.client_config)
            run = subprocess.run(taskset(self.args.client_cpus) + cmd, capture_output=True, text=True,
                                 timeout=120 + half // 500)
            sent = [int(m.group(1)) for m in PRODUCER_RE.finditer(run.stdout)]
            if sent[-1:] != [half]:
                raise RuntimeError(f"the producer: {last_error(run.stdout + run.stderr)}")
            ends = end_offsets(c.bootstrap, topic, parts)
            # Past the first half, a partition is flushed once a file's offset range reaches its
            # last record; one the second half did not write to may have only its first file.
            wait_flushed(self.smq["FILER"], topic, {
                p: ends[p] - 1 if before is not None and ends[p] > before[p] else None
                for p in range(parts) if ends[p]})
            before = ends

    def e2e(self, c):
        a = self.args
        records = min(a.e2e_records, a.go_e2e_records) if c.key == "go-gateway" else a.e2e_records
        res = Result("e2e", f"{size_name(a.e2e_size)} acks=all 1p", c.key, c.label, c.shards, a.e2e_size, "all",
                     "none", 1, records, client=c.tools.version)
        topic = self.topic(c, "e2e")
        try:
            create_topic(c.admin, topic, 1)
        except Exception as e:
            res.status = f"FAILED: CreateTopics: {e}"
            return res
        stdout, logname = self.measured(c, res, c.tools.e2e(c.bootstrap, topic, records, "all", a.e2e_size,
                                                            c.client_config), timeout=120 + records // 10)
        avg, pct = E2E_AVG_RE.search(stdout), E2E_PCT_RE.search(stdout)
        if avg and pct:
            res.avg_ms = float(avg.group(1))
            res.p50_ms, res.p99_ms, res.p999_ms = (float(x) for x in pct.groups())
        elif res.status == "ok":
            res.status = f"FAILED: no result line (logs/{logname})"
        if c.deletes_topics:
            delete_topics(c.admin, [topic])
        return res

    def callgrind(self):
        """Instructions (Ir) per produced record in tidegate (memory backend, 1 shard): a
        run with N records minus an idle run (start-up, shutdown), divided by N."""
        a = self.args
        vg = CACHE / "valgrind"
        binary = vg / "usr" / "bin" / "valgrind.bin"
        res = Result("callgrind", f"{size_name(a.callgrind_size)} acks=1 none 1p", "tidegate-mem",
                     "tidegate mem ×1 (callgrind)", 1, a.callgrind_size, "1", "none", 1, a.callgrind_records,
                     client=(client4() if a.client == "4" else client3()).version)
        if not binary.exists():
            res.status = "FAILED: no valgrind in .cache/valgrind (scripts/deps perf)"
            return res
        tools = client4() if a.client == "4" else client3()
        totals = {}
        for n in (0, a.callgrind_records):
            outfile = self.out / "logs" / f"callgrind.{n}.out"
            cmd = [str(binary), "--tool=callgrind", f"--callgrind-out-file={outfile}", str(a.tidegate_bin),
                   "--listen", "127.0.0.1", "--port", "0", "--broker-port-base", "0", "--shards", "1",
                   "--backend", "memory"]
            srv = Server(f"callgrind-{n}", cmd, self.out / "logs" / f"callgrind-{n}.log",
                         env={"VALGRIND_LIB": str(vg / "usr" / "libexec" / "valgrind")})
            try:
                m = srv.wait_line(r"^tidegate ready bootstrap=(\S+) ", 120)
                if n:
                    topic = f"perf-callgrind-{os.getpid()}"
                    create_topic(m.group(1), topic, 1)
                    cmd = tools.producer(m.group(1), topic, n, a.callgrind_size,
                                         ["acks=1", "compression.type=none", "linger.ms=5"])
                    res.command = shlex.join(cmd)
                    run = subprocess.run(taskset(a.client_cpus) + cmd, capture_output=True, text=True, timeout=600)
                    sent = [int(x.group(1)) for x in PRODUCER_RE.finditer(run.stdout)]
                    if sent[-1:] != [n]:
                        res.status = f"FAILED: producer under callgrind: {last_error(run.stdout + run.stderr)}"
                        return res
            except Exception as e:
                res.status = f"FAILED: {e}"
                return res
            finally:
                srv.stop(timeout=60)
            m = re.search(r"^(?:summary|totals): (\d+)", outfile.read_text() if outfile.exists() else "", re.M)
            if not m:
                res.status = f"FAILED: no callgrind totals (logs/callgrind-{n}.log)\n{srv.log_tail(5)}"
                return res
            totals[n] = int(m.group(1))
        res.extra = {"ir_total": totals[a.callgrind_records], "ir_idle": totals[0],
                     "ir_per_record": (totals[a.callgrind_records] - totals[0]) / a.callgrind_records,
                     "valgrind": subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                                                env=dict(os.environ, VALGRIND_LIB=str(vg / "usr/libexec/valgrind"))
                                                ).stdout.strip()}
        return res

    # -------------------------------------------------------------- the run

    def add(self, res):
        self.results.append(res)
        log(f"{res.test:8} {res.workload:22} {res.label:20} " + (
            f"{res.records_s:,.0f} rec/s" if res.records_s is not None else
            f"avg {res.avg_ms} ms" if res.avg_ms is not None else
            f"{res.extra.get('ir_per_record', 0):,.0f} Ir/record" if res.test == "callgrind" else "")
            + ("" if res.status == "ok" else f"  {res.status}"))

    def kafka_speaking(self):
        """The contenders Kafka clients talk to (as they are now: catchup restarts some)."""
        return [c for c in self.contenders if c.key != "smq-direct"]

    def run(self):
        a = self.args
        direct_done = set()
        for wl in workloads(a) if {"produce", "consume", "catchup"} & set(a.workloads) else []:
            size, acks, comp, parts = wl
            # Reads do not depend on acks: the consumers run once, with the first.
            consume_here = "consume" in a.workloads and acks == a.acks[0]
            if "produce" in a.workloads or consume_here:
                topics = {}
                for c in self.contenders:
                    if c.key == "smq-direct":
                        # SMQ has one ack and no compression: one run per size and partition count.
                        if (size, parts) in direct_done or "produce" not in a.workloads:
                            continue
                        direct_done.add((size, parts))
                    for producer in self.producers(c):
                        res, topic = self.produce(c, wl, producer)
                        self.add(res)
                        # The consumers read what the first producer wrote.
                        if res.status == "ok" and topic and c.label not in topics:
                            topics[c.label] = (topic, res.records)
                if consume_here:
                    for c in self.kafka_speaking():
                        if c.label in topics:
                            self.add(self.consume(c, wl, *topics[c.label]))
                for c in self.kafka_speaking():
                    if c.deletes_topics and c.label in topics:
                        delete_topics(c.admin, [topics[c.label][0]])
            if "catchup" in a.workloads and acks == a.acks[0]:  # next to the tailing consumer's rows
                for res in self.catchup(wl):
                    self.add(res)
        if "e2e" in a.workloads:
            for c in self.kafka_speaking():
                self.add(self.e2e(c))
        if "callgrind" in a.workloads:
            self.add(self.callgrind())


def last_error(text):
    # Known ways a client dies, said plainly; otherwise the last line that looks like an error.
    if "EndToEndLatency.validate" in text and "OffsetCommitResponseHandler" in text:
        return ("the consumer did not read back the record just produced (EndToEndLatency.validate), "
                "then the client crashed on the server's OffsetCommit answer (NullPointerException)")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in reversed(lines):
        if re.search(r"error|exception|fail", l, re.I):
            return l[:300]
    return lines[-1][:300] if lines else "(no output)"


def size_name(size):
    return f"{size // 1024}KB" if size % 1024 == 0 else f"{size}B"


def wl_name(wl, acks=True):
    size, a, comp, parts = wl
    return f"{size_name(size)}{' acks=' + a if acks else ''} {comp} {parts}p"


def workloads(a):
    return [(s, ack, comp, p) for s in a.sizes for comp in a.compression for p in a.partitions for ack in a.acks]


# ------------------------------------------------------------------ reporting

def fmt(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratios(results):
    """tidegate ÷ contender for each non-tidegate row: throughput ratio (produce, consume)
    or latency ratio contender avg / tidegate avg (e2e); one value per shard count."""
    out = {}
    for r in results:
        if r.contender.endswith("-b") and r.status == "ok":
            # --tidegate-bin-b: binary A ÷ binary B, same workload and shard count.
            t = next((t for t in results if t.contender == r.contender[:-2] and t.test == r.test
                      and t.workload == r.workload and t.shards == r.shards and t.client == r.client
                      and t.status == "ok"), None)
            v = None
            if t is not None and r.test == "e2e":
                v = r.avg_ms / t.avg_ms if r.avg_ms and t.avg_ms else None
            elif t is not None:
                v = t.records_s / r.records_s if r.records_s and t.records_s else None
            if v is not None:
                out[id(r)] = f"{v:.2f} (A ÷ B)"
            continue
        if r.contender in ("tidegate-mem-tls", "tidegate-mem-acl") and r.status == "ok":
            # SASL_SSL (or ACLs) ÷ PLAINTEXT, same workload and shard count: records/s (e2e: avg
            # latency).
            t = next((t for t in results if t.contender == "tidegate-mem" and t.test == r.test
                      and t.workload == r.workload and t.shards == r.shards and t.client == r.client
                      and t.status == "ok"), None)
            if t is not None and r.test == "e2e":
                v = r.avg_ms / t.avg_ms if r.avg_ms and t.avg_ms else None
            else:
                v = r.records_s / t.records_s if t is not None and r.records_s and t.records_s else None
            if v is not None:
                what = "SASL_SSL" if r.contender == "tidegate-mem-tls" else "ACLs"
                out[id(r)] = f"{v:.2f} ({what} ÷ plain)"
            continue
        if r.contender.startswith("tidegate") or r.status != "ok" or r.test == "callgrind":
            continue
        family = "tidegate-mem" if r.contender == "kafka" else "tidegate-smq"
        # The same client's tidegate rows (smq-direct, its own client: the first --producer's).
        client = r.client if r.contender != "smq-direct" else next(
            (t.client for t in results if t.contender == family and t.test == r.test), r.client)
        tg = [t for t in results if t.contender == family and t.test == r.test and t.status == "ok"
              and t.client == client
              and (t.workload == r.workload or (r.contender == "smq-direct" and t.size == r.size
                                                and t.partitions == r.partitions and t.workload == r.workload))]
        vals = []
        for t in sorted(tg, key=lambda t: t.shards):
            if r.test == "e2e":
                v = r.avg_ms / t.avg_ms if r.avg_ms and t.avg_ms else None
            else:
                v = t.records_s / r.records_s if r.records_s and t.records_s else None
            if v is not None:
                vals.append(f"{v:.2f}" if v < 10 else f"{v:.1f}")
        if vals:
            out[id(r)] = " / ".join(vals)
    return out


def cpu_per_record_us(r, roles=("server", "smq")):
    """CPU per record, µs, of the processes in roles: by default server plus SMQ, what the run
    cost the machine's server side; ("smq",) what it cost SMQ alone."""
    cpu = [getattr(r, f"{role}_cpu_s") for role in roles]
    if all(x is None for x in cpu) or not r.records or r.status != "ok":
        return None
    return sum(x or 0 for x in cpu) / r.records * 1e6


def table(results, shards):
    """The Markdown table, and the footnotes of its failed rows."""
    rat = ratios(results)
    notes = []
    head = ["test", "workload", "contender", "records/s", "MB/s", "avg ms", "p50 ms", "p99 ms", "p99.9 ms",
            "server CPU s", "SMQ CPU s", "µs CPU/rec", "SMQ µs/rec", "server peak RSS MB", "SMQ peak RSS MB", "client CPU s",
            f"tidegate ÷ this ({' / '.join(f'×{s}' for s in shards)})"]
    rows = []
    for r in results:
        if r.test == "callgrind":
            continue
        rows.append([r.test, r.workload, r.label + ("" if r.client in ("", "3.9.1", "smq-publish") else f" [{r.client}]"),
                     fmt(r.records_s), fmt(r.mb_s, 1), fmt(r.avg_ms, 2),
                     fmt(r.p50_ms, 0 if r.p50_ms is None or r.p50_ms >= 10 else 2),
                     fmt(r.p99_ms, 0 if r.p99_ms is None or r.p99_ms >= 10 else 2),
                     fmt(r.p999_ms, 0 if r.p999_ms is None or r.p999_ms >= 10 else 2),
                     fmt(r.server_cpu_s, 2), fmt(r.smq_cpu_s, 2), fmt(cpu_per_record_us(r), 1),
                     fmt(cpu_per_record_us(r, roles=("smq",)), 2),
                     fmt(r.server_rss_mb), fmt(r.smq_rss_mb),
                     fmt(r.client_cpu_s, 2), rat.get(id(r), "")])
        if r.status != "ok":
            notes.append(f"({len(notes) + 1}) {r.test} {r.workload}, {r.label}: {r.status}")
            rows[-1][3] = f"FAILED ({len(notes)})"
            rows[-1][4:-1] = ["" for _ in head[4:-1]]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    right = set(range(3, len(head)))

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w for i, w in enumerate(widths)) + " |"
    return "\n".join([line(head), sep] + [line(r) for r in rows]), notes


def targets(results):
    """design.md's targets, per produce workload and shard count."""
    lines = []
    ok = lambda r: r is not None and r.status == "ok" and r.records_s
    prod = [r for r in results if r.test == "produce"]

    def find(key, wl, shards=None, client=None):
        """key's row for workload wl: the one with the same client if it has one."""
        rows = [r for r in prod if r.contender == key and r.workload == wl
                and (shards is None or r.shards == shards)]
        return next((r for r in rows if r.client == client), rows[0] if rows else None)

    for key, other, what in (("tidegate-mem", "kafka", "memory backend ≥ 1.5× Kafka records/s with lower p99"),
                             ("tidegate-smq", "go-gateway", "tidegate→SMQ ≥ 20× the Go gateway"),
                             ("tidegate-smq", "smq-direct", "tidegate→SMQ ≥ 90% of the direct gRPC publisher")):
        met, total, detail = 0, 0, []
        for t in prod:
            if t.contender != key or not ok(t):
                continue
            if other == "smq-direct":
                o = next((r for r in prod if r.contender == other and r.size == t.size
                          and r.partitions == t.partitions), None)
            else:
                o = find(other, t.workload, client=t.client)
            if not ok(o):
                continue
            ratio = t.records_s / o.records_s
            # What bounds the rate: the server side's CPU per record, and the client's CPU.
            cost = (f", µs CPU/rec {fmt(cpu_per_record_us(t), 1)} vs {fmt(cpu_per_record_us(o), 1)}, client CPU "
                    f"{fmt(t.client_cpu_s, 1)} vs {fmt(o.client_cpu_s, 1)} s")
            label = f"{t.workload} ×{t.shards}" + ("" if t.client in ("", "3.9.1") else f" [{t.client}]")
            if other == "kafka":
                good = ratio >= 1.5 and t.p99_ms < o.p99_ms
                detail.append(f"{label}: {ratio:.2f}×, p99 {t.p99_ms:g} vs {o.p99_ms:g} ms"
                              + cost + ("" if good else " ✗"))
            elif other == "go-gateway":
                good = ratio >= 20
                detail.append(f"{label}: {ratio:.1f}×" + cost + ("" if good else " ✗"))
            else:
                good = ratio >= 0.9
                detail.append(f"{label}: {ratio:.0%}" + cost + ("" if good else " ✗"))
            met += good
            total += 1
        if total:
            lines.append(f"target: {what}: met in {met} of {total} runs")
            lines += [f"    {d}" for d in detail]
        else:
            lines.append(f"target: {what}: not measured (needs {key} and {other})")
    return lines + catchup_targets(results)


def catchup_targets(results):
    """Issue 15's catch-up targets, per catchup workload and shard count of tidegate-smq."""
    rows = [r for r in results if r.test == "catchup" and r.status == "ok" and r.records_s]
    tidegate = [r for r in rows if r.contender == "tidegate-smq"]
    checks = {"catch-up consume ≥ 100,000 records/s of 1 KB": [], "catch-up consume ≥ 2.5× the Go gateway": [],
              "catch-up SMQ CPU per record read ≤ 3 µs": []}
    for t in tidegate:
        at = f"{t.workload} ×{t.shards}"
        if t.size == 1024:
            checks["catch-up consume ≥ 100,000 records/s of 1 KB"].append(
                (f"{at}: {t.records_s:,.0f} records/s", t.records_s >= 100_000))
        go = next((r for r in rows if r.contender == "go-gateway" and r.workload == t.workload), None)
        if go is not None:
            ratio = t.records_s / go.records_s
            checks["catch-up consume ≥ 2.5× the Go gateway"].append(
                (f"{at}: {ratio:.1f}× ({t.records_s:,.0f} vs {go.records_s:,.0f} records/s, {t.records:,} records "
                 f"each)", ratio >= 2.5))
        smq_us = cpu_per_record_us(t, roles=("smq",))
        if smq_us is not None:
            checks["catch-up SMQ CPU per record read ≤ 3 µs"].append((f"{at}: {smq_us:.2f} µs", smq_us <= 3))
    lines = []
    for what, found in checks.items():
        if not found:
            lines.append(f"target: {what}: not measured (needs the catchup workload of tidegate-smq"
                         + (" and go-gateway)" if "Go gateway" in what else ")"))
            continue
        lines.append(f"target: {what}: met in {sum(good for _, good in found)} of {len(found)} runs")
        lines += [f"    {detail}" + ("" if good else " ✗") for detail, good in found]
    return lines


def callgrind_line(results):
    r = next((r for r in results if r.test == "callgrind"), None)
    if r is None:
        return None
    if r.status != "ok":
        return f"callgrind: tidegate memory ×1, {r.records:,} × {size_name(r.size)} acks=1: {r.status}"
    e = r.extra
    return (f"callgrind: tidegate memory ×1, {r.records:,} × {size_name(r.size)} acks=1: "
            f"{e['ir_per_record']:,.0f} instructions (Ir) per produced record "
            f"(Ir {e['ir_total']:,} minus {e['ir_idle']:,} for start-up and shutdown alone; {e['valgrind']})")


def chart(results, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("produce", "records_s", "produce: records/s (log)", True),
              ("produce", "p99_ms", "produce: p99 latency ms (log)", True),
              ("consume", "records_s", "consume (fetch phase): records/s (log)", True),
              ("catchup", "records_s", "catch-up consume of flushed data, fresh server (fetch phase): records/s (log)",
               True),
              ("produce", "cpu_us", "produce: server + SMQ CPU µs per record (log)", True)]
    labels = list(dict.fromkeys(r.label for r in results if r.test in ("produce", "consume", "catchup")))
    fig, axes = plt.subplots(len(panels), 1, figsize=(16, 4.2 * len(panels)))
    cmap = plt.get_cmap("tab10")
    for ax, (test, metric, name, logy) in zip(axes, panels):
        rows = [r for r in results if r.test == test and r.status == "ok"]
        wls = list(dict.fromkeys(r.workload for r in rows))
        width = 0.8 / max(1, len(labels))
        for i, lab in enumerate(labels):
            xs, ys = [], []
            for j, wl in enumerate(wls):
                r = next((r for r in rows if r.label == lab and r.workload == wl), None)
                if r is None:
                    continue
                v = cpu_per_record_us(r) if metric == "cpu_us" else getattr(r, metric)
                if v:
                    xs.append(j + (i - (len(labels) - 1) / 2) * width)
                    ys.append(v)
            if xs:
                ax.bar(xs, ys, width, label=lab, color=cmap(i % 10))
        ax.set_title(name)
        ax.set_xticks(range(len(wls)))
        ax.set_xticklabels(wls, rotation=20, ha="right", fontsize=8)
        if logy:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(ncol=min(len(labels), 7), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.25))
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cpu_list(spec):
    """'0-3,6' -> [0, 1, 2, 3, 6]"""
    cpus = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


def parse_args(argv):
    p = argparse.ArgumentParser(prog="perf/run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="perf/run --render DIR prints and writes the report again from "
                                       "DIR/results.json (after a change to the report's code).")
    comma = lambda s: [x for x in s.split(",") if x]
    p.add_argument("--smoke", action="store_true",
                   help="seconds, not minutes: tiny record counts, two workloads; SMQ contenders only if "
                        "SeaweedFS already runs in --smq-dir. Proves the pipeline works; numbers mean nothing")
    p.add_argument("--contenders", type=comma, default=ALL_CONTENDERS, help=f"default {','.join(ALL_CONTENDERS)}")
    p.add_argument("--workloads", type=comma, default=ALL_WORKLOADS,
                   help=f"default {','.join(ALL_WORKLOADS)}; consume reads right after producing, catchup "
                        "(SMQ contenders) reads what SMQ flushed before the server started")
    p.add_argument("--records", type=int, help="records per produce run (default 300000; smoke 2000)")
    p.add_argument("--go-records", type=int,
                   help="records per Go gateway produce run (default --records, so that its consume "
                        "rows read as many records as the others'; fewer shortens a run, since it "
                        "does one SMQ round trip per record, but its consume figure then is not comparable)")
    p.add_argument("--catchup-records", type=int,
                   help="records every SMQ contender reads in the catchup workload, the Go gateway too "
                        "(default 200000; smoke 2000)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in comma(s)], help="record sizes, bytes (default 100,1024)")
    p.add_argument("--acks", type=comma, help="producer acks (default 1,all)")
    p.add_argument("--compression", type=comma, help="compression.type values (default none,lz4)")
    p.add_argument("--partitions", type=lambda s: [int(x) for x in comma(s)], help="partitions (default 1,8)")
    p.add_argument("--shards", type=lambda s: [int(x) for x in comma(s)], help="tidegate shard counts (default 1,2)")
    p.add_argument("--server-cpus", default=None,
                   help="CPU list for every server process (taskset; tidegate also gets --cpus). Default: all")
    p.add_argument("--client-cpus", default=None, help="CPU list for the client tools (taskset). Default: all")
    p.add_argument("--client", choices=["3", "4"], default="3",
                   help="Java perf tools: 3 = kafka-tools 3.9.1 against every contender (default), 4 = the "
                        "4.4.0 tools of tests/java (the Go gateway still gets 3.9.1)")
    p.add_argument("--producer", type=comma, default=["java"],
                   help="the produce workload's clients, each run in turn: java = "
                        "kafka-producer-perf-test of --client (default), franz = "
                        "tools/cmd/go-clients/perf-producer, the same settings (batch.size 16384, linger "
                        "5 ms, 32 MiB buffered, acks=all idempotent) in franz-go, a few µs of client CPU "
                        "per record (the SASL_SSL contender and the Go gateway keep Java)")
    p.add_argument("--e2e-records", type=int, help="EndToEndLatency messages (default 2000; smoke 50)")
    p.add_argument("--go-e2e-records", type=int, default=200, help="cap for the Go gateway's e2e run (default 200)")
    p.add_argument("--e2e-size", type=int, default=1024, help="EndToEndLatency message size (default 1024)")
    p.add_argument("--callgrind-records", type=int, help="records through tidegate under callgrind "
                                                         "(default 20000; smoke 2000)")
    p.add_argument("--callgrind-size", type=int, default=1024, help="their size (default 1024)")
    p.add_argument("--smq-dir", type=Path, default=CACHE / "perf-seaweedfs",
                   help="SeaweedFS to use, started there when not running (not in smoke mode). "
                        "Default .cache/perf-seaweedfs")
    p.add_argument("--smq-port-offset", type=int, default=800, help="SEAWEEDFS_PORT_OFFSET when starting one (800)")
    p.add_argument("--keep-smq", action="store_true", help="leave a SeaweedFS this run started running")
    p.add_argument("--tidegate-bin", type=Path,
                   default=Path(os.environ.get("TIDEGATE_BIN", REPO / "target" / "release" / "tidegate")),
                   help="the tidegate binary (default $TIDEGATE_BIN, else target/release/tidegate)")
    p.add_argument("--tidegate-bin-b", type=Path, metavar="PATH",
                   help="a second tidegate build: every tidegate contender also runs with it, right after "
                        "the first (rows marked B, ratio A ÷ B); for an interleaved A/B of two builds")
    p.add_argument("--tidegate-args", default="", metavar="FLAGS",
                   help="more flags for every tidegate contender, as one string ('--smq-acks-all flushed'; "
                        "without it the SMQ contenders run with '--smq-acks-all memory', which answers acks=all "
                        "from SMQ's memory as the direct publisher and the Go gateway do)")
    p.add_argument("--tidegate-args-b", default="", metavar="FLAGS",
                   help="the same for the B runs: with --tidegate-bin-b naming the same binary, an A/B of "
                        "two settings (durable acks=all against memory acks, for instance)")
    p.add_argument("--out", type=Path, help="output directory (default perf/out/run-DATE-TIME)")
    p.add_argument("--record", action="store_true",
                   help="also add the report to the top of perf/RESULTS.md, its chart copied to perf/results/")
    a = p.parse_args(argv)
    smoke = a.smoke
    a.records = a.records or (2000 if smoke else 300_000)
    a.go_records = a.go_records or a.records
    a.catchup_records = a.catchup_records or (2000 if smoke else 200_000)
    a.e2e_records = a.e2e_records or (50 if smoke else 2000)
    a.callgrind_records = a.callgrind_records or (2000 if smoke else 20_000)
    a.sizes = a.sizes or ([1024] if smoke else [100, 1024])
    a.acks = a.acks or (["all"] if smoke else ["1", "all"])
    a.compression = a.compression or (["none", "lz4"] if smoke else ["none", "lz4"])
    a.partitions = a.partitions or ([8] if smoke else [1, 8])
    a.shards = a.shards or [1, 2]
    for c in a.contenders:
        if c not in ALL_CONTENDERS:
            p.error(f"unknown contender {c!r} (one of {', '.join(ALL_CONTENDERS)})")
    for w in a.workloads:
        if w not in ALL_WORKLOADS:
            p.error(f"unknown workload {w!r} (one of {', '.join(ALL_WORKLOADS)})")
    for producer in a.producer:
        if producer not in ("java", "franz"):
            p.error(f"--producer: {producer!r} (java, franz)")
    for acks in a.acks:
        if acks not in ("0", "1", "all", "-1"):
            p.error(f"--acks: {acks!r}")
    for spec in (a.server_cpus, a.client_cpus):
        if spec:
            try:
                cpus = cpu_list(spec)
            except ValueError:
                p.error(f"bad CPU list {spec!r} (e.g. 0-3,6)")
            bad = [c for c in cpus if c not in os.sched_getaffinity(0)]
            if bad:
                p.error(f"CPUs {bad} of {spec!r} are not available here")
    if a.server_cpus and max(a.shards) > len(cpu_list(a.server_cpus)):
        p.error(f"--shards {max(a.shards)} needs at least as many CPUs in --server-cpus {a.server_cpus}")
    a.out = a.out or REPO / "perf" / "out" / f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    a.out = a.out.resolve()
    return a


def render(meta, results, notes, shards):
    """The report's text: header, table, footnotes of failed rows, legend, targets, callgrind."""
    tab, failures = table(results, shards)
    extra = targets(results)
    cg = callgrind_line(results)
    header = (f"perf/run {meta['date']}  commit {meta['commit']}  nproc {meta['nproc']}  "
              f"server CPUs {meta['server_cpus']}  client CPUs {meta['client_cpus']}  ({meta['seconds']} s; "
              f"5-min load average {meta['loadavg_start']} before, {meta['loadavg_end']} after)")
    legend = [
        "records/s, MB/s, latencies: as kafka-producer-perf-test / kafka-consumer-perf-test (fetch phase, after the",
        "group join) / EndToEndLatency print them (EndToEndLatency: whole ms); Java tools 3.9.1 unless [4.4.0]",
        "or [franz-go] (tools/cmd/go-clients/perf-producer, --producer franz);",
        "µs CPU/rec = (server CPU + SMQ CPU) / records, the server side's cost whatever bounds the rate;",
        "SMQ µs/rec = SMQ CPU / records. consume reads right after producing (a tailing consumer); catchup reads",
        "records SMQ flushed before the server process started, the same topic and count for every contender;",
        "SMQ direct gRPC: tools/cmd/smq-publish, one pipelined stream per partition, <= 32 MiB in flight per stream.",
        "server = the Kafka JVM / the gateway process; SMQ = the `weed server` process (master, volume, filer,",
        "broker); CPU s over the run; peak RSS = VmHWM, reset before each run. tidegate ÷ this: records/s ratio",
        "(e2e: this avg latency ÷ tidegate's), tidegate memory for Kafka rows, tidegate smq otherwise;",
        "tidegate mem SASL_SSL and ACLs rows: their records/s ÷ tidegate mem's (e2e: their avg latency ÷ its), "
        "same shards.",
    ]
    text = "\n".join([header, "", tab, "", *failures, *([""] if failures else []), *legend, "", *extra,
                      *([cg] if cg else []), *notes])
    return header, extra, cg, text


def write_outputs(out, meta, args, results, extra, cg, notes, text, header):
    """table.md, results.json, results.csv and perf.png in out; False when the chart failed."""
    (out / "table.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "args": args, "results": [asdict(r) for r in results], "targets": extra, "callgrind": cg,
         "notes": notes}, indent=2, default=str))
    with open(out / "results.csv", "w", newline="") as f:
        cols = [k for k in asdict(results[0]) if k != "extra"] if results else []
        w = csv.DictWriter(f, fieldnames=cols + ["extra"])
        w.writeheader()
        for r in results:
            d = asdict(r)
            d["extra"] = json.dumps(d["extra"])
            w.writerow(d)
    try:
        chart(results, out / "perf.png", header)
    except Exception as e:  # the table is the product; a chart failure is reported, not fatal
        log(f"chart failed: {e}")
        return False
    log(f"wrote {out}/perf.png, results.json, results.csv, table.md")
    return True


def record(meta, text, out):
    """--record: the report becomes perf/RESULTS.md's newest entry (above the older ones), with
    its chart copied to perf/results/perf-DATE.png, a file the repository keeps."""
    results_md = REPO / "perf" / "RESULTS.md"
    date = meta["date"][:10]
    image = ""
    if (out / "perf.png").exists():
        png = REPO / "perf" / "results" / f"perf-{date}.png"
        if png.exists():  # a second run that day
            png = png.with_name(f"perf-{meta['date'][:16].replace(':', '')}.png")
        png.parent.mkdir(exist_ok=True)
        shutil.copyfile(out / "perf.png", png)
        image = f"![perf/run {meta['date']}](results/{png.name})\n\n"
    header, tab, rest = text.split("\n\n", 2)  # the table renders as Markdown; legend and targets as text
    entry = (f"## {date} — perf/run (commit {meta['commit']})\n\n```sh\n{meta['command']}\n```\n\n"
             f"{image}{header}\n\n{tab}\n\n```text\n{rest}\n```\n\n")
    doc = results_md.read_text() if results_md.exists() else "# Performance results\n\n"
    first = re.search(r"^## ", doc, re.M)  # entries are newest first, under the intro
    at = first.start() if first else len(doc)
    results_md.write_text(doc[:at] + entry + doc[at:])
    log(f"recorded in {results_md}")


def rerender(directory):
    """--render DIR: the report again from DIR/results.json (after a change to the report)."""
    d = json.loads((directory / "results.json").read_text())
    results = [Result(**r) for r in d["results"]]
    meta, notes = d["meta"], d.get("notes", [])
    shards = sorted({r.shards for r in results if r.contender.startswith("tidegate") and r.test != "callgrind"})
    header, extra, cg, text = render(meta, results, notes, shards or [1])
    print(text)
    ok = write_outputs(directory, meta, d["args"], results, extra, cg, notes, text, header)
    return 0 if ok else 1


def main(argv):
    if argv[:1] == ["--render"]:
        if len(argv) != 2:
            sys.exit("usage: perf/run --render DIR")
        return rerender(Path(argv[1]))
    a = parse_args(argv)
    if not os.access(a.tidegate_bin, os.X_OK):
        sys.exit(f"perf/run: no tidegate binary at {a.tidegate_bin} (cargo build --release)")
    if a.tidegate_bin_b and not os.access(a.tidegate_bin_b, os.X_OK):
        sys.exit(f"perf/run: --tidegate-bin-b {a.tidegate_bin_b} is not an executable")
    started = time.monotonic()
    h = Harness(a)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip() or "none"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=REPO).stdout.strip()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
            "commit": commit + ("+dirty" if dirty else ""), "nproc": os.cpu_count(),
            "command": shlex.join(["perf/run", *argv]), "server_cpus": a.server_cpus or "all",
            "client_cpus": a.client_cpus or "all", "tidegate_bin": str(a.tidegate_bin),
            "tidegate_bin_b": str(a.tidegate_bin_b) if a.tidegate_bin_b else None,
            # Other work on the machine skews every figure: say how busy it was.
            "loadavg_start": round(os.getloadavg()[1], 2)}
    try:
        h.start_all()
        log(f"contenders: {', '.join(c.label for c in h.contenders)}; output in {a.out}")
        h.run()
    finally:
        h.stop_all()
    meta["seconds"] = round(time.monotonic() - started)
    meta["loadavg_end"] = round(os.getloadavg()[1], 2)

    header, extra, cg, text = render(meta, h.results, h.notes, a.shards)
    print(text)
    args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
    chart_ok = write_outputs(a.out, meta, args, h.results, extra, cg, h.notes, text, header)
    if a.record:
        record(meta, text, a.out)

    tolerated = {c.key for c in h.contenders if c.expected_to_fail}
    fatal = [r for r in h.results if r.status != "ok" and r.contender not in tolerated]
    for r in fatal:
        log(f"FAILED: {r.test} {r.workload} {r.label}: {r.status}")
    return 1 if fatal or not chart_ok or not h.results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
