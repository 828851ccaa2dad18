"""kafka-python 2.x and 3.x (pure Python, its own protocol code) against tidegate."""

from pathlib import Path

import pytest

from harness import describe, python_of, run, unique_topic

SCRIPT = Path(__file__).with_name("kafka_python_roundtrip.py")


@pytest.mark.parametrize("venv", ["venv-kp2", "venv-kp3"])
def test_kafka_python_roundtrip(tidegate, venv):
    topic = unique_topic(f"kp-{venv}")
    res = run([str(python_of(venv)), str(SCRIPT), tidegate.bootstrap, topic, "1000"], timeout=180)
    assert res.returncode == 0, describe(res)
    assert "OK 1000" in res.stdout.splitlines(), describe(res)
