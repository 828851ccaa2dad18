"""tidegate restarted in the middle of a produce run on SeaweedMQ: every record the producer
sent is read back, and every acknowledged (partition, offset) holds the record it was
acknowledged for, so no offset was used twice."""

import os
import signal
import threading
from collections import Counter

import pytest
from confluent_kafka import Producer

from groups import produce_steadily, seaweedfs_ports, wait_flushed
from harness import create_topic, free_port_pair, read_from_start, start_tidegate, stop, unique_topic

PARTITIONS = 4
RECORDS = 20_000
LEAD_IN = 400


# When tidegate's publish streams close, the broker unloads the partitions; on reload it
# cannot find the first flushed file of a partition (a file whose first offset is 0 gets no
# offset attributes, weed/mq/broker/broker_write.go:63), so FetchMessage from 0 answers from
# a later offset (seen: offset 1252 for a fetch at 0; proto/README.md, "Partition
# unloading"). tidegate then reads those records from the partition's files in the filer
# (src/backend/smq/log_files.rs): the first case meets the bug, the second lets SMQ flush a
# first file before the run, so the bug cannot hide anything.
@pytest.mark.parametrize("lead_in", [
    pytest.param(False, id="first-flush-window"),
    pytest.param(True, id="after-a-first-flush"),
])
def test_restart_mid_produce_loses_nothing(seaweedfs, tmp_path, lead_in):
    bootstrap_port, broker_port = free_port_pair()
    def start(n):
        return start_tidegate(tmp_path / f"tidegate-{n}.log", shards=1, smq=seaweedfs,
                              port=bootstrap_port, broker_port_base=broker_port)

    tidegate = start(1)
    topic = unique_topic("restart")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    acked, failed = {}, []
    quarter_acked = threading.Event()

    already = 0

    def delivered(error, message):
        if error is not None:
            failed.append(error)
        else:
            acked[(message.partition(), message.offset())] = message.value()
            if len(acked) >= RECORDS // 4 + already:
                quarter_acked.set()

    producer = Producer({"bootstrap.servers": tidegate.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})

    def produce_all():
        produce_steadily(producer, topic, RECORDS, PARTITIONS, delivered, pause=0.02, flush_timeout=120)

    if lead_in:
        for i in range(LEAD_IN):
            producer.produce(topic, value=f"lead-{i}".encode(), partition=i % PARTITIONS,
                             on_delivery=delivered)
        assert producer.flush(60) == 0, "lead-in not acknowledged"
        wait_flushed(seaweedfs_ports(seaweedfs)["FILER"], topic, PARTITIONS, None)
        already = len(acked)

    writer = threading.Thread(target=produce_all)
    writer.start()
    assert quarter_acked.wait(60), "producer made no progress before the restart"
    os.kill(tidegate.proc.pid, signal.SIGKILL)
    tidegate.proc.wait()
    tidegate = start(2)
    writer.join(180)
    assert not writer.is_alive(), "producer still running"
    assert not failed, f"{len(failed)} records failed, first: {failed[0]}"

    # Offsets grow, but may skip: when a publish reaches a partition SMQ is still unloading
    # (the old streams just closed), SMQ burns the offset and refuses the record, which the
    # producer then retries (seen: one offset skipped at the restart). Kafka consumers accept
    # gaps; what must hold is that nothing acknowledged is lost and no offset holds two records.
    stored, next_offset = {}, {p: 0 for p in range(PARTITIONS)}
    try:
        # 20,000 records read back in seconds; a short deadline keeps the xfail case (which
        # never finds them all) from waiting out the default two minutes.
        messages = read_from_start(tidegate.bootstrap, topic, PARTITIONS, len(acked), timeout=30)
    finally:
        stop(tidegate.proc)
    for message in messages:
        assert message.offset() >= next_offset[message.partition()], "offsets increase"
        next_offset[message.partition()] = message.offset() + 1
        stored[(message.partition(), message.offset())] = message.value()
    for position, value in acked.items():
        assert stored.get(position) == value, f"acknowledged {value!r} at {position}, found {stored.get(position)!r}"
    values = Counter(stored.values())
    twice = [v for v, n in values.items() if n > 1]
    assert not twice, f"{len(twice)} records stored twice, first {twice[:5]}"
    missing = [i for i in range(RECORDS) if f"record-{i}".encode() not in values]
    assert not missing, f"{len(missing)} records lost, first {missing[:5]}"
