"""The Java client at 2.8, 3.x and 4.x (tests/java-clients' Generation, built against each by
scripts/deps java-clients), and Kafka's own CLI tools (4.x, from tests/java's classpath) run
by their main classes: kafka-topics, kafka-configs, kafka-consumer-groups, kafka-get-offsets."""

import re

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from harness import (REPO, committed_offsets, describe, java_classpath,
                     run, unique_topic)

# scripts/deps JAVA_CLIENT_VERSIONS
VERSIONS = ["2.8.2", "3.9.1", "4.4.0"]
# C1 only and the serial collector: short-lived JVMs on a small machine.
JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


def generation_classpath(version):
    base = REPO / ".cache" / "java-clients" / version
    if not (base / "classes" / "dev" / "tidegate" / "clients" / "Generation.class").exists():
        pytest.fail(f"{base} is not built: run `scripts/deps java-clients`", pytrace=False)
    return f"{base}/classes:{base}/dependency/*"


@GROUP_TIDEGATE
@pytest.mark.parametrize("version", VERSIONS)
def test_java_client_version(tidegate, backend, version):
    """Admin calls, idempotent produce, consume from the start (and offsets by time), a group
    that commits and resumes, with kafka-clients `version` (see Generation's javadoc)."""
    topic = unique_topic(f"java-{version}")
    res = run(JAVA + ["-cp", generation_classpath(version), "dev.tidegate.clients.Generation",
                      tidegate.bootstrap, topic, f"{topic}-group", "200", "2"], timeout=180)
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    assert f"kafka-clients {version}" in lines and "OK 200" in lines, describe(res)
    # Client-side WARN/ERROR lines (slf4j-simple, WARN and up) are protocol complaints.
    assert not re.search(r"\b(WARN|ERROR)\b", res.stderr), describe(res)


def tool(main_class, *args, timeout=120):
    """One of Kafka's command-line tools (4.x) by its main class; its stdout, exit 0 required."""
    res = run(JAVA + ["-cp", java_classpath(), main_class, *args], timeout=timeout)
    assert res.returncode == 0, describe(res)
    return res.stdout


def test_kafka_cli_tools(tidegate, backend):
    """kafka-topics --create/--list/--describe, kafka-configs --describe, kafka-get-offsets
    (latest, earliest, by timestamp) and kafka-consumer-groups --list/--describe on a topic
    with records and a group with commits."""
    b = tidegate.bootstrap
    topic = unique_topic("cli")
    group = f"{topic}-group"
    partitions, per_partition, committed = 3, 20, {0: 5, 1: 20, 2: 0}

    tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", b, "--create", "--topic", topic,
         "--partitions", str(partitions), "--replication-factor", "1", "--config", "retention.ms=86400000")
    assert topic in tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", b, "--list").split()

    out = tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", b, "--describe", "--topic", topic)
    assert re.search(rf"Topic: {topic}\s.*PartitionCount: {partitions}\s.*ReplicationFactor: 1", out), out
    rows = re.findall(rf"Topic: {topic}\s+Partition: (\d+)\s+Leader: (\d+)\s+Replicas: (\d+)\s+Isr: (\d+)", out)
    assert sorted(int(r[0]) for r in rows) == list(range(partitions)), out
    assert all(leader == replicas == isr for _, leader, replicas, isr in rows), out

    out = tool("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", b, "--describe", "--all",
               "--entity-type", "topics", "--entity-name", topic)
    retention = "86400000"
    assert re.search(rf"^All configs for topic {topic} are:$", out, re.M), out
    assert re.search(rf"^\s*retention\.ms={retention}\b", out, re.M), out

    producer = Producer({"bootstrap.servers": b})
    base_ts = 1_700_000_000_000
    for p in range(partitions):
        for o in range(per_partition):
            producer.produce(topic, key=b"k%d" % o, value=b"v%d-%d" % (p, o), partition=p, timestamp=base_ts + o)
    assert producer.flush(30) == 0

    def offsets(*extra):
        text = tool("org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", b, "--topic", topic, *extra)
        return dict((int(p), int(o)) for p, o in re.findall(rf"^{re.escape(topic)}:(\d+):(-?\d+)$", text, re.M))

    assert offsets() == {p: per_partition for p in range(partitions)}
    assert offsets("--time", "-2") == {p: 0 for p in range(partitions)}
    assert offsets("--time", str(base_ts + 7)) == {p: 7 for p in range(partitions)}

    # Commits of a consumer that never joins (generation -1), as tools and many apps do.
    c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()], asynchronous=False)
    finally:
        c.close()
    assert committed_offsets(b, group, topic, partitions) == committed

    assert group in tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", b,
                         "--list").split()
    out = tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", b,
               "--describe", "--group", group)
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    rows = re.findall(rf"^{re.escape(group)}\s+{re.escape(topic)}\s+(\d+)\s+(\S+)\s+(\d+)\s+(\S+)\s", out, re.M)
    got = {int(p): (cur, int(end), lag) for p, cur, end, lag in rows}
    want = {p: (str(o), per_partition, str(per_partition - o)) for p, o in committed.items()}
    assert got == want, out
