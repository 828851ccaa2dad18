"""Kafka 4.x's own command-line tools against tidegate, run as a user runs them (by their main
classes, from tests/java's classpath: kafka-tools and kafka-clients 4.4.0 from Maven Central),
each test asserting what the user reads in the tool's output:

  kafka-topics            --create, --describe (DescribeTopicPartitions; Metadata before 3.8)
  kafka-get-offsets       earliest (-2) and latest (-1) offsets per partition
  kafka-delete-records    low watermarks (memory backend), a refusal per partition (SMQ)
  kafka-configs           topic configs: describe, alter, delete, invalid values, enforcement of
                          max.message.bytes, persistence across a restart (SMQ); broker configs
  kafka-consumer-groups   --describe (offsets, --members, --state) of a classic group and of a
                          KIP-848 (group.protocol=consumer) group
  kafka-log-dirs          the JSON listing of every broker's log dirs and partitions
  kafka-metadata-quorum   describe --status and --replication: a one-node quorum

Records are produced by tests/java's ProduceRange (the Java producer): record i goes to
partition i % partitions at offset i // partitions, key "key-P-I", value the first
RECORD_BYTES bytes of "record I partition P " (printable, so the console consumer's output can
be compared byte for byte).
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from groups import Group, expected_records, produce_range, relaunch_tidegate
from harness import describe, java_classpath, read_from_start, run, unique_topic

# C1 only and the serial collector: short-lived JVMs on a small machine.
JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]

TOPICS = "org.apache.kafka.tools.TopicCommand"
GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell"
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
METADATA_QUORUM = "org.apache.kafka.tools.MetadataQuorumCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"

PARTITIONS = 3
# ProduceRange records 0..RECORDS-1: partition 0 gets 11, partitions 1 and 2 get 10 each.
RECORDS = 31
# Shorter than "record 0 partition 0 ", so every value is printable text, no random tail.
RECORD_BYTES = 20
MESSAGE_MAX_BYTES = 1048588  # tidegate's --message-max-bytes default, Kafka's message.max.bytes
RETENTION_MS_DEFAULT = "604800000"  # Kafka's retention.ms default (7 days)

# Tools that join a group (the console consumer, KIP-848 members) should not wait Kafka's 3 s
# initial rebalance delay.
CLI_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


def kafka(main_class, *args, timeout=120, stdin=None):
    """One of Kafka's command-line tools by its main class; the CompletedProcess, whatever its
    exit status."""
    return run(JAVA + ["-cp", java_classpath(), main_class, *map(str, args)], timeout=timeout, input=stdin)


def kafka_all(*calls, timeout=120):
    """Several independent tools at once, each call a (main_class, *args) tuple: their
    CompletedProcesses, in order (JVM start-up is most of a tool's run time)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: kafka(*call, timeout=timeout), calls))


def tool(main_class, *args, timeout=120, stdin=None):
    """A tool that must succeed: its stdout (exit status 0 required)."""
    res = kafka(main_class, *args, timeout=timeout, stdin=stdin)
    assert res.returncode == 0, describe(res)
    return res.stdout


def per_partition(records, partitions=PARTITIONS):
    """{partition: records ProduceRange wrote there} for records 0..records-1."""
    return {p: len(range(p, records, partitions)) for p in range(partitions)}


def record_key(p, o, partitions=PARTITIONS):
    return f"key-{p}-{o * partitions + p}"


def record_value(p, o, partitions=PARTITIONS):
    return f"record {o * partitions + p} partition {p} "[:RECORD_BYTES]


def broker_ids(tidegate):
    """Node ids of the brokers (one per shard, node id = shard index with --node-id-base 0)."""
    return set(range(len(tidegate.brokers)))


def leaders(bootstrap, topic):
    """{partition: leader node id} as Metadata (confluent-kafka's AdminClient) reports them."""
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    return {p: m.leader for p, m in md.topics[topic].partitions.items()}


def create_topic(bootstrap, topic, partitions=PARTITIONS, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    admin.create_topics([new], operation_timeout=30, request_timeout=30)[topic].result(timeout=30)


def get_offsets_call(bootstrap, topic, time_spec):
    """kafka-get-offsets --time time_spec (-1 latest, -2 earliest) for kafka_all/offsets_of."""
    return (GET_OFFSETS, "--bootstrap-server", bootstrap, "--topic", topic, "--time", time_spec)


def offsets_of(res, topic):
    """{partition: offset} from a kafka-get-offsets run, each partition printed once."""
    assert res.returncode == 0, describe(res)
    rows = re.findall(rf"^{re.escape(topic)}:(\d+):(-?\d+)$", res.stdout, re.M)
    got = {int(p): int(o) for p, o in rows}
    assert len(got) == len(rows) and len(rows) == len(res.stdout.splitlines()), describe(res)
    return got


def console_consumer_call(bootstrap, topic, count, timeout_ms=15000):
    """kafka-console-consumer --from-beginning on every partition (a subscription, so a group
    of its own), printing partition, offset, key and value, until `count` records or
    timeout_ms without one."""
    return (CONSOLE_CONSUMER, "--bootstrap-server", bootstrap, "--topic", topic, "--from-beginning",
            "--max-messages", count, "--timeout-ms", timeout_ms,
            "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true",
            "--formatter-property", "print.key=true")


def consumed_by(res):
    """[(partition, offset, key, value)] a console consumer printed, in arrival order."""
    got = []
    for line in res.stdout.splitlines():
        m = re.fullmatch(r"Partition:(\d+)\tOffset:(\d+)\t([^\t]*)\t(.*)", line)
        assert m, f"unexpected line {line!r}\n{describe(res)}"
        got.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    return got


def expected_console_records(low, high):
    """[(partition, offset, key, value)] of ProduceRange's records from `low` to `high`
    (both {partition: offset}), sorted."""
    return sorted((p, o, record_key(p, o), record_value(p, o)) for p in high for o in range(low[p], high[p]))


# ---- kafka-topics ---------------------------------------------------------------------------

def test_topics_create_and_describe(tidegate):
    """kafka-topics --create with configs, then --describe: the partition count, each partition
    once with a leader among the brokers (Replicas and Isr that leader alone, the ELR columns
    filled from DescribeTopicPartitions), and the configs set at creation."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-topics")
    out = tool(TOPICS, "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", PARTITIONS,
               "--replication-factor", "1", "--config", "retention.ms=86400000",
               "--config", "max.message.bytes=65536")
    assert out.strip() == f"Created topic {topic}.", out

    out = tool(TOPICS, "--bootstrap-server", b, "--describe", "--topic", topic)
    lines = out.splitlines()
    head = re.fullmatch(rf"Topic: {re.escape(topic)}\tTopicId: (\S+)\tPartitionCount: (\d+)\t"
                        rf"ReplicationFactor: (\d+)\tConfigs: (.*)", lines[0])
    assert head, out
    topic_id, count, rf, configs = head.groups()
    assert topic_id != "AAAAAAAAAAAAAAAAAAAAAA", out  # Uuid.ZERO_UUID: no topic id
    assert (int(count), int(rf)) == (PARTITIONS, 1), out
    shown = dict(c.split("=", 1) for c in configs.split(",") if c)
    assert shown.get("retention.ms") == "86400000" and shown.get("max.message.bytes") == "65536", out

    rows, elr = {}, set()
    for line in lines[1:]:
        m = re.fullmatch(rf"\tTopic: {re.escape(topic)}\tPartition: (\d+)\tLeader: (\S+)\tReplicas: (\S*)\t"
                         r"Isr: (\S*)\tElr: (.*)\tLastKnownElr: (.*)", line)
        assert m, f"unexpected line {line!r}\n{out}"
        partition, leader, replicas, isr = m.groups()[:4]
        assert int(partition) not in rows, out
        rows[int(partition)] = int(leader)
        assert replicas == isr == leader, out
        elr.add(m.groups()[4:])
    assert sorted(rows) == list(range(PARTITIONS)), out
    # Partitions are dealt out over the shards (README): with 3 partitions, both brokers lead.
    assert set(rows.values()) == broker_ids(tidegate), out
    assert rows == leaders(b, topic), out
    # "N/A" is what the tool prints when it had to fall back to Metadata (a broker without
    # DescribeTopicPartitions, Kafka < 3.8); a 4.x broker sends the ELR lists (empty here).
    assert elr == {("", "")}, f"kafka-topics fell back to Metadata: no DescribeTopicPartitions?\n{out}"


# ---- kafka-get-offsets ----------------------------------------------------------------------

def test_get_offsets(tidegate):
    """kafka-get-offsets --time -1 (latest) and --time -2 (earliest) of every partition, after
    the Java producer wrote a known, uneven number of records to each."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-offsets")
    create_topic(b, topic)
    produce_range(b, topic, PARTITIONS, 0, RECORDS, RECORD_BYTES)
    high = per_partition(RECORDS)
    assert high == {0: 11, 1: 10, 2: 10}
    latest, earliest = kafka_all(get_offsets_call(b, topic, "-1"), get_offsets_call(b, topic, "-2"))
    assert offsets_of(latest, topic) == high
    assert offsets_of(earliest, topic) == {p: 0 for p in range(PARTITIONS)}


# ---- kafka-delete-records -------------------------------------------------------------------

@CLI_TIDEGATE
def test_delete_records(tidegate, backend, tmp_path):
    """kafka-delete-records with a JSON offsets file. Memory backend: each listed partition's
    low watermark moves to the given offset (the tool prints it), kafka-get-offsets --time -2
    shows it, and a console consumer from the beginning gets exactly the records from there on,
    byte for byte. SMQ cannot drop a partition's head: the tool reports POLICY_VIOLATION for each
    partition, and every record is still there."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-delete")
    create_topic(b, topic)
    produce_range(b, topic, PARTITIONS, 0, RECORDS, RECORD_BYTES)
    high = per_partition(RECORDS)

    # Partition 0: its first 4 records; partition 1: all of them (offset = its high watermark);
    # partition 2 is not listed and keeps everything.
    delete = {0: 4, 1: high[1]}
    offsets_file = tmp_path / "delete-records.json"
    offsets_file.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": p, "offset": o} for p, o in delete.items()]}))
    res = kafka(DELETE_RECORDS, "--bootstrap-server", b, "--offset-json-file", offsets_file)
    assert res.returncode == 0, describe(res)
    results = {int(p): r for p, r in re.findall(rf"^partition: {re.escape(topic)}-(\d+)\t(.*)$", res.stdout, re.M)}
    if backend is None:
        assert results == {p: f"low_watermark: {o}" for p, o in delete.items()}, describe(res)
        low = {p: delete.get(p, 0) for p in range(PARTITIONS)}
    else:
        assert sorted(results) == sorted(delete), describe(res)
        for r in results.values():
            assert re.fullmatch(r"error: \S*PolicyViolationException: .*", r), describe(res)
        low = {p: 0 for p in range(PARTITIONS)}

    want = expected_console_records(low, high)
    earliest, consumed = kafka_all(get_offsets_call(b, topic, "-2"), console_consumer_call(b, topic, len(want)))
    assert offsets_of(earliest, topic) == low
    got = consumed_by(consumed)
    assert len(got) == len(set(got)) and sorted(got) == want, describe(consumed)


# ---- kafka-configs --------------------------------------------------------------------------

def config_lines(out, header):
    """The `  name=value sensitive=... synonyms={...}` lines under `header` in kafka-configs
    --describe output: {name: (value, [synonym, ...])}, synonyms as SOURCE:name=value."""
    lines = out.splitlines()
    assert header in lines, f"no line {header!r} in:\n{out}"
    entries = {}
    for line in lines[lines.index(header) + 1:]:
        m = re.fullmatch(r"  ([^=\s]+)=(.*) sensitive=(true|false) synonyms=\{(.*)\}", line)
        if not m:
            break
        name, value, _, synonyms = m.groups()
        assert name not in entries, out
        entries[name] = (value, [s for s in synonyms.split(", ") if s])
    return entries


def describe_configs_call(bootstrap, entity_type, name, *options):
    return (CONFIGS, "--bootstrap-server", bootstrap, "--describe", *options, "--entity-type", entity_type,
            "--entity-name", name)


def alter_configs_call(bootstrap, topic, *options):
    return (CONFIGS, "--bootstrap-server", bootstrap, "--alter", "--entity-type", "topics", "--entity-name", topic,
            *options)


def dynamic_topic_configs(res, topic):
    """A kafka-configs --describe run of a topic: its dynamic (DYNAMIC_TOPIC_CONFIG) configs,
    each naming itself as its first synonym (as a Kafka broker reports them): {name: value}."""
    assert res.returncode == 0, describe(res)
    entries = config_lines(res.stdout, f"Dynamic configs for topic {topic} are:")
    for name, (value, synonyms) in entries.items():
        assert synonyms[:1] == [f"DYNAMIC_TOPIC_CONFIG:{name}={value}"], describe(res)
    return {name: value for name, (value, _) in entries.items()}


def watermarks(bootstrap, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
    finally:
        c.close()


def produce_one(bootstrap, topic, value):
    """One record with librdkafka (no compression): its delivery error, or None."""
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "none"})
    producer.produce(topic, value=value, partition=0, on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0 and len(errors) == 1
    return errors[0]


@CLI_TIDEGATE
def test_configs(tidegate, backend, request, tmp_path):
    """kafka-configs on a topic: --describe shows the configs it was created with (source
    DYNAMIC_TOPIC_CONFIG); --alter --add-config sets max.message.bytes and retention.ms, which
    --describe then shows and Produce enforces (the console producer's record over 51200 bytes
    gets MESSAGE_TOO_LARGE, its small one is stored); --delete-config restores the default; an
    invalid value is refused (INVALID_CONFIG, printed by the tool) and changes nothing; on SMQ
    the configs survive a restart of tidegate (shown, and enforced). A broker: --describe --all
    lists its configs, message.max.bytes among them."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-configs")
    create_topic(b, topic, partitions=1, config={"retention.ms": "86400000"})

    node = max(broker_ids(tidegate))
    topic_res, broker_res = kafka_all(describe_configs_call(b, "topics", topic),
                                      describe_configs_call(b, "brokers", node, "--all"))
    assert dynamic_topic_configs(topic_res, topic) == {"retention.ms": "86400000"}
    assert broker_res.returncode == 0, describe(broker_res)
    entries = config_lines(broker_res.stdout, f"All configs for broker {node} are:")
    assert entries.get("message.max.bytes", ("",))[0] == str(MESSAGE_MAX_BYTES), describe(broker_res)
    assert entries.get("broker.id", ("",))[0] == str(node), describe(broker_res)

    out = tool(*alter_configs_call(b, topic, "--add-config", "max.message.bytes=51200,retention.ms=3600000"))
    assert out.strip() == f"Completed updating config for topic {topic}.", out
    assert dynamic_topic_configs(kafka(*describe_configs_call(b, "topics", topic)), topic) == \
        {"max.message.bytes": "51200", "retention.ms": "3600000"}

    # One small line, then one of 60000 bytes (uncompressed, so its batch is over 51200 bytes
    # on the wire too): the first is stored, the second refused by the broker.
    small, big = "small record", "x" * 60000
    res = kafka(CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", topic,
                "--command-property", "compression.type=none", stdin=f"{small}\n{big}\n")
    errors = re.findall(r"Error when sending message to topic \S+ with key: null, value: (\d+) bytes with error:\s*"
                        r"\n(\S+)", res.stderr)
    assert errors == [("60000", "org.apache.kafka.common.errors.RecordTooLargeException:")], describe(res)
    assert watermarks(b, topic, 0) == (0, 1)
    got = read_from_start(b, topic, 1, 1, timeout=30)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [(0, None, small.encode())]

    # Independent: the deletion goes through, the invalid value is refused either way.
    deleted, invalid = kafka_all(alter_configs_call(b, topic, "--delete-config", "retention.ms"),
                                 alter_configs_call(b, topic, "--add-config", "max.message.bytes=abc"))
    assert deleted.returncode == 0, describe(deleted)
    assert deleted.stdout.strip() == f"Completed updating config for topic {topic}.", describe(deleted)
    assert invalid.returncode != 0, describe(invalid)
    assert "org.apache.kafka.common.errors.InvalidConfigurationException" in invalid.stderr, describe(invalid)

    dynamic, every = kafka_all(describe_configs_call(b, "topics", topic),
                               describe_configs_call(b, "topics", topic, "--all"))
    assert dynamic_topic_configs(dynamic, topic) == {"max.message.bytes": "51200"}
    assert every.returncode == 0, describe(every)
    entries = config_lines(every.stdout, f"All configs for topic {topic} are:")
    assert entries["retention.ms"][0] == RETENTION_MS_DEFAULT, describe(every)
    assert not any(s.startswith("DYNAMIC_") for s in entries["retention.ms"][1]), describe(every)
    assert entries["max.message.bytes"][0] == "51200", describe(every)
    assert entries["cleanup.policy"][0] == "delete", describe(every)

    if backend is not None:
        relaunch_tidegate(request, tidegate, tmp_path / "tidegate-restarted.log")
        b = tidegate.bootstrap
        assert dynamic_topic_configs(kafka(*describe_configs_call(b, "topics", topic)), topic) == \
            {"max.message.bytes": "51200"}
        error = produce_one(b, topic, b"y" * 60000)
        assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error
        # (Offsets are not checked after the restart: SeaweedMQ may reload a partition whose
        # data all sits in its first flushed file as empty, see test_smq_restart.py.)
        assert produce_one(b, topic, b"small again") is None


