"""The SeaweedMQ broker restarted under a running tidegate: while it is down the clients see
retriable errors only (nothing fails for good), and once it is back they recover on their
own: what was produced before, during and after the outage is all read back, in order.

Records the broker acknowledged but had not flushed yet are lost when it stops, and a
partition whose data all sits in its first flushed file reads as empty after a reload (both
upstream, proto/README.md). So before the stop the test waits, by reading the filer, until
every partition's records sit in a flushed file the broker can reload.
"""


from confluent_kafka import Producer

from groups import restart_seaweedfs, seaweedfs_ports, wait_flushed
from harness import create_topic, read_from_start, start_tidegate, stop, unique_topic

PARTITIONS = 2
PER_PHASE = 500
PHASES = ("first", "before", "during", "after")


def test_clients_recover_from_a_broker_restart(seaweedfs, tmp_path):
    filer = seaweedfs_ports(seaweedfs)["FILER"]
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=seaweedfs)
    topic = unique_topic("broker-restart")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    acked, failed, client_errors = {}, [], []

    def delivered(error, message):
        if error is not None:
            failed.append(error)
        else:
            acked[(message.partition(), message.offset())] = message.value()

    producer = Producer({
        "bootstrap.servers": tidegate.bootstrap, "enable.idempotence": True, "linger.ms": 5,
        # Long enough to outlast the restart (SeaweedFS needs ~30 s to be ready again).
        "message.timeout.ms": 240_000,
        "error_cb": client_errors.append})

    def produce(phase):
        for i in range(PER_PHASE):
            producer.produce(topic, key=f"{phase}-{i}".encode(), value=f"{phase}-{i}".encode(),
                             partition=i % PARTITIONS, on_delivery=delivered)
            producer.poll(0)

    def produce_during_outage():
        produce("during")  # queued and retried by the client while the broker is away
        producer.poll(1)

    try:
        # Two flush windows: the broker can only reload data past its first flushed file.
        produce("first")
        assert producer.flush(60) == 0, "first records not acknowledged"
        wait_flushed(filer, topic, PARTITIONS, None)
        produce("before")
        assert producer.flush(60) == 0, "records before the restart not acknowledged"
        wait_flushed(filer, topic, PARTITIONS, 2 * PER_PHASE // PARTITIONS - 1)

        restart_seaweedfs(seaweedfs, between=produce_during_outage)
        assert producer.flush(240) == 0, "records sent during the outage never acknowledged"
        produce("after")
        assert producer.flush(60) == 0, "records after the restart not acknowledged"
        assert not failed, f"{len(failed)} records failed for good, first: {failed[0]}"
        fatal = [e for e in client_errors if e.fatal()]
        assert not fatal, f"fatal client errors: {fatal}"

        messages = read_from_start(tidegate.bootstrap, topic, PARTITIONS, len(acked), retriable_ok=True)
        stored = {(m.partition(), m.offset()): m.value() for m in messages}
    finally:
        stop(tidegate.proc)

    for position, value in acked.items():
        assert stored.get(position) == value, \
            f"acknowledged {value!r} at {position}, read back {stored.get(position)!r}"
    expected = {f"{phase}-{i}".encode() for phase in PHASES for i in range(PER_PHASE)}
    assert set(stored.values()) == expected
    for partition in range(PARTITIONS):
        phases = [v.split(b"-")[0].decode() for (p, _), v in sorted(stored.items()) if p == partition]
        assert phases == sorted(phases, key=PHASES.index), f"partition {partition} out of order"
