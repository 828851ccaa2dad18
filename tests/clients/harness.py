"""Helpers shared by the client tests: starting tidegate, running client programs."""

import ctypes
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
JAVA_DIR = REPO / "tests" / "java"
READY_RE = re.compile(r"^tidegate ready bootstrap=(\S+) brokers=(\S+)(?: listeners=(\S+))?(?: metrics=(\S+))?$")
READY_TIMEOUT_S = float(os.environ.get("TIDEGATE_READY_TIMEOUT", "30"))
STOP_TIMEOUT_S = 10
LOG_TAIL_LINES = 200


def tidegate_bin() -> Path:
    return Path(os.environ.get("TIDEGATE_BIN", REPO / "target" / "release" / "tidegate"))


def java_classpath() -> str:
    """Classpath for the tests/java programs and kafka-tools (built by scripts/deps java)."""
    classes, deps = JAVA_DIR / "target" / "classes", JAVA_DIR / "target" / "dependency"
    if not (classes / "dev" / "tidegate" / "tests" / "RoundTrip.class").exists() or not any(deps.glob("*.jar")):
        pytest.fail(f"{JAVA_DIR} is not built: run `scripts/deps java`", pytrace=False)
    return f"{classes}:{deps}/*"


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log file)"
    skipped = len(text) - lines
    head = [f"... {skipped} earlier lines in {path}"] if skipped > 0 else []
    return "\n".join(head + text[-lines:])


def free_port_runs(*lengths, host="127.0.0.1"):
    """The first ports of runs of consecutive ports of these lengths, none overlapping, all
    free on `host` now, below Linux's ephemeral range (32768-60999), so that while tidegate
    is down no outgoing connection on this machine can take one as its source port (a
    client's own dial attempts included: a TCP self-connect)."""
    def free(port):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
        return True
    while True:
        starts = [random.randrange(20000, 32000 - length) for length in lengths]
        ports = [p for start, length in zip(starts, lengths) for p in range(start, start + length)]
        if len(set(ports)) == len(ports) and all(map(free, ports)):
            return starts


def free_port_pair(shards=1):
    """A bootstrap port and a broker port base whose `shards` ports are all free now (fixed
    across a restart: start_tidegate's `port` and `broker_port_base`)."""
    return free_port_runs(1, shards)


@dataclass
class Tidegate:
    bootstrap: str
    brokers: list
    shards: int
    proc: subprocess.Popen
    log_path: Path
    cmd: list
    extra_stdout: list = field(default_factory=list)
    # Each listener's bootstrap "host:port" by name (from the ready line's listeners=).
    listeners: dict = field(default_factory=dict)
    # "host:port" of /metrics, /healthz and /readyz with --metrics-addr (the ready line's metrics=).
    metrics: str = ""


def _die_with_parent():
    # Runs in the child before exec: if pytest itself is killed, the server goes too
    # instead of lingering on its ports and cores.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _drain(stream, sink):
    # The server promises one stdout line, but a full pipe would block it: keep reading.
    for line in stream:
        sink.append(line)


def smq_args(smq) -> list:
    """tidegate's arguments for the SMQ backend. `smq` is a SeaweedFS (tidegate discovers its
    broker and filer from its master: --smq-master), or the "host:port" of a broker of a
    SeaweedFS this harness started (that broker, and the filer from that SeaweedFS's master)."""
    if isinstance(smq, SeaweedFS):
        return ["--backend", "smq", "--smq-master", smq.master]
    owners = [s for s in _started_seaweedfs if s.broker == smq]
    if not owners and len(_started_seaweedfs) == 1:
        owners = _started_seaweedfs  # e.g. an extra broker (scripts/seaweedfs start-broker)
    if not owners:
        pytest.fail(f"broker {smq}: not part of a SeaweedFS started by this harness, so its filer "
                    "(where committed offsets live) is unknown; pass the SeaweedFS instead",
                    pytrace=False)
    return ["--backend", "smq", "--smq-broker", smq, "--smq-master", owners[-1].master]