# ---- kafka-consumer-groups ------------------------------------------------------------------

def group_call(bootstrap, group, *options):
    return (CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group, *options)


def group_rows(res, group, columns):
    """The rows of a kafka-consumer-groups --describe run that belong to `group`, split on
    white space, each checked to have `columns` fields."""
    assert res.returncode == 0 and "Error" not in res.stdout, describe(res)
    rows = [line.split() for line in res.stdout.splitlines() if line.split()[:1] == [group]]
    assert all(len(r) == columns for r in rows), describe(res)
    return rows


def group_offsets(res, group):
    """--describe: {partition: (current, log end, lag, consumer id, host, client id)}."""
    rows = group_rows(res, group, 9)
    got = {int(r[2]): tuple(r[3:]) for r in rows}
    assert len(got) == len(rows), describe(res)
    return got


def group_state(res, group, tidegate):
    """--describe --state --verbose: (assignment strategy, state, group epoch, target
    assignment epoch, members), the coordinator checked to be one of the brokers."""
    # GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE GROUP-EPOCH TARGET-ASSIGNMENT-EPOCH #MEMBERS
    rows = group_rows(res, group, 8)
    assert len(rows) == 1, describe(res)
    _, coordinator, node, strategy, state, epoch, target_epoch, members = rows[0]
    assert node in [f"({n})" for n in broker_ids(tidegate)], describe(res)
    assert coordinator == tidegate.brokers[int(node[1:-1])], describe(res)
    return strategy, state, epoch, target_epoch, int(members)


