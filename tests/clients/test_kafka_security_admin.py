"""Users and ACLs managed with Kafka 4.x's own tools, as an administrator manages them:

  kafka-acls      --add, --list, --remove (CreateAcls, DescribeAcls, DeleteAcls)
  kafka-configs   --entity-type users: --alter --add-config 'SCRAM-SHA-512=[...]',
                  --describe, --alter --delete-config (AlterUserScramCredentials,
                  DescribeUserScramCredentials; DescribeClientQuotas, which --describe asks first)

The tools run on a PLAINTEXT loopback listener as User:ANONYMOUS, made a super user; the user
they create then logs in with SCRAM-SHA-512 (librdkafka, through confluent-kafka) on a
SASL_PLAINTEXT listener of the same tidegate, and no longer can once the credential is
deleted. On the SMQ backend, the users and ACLs are read back from SeaweedFS's filer by a
restarted tidegate (in a namespace of the test's own, so no other test sees them).
"""

import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from groups import relaunch_tidegate
from harness import describe, java_classpath, run, unique_topic

JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
ACLS = "org.apache.kafka.tools.AclCommand"
CONFIGS = "org.apache.kafka.tools.ConfigCommand"

NAMESPACE = f"security{uuid.uuid4().hex[:8]}"
TIDEGATE = {
    "shards": 2,
    "listeners": ["PLAIN=PLAINTEXT://127.0.0.1:0", "SASL=SASL_PLAINTEXT://127.0.0.1:0"],
    "extra_args": ["--super-users", "User:ANONYMOUS", "--smq-namespace", NAMESPACE],
}
USER, PASSWORD = "alice", "alice-secret"


def kafka(main_class, *args, timeout=120):
    return run(JAVA + ["-cp", java_classpath(), main_class, *map(str, args)], timeout=timeout)


def tool(main_class, *args):
    res = kafka(main_class, *args)
    assert res.returncode == 0, describe(res)
    return res.stdout


def authenticates(bootstrap, user, password, timeout=30):
    """Whether `user` logs in with SCRAM-SHA-512 on the SASL listener: True once a metadata
    request succeeds, False once librdkafka reports an authentication failure."""
    errors = []
    admin = AdminClient({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "error_cb": errors.append,
    })
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return True
        except KafkaException:
            pass
        admin.poll(0)
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return False
    pytest.fail(f"{user} neither logged in nor was refused within {timeout}s: {errors}")


def acl_list(plain, topic):
    return tool(ACLS, "--bootstrap-server", plain, "--list", "--topic", topic)


def user_config(plain):
    return tool(CONFIGS, "--bootstrap-server", plain, "--describe", "--entity-type", "users",
                "--entity-name", USER)


@pytest.mark.parametrize("tidegate", [TIDEGATE], indirect=True)
def test_acls_and_scram_users_with_kafka_tools(tidegate, backend, request, tmp_path):
    plain, sasl = tidegate.listeners["PLAIN"], tidegate.listeners["SASL"]
    topic = unique_topic("secured")
    read_acl = "principal=User:alice, host=*, operation=READ, permissionType=ALLOW"

    tool(ACLS, "--bootstrap-server", plain, "--add", "--allow-principal", "User:alice",
         "--operation", "Read", "--operation", "Describe", "--topic", topic)
    listed = acl_list(plain, topic)
    assert f"ResourcePattern(resourceType=TOPIC, name={topic}, patternType=LITERAL)" in listed, listed
    assert read_acl in listed and "operation=DESCRIBE" in listed, listed

    out = tool(CONFIGS, "--bootstrap-server", plain, "--alter", "--add-config",
               f"SCRAM-SHA-512=[iterations=8192,password={PASSWORD}]",
               "--entity-type", "users", "--entity-name", USER)
    assert f"Completed updating config for user {USER}" in out, out
    assert "SCRAM-SHA-512=iterations=8192" in user_config(plain)
    assert authenticates(sasl, USER, PASSWORD)
    assert not authenticates(sasl, USER, "not-" + PASSWORD)

    if backend is not None:
        # Kept in SeaweedFS's filer: a restarted tidegate has them.
        relaunch_tidegate(request, tidegate, tmp_path / "tidegate-restarted.log")
        plain, sasl = tidegate.listeners["PLAIN"], tidegate.listeners["SASL"]
        assert read_acl in acl_list(plain, topic)
        assert "SCRAM-SHA-512=iterations=8192" in user_config(plain)
        assert authenticates(sasl, USER, PASSWORD)

    tool(ACLS, "--bootstrap-server", plain, "--remove", "--force", "--allow-principal", "User:alice",
         "--operation", "Read", "--topic", topic)
    listed = acl_list(plain, topic)
    assert "operation=READ" not in listed and "operation=DESCRIBE" in listed, listed

    out = tool(CONFIGS, "--bootstrap-server", plain, "--alter", "--delete-config", "SCRAM-SHA-512",
               "--entity-type", "users", "--entity-name", USER)
    assert f"Completed updating config for user {USER}" in out, out
    described = kafka(CONFIGS, "--bootstrap-server", plain, "--describe", "--entity-type", "users",
                      "--entity-name", USER)
    assert "SCRAM-SHA-512=iterations" not in described.stdout, describe(described)
    assert not authenticates(sasl, USER, PASSWORD)
    # Deleting it again: Kafka's RESOURCE_NOT_FOUND, as the tool reports it.
    again = kafka(CONFIGS, "--bootstrap-server", plain, "--alter", "--delete-config", "SCRAM-SHA-512",
                  "--entity-type", "users", "--entity-name", USER)
    assert "Attempt to delete a user credential that does not exist" in again.stdout + again.stderr, \
        describe(again)

    if backend is not None:
        # The removals are stored too.
        relaunch_tidegate(request, tidegate, tmp_path / "tidegate-restarted-again.log")
        plain, sasl = tidegate.listeners["PLAIN"], tidegate.listeners["SASL"]
        assert "operation=READ" not in acl_list(plain, topic)
        assert not authenticates(sasl, USER, PASSWORD)
