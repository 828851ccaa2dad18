"""SeaweedMQ losing records it acknowledged, met by the Java consumer as Kafka's clients meet
an unclean leader election (KIP-320).

Records produced with acks=1 sit in the broker's memory until its next flush (weed's default:
every 5 s). `weed` is SIGKILLed before that flush, after two Java consumers read them, and
started again; new records then get the lost offsets. tidegate bumps the partition's leader
epoch where the loss starts, so the consumers, still in the old epoch, are fenced, ask
OffsetForLeaderEpoch where their epoch ended and find their position past it:

- with `auto.offset.reset=none` the client raises LogTruncationException at the first offset
  lost, as the application must be told;
- with a reset policy it moves back to that offset by itself and reads the new records
  there, byte for byte, in the new epoch (not OFFSET_OUT_OF_RANGE, which would send it to
  the start of the log or past the new records).

It kills a SeaweedFS of its own at weed's default flush interval (the session's flushes every
second, too soon for the kill to come first) and starts it again on the same ports, as
test_groups' restart does.
"""

import os
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer

from groups import kill_weed, restart_seaweedfs, wait_flushed
from harness import (create_topic, java_classpath, start_seaweedfs, start_tidegate, stop, stop_seaweedfs,
                     unique_topic)

FLUSHED = 20          # records SMQ flushes before the kill: they survive it
DOOMED = 30           # acknowledged from the broker's memory, then lost to the kill
FRESH = 5             # produced after the restart: SMQ gives them the lost offsets
WEED_FLUSH_S = 5      # weed's -mq.broker.logFlushInterval default, which truncation_seaweedfs keeps
TIMEOUT_S = 180       # a deadline for what follows a SeaweedFS restart (~30 s), not a wait


@pytest.fixture(scope="module")
def truncation_seaweedfs(tmp_path_factory):
    """A SeaweedFS for this module only, at weed's default flush interval, 150 ports above the
    session's (offset 550 by default)."""
    directory = tmp_path_factory.mktemp("seaweedfs-truncation")
    port_offset = int(os.environ.get("SEAWEEDFS_PORT_OFFSET", "400")) + 150
    seaweedfs = start_seaweedfs(directory, port_offset=port_offset, extra_args="")
    try:
        yield seaweedfs
    finally:
        stop_seaweedfs(directory)


class JavaConsumer:
    """tests/java's TruncationConsumer on a thread that collects its lines."""

    def __init__(self, bootstrap, topic, reset):
        self.reset = reset
        self.lines = []
        self.changed = threading.Condition()
        self.proc = subprocess.Popen(
            ["java", "-cp", java_classpath(), "dev.tidegate.tests.TruncationConsumer", bootstrap, topic, "0", reset],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, found, what, timeout):
        """The first line `found` accepts, waiting up to `timeout` seconds for it."""
        return self.wait_until(lambda lines: next((line for line in lines if found(line)), None), what, timeout)

    def wait_until(self, done, what, timeout):
        """What `done` returns of the lines so far once it is not None, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = done(self.lines)
                if result is not None:
                    return result
                if any(line.startswith("FAIL") for line in self.lines) or self.proc.poll() is not None \
                        or not self.changed.wait(deadline - time.monotonic()):
                    pytest.fail(f"reset={self.reset}: no {what} within {timeout}s; its output:\n"
                                + "\n".join(self.lines[-40:]), pytrace=False)

    def records(self):
        """(offset, leader epoch, timestamp, key, value, headers) of every record read, in order."""
        with self.changed:
            lines = [line.split(" ", 6) for line in self.lines if line.startswith("RECORD ")]
        return [(int(o), int(e), int(ts), bytes.fromhex(k), bytes.fromhex(v),
                 [(name, bytes.fromhex(value)) for name, value in (h.split("=") for h in hs.split(",") if h)])
                for _, o, e, ts, k, v, hs in lines]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # its signal to stop
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def produce(bootstrap, topic, first, count):
    """`count` records with acks=1, each with a key, value, headers and timestamp of its own;
    returns them as (offset, timestamp, key, value, headers), at the offsets acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "enable.idempotence": False,
                         "linger.ms": 0, "message.timeout.ms": TIMEOUT_S * 1000})
    sent, acked, errors = {}, {}, []

    def delivered(error, message):
        if error is not None:
            errors.append(error)
        else:
            acked[message.offset()] = sent[message.key()]

    for i in range(first, first + count):
        key = f"key-{i}".encode()
        sent[key] = (1_700_000_000_000 + i, key, f"value-{i}-".encode() * (i % 7 + 1),
                     [("index", str(i).encode()), ("test", b"truncation")])
        timestamp, _, value, headers = sent[key]
        producer.produce(topic, partition=0, key=key, value=value, headers=headers, timestamp=timestamp,
                         on_delivery=delivered)
    assert producer.flush(TIMEOUT_S) == 0, f"{len(acked)} of {count} records acknowledged"
    assert not errors, errors
    return [(offset, *acked[offset]) for offset in sorted(acked)]


