"""README.md's Security example, pasted as a user would: its three shell blocks run in order
(certificates and tidegate; users and ACLs with kafka-configs.sh and kafka-acls.sh as the
administrator; kcat producing and the console consumer reading as alice), and the console
consumer prints the record kcat produced. Then alice is refused what the README says she is
refused: reading `payments` (TOPIC_AUTHORIZATION_FAILED) and joining another group
(GROUP_AUTHORIZATION_FAILED).

What changes from the pasted text: the commands are found on PATH (`tidegate` is the built
binary, `kafka-*.sh` run Kafka's tools from tests/java's classpath by their main classes,
kcat is Debian's), the ports are free ones instead of 9092 and 9192 (so this runs in
parallel with other tests), the directory is the test's own instead of /tmp/tg-tls, and the
console consumer stops after the one record (--max-messages, --timeout-ms). Memory backend.
"""

import os
import re
import selectors
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from groups import JAVA
from harness import (READY_RE, READY_TIMEOUT_S, REPO, describe, free_port_runs, java_classpath, log_tail, run,
                     tidegate_bin)

TOOLS = {
    "kafka-configs.sh": "org.apache.kafka.tools.ConfigCommand",
    "kafka-acls.sh": "org.apache.kafka.tools.AclCommand",
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
}
CONSUMER_BOUND = "--from-beginning --max-messages 1 --timeout-ms 30000"


def security_blocks():
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Security\n(.*?)^## ", readme, re.S | re.M)
    assert section, "README.md has no Security section"
    blocks = re.findall(r"```sh\n(.*?)```", section.group(1), re.S)
    assert len(blocks) == 3, f"README.md's Security section has {len(blocks)} shell blocks; this test runs 3"
    return blocks


def commands_on_path(directory):
    """`tidegate` and the `kafka-*.sh` the README runs, as scripts in `directory`."""
    directory.mkdir()
    wrappers = {"tidegate": [str(tidegate_bin())]}
    wrappers.update({name: JAVA + ["-cp", java_classpath(), main] for name, main in TOOLS.items()})
    for name, command in wrappers.items():
        path = directory / name
        path.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
        path.chmod(0o755)
    return dict(os.environ, PATH=f"{directory}:{os.environ['PATH']}", NO_COLOR="1")


def start(block, env, log_path):
    """The first block, certificates then tidegate in the foreground: its process group, once
    tidegate printed its ready line."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(["bash", "-e", "-c", block], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=log, env=env, start_new_session=True)
    log.close()
    deadline, out = time.monotonic() + READY_TIMEOUT_S + 60, b""  # openssl first
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not any(READY_RE.match(line) for line in out.decode(errors="replace").splitlines()):
            left = deadline - time.monotonic()
            chunk = os.read(proc.stdout.fileno(), 4096) if left > 0 and sel.select(left) else b""
            if not chunk:
                stop(proc)
                pytest.fail(f"no ready line from the README's first block (stdout: {out!r})\n"
                            f"{log_tail(log_path)}", pytrace=False)
            out += chunk
    return proc


def stop(proc):
    """SIGTERM to the block's shell and tidegate (its process group); SIGKILL to what is left
    of it after 10 s."""
    deadline = time.monotonic() + 10
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        while time.monotonic() < deadline:
            os.killpg(proc.pid, 0)  # ProcessLookupError once tidegate is gone too
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def test_readme_security_example_runs_as_pasted(tmp_path, request):
    certificates, admin, alice = security_blocks()
    shards = os.cpu_count()  # tidegate's default: a shard per CPU
    # Each listener: its bootstrap port and one per shard (PORT + 1 + shard).
    admin_port, clients_port = free_port_runs(shards + 1, shards + 1, host="0.0.0.0")
    work = tmp_path / "tg-tls"

    def adapt(block):
        block = block.replace("/tmp/tg-tls", str(work))
        return re.sub(r"\b9192\b", str(clients_port), re.sub(r"\b9092\b", str(admin_port), block))
    certificates, admin, alice = map(adapt, (certificates, admin, alice))
    assert alice.count("--from-beginning") == 1, alice
    alice = alice.replace("--from-beginning", CONSUMER_BOUND)
    env = commands_on_path(tmp_path / "bin")

    log_path = tmp_path / "tidegate.log"
    request.node.tidegate_log = log_path
    server = start(certificates, env, log_path)
    try:
        # "In another shell in /tmp/tg-tls":
        def shell(block, timeout=180):
            return run(["bash", "-e", "-c", block], timeout=timeout, cwd=work, env=env)

        res = shell(admin)
        assert res.returncode == 0, describe(res)
        res = shell(alice)
        assert res.returncode == 0, describe(res)
        # The record's value (Kafka 4.4's console consumer also prints on stdout that
        # --consumer.config is deprecated; 4.0 has no --command-config yet).
        assert [line for line in res.stdout.splitlines() if "deprecated" not in line] == ["hello"], describe(res)

        # What alice may not do: read `payments`, join another group. The README's consumer,
        # on another topic and in another group.
        consumer = alice[alice.index("kafka-console-consumer.sh"):]
        payments = consumer.replace("--topic orders-eu", "--topic payments")
        other_group = consumer.replace("--group orders-app", "--group billing")
        assert payments != consumer != other_group
        with ThreadPoolExecutor(2) as pool:
            refused = list(pool.map(shell, [payments, other_group]))
        for res, error in zip(refused, ["TopicAuthorizationException: Not authorized to access topics: [payments]",
                                        "GroupAuthorizationException: Not authorized to access group: billing"]):
            assert error in res.stdout + res.stderr, describe(res)
            assert "hello" not in res.stdout, describe(res)
    finally:
        stop(server)
