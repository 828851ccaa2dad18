"""A consumer-group benchmark on librdkafka (confluent-kafka), for gateways the Java 4.x
client cannot talk to (SeaweedFS's Go gateway answers its ApiVersions request with bytes the
Java client cannot parse). It joins GROUP, consumes RECORDS records of TOPIC from the
group's committed offsets (earliest without any), auto-committing as
kafka-consumer-perf-test does, and prints kafka-consumer-perf-test's header and result line:

  start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec

rebalance.time.ms is subscribe to first assignment (FindCoordinator, JoinGroup, SyncGroup,
OffsetFetch); fetch.* cover first assignment to the last record.

usage: rdkafka_consumer_perf.py BOOTSTRAP TOPIC RECORDS GROUP [IDLE_TIMEOUT_S]
Exit status 0 when RECORDS records were consumed, 1 when it went idle first.
"""

import sys
import time
from datetime import datetime

from confluent_kafka import Consumer


def stamp(t):
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S:%f")[:-3]


def main():
    bootstrap, topic, records, group = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    idle_timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 15.0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": True, "client.id": "rdkafka-consumer-perf"})
    assigned_at = []
    consumer.subscribe([topic], on_assign=lambda _c, tps: assigned_at.append(time.time()) if tps else None)
    start = time.time()
    count = size = 0
    last_progress = time.monotonic()
    try:
        while count < records:
            msgs = consumer.consume(num_messages=min(10_000, records - count), timeout=0.5)
            if not msgs:
                if time.monotonic() - last_progress > idle_timeout:
                    print(f"no records for {idle_timeout:.0f}s after {count} of {records}", file=sys.stderr)
                    break
                continue
            last_progress = time.monotonic()
            for m in msgs:
                if m.error() is not None:
                    print(f"consume error: {m.error()}", file=sys.stderr)
                    continue
                count += 1
                size += len(m.value() or b"") + len(m.key() or b"")
    finally:
        end = time.time()
        consumer.close()
    mb = size / 2**20
    total_s = max(end - start, 1e-9)
    joined = assigned_at[0] if assigned_at else end
    fetch_s = max(end - joined, 1e-9)
    print("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
          "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    print(f"{stamp(start)}, {stamp(end)}, {mb:.4f}, {mb / total_s:.4f}, {count}, {count / total_s:.4f}, "
          f"{(joined - start) * 1000:.0f}, {fetch_s * 1000:.0f}, {mb / fetch_s:.4f}, {count / fetch_s:.4f}")
    return 0 if count >= records else 1


if __name__ == "__main__":
    sys.exit(main())