@CLI_TIDEGATE
def test_consumer_groups_classic(tidegate):
    """kafka-consumer-groups --describe of a classic group that committed offsets and has no
    member now: CURRENT-OFFSET, LOG-END-OFFSET and LAG of each partition exactly; --describe
    --state: Empty, no members, the coordinator one of the brokers."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-classic")
    group = f"{topic}-group"
    create_topic(b, topic)
    produce_range(b, topic, PARTITIONS, 0, RECORDS, RECORD_BYTES)
    high = per_partition(RECORDS)
    committed = {0: 4, 1: high[1], 2: 0}
    c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()], asynchronous=False)
    finally:
        c.close()

    offsets, state = kafka_all(group_call(b, group), group_call(b, group, "--state", "--verbose"))
    assert group_offsets(offsets, group) == \
        {p: (str(o), str(high[p]), str(high[p] - o), "-", "-", "-") for p, o in committed.items()}, describe(offsets)
    assert f"Consumer group '{group}' has no active members." in offsets.stderr, describe(offsets)
    strategy, state_name, _, _, members = group_state(state, group, tidegate)
    assert (strategy, state_name, members) == ("-", "Empty", 0), describe(state)


@CLI_TIDEGATE
def test_consumer_groups_consumer_protocol(tidegate, tmp_path):
    """kafka-consumer-groups --describe of a KIP-848 group (the Java consumer with
    group.protocol=consumer; 4.x's tool reads it with ConsumerGroupDescribe) while its one
    member is active and has committed everything: each partition's row names the member, lag
    0; --members --verbose: the member, its 3 partitions, current assignment = target
    assignment at the same epoch; --state --verbose: Stable, one member, the uniform assignor."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-kip848")
    group = f"{topic}-group"
    create_topic(b, topic)
    produce_range(b, topic, PARTITIONS, 0, RECORDS, RECORD_BYTES)
    high = per_partition(RECORDS)

    g = Group(tmp_path, b, group, topic, PARTITIONS, RECORD_BYTES, ["group.protocol=consumer"])
    try:
        member = g.start("cli-member")
        g.wait_until(g.consumed(expected_records(PARTITIONS, 0, RECORDS)), 60, f"all {RECORDS} records consumed")
        g.wait_until(lambda: member.commits == high, 30, f"commits of {high}")
        with g.cond:
            ids = {m.group(1) for _, line in member.lines
                   for m in [re.match(r"ASSIGNED gen=\S+ member=(\S+) ", line)] if m}
        assert len(ids) == 1, g.describe()
        member_id = ids.pop()

        offsets, members, state = kafka_all(group_call(b, group), group_call(b, group, "--members", "--verbose"),
                                            group_call(b, group, "--state", "--verbose"))
        assert group_offsets(offsets, group) == \
            {p: (str(high[p]), str(high[p]), "0", member_id, "/127.0.0.1", "cli-member")
             for p in range(PARTITIONS)}, describe(offsets)

        # GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS CURRENT-EPOCH CURRENT-ASSIGNMENT TARGET-EPOCH
        # TARGET-ASSIGNMENT (the epochs and the target are "-" when the tool had to fall back to
        # DescribeGroups)
        rows = group_rows(members, group, 9)
        assignment = f"{topic}:" + ",".join(map(str, range(PARTITIONS)))
        assert len(rows) == 1, describe(members)
        _, consumer, host, client, count, epoch, current, target_epoch, target = rows[0]
        assert (consumer, host, client, count) == (member_id, "/127.0.0.1", "cli-member", str(PARTITIONS)), \
            describe(members)
        assert (current, target) == (assignment, assignment), describe(members)
        assert epoch.isdigit() and epoch == target_epoch, describe(members)

        strategy, state_name, epoch, target_epoch, count = group_state(state, group, tidegate)
        assert (strategy, state_name, count) == ("uniform", "Stable", 1), describe(state)
        assert epoch.isdigit() and epoch == target_epoch, describe(state)

        member.stop()
    finally:
        g.kill_all()


