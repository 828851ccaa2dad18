"""Interop with SeaweedFS's own Kafka gateway on the same SeaweedMQ: a topic produced
through one gateway is read through the other, same names, same partitions, same offsets."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition

from harness import create_topic, start_go_gateway, start_tidegate, stop, unique_topic

PARTITIONS = 3
RECORDS = 60


def produce(bootstrap, topic):
    producer = Producer({"bootstrap.servers": bootstrap})
    sent = {p: [] for p in range(PARTITIONS)}
    for i in range(RECORDS):
        key, value = f"key-{i}".encode(), f"value-{i}".encode()
        producer.produce(topic, key=key, value=value, partition=i % PARTITIONS)
        sent[i % PARTITIONS].append((key, value))
    assert producer.flush(30) == 0, "records left unsent"
    return sent


def consume(bootstrap, topic):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got = {p: [] for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    try:
        while sum(map(len, got.values())) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            assert message.error() is None, message.error()
            assert message.offset() == len(got[message.partition()]), "offsets contiguous from 0"
            got[message.partition()].append((message.key(), message.value()))
    finally:
        consumer.close()
    return got


def test_each_gateway_reads_what_the_other_wrote(seaweedfs, tmp_path):
    tidegate = start_tidegate(tmp_path / "tidegate.log", smq=seaweedfs)
    go_gateway, go_bootstrap = start_go_gateway(seaweedfs.master, tmp_path / "go-gateway.log")
    try:
        for writer, reader in [(tidegate.bootstrap, go_bootstrap), (go_bootstrap, tidegate.bootstrap)]:
            topic = unique_topic("interop")
            create_topic(writer, topic, PARTITIONS)
            sent = produce(writer, topic)
            assert consume(reader, topic) == sent, f"written through {writer}, read through {reader}"
    finally:
        stop(go_gateway)
        stop(tidegate.proc)
