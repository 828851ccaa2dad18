"""tidegate's /metrics as a real Prometheus (Debian's `prometheus`, installed by
`scripts/deps system`) scrapes and queries it: a produce and a consumer group through
confluent-kafka, then PromQL over Prometheus's HTTP API, as a dashboard or an alert asks
(scripts/grafana-dashboard.json's own queries too).

Prometheus scrapes every second on loopback, on a port of its own, with its storage in the
test's temporary directory, and is stopped when the test ends."""

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer

from harness import REPO, _die_with_parent, create_topic, log_tail, start_tidegate, stop, unique_topic

PARTITIONS = 2
RECORDS = 200
VALUE = b"v" * 1000
DEADLINE_S = 60


def prometheus_binary():
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: run `scripts/deps system` (Debian's prometheus package)",
                    pytrace=False)
    return binary


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


class Prometheus:
    def __init__(self, binary, directory, target):
        config = directory / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: tidegate\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.address = f"127.0.0.1:{free_port()}"
        self.log_path = directory / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                 f"--web.listen-address={self.address}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)

    def wait_ready(self):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited\n{log_tail(self.log_path)}"
            try:
                if get(f"http://{self.address}/-/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"prometheus not ready within {DEADLINE_S}s\n{log_tail(self.log_path)}", pytrace=False)

    def query(self, promql):
        """The instant vector's samples: [(labels, value)]."""
        url = f"http://{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", body
        return [(s["metric"], float(s["value"][1])) for s in answer["data"]["result"]]

    def wait_for(self, promql, holds, what):
        """Asks `promql` every 0.5 s until `holds(samples)`, failing after DEADLINE_S with the
        last answer."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            samples = self.query(promql)
            if holds(samples):
                return samples
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: `{promql}` answered {samples} for {DEADLINE_S}s", pytrace=False)
            time.sleep(0.5)


def dashboard_queries():
    dashboard = json.loads((REPO / "scripts" / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def consume(consumer, count):
    """Polls until `count` records arrived, then commits their offsets synchronously."""
    received = 0
    deadline = time.monotonic() + DEADLINE_S
    while received < count:
        assert time.monotonic() < deadline, f"consumed {received} of {count}"
        message = consumer.poll(1)
        if message is None:
            continue
        assert message.error() is None, message.error()
        received += 1
    consumer.commit(asynchronous=False)


def produce(bootstrap, topic, count):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=VALUE, partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def test_prometheus_scrapes_request_rates_bytes_and_group_lag(tmp_path, backend):
    binary = prometheus_binary()
    tidegate = start_tidegate(tmp_path / "tidegate.log", shards=2, smq=backend,
                              extra_args=["--metrics-addr", "127.0.0.1:0",
                                          "--group-initial-rebalance-delay-ms", "0"])
    prometheus = Prometheus(binary, tmp_path, tidegate.metrics)
    consumer = None
    try:
        prometheus.wait_ready()
        prometheus.wait_for('up{job="tidegate"}', lambda s: s and s[0][1] == 1.0, "tidegate scraped")

        topic, group = unique_topic("prom"), unique_topic("prom-group")
        create_topic(tidegate.bootstrap, topic, PARTITIONS)
        # A series is exported from its first request on, and rate() counts no increase
        # into a series' first sample: the load comes once Prometheus holds the series.
        produce(tidegate.bootstrap, topic, PARTITIONS)
        prometheus.wait_for('sum(tidegate_api_requests_total{api="Produce"})',
                            lambda s: s and s[0][1] > 0, "the Produce series")
        produce(tidegate.bootstrap, topic, RECORDS - PARTITIONS)
        consumer = Consumer({"bootstrap.servers": tidegate.bootstrap, "group.id": group,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        consume(consumer, RECORDS)

        for api in ("Produce", "Fetch"):
            prometheus.wait_for(f'sum(rate(tidegate_api_requests_total{{api="{api}"}}[1m]))',
                                lambda s: s and s[0][1] > 0, f"a {api} rate")
        # Every record went in once and out once, with its framing: at least that many bytes,
        # and a rate of them.
        record_bytes = RECORDS * len(VALUE)
        for direction in ("received", "sent"):
            prometheus.wait_for(f"sum(tidegate_{direction}_bytes_total)",
                                lambda s: s and s[0][1] > record_bytes, f"bytes {direction}")
            prometheus.wait_for(f"sum(rate(tidegate_{direction}_bytes_total[1m]))",
                                lambda s: s and s[0][1] > 0, f"a rate of bytes {direction}")
        prometheus.wait_for(f'sum(tidegate_topic_produced_records_total{{topic="{topic}"}})',
                            lambda s: s and s[0][1] == RECORDS, "records produced to the topic")
        prometheus.wait_for(f'sum(tidegate_group_members{{group="{group}"}})',
                            lambda s: s and s[0][1] == 1, "the group's one member")

        # Caught up: every partition's lag 0. Then records nobody read yet are lag, and
        # reading and committing them brings it back to 0.
        lag = f'tidegate_consumer_group_lag{{group="{group}",topic="{topic}"}}'
        caught_up = lambda s: len(s) == PARTITIONS and all(v == 0 for _, v in s)  # noqa: E731
        prometheus.wait_for(lag, caught_up, "lag once caught up")
        produce(tidegate.bootstrap, topic, 10)
        prometheus.wait_for(f"sum({lag})", lambda s: s and s[0][1] == 10, "lag of 10 unread records")
        consume(consumer, 10)
        prometheus.wait_for(lag, caught_up, "lag once caught up again")

        # Every query of the Grafana dashboard is PromQL this Prometheus accepts, and the
        # request-rate panel shows data.
        for expr in dashboard_queries():
            expr = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
            samples = prometheus.query(expr)
            if "tidegate_api_requests_total" in expr:
                assert samples, expr
    finally:
        if consumer is not None:
            consumer.close()
        stop(prometheus.proc)
        status = stop(tidegate.proc)
    assert prometheus.proc.poll() is not None
    assert status == 0, log_tail(tidegate.log_path)