def test_java_consumers_detect_the_truncation_smq_makes(truncation_seaweedfs, tmp_path, request):
    seaweedfs = truncation_seaweedfs
    tidegate = start_tidegate(tmp_path / "tidegate.log", smq=seaweedfs)
    request.node.tidegate_log = tidegate.log_path  # its tail goes into a failure's report (conftest)
    topic = unique_topic("truncated")
    consumers = []
    try:
        create_topic(tidegate.bootstrap, topic, 1)
        consumers = [JavaConsumer(tidegate.bootstrap, topic, reset) for reset in ("none", "earliest")]
        for consumer in consumers:
            consumer.wait_for(lambda line: line == "READY", "READY", 60)

        flushed = produce(tidegate.bootstrap, topic, 0, FLUSHED)
        assert [r[0] for r in flushed] == list(range(FLUSHED))
        wait_flushed(seaweedfs.filer, topic, 1, None)
        # The broker just flushed: its next flush is WEED_FLUSH_S away, and the kill comes first.
        flushed_at = time.monotonic()
        doomed = produce(tidegate.bootstrap, topic, FLUSHED, DOOMED)
        last = FLUSHED + DOOMED - 1
        assert doomed[-1][0] == last
        for consumer in consumers:
            consumer.wait_for(lambda line: line.startswith(f"RECORD {last} "), f"record {last}", WEED_FLUSH_S)
        kill_weed(seaweedfs)
        killed_after = time.monotonic() - flushed_at
        assert killed_after < WEED_FLUSH_S, \
            f"weed was killed {killed_after:.1f}s after its flush: it may have flushed the records meant to be lost"
        restart_seaweedfs(seaweedfs)

        fresh = produce(tidegate.bootstrap, topic, 100, FRESH)
        lost_from = fresh[0][0]
        assert lost_from == FLUSHED, f"the new records were acknowledged from offset {lost_from}, expected " \
                                     f"{FLUSHED} (SMQ handing out the offsets it lost)"

        none, earliest = consumers
        truncated = none.wait_for(lambda line: line.startswith("TRUNCATED"), "LogTruncationException", TIMEOUT_S)
        assert truncated == f"TRUNCATED {FLUSHED} 0", \
            "the client must learn that the log diverges from its own at the first offset lost, in epoch 0"
        # Nothing it read after the kill: it was told before it could read the new records.
        assert [r[0] for r in none.records()] == list(range(FLUSHED + DOOMED))

        # One more record after the new ones, read once the consumer reached it: a consumer
        # that went back to the log's start in between (told that the end of the new records
        # was out of range) has read other records before it.
        latest = produce(tidegate.bootstrap, topic, 200, 1)
        assert latest[0][0] == FLUSHED + FRESH
        key_hex = latest[0][2].hex()  # its offset held a lost record, read before the kill
        earliest.wait_for(lambda line: line.startswith("RECORD ") and line.split(" ")[4] == key_hex,
                          f"record {FLUSHED + FRESH}", TIMEOUT_S)
        read = earliest.records()
        before, after = read[:FLUSHED + DOOMED], read[FLUSHED + DOOMED:]
        assert [(o, ts, k, v, h) for o, _, ts, k, v, h in before] == flushed + doomed
        assert {e for _, e, *_ in before} == {0}
        # Moved back to the first offset lost (not to the log's start, not past the new records),
        # then the new records, byte for byte, in the epoch that began with them.
        assert [(o, ts, k, v, h) for o, _, ts, k, v, h in after] == fresh + latest, \
            f"after the truncation the client read offsets {[r[0] for r in after]}"
        assert {e for _, e, *_ in after} == {1}
    finally:
        for consumer in consumers:
            consumer.close()
        stop(tidegate.proc)
