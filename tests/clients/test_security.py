"""TLS and SASL with real clients: librdkafka (confluent-kafka) and the Java client over
SASL_SSL with SCRAM and PLAIN, over SSL with client certificates, and what a client with
the wrong password or no certificate meets. Certificates are made here, with openssl, in
the test's temporary directory."""

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from harness import describe, java_classpath, log_tail, run, start_tidegate, stop, unique_topic

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@dataclass
class Certificates:
    ca: Path
    server: Path
    server_key: Path
    client: Path  # subject O=example, OU=eng, CN=alice
    client_key: Path
    client_bundle: Path  # key and certificate in one PEM (Java's PEM key store)
    stranger: Path  # signed by another CA
    stranger_key: Path


def openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"openssl {' '.join(args)}: {res.stderr}"


def make_certificate(directory: Path, name: str, subject: str, ca: str, ca_key: str, extensions: str):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    (directory / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)
    return directory / f"{name}.pem", directory / f"{name}-key.pem"


@pytest.fixture
def certificates(tmp_path) -> Certificates:
    d = tmp_path / "tls"
    d.mkdir()
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}-key.pem", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=tidegate test {ca}", cwd=d)
    server, server_key = make_certificate(
        d, "server", "/CN=localhost", "ca.pem", "ca-key.pem",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client, client_key = make_certificate(
        d, "client", "/O=example/OU=eng/CN=alice", "ca.pem", "ca-key.pem", "extendedKeyUsage=clientAuth\n")
    stranger, stranger_key = make_certificate(
        d, "stranger", "/CN=mallory", "other-ca.pem", "other-ca-key.pem", "extendedKeyUsage=clientAuth\n")
    bundle = d / "client-bundle.pem"
    bundle.write_text(client_key.read_text() + client.read_text())
    return Certificates(d / "ca.pem", server, server_key, client, client_key, bundle, stranger, stranger_key)


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users"
    path.write_text("".join(f"{name}:{password}\n" for name, password in USERS.items()))
    return path


@pytest.fixture
def secure_tidegate(request, tmp_path, backend, certificates, users_file):
    """tidegate with a SASL_SSL, an SSL (client certificates required) and a SASL_PLAINTEXT
    listener, every client allowed everything (authorization is another test's concern)."""
    log = tmp_path / "tidegate.log"
    tg = start_tidegate(
        log, smq=backend,
        listeners=["SASL_SSL=SASL_SSL://127.0.0.1:0", "MTLS=SSL://127.0.0.1:0",
                   "SASL=SASL_PLAINTEXT://127.0.0.1:0"],
        extra_args=["--ssl-certificate", str(certificates.server), "--ssl-key", str(certificates.server_key),
                    "--ssl-ca", str(certificates.ca), "--ssl-client-auth", "required",
                    "--ssl-principal-mapping-rules", "RULE:^CN=([^,]*),.*$/$1/L,DEFAULT",
                    "--users-file", str(users_file), "--allow-everyone-if-no-acl-found", "true"])
    request.node.tidegate_log = log
    try:
        yield tg
    finally:
        died = tg.proc.poll()
        rc = stop(tg.proc)
        if died is not None or rc not in (0, -15):
            pytest.fail(f"tidegate exited with {died if died is not None else rc}\n{log_tail(log)}", pytrace=False)


def sasl_config(mechanism, user="alice", password=None, tls=None):
    config = {"security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
              "sasl.mechanisms": mechanism, "sasl.username": user,
              "sasl.password": USERS.get(user) if password is None else password}
    if tls:
        config["ssl.ca.location"] = str(tls.ca)
    return config


def roundtrip(bootstrap, config, records=500):
    """Produce `records` with keys, headers and timestamps, then read them back in a consumer
    group: every record at its acknowledged offset, byte for byte."""
    topic = unique_topic("secure")
    acked = {}
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.key()] = (msg.partition(), msg.offset())

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "error_cb": errors.append, **config})
    sent = {}
    for i in range(records):
        key, value = f"key-{i}".encode(), (f"value-{i}-" * 7).encode()
        headers = [("index", str(i).encode())]
        timestamp = 1_700_000_000_000 + i
        sent[key] = (value, headers, timestamp)
        producer.produce(topic, value=value, key=key, headers=headers, timestamp=timestamp,
                         on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0, f"unflushed; errors {errors[:3]}"
    assert not errors, errors[:3]
    assert len(acked) == records

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("group"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, **config})
    consumer.subscribe([topic])
    seen = {}
    deadline = time.monotonic() + 90
    try:
        while len(seen) < records and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value, headers, timestamp = sent[msg.key()]
            assert (msg.value(), msg.headers(), msg.timestamp()[1]) == (value, headers, timestamp)
            assert (msg.partition(), msg.offset()) == acked[msg.key()]
            seen[msg.key()] = True
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert len(seen) == records, f"{len(seen)} of {records} records read back"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_librdkafka_over_sasl_ssl(secure_tidegate, certificates, mechanism):
    roundtrip(secure_tidegate.listeners["SASL_SSL"], sasl_config(mechanism, tls=certificates))


