"""Go clients: franz-go (negotiates the newest versions tidegate advertises) and IBM/sarama
(fixed request versions from its Config.Version: its default, 2.8.0, and 3.9.0), through
.cache/bin/go-clients (tools/cmd/go-clients, built by scripts/deps go). Each run: admin calls,
idempotent produce, consume from the start, a group that commits and resumes; see main.go."""

import pytest

from harness import REPO, describe, run, unique_topic

GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


@GROUP_TIDEGATE
@pytest.mark.parametrize("client", [["-client", "franz"], ["-client", "sarama"],
                                    ["-client", "sarama", "-sarama-version", "3.9.0"]],
                         ids=["franz-go", "sarama", "sarama-3.9"])
def test_go_client(tidegate, backend, client):
    binary = REPO / ".cache" / "bin" / "go-clients"
    if not binary.exists():
        pytest.fail(f"{binary} missing: run `scripts/deps go`", pytrace=False)
    topic = unique_topic("go-" + "-".join(client[1::2]).replace(".", ""))
    res = run([str(binary), *client, tidegate.bootstrap, topic, f"{topic}-group", "200", "2"], timeout=180)
    assert res.returncode == 0, describe(res)
    assert "OK 200" in res.stdout.splitlines(), describe(res)
