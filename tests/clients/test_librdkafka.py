"""librdkafka (confluent-kafka) against tidegate: every compression codec, byte for byte."""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition

from harness import create_topic, unique_topic

RECORDS = 2000
PARTITIONS = 3
BASE_TS_MS = 1_700_000_000_000
IDLE_TIMEOUT_S = 30


def record(i):
    """Deterministic record i: (partition, key, value, headers, timestamp)."""
    if i % 101 == 0:
        value = None  # tombstone
    elif i % 103 == 0:
        value = b""
    else:
        # Half repetitive (so codecs actually compress), half noise, varying length.
        value = (b"tidegate-%d-" % i) * (i % 40) + bytes((i * 31 + j * 17) % 256 for j in range(i % 300))
    headers = [
        ("dup", b"first"),
        ("dup", b"second"),       # repeated keys must survive, in order
        ("null-value", None),     # null header value (length -1 on the wire)
        ("idx", str(i).encode()),
    ]
    return i % PARTITIONS, b"key-%d" % i, value, headers, BASE_TS_MS + i * 11


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_roundtrip(tidegate, codec):
    topic = unique_topic(f"rdk-{codec}")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    errors = []  # error_cb reports: context for a failure message, fatal ones fail the test

    producer = Producer({
        "bootstrap.servers": tidegate.bootstrap,
        "enable.idempotence": True,
        "compression.type": codec,
        "linger.ms": 5,
        "error_cb": errors.append,
    })
    acked = {}  # index -> (partition, offset)
    failed = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                failed.append((i, err))
            else:
                acked[i] = (msg.partition(), msg.offset())
        return cb

    for i in range(RECORDS):
        p, key, value, headers, ts = record(i)
        producer.produce(topic, value=value, key=key, partition=p, timestamp=ts, headers=headers,
                         on_delivery=on_delivery(i))
        producer.poll(0)
    assert producer.flush(60) == 0, f"undelivered after 60s; errors: {errors}"
    assert not failed, f"delivery failures (first 5): {failed[:5]}; errors: {errors}"
    assert not [e for e in errors if e.fatal()], errors
    # Idempotent producer: per-partition order is send order, so offsets are known up front.
    for i in range(RECORDS):
        assert acked[i] == (i % PARTITIONS, i // PARTITIONS), f"record {i} acked at {acked[i]}"

    consumer = Consumer({
        "bootstrap.servers": tidegate.bootstrap,
        # Required by the client, never used: we assign and never commit (no groups yet).
        "group.id": "tidegate-tests-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "error_cb": errors.append,
    })
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        next_offset = [0] * PARTITIONS
        got, last_progress = 0, time.monotonic()
        while got < RECORDS:
            msgs = consumer.consume(num_messages=500, timeout=0.5)
            if not msgs:
                assert time.monotonic() - last_progress < IDLE_TIMEOUT_S, (
                    f"no records for {IDLE_TIMEOUT_S}s after {got}/{RECORDS}; next offsets {next_offset}; "
                    f"errors: {errors}")
                continue
            last_progress = time.monotonic()
            for m in msgs:
                assert m.error() is None, f"consume error: {m.error()}"
                p = m.partition()
                assert m.offset() == next_offset[p], f"partition {p}: offset {m.offset()}, expected {next_offset[p]}"
                i = m.offset() * PARTITIONS + p
                assert i < RECORDS, f"partition {p}: extra record at offset {m.offset()}"
                _, key, value, headers, ts = record(i)
                got_rec = (m.key(), m.value(), m.headers() or [], m.timestamp())
                want_rec = (key, value, headers, (TIMESTAMP_CREATE_TIME, ts))
                assert got_rec == want_rec, f"record {i} (partition {p} offset {m.offset()}) differs"
                next_offset[p] += 1
                got += 1
    finally:
        consumer.close()