# ---- kafka-log-dirs -------------------------------------------------------------------------

def test_log_dirs(tidegate, backend):
    """kafka-log-dirs --describe --topic-list T: every broker answers with its log dirs, none in
    error, and each partition of T is listed exactly once, on the broker that leads it, with a
    size that is not negative (on the memory backend, positive: every partition holds records;
    SeaweedMQ's count only what its broker flushed to the filer)."""
    b = tidegate.bootstrap
    topic = unique_topic("cli-logdirs")
    create_topic(b, topic)
    produce_range(b, topic, PARTITIONS, 0, RECORDS, RECORD_BYTES)
    res = kafka(LOG_DIRS, "--bootstrap-server", b, "--describe", "--topic-list", topic)
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    nodes = ",".join(map(str, sorted(broker_ids(tidegate))))
    assert lines[:2] == ["Querying brokers for log directories information",
                         f"Received log directory information from brokers {nodes}"], describe(res)
    listing = json.loads(lines[2])
    assert listing["version"] == 1, describe(res)
    assert sorted(broker["broker"] for broker in listing["brokers"]) == sorted(broker_ids(tidegate)), describe(res)
    found = {}
    for broker in listing["brokers"]:
        assert broker["logDirs"], describe(res)
        for log_dir in broker["logDirs"]:
            assert log_dir["logDir"] and log_dir["error"] is None, describe(res)
            for replica in log_dir["partitions"]:
                name, _, partition = replica["partition"].rpartition("-")
                assert name == topic, describe(res)  # --topic-list filters the others out
                assert int(partition) not in found, describe(res)
                found[int(partition)] = broker["broker"]
                assert replica["size"] >= (0 if backend is not None else 1), describe(res)
                assert replica["offsetLag"] == 0 and replica["isFuture"] is False, describe(res)
    assert found == leaders(b, topic), describe(res)


