"""Produce, consume, a consumer group and the admin calls through one confluent-kafka
(librdkafka) version; run by the python of the venv that holds it.

    ck_roundtrip.py BOOTSTRAP TOPIC GROUP [RECORDS] [PARTITIONS]

Standalone (no pytest, no repo imports) because it runs under .cache/venv-ck-old
(confluent-kafka 2.0.2, bundling librdkafka 2.0.2) and .cache/venv-ck-deb (confluent-kafka
1.9.2 compiled against Debian's librdkafka-dev) as well as the test runner's venv.

0. First line of output: "CLIENT {json}" with confluent-kafka's version, the librdkafka
   version it reports and the librdkafka files mapped into this process (/proc/self/maps),
   so the caller can tell a bundled librdkafka from the system's.

1. AdminClient: create_topics (with a topic config), list_topics, describe_configs.
2. Producer (idempotent): RECORDS records with key, binary value, headers (a repeated key,
   an empty and a null value) and a CreateTime timestamp; record i goes to partition
   i % PARTITIONS and must be acknowledged at offset i // PARTITIONS.
3. Consumer, assigned from the beginning: every record back byte for byte, in order, at
   the offset it was acknowledged at.
4. Group: member A subscribes, reads the first HALF records of each partition, commits
   that position and, while still in the group, list_groups / list_consumer_groups /
   describe_consumer_groups must show it (Stable, one member owning every partition); A
   leaves; committed() reads the commits back; member B of the same group (with
   auto.offset.reset=error, so a missing commit is an error, not a fresh start) gets
   exactly the records from the commits on.
Exits 0 printing "OK <n>", or 1 with "FAIL: ..." at the first mismatch.
"""

import json
import sys
import time

import confluent_kafka
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

BASE_TS_MS = 1_700_000_000_000
TIMEOUT_S = 30            # per step: a deadline, not a wait
RETENTION_MS = "86400000"  # a topic config given at creation, read back by describe_configs


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expected(i, partitions):
    """Record i: (partition, offset, key, value, headers, timestamp)."""
    key = f"key-{i}".encode()
    value = f"confluent-kafka {confluent_kafka.__version__} record {i} ".encode() + bytes(
        (i * 7 + j) % 256 for j in range(i % 50))
    headers = [("idx", str(i).encode()), ("dup", b"a"), ("dup", b"b"), ("empty", b""), ("null", None)]
    return i % partitions, i // partitions, key, value, headers, BASE_TS_MS + i


def check(m, partitions, what):
    """m is record m.offset() * partitions + m.partition(), exactly as produced."""
    if m.error() is not None:
        fail(f"{what}: consume error {m.error()}")
    i = m.offset() * partitions + m.partition()
    _, _, key, value, headers, ts = expected(i, partitions)
    got = (m.key(), m.value(), m.headers() or [], m.timestamp())
    want = (key, value, headers, (TIMESTAMP_CREATE_TIME, ts))
    if got != want:
        fail(f"{what}: record {i} (partition {m.partition()} offset {m.offset()}):\n"
             f"  got    {got!r}\n  wanted {want!r}")


def consume_exactly(consumer, partitions, start, end, what):
    """Polls until every partition p has given offsets start[p]..end[p]-1, in order; records
    past end[p] are allowed only if `end` is not the partition's end (never checked here)."""
    next_offset = dict(start)
    deadline = time.monotonic() + TIMEOUT_S
    while any(next_offset[p] < end[p] for p in range(partitions)):
        if time.monotonic() > deadline:
            fail(f"{what}: no more records after {TIMEOUT_S}s; next offsets {next_offset}, wanted {end}")
        m = consumer.poll(0.5)
        if m is None:
            continue
        check(m, partitions, what)
        p = m.partition()
        if m.offset() >= end[p]:
            continue  # fetched ahead of what this step reads
        if m.offset() != next_offset[p]:
            fail(f"{what}: partition {p} gave offset {m.offset()}, expected {next_offset[p]}")
        next_offset[p] += 1


def admin_calls(admin, topic, partitions):
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                            config={"retention.ms": RETENTION_MS})],
                                  operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    futures[topic].result(timeout=TIMEOUT_S)

    md = admin.list_topics(timeout=TIMEOUT_S)
    if topic not in md.topics:
        fail(f"list_topics: {topic} missing from {sorted(md.topics)}")
    t = md.topics[topic]
    if t.error is not None or sorted(t.partitions) != list(range(partitions)):
        fail(f"list_topics: {topic} has error {t.error}, partitions {sorted(t.partitions)}")
    for p in t.partitions.values():
        if p.leader not in md.brokers:
            fail(f"list_topics: partition {p.id} led by {p.leader}, not one of the brokers {sorted(md.brokers)}")

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource].result(timeout=TIMEOUT_S)
    got = {name: entry.value for name, entry in configs.items()}
    if got.get("retention.ms") != RETENTION_MS or got.get("cleanup.policy") != "delete":
        fail(f"describe_configs: retention.ms {got.get('retention.ms')!r} (created with {RETENTION_MS}), "
             f"cleanup.policy {got.get('cleanup.policy')!r}; all: {got}")


