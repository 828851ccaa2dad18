"""Helpers for the consumer-group tests (test_groups.py): Java group members driven as
subprocesses and read line by line, waiting on what they report (never on a timer), and
restarting tidegate and SeaweedFS under a running test.

A member is tests/java's GroupMember: it prints one line per rebalance callback, per
record (verified byte for byte against ProduceRange's deterministic sequence) and per
commit; see its javadoc for the format.
"""

import base64
import json
import os
import re
import selectors
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from harness import READY_RE, REPO, describe, java_classpath, log_tail, run, stop

# C1 only and the serial collector: a dozen short-lived JVMs per test on a small machine
# start faster and leave the cores to the server.
JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
NO_PARTITIONS = frozenset()


def produce_range(bootstrap, topic, partitions, start, end, record_bytes, timeout=120, config=()):
    """Records start..end-1 of the deterministic sequence (record i: partition i % partitions,
    offset i // partitions), every one acknowledged at its expected offset. `config`: producer
    configs as "key=value" strings (a user's security.protocol and sasl.*)."""
    res = run(JAVA + ["-cp", java_classpath(), "dev.tidegate.tests.ProduceRange", bootstrap, topic,
                      str(partitions), str(start), str(end), str(record_bytes), *config], timeout=timeout)
    assert res.returncode == 0 and f"PRODUCED {end - start}" in res.stdout, describe(res)


