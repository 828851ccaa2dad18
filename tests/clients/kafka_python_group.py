"""A consumer group and the admin calls of one kafka-python version; run by the python of a
venv holding it (2.0.2, 2.3.x, 3.x: their admin APIs differ, see the small shims below).

    kafka_python_group.py BOOTSTRAP TOPIC GROUP [RECORDS] [PARTITIONS]

Standalone (no pytest, no repo imports), like kafka_python_roundtrip.py.

1. Admin: create_topics (with retention.ms), list_topics, describe_topics, describe_configs.
2. Producer: record i (key, value, headers, timestamp) to partition i % PARTITIONS, acked at
   offset i // PARTITIONS.
3. Member A subscribes, reads the first half of each partition (checked byte for byte),
   commits it with metadata; while A is in the group the admin lists the group and describes
   it (Stable, one member); A leaves; the admin reads the commits back.
4. Member B (auto_offset_reset='none': a missing commit is an error) reads exactly the second
   half of every partition, and nothing more.
Exits 0 printing "OK <n>", or 1 with "FAIL: ..." at the first mismatch.
"""

import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

BASE_TS_MS = 1_700_000_000_000
TIMEOUT_S = 30
RETENTION_MS = "86400000"


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expected(i, partitions):
    key = f"kp-key-{i}".encode()
    value = f"kafka-python {kafka.__version__} group record {i} ".encode() + bytes((i * 7 + j) % 256 for j in range(i % 50))
    headers = [("idx", str(i).encode()), ("dup", b"a"), ("dup", b"b"), ("empty", b"")]
    return i % partitions, i // partitions, key, value, headers, BASE_TS_MS + i


def offset_and_metadata(offset, metadata):
    # 2.0.x: (offset, metadata); 2.1+ added leader_epoch.
    if "leader_epoch" in OffsetAndMetadata._fields:
        return OffsetAndMetadata(offset, metadata, -1)
    return OffsetAndMetadata(offset, metadata)


# ---- admin shims: the same question asked of each version's API

