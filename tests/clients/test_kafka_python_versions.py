"""kafka-python generations: 2.0.2 (the long-lived 2020 release) produces and consumes like
2.3.x and 3.x do in test_kafka_python.py; all three run a consumer group with commits and
their admin calls (kafka_python_group.py)."""

from pathlib import Path

import pytest

from harness import describe, python_of, run, unique_topic

ROUNDTRIP = Path(__file__).with_name("kafka_python_roundtrip.py")
GROUP = Path(__file__).with_name("kafka_python_group.py")
GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


def test_kafka_python_20_roundtrip(tidegate):
    """kafka_python_roundtrip.py under kafka-python 2.0.2: keys, binary values, headers and
    timestamps back byte for byte, in order, at the offsets they were acknowledged at."""
    topic = unique_topic("kp20")
    res = run([str(python_of("venv-kp20")), str(ROUNDTRIP), tidegate.bootstrap, topic, "300"], timeout=180)
    assert res.returncode == 0, describe(res)
    assert "OK 300" in res.stdout.splitlines(), describe(res)


# kafka-python 2.1-2.3 asks for authorized operations (Metadata v8, DescribeGroups v3+) and
# decodes the answer as a bit set of ACL operations: the "not provided" value used to fail it
# ('31 is not a valid ACLOperation').


@GROUP_TIDEGATE
@pytest.mark.parametrize("venv", ["venv-kp20", "venv-kp2", "venv-kp3"])
def test_kafka_python_group_and_admin(tidegate, backend, venv):
    topic = unique_topic(f"kpg-{venv}")
    res = run([str(python_of(venv)), str(GROUP), tidegate.bootstrap, topic, f"{topic}-group", "200"], timeout=180)
    assert res.returncode == 0, describe(res)
    assert "OK 200" in res.stdout.splitlines(), describe(res)
