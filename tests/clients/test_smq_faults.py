"""Faults on loopback under load: idempotent acks=all producers (tidegate's default
`--smq-acks-all flushed`) and a consumer group committing as it goes, while `weed` is SIGKILLed and
restarted, `weed` is SIGSTOPped for 20 s, or tidegate is SIGKILLed and started again.

After each: every record the producer was told is stored is read back at the offset it was
acknowledged at, no record is stored twice, no client error is fatal, the group's consumer
carried on through the fault, and a new instance of it (as a restarted service) resumes
from the group's last commit.

SMQ acknowledges a publish from broker memory and, after a crash, hands the lost offsets
out again (proto/README.md); with `--smq-acks-all flushed`, its default, tidegate answers acks=all only
once the records are in a file the broker flushed to the filer, and checks what a broken
publish stream had acknowledged before calling it stored.

The tests share a SeaweedFS of their own (`fault_seaweedfs`): killing or stopping it must
never touch the session's, and its broker flushes every second (-mq.broker.logFlushInterval=1)
so that an acks=all produce waits ~1 s for its flush instead of weed's default 5 s.
"""

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from groups import kill_weed, produce_steadily, restart_seaweedfs, seaweedfs_dir, weed_pid
from harness import (REPO, create_topic, free_port_pair, log_tail, run, start_seaweedfs, start_tidegate, stop,
                     stop_seaweedfs, unique_topic)

PARTITIONS = 4
RECORDS = 4_000           # produced steadily while the fault is injected
LATER_RECORDS = 400       # produced once the first group member has left: its commits then lie before the end
COMMIT_EVERY = 100        # records between the group member's synchronous commits
STALL_S = 20              # how long `weed` stays SIGSTOPped (issue 14)
CATCH_UP_TIMEOUT = 120    # for a consumer to read what was acknowledged; a deadline, not a wait
# Outlasts every outage here (a weed restart takes ~30 s), so no record fails for good.
MESSAGE_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def fault_seaweedfs(tmp_path_factory):
    """A SeaweedFS for this module only, 300 ports above the session's (offset 700 by default)."""
    directory = tmp_path_factory.mktemp("seaweedfs-faults")
    port_offset = int(os.environ.get("SEAWEEDFS_PORT_OFFSET", "400")) + 300
    seaweedfs = start_seaweedfs(directory, port_offset=port_offset,
                                extra_args="-mq.broker.logFlushInterval=1")
    try:
        yield seaweedfs
    finally:
        # A test that failed between SIGSTOP and SIGCONT must not leave weed unkillable by SIGTERM.
        signal_weed(seaweedfs, signal.SIGCONT)
        stop_seaweedfs(directory)


def signal_weed(seaweedfs, signum):
    try:
        os.kill(weed_pid(seaweedfs), signum)
    except (FileNotFoundError, ProcessLookupError):
        pass  # not running: nothing to signal


def weed_ready(seaweedfs):
    """Whether SMQ can configure a topic now (scripts/seaweedfs status: smq-ready, 5 s at most)."""
    res = run([str(REPO / "scripts" / "seaweedfs"), "status", str(seaweedfs_dir(seaweedfs))], timeout=60)
    return res.returncode == 0


def readyz(metrics):
    """tidegate's /readyz status code; its backend check gives up after 5 s, so 10 s is ample."""
    return readyz_answer(metrics)[0]


