"""`weed` SIGKILLed in the middle of a run of idempotent acks=all producers, then started
again: every record the producer was told is stored is read back at the offset it was
acknowledged at, and no record is stored twice.

SMQ acknowledges a publish from broker memory and, after a crash, hands the lost offsets
out again (proto/README.md); with `--smq-acks-all flushed` tidegate answers acks=all only
once the records are in a file the broker flushed to the filer, and checks what a broken
publish stream had acknowledged before calling it stored."""

import os
import signal
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from groups import produce_steadily, restart_seaweedfs, seaweedfs_dir
from harness import create_topic, start_tidegate, stop, unique_topic

PARTITIONS = 4
RECORDS = 6_000

# Not yet in the default suite: it passed 4 of 5 runs on a SeaweedFS of its own, and failed
# in the full suite (a consumer that never reached the end of any partition after the
# restart, on a SeaweedFS many tests had used). Run it with
#   TIDEGATE_FAULT_TESTS=1 SEAWEEDFS_EXTRA_ARGS=-mq.broker.logFlushInterval=1 \
#       .cache/venv/bin/pytest tests/clients/test_smq_weed_killed.py
pytestmark = pytest.mark.skipif(os.environ.get("TIDEGATE_FAULT_TESTS") != "1",
                                reason="fault test under investigation: set TIDEGATE_FAULT_TESTS=1")


def kill_weed(seaweedfs):
    """SIGKILL, as a crash or the OOM killer would, and wait until it is gone."""
    pid = int((seaweedfs_dir(seaweedfs) / "weed.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)  # nothing to wait on for another process's death but polling
    raise AssertionError(f"weed {pid} still alive 30 s after SIGKILL")


def read_to_end(bootstrap, topic, partitions, timeout=120):
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


def test_acked_records_survive_weed_sigkill(seaweedfs, tmp_path):
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=seaweedfs,
                              extra_args=["--smq-acks-all", "flushed"])
    topic = unique_topic("weed-killed")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
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
        "linger.ms": 5,
        # Outlasts the restart (SeaweedFS needs ~30 s to be ready again).
        "message.timeout.ms": 240_000, "error_cb": client_errors.append})

    def produce_all():
        produce_steadily(producer, topic, RECORDS, PARTITIONS, delivered, pause=0.05, flush_timeout=240)

    producing = threading.Thread(target=produce_all)
    try:
        producing.start()
        assert quarter_acked.wait(120), f"only {len(acked)} records acknowledged before the kill"
        kill_weed(seaweedfs)
        restart_seaweedfs(seaweedfs)
        producing.join(300)
        assert not producing.is_alive(), "the producer never finished"
        fatal = [e for e in client_errors if e.fatal()]
        assert not fatal, f"fatal client errors: {fatal}"
        stored = read_to_end(tidegate.bootstrap, topic, PARTITIONS)
    finally:
        stop(tidegate.proc)

    lost = [(position, value) for position, value in acked.items() if stored.get(position) != value]
    assert not lost, (f"{len(lost)} of {len(acked)} acknowledged records not at their offset, first "
                      f"{[(p, v, stored.get(p)) for p, v in lost[:5]]}")
    twice = [v for v, n in Counter(stored.values()).items() if n > 1]
    assert not twice, f"{len(twice)} records stored twice, first {twice[:5]}"
    # A record whose delivery failed for good was reported to the application, which is
    # what Kafka promises; none should, with a timeout longer than the outage.
    assert not failed, f"{len(failed)} records failed, first {failed[:3]}"
