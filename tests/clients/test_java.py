"""The official Java client (kafka-clients / kafka-tools 4.x) against tidegate."""

import re

import pytest

from harness import create_topic, describe, java_classpath, run, unique_topic

# ProducerPerformance's closing summary; the periodic progress lines lack the percentiles.
PERF_SUMMARY = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), .* 99\.9th\.$")


def test_java_roundtrip(tidegate):
    records = 100_000
    topic = unique_topic("java-roundtrip")
    res = run(["java", "-cp", java_classpath(), "dev.tidegate.tests.RoundTrip",
               tidegate.bootstrap, topic, "8", str(records), "1000"], timeout=600)
    assert res.returncode == 0, describe(res)
    assert f"OK {records}" in res.stdout.splitlines(), describe(res)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_java_roundtrip_compressed(tidegate, codec):
    # The Java client frames snappy the xerial way; batches must come back as sent.
    records = 20_000
    topic = unique_topic(f"java-{codec}")
    res = run(["java", "-cp", java_classpath(), "dev.tidegate.tests.RoundTrip",
               tidegate.bootstrap, topic, "4", str(records), "500",
               f"compression.type={codec}"], timeout=600)
    assert res.returncode == 0, describe(res)
    assert f"OK {records}" in res.stdout.splitlines(), describe(res)


def test_producer_perf(tidegate):
    records = 200_000
    topic = unique_topic("java-perf")
    # Created up front so the run is about producing, not about auto-creation warnings.
    create_topic(tidegate.bootstrap, topic, 8)
    # --bootstrap-server, not --producer-props: 4.x prints a deprecation notice for the latter.
    res = run(["java", "-cp", java_classpath(), "org.apache.kafka.tools.ProducerPerformance",
               "--topic", topic, "--num-records", str(records), "--record-size", "1000",
               "--throughput", "-1", "--bootstrap-server", tidegate.bootstrap], timeout=600)
    assert res.returncode == 0, describe(res)
    # Send failures don't change the exit status: they are stack traces on stderr and are
    # left out of the count. Any WARN/ERROR from the client counts as a failure too.
    assert res.stderr.strip() == "", describe(res)
    summaries = [m for m in map(PERF_SUMMARY.match, res.stdout.splitlines()) if m]
    assert summaries, "no summary line\n" + describe(res)
    assert int(summaries[-1].group(1)) == records, describe(res)
    print(summaries[-1].group(0))