def readyz_answer(metrics):
    """tidegate's /readyz status code and body (which says why it is not ready)."""
    try:
        with urllib.request.urlopen(f"http://{metrics}/readyz", timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class GroupMember:
    """A confluent-kafka consumer in a group, polling on a thread of its own and committing
    synchronously every COMMIT_EVERY records, as a service would. `leave()` commits once
    more and closes it; what it read and committed stays readable afterwards."""

    def __init__(self, bootstrap, group_id, topic):
        self.errors = []             # every error it saw (error_cb, poll, commit)
        self.first = {}              # partition -> first offset read
        self.next = {}               # partition -> offset after the last record read
        self.read = {}               # (partition, offset) -> value, the last read there
        self.committed = {}          # partition -> offset of the last commit that succeeded
        self.cond = threading.Condition()
        self._leaving = None         # None, "commit" (then close) or "close"
        self._left = False
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "error_cb": self._error,
            # Small fetches: partitions are read side by side, not one whole partition at a time.
            "max.partition.fetch.bytes": 4096})
        self.consumer.subscribe([topic])
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _error(self, error):
        with self.cond:
            self.errors.append(error)

    def _commit(self):
        try:
            done = self.consumer.commit(asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() == KafkaError._NO_OFFSET:
                return True  # nothing read since the last commit, which stands
            self._error(e.args[0])
            return False
        with self.cond:
            # A partition with no offset stored since its assignment comes back as -1001: not a commit.
            self.committed.update({tp.partition: tp.offset for tp in done or () if tp.error is None and tp.offset >= 0})
        return not any(tp.error for tp in done or ())

    def _run(self):
        since_commit = 0
        try:
            while True:
                with self.cond:
                    leaving = self._leaving
                if leaving == "close" or (leaving == "commit" and self._commit()):
                    return
                message = self.consumer.poll(0.2)
                if message is None:
                    continue
                if message.error():
                    self._error(message.error())
                    continue
                with self.cond:
                    partition, offset = message.partition(), message.offset()
                    self.first.setdefault(partition, offset)
                    self.next[partition] = offset + 1
                    self.read[(partition, offset)] = message.value()
                    self.cond.notify_all()
                since_commit += 1
                if since_commit >= COMMIT_EVERY and self._commit():
                    since_commit = 0
        finally:
            self.consumer.close()
            with self.cond:
                self._left = True
                self.cond.notify_all()

    def wait_read_to(self, ends, timeout=CATCH_UP_TIMEOUT):
        """Waits until it has read up to `ends` ({partition: offset after the last record})."""
        with self.cond:
            reached = self.cond.wait_for(
                lambda: self._left or all(self.next.get(p, 0) >= end for p, end in ends.items()), timeout)
            assert reached and not self._left, (
                f"group member read up to {self.next}, not {ends}, within {timeout} s; errors: {self.errors[-5:]}")

    def leave(self, commit=True, timeout=60):
        """Commits what it read (retrying retriable failures) and closes; without `commit`
        (a test that failed already) only closes, and does not insist."""
        with self.cond:
            self._leaving = "commit" if commit else "close"
            left = self.cond.wait_for(lambda: self._left, timeout)
        assert left or not commit, \
            f"group member did not commit and close within {timeout} s; errors: {self.errors[-5:]}"

    def fatal_errors(self):
        return [e for e in self.errors if e.fatal()]


def read_to_end(bootstrap, topic, partitions, timeout=CATCH_UP_TIMEOUT):
    """Every record of every partition up to its high-water mark: {(partition, offset): value}."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        stored, done = {}, {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    done.add(message.partition())
                    continue
                # Any other error (a reset, a retriable one) is the client's to recover from;
                # what was read is judged by the caller, record by record.
                print("consumer error:", message.error())
                continue
            stored[(message.partition(), message.offset())] = message.value()
        assert len(done) == partitions, f"not read to the end in {timeout}s: {ends}, done {done}"
        return stored
    finally:
        consumer.close()


def ends_of(acked):
    """{partition: offset after its last acknowledged record}."""
    ends = {}
    for partition, offset in acked:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def run_through_fault(tidegate, topic, inject_fault):
    """Produces RECORDS steadily while a group member consumes and commits; once a quarter
    is acknowledged calls inject_fault(), which returns the tidegate to carry on with (the
    same, or a new one on the same ports). Then checks everything the module docstring
    promises and returns the tidegate in use at the end (for the caller to stop)."""
    group_id = f"{topic}-group"
    acked, failed, client_errors = {}, [], []
    quarter_acked = threading.Event()

    def delivered(error, message):
        if error is not None:
            failed.append(error)
            return
        acked[(message.partition(), message.offset())] = message.value()
        if len(acked) >= RECORDS // 4:
            quarter_acked.set()

    producer = Producer({
        "bootstrap.servers": tidegate.bootstrap, "enable.idempotence": True, "acks": "all",
        "linger.ms": 5, "message.timeout.ms": MESSAGE_TIMEOUT_MS, "error_cb": client_errors.append})
    member = GroupMember(tidegate.bootstrap, group_id, topic)
    resumed = None
    producing = threading.Thread(target=produce_steadily, daemon=True, kwargs=dict(
        producer=producer, topic=topic, records=RECORDS, partitions=PARTITIONS, on_delivery=delivered,
        pause=0.05, flush_timeout=MESSAGE_TIMEOUT_MS / 1000))
    try:
        producing.start()
        assert quarter_acked.wait(120), f"only {len(acked)} records acknowledged before the fault"
        tidegate = inject_fault()
        producing.join(MESSAGE_TIMEOUT_MS / 1000 + 30)
        assert not producing.is_alive(), f"the producer never finished ({len(acked)} acknowledged)"
        # The group carries on: the same member reads what was acknowledged during and after the fault.
        member.wait_read_to(ends_of(acked))
        member.leave()

        # Records past the group's commits, so resuming from a commit is told apart from
        # resuming at the end (auto.offset.reset=latest) as well as from 0.
        for i in range(LATER_RECORDS):
            producer.produce(topic, value=f"later-{i}".encode(), partition=i % PARTITIONS, on_delivery=delivered)
        assert producer.flush(60) == 0, "later records not acknowledged"
        resumed = GroupMember(tidegate.bootstrap, group_id, topic)
        resumed.wait_read_to(ends_of(acked))
        resumed.leave()
        stored = read_to_end(tidegate.bootstrap, topic, PARTITIONS)
    finally:
        for consumer in (member, resumed):
            if consumer is not None and consumer.thread.is_alive():
                consumer.leave(commit=False, timeout=10)

    lost = [(position, value) for position, value in acked.items() if stored.get(position) != value]
    assert not lost, (f"{len(lost)} of {len(acked)} acknowledged records not at their offset, first "
                      f"{[(p, v, stored.get(p)) for p, v in sorted(lost)[:5]]}")
    twice = [v for v, n in Counter(stored.values()).items() if n > 1]
    assert not twice, f"{len(twice)} records stored twice, first {twice[:5]}"
    # A record whose delivery failed for good was reported to the application, which is
    # what Kafka promises; none should, with a timeout longer than the outage.
    assert not failed, f"{len(failed)} records failed, first {failed[:3]}"
    fatal = [e for e in client_errors if e.fatal()] + member.fatal_errors() + resumed.fatal_errors()
    assert not fatal, f"fatal client errors: {fatal}"

    misread = [(p, v, member.read[p]) for p, v in acked.items() if p in member.read and member.read[p] != v]
    assert not misread, f"the group member read other records than acknowledged, first {misread[:5]}"
    ends = ends_of(acked)
    for partition in range(PARTITIONS):
        commit = member.committed.get(partition)
        assert commit is not None and 0 < commit < ends[partition], \
            f"partition {partition}: last commit {commit}, end {ends[partition]}"
    assert resumed.first == member.committed, \
        f"the resumed member started at {resumed.first}, the group had committed {member.committed}"
    skipped = [(p, v) for p, v in acked.items() if p[1] >= member.committed[p[0]] and resumed.read.get(p) != v]
    assert not skipped, (f"{len(skipped)} acknowledged records past the commits not read back by the resumed "
                         f"member at their offset, first {sorted(skipped)[:5]}")
    return tidegate


def test_acked_records_survive_weed_sigkill(fault_seaweedfs, tmp_path, request):
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=fault_seaweedfs)
    request.node.tidegate_log = tidegate.log_path  # its tail goes into a failure's report (conftest)
    topic = unique_topic("weed-killed")
    try:
        create_topic(tidegate.bootstrap, topic, PARTITIONS)

        def fault():
            kill_weed(fault_seaweedfs)
            restart_seaweedfs(fault_seaweedfs)
            return tidegate

        run_through_fault(tidegate, topic, fault)
    finally:
        stop(tidegate.proc)


def test_weed_sigstopped_is_a_wait(fault_seaweedfs, tmp_path, request):
    """`weed` SIGSTOPped for 20 s, then SIGCONTed: the clients only wait or see retriable
    errors, and tidegate's /readyz says not ready while SeaweedFS does not answer and ready
    once it does again."""
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=fault_seaweedfs,
                              extra_args=["--metrics-addr", "127.0.0.1:0"])
    request.node.tidegate_log = tidegate.log_path
    topic = unique_topic("weed-stopped")
    readiness = []  # (seconds since SIGSTOP, /readyz status)
    try:
        create_topic(tidegate.bootstrap, topic, PARTITIONS)
        status, why = readyz_answer(tidegate.metrics)
        assert status == 200, f"tidegate not ready before the stall: {why}"

        def fault():
            stopped_at = time.monotonic()
            signal_weed(fault_seaweedfs, signal.SIGSTOP)
            try:
                while time.monotonic() - stopped_at < STALL_S:
                    readiness.append((round(time.monotonic() - stopped_at, 1), readyz(tidegate.metrics)))
            finally:
                signal_weed(fault_seaweedfs, signal.SIGCONT)
            deadline = time.monotonic() + 60
            while not weed_ready(fault_seaweedfs):
                assert time.monotonic() < deadline, (
                    f"SeaweedFS not ready 60 s after SIGCONT\n"
                    f"{log_tail(seaweedfs_dir(fault_seaweedfs) / 'weed.log', 40)}")
            deadline = time.monotonic() + 30
            while readyz(tidegate.metrics) != 200:
                assert time.monotonic() < deadline, "/readyz not 200 within 30 s of SeaweedFS's recovery"
                time.sleep(0.2)  # between two readiness checks
            return tidegate

        run_through_fault(tidegate, topic, fault)
    finally:
        stop(tidegate.proc)
    print("/readyz while weed was stopped:", readiness)
    assert any(status == 503 for _, status in readiness), f"/readyz never said not ready: {readiness}"


def test_acked_records_survive_tidegate_sigkill(fault_seaweedfs, tmp_path, request):
    """tidegate SIGKILLed mid-run and started again on the same ports: the producer's
    retries cross the restart, nothing acknowledged is lost or moved, and its idempotence
    holds across it: the batches acknowledged just before the kill are recognised from the
    marks their records carry (nothing stored twice)."""
    bootstrap_port, broker_port = free_port_pair(shards=2)

    def start(n):
        return start_tidegate(tmp_path / f"tidegate-{n}.log", shards=2, smq=fault_seaweedfs,
                              port=bootstrap_port, broker_port_base=broker_port)

    servers = [start(1)]
    request.node.tidegate_log = servers[0].log_path
    topic = unique_topic("tidegate-killed")
    try:
        create_topic(servers[0].bootstrap, topic, PARTITIONS)

        def fault():
            os.kill(servers[-1].proc.pid, signal.SIGKILL)
            servers[-1].proc.wait()
            servers.append(start(2))
            request.node.tidegate_log = servers[-1].log_path
            return servers[-1]

        run_through_fault(servers[0], topic, fault)
    finally:
        stop(servers[-1].proc)