def config_values(admin, topic):
    """{name: value} of the topic's configs as describe_configs returns them."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    try:
        result = admin.describe_configs([resource], config_filter="all")  # 3.x
    except TypeError:
        result = admin.describe_configs([resource])  # 2.x: a list of DescribeConfigsResponse
    if isinstance(result, dict):
        entries = next(iter(next(iter(result.values())).values()))
        return {name: (e.get("value") if isinstance(e, dict) else e) for name, e in entries.items()}
    values = {}
    for response in result:
        for res in response.resources:
            error_code, error_message, _rtype, name, configs = res[:5]
            if error_code != 0:
                fail(f"describe_configs: error {error_code} {error_message} for {name}")
            values.update({c[0]: c[1] for c in configs})
    return values


def listed_groups(admin):
    """Group ids ListGroups reports."""
    if hasattr(admin, "list_consumer_groups"):  # 2.x: [(group_id, protocol_type)]
        return {g[0] for g in admin.list_consumer_groups()}
    return {g["group_id"] for g in admin.list_groups()}  # 3.x: [dict]


def group_state(admin, group):
    """(state, member count) DescribeGroups reports."""
    if hasattr(admin, "describe_consumer_groups"):
        # 2.x. Asking for the authorized operations: without, 2.1-2.3 fail on the
        # "not requested" value (INT32_MIN) Kafka answers DescribeGroups v3+ with.
        described = admin.describe_consumer_groups([group], include_authorized_operations=True)
    else:
        described = admin.describe_groups([group])
    if isinstance(described, dict):
        described = list(described.values())
    [g] = described
    if isinstance(g, dict):
        return g.get("group_state", g.get("state")), len(g["members"])
    return g.state, len(g.members)


def group_offsets(admin, group):
    """{TopicPartition: offset, metadata} the group has committed."""
    if hasattr(admin, "list_consumer_group_offsets"):
        got = admin.list_consumer_group_offsets(group)
    else:
        got = admin.list_group_offsets({group: None})[group]
    return {tp: (om.offset, om.metadata) for tp, om in got.items()}


def admin_calls(admin, topic, partitions):
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                  topic_configs={"retention.ms": RETENTION_MS})])
    deadline = time.monotonic() + TIMEOUT_S
    while topic not in admin.list_topics():
        if time.monotonic() > deadline:
            fail(f"list_topics: {topic} missing after {TIMEOUT_S}s")
        time.sleep(0.2)
    [described] = admin.describe_topics([topic])
    got = sorted(p["partition"] if "partition" in p else p["partition_index"] for p in described["partitions"])
    if described.get("error_code", 0) != 0 or got != list(range(partitions)):
        fail(f"describe_topics: {described}")
    configs = config_values(admin, topic)
    if configs.get("retention.ms") != RETENTION_MS:
        fail(f"describe_configs: retention.ms {configs.get('retention.ms')!r}, created with {RETENTION_MS}; "
             f"all: {configs}")


def consume_exactly(consumer, partitions, start, end, what):
    next_offset = dict(start)
    deadline = time.monotonic() + TIMEOUT_S
    while any(next_offset[p] < end[p] for p in range(partitions)):
        if time.monotonic() > deadline:
            fail(f"{what}: no more records after {TIMEOUT_S}s; next offsets {next_offset}, wanted {end}")
        for msgs in consumer.poll(timeout_ms=200).values():
            for m in msgs:
                p = m.partition
                i = m.offset * partitions + p
                _, _, key, value, headers, ts = expected(i, partitions)
                got = (m.key, m.value, [(k, bytes(v)) for k, v in m.headers], m.timestamp, m.timestamp_type)
                if got != (key, value, headers, ts, 0):
                    fail(f"{what}: record {i} ({p}@{m.offset}):\n  got    {got!r}\n  wanted {(key, value, headers, ts, 0)!r}")
                if m.offset >= end[p]:
                    continue
                if m.offset != next_offset[p]:
                    fail(f"{what}: partition {p} gave offset {m.offset}, expected {next_offset[p]}")
                next_offset[p] += 1


def main():
    bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    records = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    partitions = int(sys.argv[5]) if len(sys.argv) > 5 else 2

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-group-admin")
    admin_calls(admin, topic, partitions)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = []
    for i in range(records):
        p, _, key, value, headers, ts = expected(i, partitions)
        futures.append(producer.send(topic, key=key, value=value, headers=headers, partition=p, timestamp_ms=ts))
    producer.flush(timeout=TIMEOUT_S)
    for i, fut in enumerate(futures):
        md = fut.get(timeout=TIMEOUT_S)
        if (md.partition, md.offset) != expected(i, partitions)[:2]:
            fail(f"record {i} acked at {md.partition}@{md.offset}, expected {expected(i, partitions)[:2]}")
    producer.close()

    end = {p: len(range(p, records, partitions)) for p in range(partitions)}
    half = {p: n // 2 for p, n in end.items()}
    common = dict(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                  session_timeout_ms=6000, heartbeat_interval_ms=500)

    a = KafkaConsumer(topic, auto_offset_reset="earliest", **common)
    consume_exactly(a, partitions, {p: 0 for p in range(partitions)}, half, "member A")
    a.commit({TopicPartition(topic, p): offset_and_metadata(o, f"kp-{kafka.__version__}") for p, o in half.items()})
    if group not in listed_groups(admin):
        fail(f"list groups: {group} missing from {sorted(listed_groups(admin))}")
    state, members = group_state(admin, group)
    if str(state).lower() != "stable" or members != 1:
        fail(f"describe groups: state {state!r}, {members} members")
    a.close()

    want = {TopicPartition(topic, p): (o, f"kp-{kafka.__version__}") for p, o in half.items()}
    if group_offsets(admin, group) != want:
        fail(f"committed offsets: {group_offsets(admin, group)}, committed {want}")

    b = KafkaConsumer(topic, auto_offset_reset="none", **common)
    consume_exactly(b, partitions, half, end, "member B")
    extra = [m for msgs in b.poll(timeout_ms=1000).values() for m in msgs]
    if extra:
        fail(f"member B: records past the end: {[(m.partition, m.offset) for m in extra]}")
    b.close()
    admin.close()
    print(f"OK {records}")


if __name__ == "__main__":
    main()
