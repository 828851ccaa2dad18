"""A consumer catching up on SeaweedMQ data flushed before tidegate started: every record
comes back at the offset it was acknowledged at, byte for byte, with its key, headers and
timestamp, none skipped, and tidegate read them from the partitions' log files in the filer
(src/backend/smq/log_files.rs) rather than through the broker, each partition's next file
while the consumer read the one before (src/backend/smq/read_ahead.rs)."""

import functools
import time
import urllib.request

from confluent_kafka import Producer

from groups import seaweedfs_ports, wait_flushed
from harness import create_topic, read_from_start, start_tidegate, stop, unique_topic

PARTITIONS = 4
RECORDS = 12_000
# Large enough that one partition's flushed file holds many of tidegate's 256 KiB read
# batches, and one fetch (librdkafka asks for 1 MiB a partition) several of them.
VALUE_BYTES = 1000


def scrape(address):
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {series: float(value) for series, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


def test_catch_up_reads_flushed_files_whole_and_in_place(seaweedfs, tmp_path):
    filer = seaweedfs_ports(seaweedfs)["FILER"]
    writer = start_tidegate(tmp_path / "writer.log", shards=1, smq=seaweedfs)
    topic = unique_topic("catch-up")
    create_topic(writer.bootstrap, topic, PARTITIONS)
    acked, failed = {}, []

    def delivered(sent, error, message):
        # The record as sent: a delivery report carries no headers.
        if error is not None:
            failed.append(error)
        else:
            acked[(message.partition(), message.offset())] = sent

    producer = Producer({"bootstrap.servers": writer.bootstrap, "linger.ms": 5})
    start_ms = int(time.time() * 1000)

    def produce(numbers):
        for i in numbers:
            value = (f"record-{i:06d}-".encode() * 100)[:VALUE_BYTES]
            # Every third record a header, every fifth an old timestamp: both travel in
            # SMQ's value, not as SMQ's own key and timestamp.
            headers = [("n", str(i).encode()), ("empty", b"")] if i % 3 == 0 else None
            timestamp = start_ms - 86_400_000 + i if i % 5 == 0 else start_ms + i // 100
            key = f"key-{i}".encode()
            sent = (key, value, headers, timestamp)
            producer.produce(topic, key=key, value=value, headers=headers, timestamp=timestamp,
                             partition=i % PARTITIONS, on_delivery=functools.partial(delivered, sent))
            producer.poll(0)
        producer.flush(120)

    # Two halves, the first flushed before the second is written: each partition then has
    # a first file (which SMQ gives no offset range) and later ones (which it does).
    produce(range(RECORDS // 2))
    wait_flushed(filer, topic, PARTITIONS, None)
    produce(range(RECORDS // 2, RECORDS))
    assert not failed, failed[:3]
    assert len(acked) == RECORDS
    last = min(max(o for p, o in acked if p == partition) for partition in range(PARTITIONS))
    wait_flushed(filer, topic, PARTITIONS, last)
    stop(writer.proc)

    # A tidegate that never saw these records: nothing of them in its cache.
    reader = start_tidegate(tmp_path / "reader.log", shards=1, smq=seaweedfs,
                            extra_args=["--metrics-addr", "127.0.0.1:0"])
    try:
        messages = read_from_start(reader.bootstrap, topic, PARTITIONS, RECORDS, timeout=120)
        samples = scrape(reader.metrics)
    finally:
        stop(reader.proc)
    stored = {}
    for message in messages:
        position = (message.partition(), message.offset())
        assert position not in stored, f"{position} served twice"
        stored[position] = (message.key(), message.value(), message.headers(), message.timestamp()[1])
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged positions not served, first {missing[:5]}"
    assert set(stored) == set(acked), f"served where nothing was acknowledged: {sorted(set(stored) - set(acked))[:5]}"
    fields = ("key", "value", "headers", "timestamp")
    for position, record in acked.items():
        differ = {name: (sent, got) for name, sent, got in zip(fields, record, stored[position]) if sent != got}
        assert not differ, f"at {position}, (acknowledged, served): {differ!r:.400}"
    from_files = samples.get('tidegate_flushed_file_reads_total{shard="0"}', 0)
    assert from_files > 0, "no read was answered from the filer's log files"
    # Each partition has at least two files: the second was read while the first was read.
    reads_ahead = samples.get('tidegate_reads_ahead_total{shard="0"}', 0)
    assert reads_ahead > 0, "no file was read ahead of the consumer"
