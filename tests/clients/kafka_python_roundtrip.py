"""Round trip through kafka-python; run by the python of a venv holding one kafka-python.

    kafka_python_roundtrip.py BOOTSTRAP TOPIC [RECORDS] [PARTITIONS]

Kept standalone (no pytest, no repo imports) because it runs under the kafka-python 2.x
and 3.x venvs, which cannot share one interpreter with each other or with the test runner.
Exits 0 printing "OK <n>", or 1 with "FAIL: ..." at the first mismatch.
"""

import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

BASE_TS_MS = 1_700_000_000_000
IDLE_TIMEOUT_S = 30


def expected(i, partitions):
    p = i % partitions
    key = f"kp-key-{i}".encode()
    # Some bytes outside ASCII/UTF-8 on purpose: values are opaque to the gateway.
    value = f"kafka-python {kafka.__version__} record {i} ".encode() + bytes((i * 7 + j) % 256 for j in range(64))
    headers = [("kp-index", str(i).encode()), ("kp-empty", b"")]
    return p, key, value, headers, BASE_TS_MS + i


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    records = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    partitions = int(sys.argv[4]) if len(sys.argv) > 4 else 2

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-roundtrip-admin")
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="kp-roundtrip-producer")
    futures = []
    for i in range(records):
        p, key, value, headers, ts = expected(i, partitions)
        fut = producer.send(topic, value=value, key=key, headers=headers, partition=p, timestamp_ms=ts)
        futures.append((i, p, fut))
    producer.flush(timeout=60)
    for i, p, fut in futures:
        md = fut.get(timeout=60)  # raises the send error, if any
        if md.partition != p or md.offset != i // partitions:
            fail(f"record {i} acked at {md.partition}@{md.offset}, expected {p}@{i // partitions}")
    producer.close()

    # group_id=None: no coordinator, no commits; the gateway has no consumer groups yet.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="kp-roundtrip-consumer")
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    next_offset = [0] * partitions
    want = [(records - p + partitions - 1) // partitions for p in range(partitions)]
    got = 0
    last_progress = time.monotonic()
    while got < records:
        batches = consumer.poll(timeout_ms=500)
        if not batches:
            if time.monotonic() - last_progress > IDLE_TIMEOUT_S:
                fail(f"no records for {IDLE_TIMEOUT_S}s after {got} of {records}; next offsets {next_offset}")
            continue
        last_progress = time.monotonic()
        for msgs in batches.values():
            for m in msgs:
                p = m.partition
                if m.offset != next_offset[p]:
                    fail(f"partition {p}: got offset {m.offset}, expected {next_offset[p]}")
                if m.offset >= want[p]:
                    fail(f"partition {p}: extra record at offset {m.offset}")
                i = m.offset * partitions + p
                _, key, value, headers, ts = expected(i, partitions)
                gotten = (m.key, m.value, [(k, bytes(v)) for k, v in m.headers], m.timestamp, m.timestamp_type)
                wanted = (key, value, headers, ts, 0)  # timestamp_type 0 = CreateTime
                if gotten != wanted:
                    fail(f"record {i} (partition {p} offset {m.offset}):\n  got    {gotten!r}\n  wanted {wanted!r}")
                next_offset[p] += 1
                got += 1
    consumer.close()
    print(f"OK {records}")


if __name__ == "__main__":
    main()
