"""Kafka ACLs as real clients meet them, librdkafka (confluent-kafka) and the Java client, on
both backends: bob, who may not, is refused with the code Kafka gives, while alice, who may,
produces and consumes in her group at the same time.

An administrator (a super user, on a PLAINTEXT loopback listener of its own) makes the users
(AlterUserScramCredentials), the topics and the ACLs with the admin API; alice and bob log in
with SCRAM-SHA-512 on a SASL_PLAINTEXT listener, where a resource no ACL names is closed
(--allow-everyone-if-no-acl-found false):

  alice   Write, Read, Describe on her topic; Read on her group
  bob     Read on another topic ("shared") and on a group of his own, nothing on alice's
          topic or group

What bob meets: producing to alice's topic, TOPIC_AUTHORIZATION_FAILED (librdkafka: on the
delivery report; Java: TopicAuthorizationException), and to "shared" too (the Produce itself
is refused, as he may describe it); consuming alice's topic in his group (Java: also assigned,
without a group), TOPIC_AUTHORIZATION_FAILED; joining alice's group (to consume "shared",
which he may read), GROUP_AUTHORIZATION_FAILED; deleting alice's topic,
TOPIC_AUTHORIZATION_FAILED; and Metadata does not list alice's topic.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Event

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from groups import JAVA, Group, expected_records, produce_range
from harness import describe, java_classpath, run, unique_topic

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
# The SMQ backend keeps users and ACLs in the filer: a namespace of this module's own.
NAMESPACE = f"authz{uuid.uuid4().hex[:8]}"
TIDEGATE = {
    "shards": 2,
    "listeners": ["ADMIN=PLAINTEXT://127.0.0.1:0", "SASL=SASL_PLAINTEXT://127.0.0.1:0"],
    "extra_args": ["--super-users", "User:ANONYMOUS", "--allow-everyone-if-no-acl-found", "false",
                   "--smq-namespace", NAMESPACE, "--group-initial-rebalance-delay-ms", "300"],
}
PARTITIONS = 2
TIMEOUT_S = 30  # for any one client call


@dataclass
class Resources:
    topic: str      # alice's
    group: str      # alice's
    shared: str     # bob may read it
    bob_group: str  # bob's


def set_up(admin_bootstrap) -> Resources:
    """Users, topics and ACLs, made by the super user with the admin API."""
    names = Resources(unique_topic("alice"), unique_topic("alice-group"), unique_topic("shared"),
                      unique_topic("bob-group"))
    admin = AdminClient({"bootstrap.servers": admin_bootstrap})
    credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    users = [UserScramCredentialUpsertion(user, credential, password.encode())
             for user, password in USERS.items()]
    for future in admin.alter_user_scram_credentials(users, request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)
    topics = [NewTopic(names.topic, PARTITIONS, 1), NewTopic(names.shared, 1, 1)]
    for future in admin.create_topics(topics, operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)

    def allow(principal, resource_type, name, operation):
        return AclBinding(resource_type, name, ResourcePatternType.LITERAL, principal, "*", operation,
                          AclPermissionType.ALLOW)
    acls = [allow("User:alice", ResourceType.TOPIC, names.topic, operation)
            for operation in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)]
    acls += [allow("User:alice", ResourceType.GROUP, names.group, AclOperation.READ),
             allow("User:bob", ResourceType.TOPIC, names.shared, AclOperation.READ),
             allow("User:bob", ResourceType.GROUP, names.bob_group, AclOperation.READ)]
    for future in admin.create_acls(acls, request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)
    return names


# ---- librdkafka --------------------------------------------------------------------------

def sasl(user):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": USERS[user]}


def alice_works(bootstrap, names, bob_done: Event, min_records=300, max_records=20_000):
    """alice produces (idempotent) with keys, headers and timestamps until bob is done, while
    her consumer reads in her group; then every record must have been read at the offset its
    delivery report gave, byte for byte, and her commit must hold. Returns how many."""
    errors, acked, sent, received = [], {}, {}, []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.key()] = (msg.partition(), msg.offset())

    def read(consumer, timeout):
        msg = consumer.poll(timeout)
        if msg is not None:
            assert msg.error() is None, msg.error()
            received.append(msg)

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                         "error_cb": errors.append, **sasl("alice")})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": names.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, **sasl("alice")})
    consumer.subscribe([names.topic])
    deadline = time.monotonic() + 90
    try:
        i = 0
        while (i < min_records or not bob_done.is_set()) and i < max_records:
            key = f"key-{i}".encode()
            sent[key] = (bytes((i + j) % 256 for j in range(i % 300)), [("index", str(i).encode()),
                         ("from", b"alice")], 1_700_000_000_000 + i)
            value, headers, timestamp = sent[key]
            producer.produce(names.topic, value=value, key=key, headers=headers, timestamp=timestamp,
                             on_delivery=delivered)
            producer.poll(0)
            read(consumer, 0.002)  # also paces her: some thousands of records while bob tries
            i += 1
        assert producer.flush(TIMEOUT_S) == 0, f"unflushed; errors {errors[:3]}"
        assert not errors and len(acked) == len(sent), errors[:3]
        while len(received) < len(sent) and time.monotonic() < deadline:
            read(consumer, 0.5)
        seen = set()
        for msg in received:
            key = msg.key()
            assert key not in seen, f"record {key} read twice"
            seen.add(key)
            value, headers, timestamp = sent[key]
            assert (msg.value(), msg.headers(), msg.timestamp()) == (value, headers, (1, timestamp)), \
                f"record {key} read back differently"
            assert (msg.partition(), msg.offset()) == acked[key], f"record {key} at another offset"
        assert len(seen) == len(sent), f"alice read {len(seen)} of {len(sent)} records"
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(names.topic, p) for p in range(PARTITIONS)],
                                       timeout=TIMEOUT_S)
        ends = {}
        for partition, offset in acked.values():
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == ends
    finally:
        consumer.close()
    return len(sent)


def first_error(step, codes, timeout=TIMEOUT_S):
    """Calls step() (which returns the codes it saw) until one of `codes` shows; returns all
    it saw."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        seen += step()
        if set(seen) & codes:
            return seen
    pytest.fail(f"none of {codes} within {timeout}s; saw {seen}")


