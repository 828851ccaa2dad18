"""A SeaweedFS with two MQ brokers: a topic's partitions are led by both, and tidegate sends
every publish and fetch to the partition's own leader (a broker that does not lead a
partition answers "partition not found"), so every record comes back, in order, from
partitions on either broker.

Nothing is restarted here: at the pinned SeaweedFS a partition led by the second broker
cannot be reloaded once unloaded (proto/README.md, upstream). The SeaweedFS is the test's
own, so its second broker does not outlive the test in the session's cluster.
"""

import base64
import json
import os
import socket
import subprocess
import urllib.request

import pytest
from confluent_kafka import Producer

from harness import (REPO, create_topic, describe, read_from_start, start_seaweedfs, start_tidegate, stop,
                     stop_seaweedfs, unique_topic)

# With partitions placed at random, all of 16 on one broker happens once in 32,768 topics.
PARTITIONS = 16
PER_PARTITION = 50


@pytest.fixture
def two_brokers(tmp_path):
    directory = tmp_path / "seaweedfs"
    seaweedfs = start_seaweedfs(directory, port_offset=int(os.environ.get("SEAWEEDFS_PORT_OFFSET", "400")) + 70)
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        res = subprocess.run([str(REPO / "scripts" / "seaweedfs"), "start-broker", str(directory), str(port)],
                             capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            pytest.fail(f"second broker did not start\n{describe(res)}", pytrace=False)
        yield seaweedfs, f"127.0.0.1:{port}"
    finally:
        stop_seaweedfs(directory)


def leaders(filer, topic):
    """Each SMQ partition's leader broker, from the topic's configuration in the filer."""
    url = f"http://{filer}/topics/kafka/{topic}/topic.conf"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    try:
        conf = json.loads(body)
    except ValueError:
        conf = json.loads(base64.b64decode(body))
    assignments = sorted(conf["brokerPartitionAssignments"], key=lambda a: a["partition"].get("rangeStart", 0))
    return [a["leaderBroker"] for a in assignments]


def test_partitions_led_by_both_brokers_are_served(two_brokers, tmp_path):
    seaweedfs, second = two_brokers
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=seaweedfs)
    try:
        topic = unique_topic("two-brokers")
        create_topic(tidegate.bootstrap, topic, PARTITIONS)
        led = leaders(seaweedfs.filer, topic)
        assert len(led) == PARTITIONS
        assert set(led) == {seaweedfs.broker, second}, f"partition leaders: {led}"

        acked, failed = {}, []

        def delivered(error, message):
            if error is not None:
                failed.append(error)
            else:
                acked[(message.partition(), message.offset())] = message.value()

        producer = Producer({"bootstrap.servers": tidegate.bootstrap, "enable.idempotence": True,
                             "linger.ms": 5})
        for i in range(PARTITIONS * PER_PARTITION):
            producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                             partition=i % PARTITIONS, headers=[("n", str(i).encode())],
                             on_delivery=delivered)
            producer.poll(0)
        assert producer.flush(60) == 0 and not failed, f"failed: {failed[:3]}"

        messages = read_from_start(tidegate.bootstrap, topic, PARTITIONS, len(acked), timeout=60)
        read = {(m.partition(), m.offset()): (m.key(), m.value(), m.headers()) for m in messages}
    finally:
        stop(tidegate.proc)

    assert len(read) == PARTITIONS * PER_PARTITION
    for (partition, offset), value in acked.items():
        i = int(value[1:])
        assert i % PARTITIONS == partition and offset == i // PARTITIONS, "offsets in send order"
        assert read[(partition, offset)] == (f"k{i}".encode(), value, [("n", str(i).encode())])