def start_tidegate(log_path: Path, shards=2, default_partitions=None, auto_create_topics=None,
                   extra_args=(), smq=None, smq_broker=None, port=0, broker_port_base=0,
                   listeners=None) -> Tidegate:
    """Memory backend unless `smq` (a SeaweedFS, see smq_args) is given; `smq_broker` is the
    older name for it (a broker address, or a SeaweedFS). `listeners`: "NAME=PROTOCOL://HOST:PORT"
    strings instead of the one PLAINTEXT listener on `port` (the returned Tidegate's
    `listeners` maps each name to its bootstrap address; `bootstrap` is the first's)."""
    binary = tidegate_bin()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"tidegate binary not found at {binary}: run `cargo build --release` "
                    "or set TIDEGATE_BIN", pytrace=False)
    if listeners:
        cmd = [str(binary)] + [arg for spec in listeners for arg in ("--listener", spec)]
    else:
        cmd = [str(binary), "--listen", "127.0.0.1", "--port", str(port),
               "--broker-port-base", str(broker_port_base)]
    cmd += ["--shards", str(shards)]
    smq = smq if smq is not None else smq_broker
    if smq is None:
        cmd += ["--backend", "memory"]
    else:
        cmd += smq_args(smq)
    if default_partitions is not None:
        cmd += ["--default-partitions", str(default_partitions)]
    if auto_create_topics is not None:
        cmd += ["--auto-create-topics", "true" if auto_create_topics else "false"]
    cmd += list(extra_args)

    log = open(log_path, "wb")
    env = dict(os.environ, NO_COLOR="1")  # plain text in the log file, not ANSI escapes
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                            start_new_session=True,  # Ctrl-C goes to pytest, which then stops us
                            preexec_fn=_die_with_parent)
    log.close()

    def give_up(why):
        status = stop(proc)
        pytest.fail(f"tidegate {why}\ncommand: {' '.join(cmd)}\nexit status: {status}\n"
                    f"--- stderr ({log_path}) ---\n{log_tail(log_path)}", pytrace=False)

    # Wait for the ready line without a blind sleep: select on stdout until the deadline.
    deadline = time.monotonic() + READY_TIMEOUT_S
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            give_up(f"printed no ready line within {READY_TIMEOUT_S:.0f}s (stdout so far: {buf!r})")
        if sel.select(timeout=left):
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                give_up(f"closed stdout before it was ready (stdout: {buf!r})")
            buf += chunk
    sel.close()
    first, _, rest = buf.partition(b"\n")
    m = READY_RE.match(first.decode(errors="replace").strip())
    if not m:
        give_up(f"first stdout line is not a ready line: {first!r}")
    brokers = m.group(2).split(",")
    if len(brokers) != shards:
        give_up(f"ready line lists {len(brokers)} brokers for --shards {shards}: {first!r}")

    named = dict(item.split("@", 1) for item in (m.group(3) or "").split(",") if "@" in item)
    tg = Tidegate(bootstrap=m.group(1), brokers=brokers, shards=shards, proc=proc, log_path=log_path, cmd=cmd,
                  listeners=named, metrics=m.group(4) or "")
    if rest:
        tg.extra_stdout.append(rest.decode(errors="replace"))
    threading.Thread(target=_drain, args=(proc.stdout, tg.extra_stdout), daemon=True).start()
    return tg


@dataclass
class SeaweedFS:
    broker: str  # SMQ broker gRPC host:port
    master: str  # master HTTP host:port (SeaweedFS's -master; tidegate's --smq-master)
    filer: str = ""  # filer HTTP host:port (where committed offsets can be read with GET)
    filer_grpc: str = ""  # filer gRPC host:port (tidegate's --smq-filer)
    directory: Path = None  # where `scripts/seaweedfs start` runs it (ports.env, weed.log)
    extra_args: str = ""  # SEAWEEDFS_EXTRA_ARGS it was started with (a restart passes them again)


# Every SeaweedFS started here, so a broker address can be traced to its master.
_started_seaweedfs: list = []


