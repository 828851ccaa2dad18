"""kafkajs (Node.js, its own protocol code) against tidegate: admin calls, idempotent produce,
consume from the start, a group that commits and resumes (node/kafkajs_roundtrip.js)."""

import os
import shutil
from pathlib import Path

import pytest

from harness import REPO, describe, run, unique_topic

SCRIPT = Path(__file__).parent / "node" / "kafkajs_roundtrip.js"
GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


@GROUP_TIDEGATE
def test_kafkajs(tidegate, backend):
    modules = REPO / ".cache" / "node" / "node_modules"
    if not (modules / "kafkajs").is_dir() or shutil.which("node") is None:
        pytest.fail(f"{modules}/kafkajs or node missing: run `scripts/deps node`", pytrace=False)
    topic = unique_topic("kafkajs")
    res = run(["node", str(SCRIPT), tidegate.bootstrap, topic, f"{topic}-group", "200", "2"], timeout=180,
              env=dict(os.environ, NODE_PATH=str(modules)))
    assert res.returncode == 0, describe(res)
    assert "OK 200" in res.stdout.splitlines(), describe(res)
