"""Metadata as seen through every listener: the bootstrap port and each shard's broker port.

Real clients move on to whichever broker they learn about first, so they cannot be made to
ask one particular port. The per-port checks therefore send a Metadata request by hand on a
socket of their own; librdkafka's view through the bootstrap port is checked as well.
"""

import socket
import struct

import pytest
from confluent_kafka.admin import AdminClient

from harness import create_topic, unique_topic

PARTITIONS = 4
API_METADATA, API_VERSIONS = 3, 18


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return value

    def string(self):
        n = self.take("h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        return [item() for _ in range(self.take("i"))]


def call(addr, api_key, version, body):
    """One request/response on a fresh connection (request header v1, response header v0)."""
    host, port = addr.rsplit(":", 1)
    client_id = b"tidegate-metadata-test"
    req = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id + body
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        f = s.makefile("rb")
        size = struct.unpack(">i", f.read(4))[0]
        r = Reader(f.read(size))
    assert r.take("i") == 1, "correlation id"
    return r


def metadata_version(addr):
    """Highest Metadata version <= 8 the server offers: v9+ are flexible (compact) encodings."""
    r = call(addr, API_VERSIONS, 0, b"")
    assert r.take("h") == 0, "ApiVersions error"
    ranges = {k: (lo, hi) for k, lo, hi in r.array(lambda: (r.take("h"), r.take("h"), r.take("h")))}
    lo, hi = ranges[API_METADATA]
    version = min(hi, 8)
    assert version >= max(lo, 1), f"no Metadata version in 1..8 offered ({lo}..{hi})"
    return version


def raw_metadata(addr, topic):
    """Metadata v1..v8 for one topic, straight from `addr`: (brokers {id: addr}, partitions {id: (error, leader)})."""
    v = metadata_version(addr)
    name = topic.encode()
    body = struct.pack(">ih", 1, len(name)) + name
    if v >= 4:
        body += b"\x00"  # allow_auto_topic_creation = false
    if v >= 8:
        body += b"\x00\x00"  # include cluster/topic authorized operations = false
    r = call(addr, API_METADATA, v, body)
    if v >= 3:
        r.take("i")  # throttle_time_ms

    def broker():
        node_id, host, port = r.take("i"), r.string(), r.take("i")
        r.string()  # rack
        return node_id, f"{host}:{port}"

    brokers = dict(r.array(broker))
    if v >= 2:
        r.string()  # cluster_id
    r.take("i")  # controller_id

    def partition():
        error, index, leader = r.take("h"), r.take("i"), r.take("i")
        if v >= 7:
            r.take("i")  # leader_epoch
        r.array(lambda: r.take("i"))  # replicas
        r.array(lambda: r.take("i"))  # isr
        if v >= 5:
            r.array(lambda: r.take("i"))  # offline replicas
        return index, (error, leader)

    def topic_entry():
        error, name = r.take("h"), r.string()
        r.take("?")  # is_internal
        parts = dict(r.array(partition))
        if v >= 8:
            r.take("i")  # topic authorized operations
        return name, (error, parts)

    topics = dict(r.array(topic_entry))
    error, parts = topics[topic]
    assert error == 0, f"via {addr} (Metadata v{v}): topic error {error}"
    return brokers, parts


@pytest.mark.parametrize("tidegate", [1, 2], indirect=True, ids=["shards1", "shards2"])
def test_metadata_lists_one_broker_per_shard(tidegate):
    topic = unique_topic("meta")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    want_brokers = dict(enumerate(tidegate.brokers))  # node id i <-> i-th address of the ready line

    for addr in [tidegate.bootstrap, *tidegate.brokers]:
        brokers, parts = raw_metadata(addr, topic)
        assert brokers == want_brokers, f"via {addr}"
        assert sorted(parts) == list(range(PARTITIONS)), f"via {addr}"
        for index, (error, leader) in parts.items():
            assert error == 0, f"via {addr}: partition {index} error {error}"
            assert leader in want_brokers, f"via {addr}: partition {index} leader {leader}"

    # The same through a real client, at whatever Metadata version librdkafka picks.
    md = AdminClient({"bootstrap.servers": tidegate.bootstrap}).list_topics(timeout=10)
    assert {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()} == want_brokers
    t = md.topics[topic]
    assert t.error is None and sorted(t.partitions) == list(range(PARTITIONS))
    assert all(p.error is None and p.leader in want_brokers for p in t.partitions.values())