def bob_produces(bootstrap, topic):
    """The codes bob's producer (librdkafka's defaults: not idempotent) meets producing one
    record to partition 0 of `topic`."""
    codes = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": TIMEOUT_S * 1000,
                         "error_cb": lambda e: codes.append(e.code()), **sasl("bob")})
    producer.produce(topic, value=b"from bob", partition=0,
                     on_delivery=lambda err, msg: codes.append(err.code() if err else "delivered"))
    producer.flush(TIMEOUT_S)
    return codes


def bob_consumes(bootstrap, topic, group, expected):
    """The codes bob's consumer meets subscribed to `topic` in `group`, until `expected`.
    (Subscribed, because librdkafka reports nothing for an assigned partition of a topic it
    may not describe: it only never fetches it.)"""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, **sasl("bob")})
    consumer.subscribe([topic])

    def step():
        msg = consumer.poll(0.5)
        if msg is None:
            return []
        return [msg.error().code() if msg.error() else "record"]
    try:
        return first_error(step, {expected})
    finally:
        consumer.close()


def bob_is_refused(bootstrap, names):
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in bob_produces(bootstrap, names.topic)
    # He may describe "shared", so the Produce itself is sent, and refused.
    assert set(bob_produces(bootstrap, names.shared)) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}
    seen = bob_consumes(bootstrap, names.topic, names.bob_group, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert "record" not in seen, seen
    seen = bob_consumes(bootstrap, names.shared, names.group, KafkaError.GROUP_AUTHORIZATION_FAILED)
    assert "record" not in seen, seen

    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("bob")})
    future = admin.delete_topics([names.topic], operation_timeout=TIMEOUT_S,
                                 request_timeout=TIMEOUT_S)[names.topic]
    with pytest.raises(KafkaException) as refused:
        future.result(timeout=TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused.value
    listed = admin.list_topics(timeout=TIMEOUT_S).topics
    assert names.topic not in listed and names.shared in listed, sorted(listed)


@pytest.mark.parametrize("tidegate", [TIDEGATE], indirect=True)
def test_librdkafka_bob_refused_while_alice_works(tidegate):
    names = set_up(tidegate.listeners["ADMIN"])
    bootstrap = tidegate.listeners["SASL"]
    bob_done = Event()
    with ThreadPoolExecutor(1) as pool:
        alice = pool.submit(alice_works, bootstrap, names, bob_done)
        try:
            bob_is_refused(bootstrap, names)
        finally:
            bob_done.set()
        alice.result(timeout=120)
    # And the topic is still there: bob's delete was refused.
    admin = AdminClient({"bootstrap.servers": bootstrap, **sasl("alice")})
    assert names.topic in admin.list_topics(timeout=TIMEOUT_S).topics


# ---- the Java client ---------------------------------------------------------------------

def java_sasl(user):
    return ["security.protocol=SASL_PLAINTEXT", "sasl.mechanism=SCRAM-SHA-512",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{USERS[user]}";']


@pytest.mark.parametrize("tidegate", [TIDEGATE], indirect=True)
def test_java_bob_refused_while_alice_works(tidegate, tmp_path):
    names = set_up(tidegate.listeners["ADMIN"])
    bootstrap = tidegate.listeners["SASL"]
    records, record_bytes = 2_000, 100
    # alice's member (tests/java GroupMember: checks every record byte for byte, key, headers
    # and timestamp, at the offset ProduceRange's sequence puts it) reads in her group while
    # her producer and bob's attempts run.
    group = Group(tmp_path, bootstrap, names.group, names.topic, PARTITIONS, record_bytes,
                  common_args=java_sasl("alice"))
    member = group.start("alice")
    try:
        # Each of bob's attempts (tests/java Attempts) and the exception it must meet.
        refusals = [("produce:" + names.topic, "TopicAuthorizationException"),
                    ("fetch:" + names.topic, "TopicAuthorizationException"),
                    (f"join:{names.bob_group}:{names.topic}", "TopicAuthorizationException"),
                    (f"join:{names.group}:{names.shared}", "GroupAuthorizationException"),
                    ("delete:" + names.topic, "TopicAuthorizationException")]
        attempts = [attempt for attempt, _ in refusals] + ["list"]
        with ThreadPoolExecutor(1) as pool:
            produced = pool.submit(produce_range, bootstrap, names.topic, PARTITIONS, 0, records, record_bytes,
                                   config=java_sasl("alice"))
            res = run(JAVA + ["-cp", java_classpath(), "dev.tidegate.tests.Attempts", bootstrap, *attempts,
                              *java_sasl("bob")], timeout=180)
            produced.result()
        assert res.returncode == 0, describe(res)
        outcomes = dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)
        for attempt, exception in refusals:
            assert outcomes.get(attempt, "").startswith(exception + ":"), describe(res)
        listed = outcomes.get("list", "").removeprefix("OK ").split(",")
        assert names.shared in listed and names.topic not in listed, describe(res)

        group.wait_until(group.consumed(expected_records(PARTITIONS, 0, records)), 60, "alice's records")
        member.stop()
        assert not member.bad and max(group.seen.values()) == 1, group.describe()
    finally:
        group.kill_all()
