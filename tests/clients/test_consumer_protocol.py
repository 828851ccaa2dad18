"""The new consumer group protocol (KIP-848, ConsumerGroupHeartbeat) with real clients: the
Java consumer and librdkafka with group.protocol=consumer, on both backends. The coordinator
computes the assignment; members move partitions only after their owner gave them up."""

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from groups import Group, expected_records, produce_range
from harness import create_topic, unique_topic
from test_groups import PARTITIONS, PHASE, PER_PARTITION, RECORD_BYTES, committed_offsets

SESSION_MS = 6000
HEARTBEAT_MS = 500
TIMEOUT = 60

CONSUMER_PROTOCOL_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": [
        "--group-consumer-session-timeout-ms", str(SESSION_MS),
        "--group-consumer-heartbeat-interval-ms", str(HEARTBEAT_MS)]}],
    indirect=True)


def shared(group, members):
    """Predicate: the members' assignments split every partition between them. (Their
    epochs are not compared: the Java client reports one only when its partitions change.)"""
    def check():
        owned = [set(m.owned or ()) for m in members]
        return all(owned) and sum(map(len, owned)) == PARTITIONS and \
            set().union(*owned) == set(range(PARTITIONS))
    return check


def new_topic(tidegate, prefix):
    topic = unique_topic(prefix)
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    return topic, f"{topic}-group"


@CONSUMER_PROTOCOL_TIDEGATE
def test_java_members_share_partitions_and_take_over_a_killed_ones(tidegate, tmp_path):
    topic, group_id = new_topic(tidegate, "kip848")
    g = Group(tmp_path, tidegate.bootstrap, group_id, topic, PARTITIONS, RECORD_BYTES,
              ["group.protocol=consumer"])
    try:
        members = [g.start(name) for name in ("a", "b", "c")]
        g.wait_until(shared(g, members), TIMEOUT, "three members to share the partitions")
        expected = expected_records(PARTITIONS, 0, PHASE)
        produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PHASE, RECORD_BYTES)
        g.wait_until(g.consumed(expected), TIMEOUT, f"all {PHASE} records consumed")

        killed, survivors = members[0], members[1:]
        killed.kill()
        started = time.monotonic()
        g.wait_until(shared(g, survivors), TIMEOUT, "the survivors to take over")
        # The session timeout, a heartbeat round or two, and the revocation steps.
        assert time.monotonic() - started < SESSION_MS / 1000 + 10, g.describe()

        more = expected_records(PARTITIONS, PHASE, 2 * PHASE)
        produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE, 2 * PHASE, RECORD_BYTES)
        g.wait_until(g.consumed(more), TIMEOUT, "records after the takeover consumed")
        for m in survivors:
            m.stop()
        # Everything produced after the takeover exactly once (before it, the killed member
        # may have consumed records whose commit it never sent; those come again).
        counts = {}
        for m in survivors:
            assert not m.unowned, f"{m.name} got records of partitions it did not own\n{g.describe()}"
            for key in m.records:
                if key in more:
                    counts[key] = counts.get(key, 0) + 1
        assert set(counts) == more and set(counts.values()) == {1}, g.describe()
    finally:
        g.kill_all()


@CONSUMER_PROTOCOL_TIDEGATE
def test_librdkafka_member_consumes_and_commits(tidegate):
    topic, group_id = new_topic(tidegate, "kip848-rd")
    produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PHASE, RECORD_BYTES)
    consumer = Consumer({"bootstrap.servers": tidegate.bootstrap, "group.id": group_id,
                         "group.protocol": "consumer", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    seen = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < PHASE and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            seen.add((message.partition(), message.offset()))
            consumer.commit(message=message, asynchronous=False)
        assignment = {tp.partition for tp in consumer.assignment()}
    finally:
        consumer.close()
    assert seen == expected_records(PARTITIONS, 0, PHASE)
    assert assignment == set(range(PARTITIONS))
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == {p: PER_PARTITION for p in range(PARTITIONS)}