def start_seaweedfs(directory: Path, port_offset=None, extra_args=None) -> SeaweedFS:
    """Starts SeaweedFS with its MQ broker (scripts/seaweedfs waits until a topic can really
    be configured). `port_offset` and `extra_args` (`weed server` flags, one string) default
    to SEAWEEDFS_PORT_OFFSET (else 400) and SEAWEEDFS_EXTRA_ARGS."""
    if port_offset is None:
        port_offset = os.environ.get("SEAWEEDFS_PORT_OFFSET", "400")
    if extra_args is None:
        extra_args = os.environ.get("SEAWEEDFS_EXTRA_ARGS", "")
    env = dict(os.environ, SEAWEEDFS_PORT_OFFSET=str(port_offset), SEAWEEDFS_EXTRA_ARGS=extra_args)
    res = subprocess.run([str(REPO / "scripts" / "seaweedfs"), "start", str(directory)],
                         capture_output=True, text=True, env=env, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"SeaweedFS did not start\n{describe(res)}", pytrace=False)
    ports = dict(line.split("=", 1) for line in (directory / "ports.env").read_text().splitlines()
                 if "=" in line)
    seaweedfs = SeaweedFS(broker=ports["BROKER"], master=ports["MASTER"], filer=ports["FILER"],
                          filer_grpc=f"127.0.0.1:{ports['FILER_GRPC_PORT']}", directory=directory,
                          extra_args=extra_args)
    _started_seaweedfs[:] = [s for s in _started_seaweedfs if s.broker != seaweedfs.broker]
    _started_seaweedfs.append(seaweedfs)
    return seaweedfs


def start_go_gateway(master: str, log_path: Path):
    """SeaweedFS's own Kafka gateway (tools/cmd/go-gateway) on a free port; returns
    (process, bootstrap)."""
    binary = REPO / ".cache" / "bin" / "go-gateway"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(binary), "-listen", f"127.0.0.1:{port}", "-master", master],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                            start_new_session=True, preexec_fn=_die_with_parent)
    log.close()
    line = proc.stdout.readline().decode()
    if not line.startswith("go-gateway ready"):
        stop(proc)
        pytest.fail(f"go-gateway did not start: {line!r}\n{log_tail(log_path)}", pytrace=False)
    return proc, f"127.0.0.1:{port}"


def stop_seaweedfs(directory: Path):
    subprocess.run([str(REPO / "scripts" / "seaweedfs"), "stop", str(directory)],
                   capture_output=True, text=True, timeout=120)


def stop(proc: subprocess.Popen):
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run(cmd, timeout, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run that fails the test (with the output so far) on timeout."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n--- stdout ---\n{out[-5000:]}"
                    f"\n--- stderr ---\n{err[-5000:]}", pytrace=False)


def describe(res: subprocess.CompletedProcess) -> str:
    return (f"command: {' '.join(map(str, res.args))}\nexit status: {res.returncode}\n"
            f"--- stdout ---\n{res.stdout[-5000:]}\n--- stderr ---\n{res.stderr[-5000:]}")


def python_of(venv_name: str) -> Path:
    py = REPO / ".cache" / venv_name / "bin" / "python"
    if not py.exists():
        pytest.fail(f"{py} missing: run `scripts/deps python`", pytrace=False)
    return py


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30):
    """Create a topic with confluent-kafka's AdminClient (replication factor 1) and wait for it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=timeout, request_timeout=timeout)
    futures[topic].result(timeout=timeout)  # raises KafkaException on error


def read_from_start(bootstrap, topic, partitions, count, timeout=120, retriable_ok=False):
    """The messages of `topic` from offset 0 of every partition, in arrival order, until
    `count` distinct (partition, offset) positions were read or `timeout` seconds passed.
    Any error fails the test, except retriable ones when `retriable_ok` (a restart under
    way)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages, positions = [], set()
    deadline = time.monotonic() + timeout
    try:
        while len(positions) < count and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                assert retriable_ok and (error.retriable() or error.code() == KafkaError._PARTITION_EOF), error
                continue
            messages.append(message)
            positions.add((message.partition(), message.offset()))
    finally:
        consumer.close()
    return messages


def committed_offsets(bootstrap, group_id, topic, partitions, timeout=30):
    """{partition: committed offset} of `group_id` on `topic` as the test runner's librdkafka
    (OffsetFetch) reads them; -1001 (OFFSET_INVALID) where nothing is committed."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in got}