def produce(bootstrap, topic, records, partitions):
    errors, acked, failed = [], {}, []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "error_cb": errors.append})

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                failed.append((i, err))
            else:
                acked[i] = (msg.partition(), msg.offset())
        return cb

    for i in range(records):
        p, _, key, value, headers, ts = expected(i, partitions)
        producer.produce(topic, value=value, key=key, partition=p, headers=headers, timestamp=ts,
                         on_delivery=on_delivery(i))
        producer.poll(0)
    if producer.flush(TIMEOUT_S) != 0:
        fail(f"undelivered after {TIMEOUT_S}s; errors: {errors}")
    if failed or errors:
        fail(f"delivery failures {failed[:5]}; errors {errors[:5]}")
    for i in range(records):
        p, offset = expected(i, partitions)[:2]
        if acked[i] != (p, offset):
            fail(f"record {i} acknowledged at {acked[i]}, expected {(p, offset)}")


def check_group_listed(admin, group, topic, partitions):
    """The group as the admin calls of this version show it, with one member owning all."""
    listed = [g for g in admin.list_groups(group, timeout=TIMEOUT_S) if g.id == group]
    if len(listed) != 1 or listed[0].protocol_type != "consumer" or len(listed[0].members) != 1:
        fail(f"list_groups: {[(g.id, g.protocol_type, g.state, len(g.members)) for g in listed]}")
    if not hasattr(admin, "list_consumer_groups"):
        return
    result = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
    if group not in [g.group_id for g in result.valid]:
        fail(f"list_consumer_groups: {group} missing from {[g.group_id for g in result.valid]}; "
             f"errors {result.errors}")
    desc = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result(timeout=TIMEOUT_S)
    owned = sorted((tp.topic, tp.partition) for m in desc.members for tp in m.assignment.topic_partitions)
    if desc.state.name != "STABLE" or len(desc.members) != 1 or owned != [(topic, p) for p in range(partitions)]:
        fail(f"describe_consumer_groups: state {desc.state}, {len(desc.members)} members, owning {owned}")


def group_round(bootstrap, admin, topic, group, records, partitions):
    per_partition = [len(range(p, records, partitions)) for p in range(partitions)]
    half = {p: n // 2 for p, n in enumerate(per_partition)}
    end = dict(enumerate(per_partition))

    a = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    try:
        a.subscribe([topic])
        consume_exactly(a, partitions, {p: 0 for p in range(partitions)}, half, "member A")
        a.commit(offsets=[TopicPartition(topic, p, o) for p, o in half.items()], asynchronous=False)
        check_group_listed(admin, group, topic, partitions)
    finally:
        a.close()

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=TIMEOUT_S)
    finally:
        reader.close()
    if {tp.partition: tp.offset for tp in got} != half:
        fail(f"committed(): {[(tp.partition, tp.offset) for tp in got]}, committed {half}")

    b = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "error", "session.timeout.ms": 6000})
    try:
        b.subscribe([topic])
        consume_exactly(b, partitions, half, end, "member B")
        # Nothing past the end: one more poll that finds no record (EOF events are off).
        m = b.poll(1)
        if m is not None:
            fail(f"member B: unexpected {'error ' + str(m.error()) if m.error() else 'record'} past the end: "
                 f"partition {m.partition()} offset {m.offset()}")
    finally:
        b.close()


def loaded_librdkafka():
    """The librdkafka shared objects mapped into this process."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split(maxsplit=5)[5].strip() for line in maps
                       if len(line.split(maxsplit=5)) == 6 and "/librdkafka" in line})


def main():
    bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    # __version__, not version(): that is a (str, int) tuple up to 2.0.x but a plain str in 2.16.
    print("CLIENT " + json.dumps({"confluent_kafka": confluent_kafka.__version__,
                                  "librdkafka": confluent_kafka.libversion()[0],
                                  "loaded": loaded_librdkafka()}), flush=True)
    records = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    partitions = int(sys.argv[5]) if len(sys.argv) > 5 else 2

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin_calls(admin, topic, partitions)
    produce(bootstrap, topic, records, partitions)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{group}-assign",
                         "enable.auto.commit": False, "enable.auto.offset.store": False})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        end = {p: len(range(p, records, partitions)) for p in range(partitions)}
        consume_exactly(consumer, partitions, {p: 0 for p in range(partitions)}, end, "assigned consumer")
        lo_hi = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S) for p in range(partitions)]
        if lo_hi != [(0, end[p]) for p in range(partitions)]:
            fail(f"watermarks {lo_hi}, expected {[(0, end[p]) for p in range(partitions)]}")
    finally:
        consumer.close()

    group_round(bootstrap, admin, topic, group, records, partitions)
    print(f"OK {records}")


if __name__ == "__main__":
    try:
        main()
    except confluent_kafka.KafkaException as e:
        fail(f"{type(e).__name__}: {e}")
