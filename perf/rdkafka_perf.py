"""A producer benchmark on librdkafka (confluent-kafka), for gateways the Java 4.x client
cannot talk to (SeaweedFS's Go gateway answers its ApiVersions request with bytes the Java
client cannot parse). Same output line as kafka-producer-perf-test:

  N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
  P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.

usage: rdkafka_perf.py BOOTSTRAP TOPIC RECORDS RECORD_SIZE ACKS
"""

import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, records, size, acks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000})
    payload = b"x" * size
    latencies, failures = [], []

    def delivered(error, _message, sent_at):
        if error is not None:
            failures.append(error)
        else:
            latencies.append(time.monotonic() - sent_at)

    start = time.monotonic()
    for _ in range(records):
        sent_at = time.monotonic()
        while True:
            try:
                producer.produce(topic, payload, on_delivery=lambda e, m, t=sent_at: delivered(e, m, t))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(300)
    elapsed = time.monotonic() - start
    if failures:
        print(f"{len(failures)} records failed, first: {failures[0]}", file=sys.stderr)
    latencies.sort()
    ms = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    sent = len(latencies)
    print(f"{sent} records sent, {sent / elapsed:.1f} records/sec ({sent * size / elapsed / 2**20:.2f} MB/sec), "
          f"{sum(latencies) / max(sent, 1) * 1000:.2f} ms avg latency, {ms(1.0):.2f} ms max latency, "
          f"{ms(0.5):.0f} ms 50th, {ms(0.95):.0f} ms 95th, {ms(0.99):.0f} ms 99th, {ms(0.999):.0f} ms 99.9th.")
    return 0 if sent == records else 1


if __name__ == "__main__":
    sys.exit(main())