def expected_records(partitions, start, end):
    """(partition, offset) of records start..end-1."""
    return {(i % partitions, i // partitions) for i in range(start, end)}


def _partitions(text):
    return frozenset() if text == "-" else frozenset(int(p) for p in text.split(","))


_EVENT = re.compile(r"^(ASSIGNED|REVOKED|LOST) gen=(-?\d+) (?:member=\S+ )?\w+=(\S+) now=(\S+)$")


class Member:
    """One GroupMember process. Its state is updated by a reader thread under the group's
    condition; read it inside `Group.wait_until` predicates or after the member is done."""

    def __init__(self, group, name, args, stderr_path):
        self.group, self.name, self.stderr_path = group, name, stderr_path
        self.lines = []          # (monotonic time, line) of every non-record line
        self.records = []        # (partition, offset) in the order received
        self.bad = []            # BAD lines: records that are not what was produced
        self.errors = []         # ERROR and COMMIT_FAILED lines
        self.commits = {}        # partition -> last committed next-offset
        self.events = []         # (time, kind, generation, changed, now) per rebalance callback
        self.owned = NO_PARTITIONS
        self.generation = None   # of the last ASSIGNED line
        self.closed = False
        self.killed = False
        self.eof = False
        # Records consumed while owning the partition per the callbacks: a violation is a
        # (partition, offset) this member got without having been given the partition.
        self.unowned = []
        err = open(stderr_path, "wb")
        self.proc = subprocess.Popen(JAVA + ["-cp", java_classpath(), "dev.tidegate.tests.GroupMember"] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                     text=True, bufsize=1, start_new_session=True)
        err.close()
        threading.Thread(target=self._read, daemon=True, name=f"member-{name}").start()

    def _read(self):
        for raw in self.proc.stdout:
            line, now = raw.rstrip("\n"), time.monotonic()
            with self.group.cond:
                self._parse(now, line)
                self.group.cond.notify_all()
        with self.group.cond:
            self.eof = True
            self.group.cond.notify_all()

    def _parse(self, now, line):
        if line.startswith("R "):
            _, p, o = line.split()
            key = (int(p), int(o))
            self.records.append(key)
            self.group.seen[key] += 1
            if key[0] not in self.owned:
                self.unowned.append(key)
            return
        self.lines.append((now, line))
        if line.startswith("BAD "):
            self.bad.append(line)
        elif line.startswith(("ERROR ", "COMMIT_FAILED ")):
            self.errors.append(line)
        elif line.startswith("COMMITTED "):
            for item in line.split()[1].split(","):
                p, o = item.split(":")
                self.commits[int(p)] = int(o)
        elif line == "CLOSED":
            self.closed = True
        else:
            m = _EVENT.match(line)
            if m:
                kind, gen, now_owned = m.group(1), int(m.group(2)), _partitions(m.group(4))
                self.owned = now_owned
                if kind == "ASSIGNED":
                    self.generation = gen
                self.events.append((now, kind, gen, _partitions(m.group(3)), now_owned))

    @property
    def alive(self):
        return self.proc.poll() is None

    def revoked(self, since=0.0):
        """Partitions this member gave up (revoked or lost) after monotonic time `since`."""
        out = set()
        for t, kind, _, changed, _ in self.events:
            if t >= since and kind in ("REVOKED", "LOST"):
                out |= changed
        return out

    def send(self, command):
        """One command line on the member's stdin (GroupMember: stop, stall, resume)."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def said(self, text, since=0.0):
        """Time of this member's first output line equal to `text` at or after monotonic time
        `since`, or None (read it under the group's lock, e.g. in a wait_until predicate)."""
        return next((t for t, line in self.lines if t >= since and line == text), None)

    def stop(self, timeout=30):
        """Graceful: commit, LeaveGroup, exit 0 with a CLOSED line."""
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"member {self.name} did not stop within {timeout}s\n{self.group.describe()}", pytrace=False)
        self.group.wait_until(lambda: self.eof, 5, f"end of {self.name}'s output")
        assert rc == 0 and self.closed, f"member {self.name} exited with {rc}\n{self.group.describe()}"

    def kill(self):
        """SIGKILL: gone without LeaveGroup, its session must expire on the server."""
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def summary(self):
        tail = [line for _, line in self.lines[-25:]]
        return (f"--- member {self.name} (exit {self.proc.poll()}, {len(self.records)} records, "
                f"owns {sorted(self.owned)} at gen {self.generation}) ---\n" + "\n".join(tail) +
                f"\n--- {self.name} stderr ---\n" + log_tail(self.stderr_path, 15))


class Group:
    """The members of one consumer group in a test, sharing one condition variable."""

    def __init__(self, tmp_path, bootstrap, group_id, topic, partitions, record_bytes, common_args=()):
        self.tmp_path, self.bootstrap, self.group_id = tmp_path, bootstrap, group_id
        self.topic, self.partitions, self.record_bytes = topic, partitions, record_bytes
        self.common_args = list(common_args)
        self.cond = threading.Condition()
        self.members = []
        self.seen = Counter()    # (partition, offset) -> times consumed, across members

    def start(self, name, *args):
        m = Member(self, name, [self.bootstrap, self.group_id, self.topic, str(self.partitions),
                                str(self.record_bytes), f"--name={name}"] + self.common_args + list(args),
                   self.tmp_path / f"member-{name}.stderr")
        self.members.append(m)
        return m

    def wait_until(self, predicate, timeout, what):
        """Waits until predicate() (called under the lock) holds; fails after timeout seconds
        with what was awaited and every member's recent output. Returns the time it held."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                failed = [m for m in self.members if m.errors or m.bad or (m.eof and not m.closed and not m.killed)]
                if failed:
                    pytest.fail(f"while waiting for {what}: member {failed[0].name} reported a failure\n"
                                f"{self.describe()}", pytrace=False)
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.describe()}",
                                pytrace=False)
                self.cond.wait(left)
            return time.monotonic()

    def stable(self, members, min_generation=None):
        """Predicate: `members` all report the same generation (above min_generation) and
        their assignments split every partition between them, each holding some."""
        def check():
            gens = {m.generation for m in members}
            if len(gens) != 1 or None in gens:
                return False
            gen = gens.pop()
            if min_generation is not None and gen <= min_generation:
                return False
            owned = [m.owned for m in members]
            return all(owned) and sum(map(len, owned)) == self.partitions and \
                frozenset().union(*owned) == frozenset(range(self.partitions))
        return check

    def consumed(self, expected):
        """Predicate: every (partition, offset) in `expected` has been consumed by someone."""
        return lambda: all(k in self.seen for k in expected)

    def wait_stable(self, members, timeout, what=None, min_generation=None):
        return self.wait_until(self.stable(members, min_generation), timeout,
                               what or f"{[m.name for m in members]} to share all {self.partitions} partitions")

    def kill_all(self):
        for m in self.members:
            if m.alive:
                m.kill()

    def describe(self):
        dup = {k: n for k, n in self.seen.items() if n > 1}
        return "\n".join([m.summary() for m in self.members] +
                         [f"records consumed more than once: {len(dup)} (first: {sorted(dup)[:10]})"])


# ---- restarting servers under a test -----------------------------------------------------

def relaunch_tidegate(request, tg, log_path, between=None, timeout=30):
    """Stops tidegate (SIGTERM, must exit cleanly), calls between() if given (to restart
    SeaweedFS while no gateway runs), and starts tidegate again with the same command line,
    updating the fixture's Tidegate in place (bootstrap and broker ports may change: the
    suite's servers bind port 0). The conftest fixture then stops the new process."""
    rc = stop(tg.proc)
    if rc not in (0, -signal.SIGTERM):
        pytest.fail(f"tidegate did not exit cleanly on SIGTERM before the restart (status {rc})\n"
                    f"{log_tail(tg.log_path)}", pytrace=False)
    if between is not None:
        between()
    log = open(log_path, "wb")
    proc = subprocess.Popen(tg.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                            env=dict(os.environ, NO_COLOR="1"), start_new_session=True)
    log.close()
    request.node.tidegate_log = log_path
    deadline, buf = time.monotonic() + timeout, b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            chunk = os.read(proc.stdout.fileno(), 4096) if left > 0 and sel.select(left) else b""
            if not chunk:
                stop(proc)
                pytest.fail(f"restarted tidegate printed no ready line (stdout {buf!r})\n{log_tail(log_path)}",
                            pytrace=False)
            buf += chunk
    m = READY_RE.match(buf.split(b"\n", 1)[0].decode(errors="replace").strip())
    if not m:
        stop(proc)
        pytest.fail(f"restarted tidegate: unexpected first line {buf!r}", pytrace=False)
    # Keep draining stdout so a chatty server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    tg.proc, tg.bootstrap, tg.brokers, tg.log_path = proc, m.group(1), m.group(2).split(","), log_path
    tg.listeners = dict(item.split("@", 1) for item in (m.group(3) or "").split(",") if "@" in item)
    return tg


def produce_steadily(producer, topic, records, partitions, on_delivery, pause, flush_timeout):
    """record-0 … record-(records-1), round robin over the partitions, with a pause every
    100 records: a steady stream lasting a few seconds, so that a fault injected meanwhile
    lands mid-run; then waits for every delivery report."""
    for i in range(records):
        producer.produce(topic, value=f"record-{i}".encode(), partition=i % partitions,
                         on_delivery=on_delivery)
        producer.poll(0)
        if i % 100 == 0:
            time.sleep(pause)
    producer.flush(flush_timeout)


def seaweedfs_dir(seaweedfs) -> Path:
    """The directory `scripts/seaweedfs start` ran in for this SeaweedFS: its own attribute if
    the harness records it, else the -dir of the weed process serving its broker port."""
    for attr in ("directory", "dir", "path"):
        if getattr(seaweedfs, attr, None):
            return Path(getattr(seaweedfs, attr))
    port = seaweedfs.broker.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if f"-mq.broker.port={port}" in args:
            for a in args:
                if a.startswith("-dir="):
                    return Path(a[len("-dir="):]).parent  # scripts/seaweedfs uses DIR/data
    pytest.fail(f"cannot find the directory of the SeaweedFS serving {seaweedfs.broker}", pytrace=False)


def seaweedfs_ports(seaweedfs) -> dict:
    path = seaweedfs_dir(seaweedfs) / "ports.env"
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def weed_pid(seaweedfs):
    return int((seaweedfs_dir(seaweedfs) / "weed.pid").read_text().strip())


def kill_weed(seaweedfs):
    """SIGKILL, as a crash or the OOM killer would, and wait until it is gone."""
    pid = weed_pid(seaweedfs)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)  # nothing to wait on for another process's death but polling
    raise AssertionError(f"weed {pid} still alive 30 s after SIGKILL")


def restart_seaweedfs(seaweedfs, timeout=300, between=None):
    """Stops the whole SeaweedFS (master, volume, filer, MQ broker: `weed server` is one
    process) and starts it again in the same directory on the same ports; returns once a
    topic can be configured again (~30 s). `between` runs while it is down."""
    directory = seaweedfs_dir(seaweedfs)
    ports = seaweedfs_ports(seaweedfs)
    script = str(REPO / "scripts" / "seaweedfs")
    res = run([script, "stop", str(directory)], timeout=120)
    assert res.returncode == 0, describe(res)
    if between is not None:
        between()
    env = dict(os.environ, SEAWEEDFS_MASTER_PORT=ports["MASTER_PORT"], SEAWEEDFS_VOLUME_PORT=ports["VOLUME_PORT"],
               SEAWEEDFS_FILER_PORT=ports["FILER_PORT"], SEAWEEDFS_BROKER_PORT=ports["BROKER_PORT"])
    if getattr(seaweedfs, "extra_args", None) is not None:
        env["SEAWEEDFS_EXTRA_ARGS"] = seaweedfs.extra_args  # the same weed as before the restart
    res = run([script, "start", str(directory)], timeout=timeout, env=env)
    if res.returncode != 0:
        pytest.fail(f"SeaweedFS did not come back after the restart\n{describe(res)}", pytrace=False)


def _filer_list(filer, path):
    req = urllib.request.Request(f"http://{filer}{path}/?limit=1000", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp).get("Entries") or []
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def flushed_offset_ranges(filer, topic, namespace="kafka"):
    """Per SMQ partition (Kafka partition order): the data files the broker has flushed to
    the filer, as (file name, offset_max or None). offset_max is None on a file whose first
    offset is 0: the broker writes offset attributes only when the first offset is > 0."""
    versions = sorted(e["FullPath"] for e in _filer_list(filer, f"/topics/{namespace}/{topic}")
                      if e["FullPath"].rsplit("/", 1)[1].startswith("v"))
    if not versions:
        return []
    out = []
    for part in sorted(e["FullPath"] for e in _filer_list(filer, versions[-1])):
        files = []
        for e in _filer_list(filer, part):
            name = e["FullPath"].rsplit("/", 1)[1]
            if name == "checkpoint.offset" or name.endswith(".parquet"):
                continue
            raw = (e.get("Extended") or {}).get("offset_max")
            files.append((name, int.from_bytes(base64.b64decode(raw), "big") if raw else None))
        out.append(files)
    return out


def wait_flushed(filer, topic, partitions, last_offset, timeout=60):
    """Waits until every partition's data up to offset `last_offset` (inclusive) sits in a
    flushed file that carries offset attributes, i.e. the broker can reload the partition
    with the right high-water mark (see proto/README.md, "Partition unloading": a partition
    whose data all sits in its first flush window reads as empty after a reload). With
    last_offset None: until every partition has some flushed file."""
    deadline = time.monotonic() + timeout
    while True:
        ranges = flushed_offset_ranges(filer, topic)
        if len(ranges) == partitions:
            if last_offset is None and all(ranges):
                return
            if last_offset is not None and all(
                    any(m is not None and m >= last_offset for _, m in files) for files in ranges):
                return
        if time.monotonic() > deadline:
            pytest.fail(f"SMQ did not flush {topic} up to offset {last_offset} within {timeout}s: {ranges}",
                        pytrace=False)
        time.sleep(0.2)  # polling the filer: there is nothing to wait on but its listing


def filer_committed_offset(filer, group, topic, partition):
    """The Go gateway's committed-offset file for (group, topic, partition), parsed, or None."""
    url = f"http://{filer}/topics/kafka/.meta/consumer_offsets/{group}/{topic}/{partition}/offset"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except (urllib.error.HTTPError, ValueError):
        return None