# ---- kafka-metadata-quorum ------------------------------------------------------------------

def test_metadata_quorum(tidegate):
    """kafka-metadata-quorum describe --status and --replication: a quorum of one voter, the
    leader, which is one of the brokers."""
    b = tidegate.bootstrap
    status, replication = kafka_all((METADATA_QUORUM, "--bootstrap-server", b, "describe", "--status"),
                                     (METADATA_QUORUM, "--bootstrap-server", b, "describe", "--replication"))
    assert status.returncode == 0, describe(status)
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status.stdout, re.M))
    assert re.fullmatch(r"-?\d+", fields.get("LeaderId", "")), describe(status)
    leader = int(fields["LeaderId"])
    assert leader in broker_ids(tidegate), describe(status)
    assert [int(v) for v in re.findall(r'"id": (-?\d+)', fields["CurrentVoters"])] == [leader], describe(status)
    assert fields["ClusterId"], describe(status)
    assert int(fields["LeaderEpoch"]) >= 0 and int(fields["HighWatermark"]) >= 0, describe(status)
    assert (fields["MaxFollowerLag"], fields["MaxFollowerLagTimeMs"]) == ("0", "0"), describe(status)

    assert replication.returncode == 0, describe(replication)
    lines = replication.stdout.splitlines()
    assert lines[0].split() == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                "LastCaughtUpTimestamp", "Status"], describe(replication)
    rows = [line.split() for line in lines[1:] if line.strip()]
    assert all(len(r) == 7 for r in rows), describe(replication)
    voters = [r for r in rows if r[-1] != "Observer"]
    assert len(voters) == 1, describe(replication)
    node, _, end, lag, _, _, role = voters[0]
    assert (int(node), role, lag) == (leader, "Leader", "0"), describe(replication)
    assert int(end) >= 0, describe(replication)