def test_librdkafka_over_sasl_plaintext(secure_tidegate):
    roundtrip(secure_tidegate.listeners["SASL"], sasl_config("SCRAM-SHA-256", user="bob"))


def test_librdkafka_with_a_client_certificate(secure_tidegate, certificates):
    roundtrip(secure_tidegate.listeners["MTLS"],
              {"security.protocol": "SSL", "ssl.ca.location": str(certificates.ca),
               "ssl.certificate.location": str(certificates.client),
               "ssl.key.location": str(certificates.client_key)})


def refused(bootstrap, config, expected_codes):
    """Asks for metadata, which must fail; returns the client's errors, which must include
    one of `expected_codes`."""
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "error_cb": errors.append,
                         "reconnect.backoff.max.ms": 1000, **config})
    with pytest.raises(KafkaException) as failure:
        producer.list_topics(timeout=5)
    errors.append(failure.value.args[0])
    # The connection's own error reaches error_cb on a later poll.
    deadline = time.monotonic() + 10
    while not {e.code() for e in errors} & expected_codes and time.monotonic() < deadline:
        producer.poll(0.2)
    assert {e.code() for e in errors} & expected_codes, errors
    return errors


def test_wrong_password_is_refused_with_a_clear_message(secure_tidegate, certificates):
    bootstrap = secure_tidegate.listeners["SASL_SSL"]
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        errors = refused(bootstrap, sasl_config(mechanism, password="guess", tls=certificates),
                         {KafkaError._AUTHENTICATION})
        assert any("invalid credentials" in e.str() for e in errors), errors
    # Nor can an unknown user tell that it is unknown.
    errors = refused(bootstrap, sasl_config("SCRAM-SHA-512", user="nobody", password="x", tls=certificates),
                     {KafkaError._AUTHENTICATION})
    assert any("invalid credentials" in e.str() for e in errors), errors
    log = log_tail(secure_tidegate.log_path, 400)
    assert "SASL authentication failed" in log
    assert "guess" not in log


def test_no_certificate_or_a_strangers_is_refused(secure_tidegate, certificates):
    bootstrap = secure_tidegate.listeners["MTLS"]
    tls_failures = {KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
    refused(bootstrap, {"security.protocol": "SSL", "ssl.ca.location": str(certificates.ca)}, tls_failures)
    refused(bootstrap, {"security.protocol": "SSL", "ssl.ca.location": str(certificates.ca),
                        "ssl.certificate.location": str(certificates.stranger),
                        "ssl.key.location": str(certificates.stranger_key)}, tls_failures)
    # A PLAINTEXT client on the SASL listener is closed at its first request.
    refused(secure_tidegate.listeners["SASL"], {}, {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


def java_security(mechanism, user, certificates):
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    return ["security.protocol=SASL_SSL", f"sasl.mechanism={mechanism}",
            f'sasl.jaas.config={module} required username="{user}" password="{USERS[user]}";',
            "ssl.truststore.type=PEM", f"ssl.truststore.location={certificates.ca}"]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_java_over_sasl_ssl(secure_tidegate, certificates, mechanism, tmp_path):
    records = 20_000
    topic = unique_topic("java-secure")
    bootstrap = secure_tidegate.listeners["SASL_SSL"]
    security = java_security(mechanism, "alice", certificates)
    res = run(["java", "-cp", java_classpath(), "dev.tidegate.tests.RoundTrip",
               bootstrap, topic, "4", str(records), "200", *security], timeout=600)
    assert res.returncode == 0, describe(res)
    assert f"OK {records}" in res.stdout.splitlines(), describe(res)
    # And in a consumer group, with Kafka's console consumer.
    config = tmp_path / "consumer.properties"
    config.write_text("\n".join(security) + "\n")
    res = run(["java", "-cp", java_classpath(), "org.apache.kafka.tools.consumer.ConsoleConsumer",
               "--bootstrap-server", bootstrap, "--topic", topic, "--group", unique_topic("java-group"),
               "--from-beginning", "--max-messages", str(records), "--timeout-ms", "60000",
               "--formatter-property", "print.value=false", "--formatter-property", "print.partition=true",
               "--formatter-property", "print.offset=true", "--consumer.config", str(config)], timeout=300)
    assert res.returncode == 0, describe(res)
    read = {tuple(map(int, m)) for m in re.findall(r"Partition:(\d+)\s+Offset:(\d+)", res.stdout)}
    # RoundTrip puts record i on partition i % 4: every offset of every partition, once.
    assert read == {(p, o) for p in range(4) for o in range(records // 4)}, describe(res)


def test_java_with_a_client_certificate(secure_tidegate, certificates):
    records = 5_000
    res = run(["java", "-cp", java_classpath(), "dev.tidegate.tests.RoundTrip",
               secure_tidegate.listeners["MTLS"], unique_topic("java-mtls"), "2", str(records), "100",
               "security.protocol=SSL", "ssl.truststore.type=PEM", f"ssl.truststore.location={certificates.ca}",
               "ssl.keystore.type=PEM", f"ssl.keystore.location={certificates.client_bundle}"], timeout=600)
    assert res.returncode == 0, describe(res)
    assert f"OK {records}" in res.stdout.splitlines(), describe(res)
