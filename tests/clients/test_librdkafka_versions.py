"""librdkafka as users have it: Debian's kcat (with Debian's librdkafka 2.0.2),
confluent-kafka 1.9.2 compiled against Debian's librdkafka-dev (so running on the system
librdkafka 2.0.2), and confluent-kafka 2.0.2 (its wheel bundles librdkafka 2.0.2) next to the
current 2.16.1.

kcat cannot set timestamps or per-record headers, nor report the offsets it was acked at:
its records go to an explicit partition of a new topic, so record i of a partition must be
at offset i; every record carries the same headers (-H), and its CreateTime must lie
between the start and the end of the kcat run that produced it.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from harness import (committed_offsets, create_topic, describe,
                     python_of, run, unique_topic)

PARTITIONS = 2
KCAT_TIMEOUT = 60
REBALANCE_DELAY_MS = 300
# The first rebalance of an empty group waits --group-initial-rebalance-delay-ms (3 s by
# default) for more members: shortened, every group here has one member at a time.
GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", str(REBALANCE_DELAY_MS)]}],
    indirect=True)

# kcat -P input: key KEY_DELIM value RECORD_DELIM. Values hold every other byte, newlines too.
KEY_DELIM, RECORD_DELIM = 0x1F, 0x1E
HEADERS = [("origin", "kcat"), ("dup", "a"), ("dup", "b"), ("empty", "")]
# kcat -C output: fields whose lengths (%K, %S; -1 for null) say how many bytes of key and
# value follow. Header names and values here hold neither '|' nor ','.
FORMAT = r"%p|%o|%T|%K|%S|%h|%k%s\n"
FIELDS = re.compile(rb"(\d+)\|(\d+)\|(-?\d+)\|(-?\d+)\|(-?\d+)\|([^|]*)\|")


def kcat_record(p, i):
    """Record i of partition p: (key or None, value). Some keys are null, some values empty."""
    key = None if i % 10 == 3 else b"kcat-key-%d-%d" % (p, i)
    noise = bytes(b for b in ((i * 7 + j * 13 + p) % 256 for j in range(i % 40)) if b not in (KEY_DELIM, RECORD_DELIM))
    value = b"" if i % 10 == 5 else b"kcat %d|%d\n" % (p, i) + noise + "é€".encode()
    return key, value


def kcat(*args, stdin=None, timeout=KCAT_TIMEOUT):
    try:
        return subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"kcat timed out after {timeout}s: kcat {' '.join(args)}\n--- stdout ---\n"
                    f"{(e.stdout or b'')[-3000:]!r}\n--- stderr ---\n{(e.stderr or b'')[-3000:]!r}", pytrace=False)


def kcat_ok(res):
    assert res.returncode == 0, (f"kcat {' '.join(map(str, res.args[1:]))}: exit {res.returncode}\n"
                                 f"--- stderr ---\n{res.stderr.decode(errors='replace')[-5000:]}")
    return res.stdout


def kcat_produce(bootstrap, topic, p, start, end):
    """Records start..end-1 of partition p through `kcat -P`; returns the run's [t0, t1] in ms."""
    data = bytearray()
    for i in range(start, end):
        key, value = kcat_record(p, i)
        if key is not None:
            data += key + bytes([KEY_DELIM])
        data += value + bytes([RECORD_DELIM])
    headers = [arg for name, value in HEADERS for arg in ("-H", f"{name}={value}")]
    t0 = int(time.time() * 1000)
    kcat_ok(kcat("-P", "-b", bootstrap, "-t", topic, "-p", str(p), "-K", rf"\x{KEY_DELIM:02x}",
                 "-D", rf"\x{RECORD_DELIM:02x}", *headers, stdin=bytes(data)))
    return t0, int(time.time() * 1000)


def parse(out):
    """kcat -f FORMAT output -> [(partition, offset, timestamp, key, value, headers)]."""
    records, pos = [], 0
    while pos < len(out):
        m = FIELDS.match(out, pos)
        assert m, f"unparsable kcat output at byte {pos}: {out[pos:pos + 200]!r}"
        p, o, ts, klen, vlen = (int(g) for g in m.groups()[:5])
        pos = m.end()
        key = None if klen < 0 else out[pos:pos + klen]
        pos += max(klen, 0)
        value = None if vlen < 0 else out[pos:pos + vlen]
        pos += max(vlen, 0)
        assert out[pos:pos + 1] == b"\n", f"record {p}@{o}: no newline after key and value: {out[pos:pos + 50]!r}"
        pos += 1
        records.append((p, o, ts, key, value, m.group(6).decode()))
    return records


def check_records(records, windows, start, end, what):
    """`records` are exactly offsets start[p]..end[p]-1 of every partition, in order, each
    as kcat_produce sent it: key, value, headers, and a CreateTime inside its run's window."""
    want_headers = ",".join(f"{n}={v}" for n, v in HEADERS)
    by_partition = {p: [r for r in records if r[0] == p] for p in range(PARTITIONS)}
    assert set(r[0] for r in records) <= set(by_partition), f"{what}: records of unknown partitions"
    for p, got in by_partition.items():
        offsets = [r[1] for r in got]
        assert offsets == list(range(start[p], end[p])), f"{what}: partition {p} gave offsets {offsets}"
        for _, o, ts, key, value, headers in got:
            assert (key, value) == kcat_record(p, o), f"{what}: record {p}@{o} differs: {key!r} {value!r}"
            assert headers == want_headers, f"{what}: record {p}@{o} headers {headers!r}"
            t0, t1 = next(w for (lo, hi), w in windows[p].items() if lo <= o < hi)
            assert t0 <= ts <= t1, f"{what}: record {p}@{o} timestamp {ts} outside its producer's run [{t0}, {t1}]"


def kcat_produce_range(bootstrap, topic, windows, start, end):
    for p in range(PARTITIONS):
        windows.setdefault(p, {})[(start, end)] = kcat_produce(bootstrap, topic, p, start, end)


def test_kcat_produce_consume_metadata_query(tidegate):
    """kcat -L (metadata), -P (keys, null keys, binary and empty values, headers), -Q
    (ListOffsets: latest, and by timestamp) and -C -o beginning -e (every record back)."""
    topic = unique_topic("kcat")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    n = 60

    md = json.loads(kcat_ok(kcat("-L", "-J", "-b", tidegate.bootstrap, "-t", topic)))
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert sorted(brokers.values()) == sorted(tidegate.brokers), md
    [t] = md["topics"]
    assert t["topic"] == topic and "error" not in t, md
    assert sorted(p["partition"] for p in t["partitions"]) == list(range(PARTITIONS)), md
    assert all(p["leader"] in brokers for p in t["partitions"]), md

    windows = {}
    kcat_produce_range(tidegate.bootstrap, topic, windows, 0, n)
    first_t0 = min(t0 for w in windows.values() for t0, _ in w.values())

    # -1: the latest offset (ListOffsets, timestamp -1); a timestamp before every record: 0.
    query = [arg for p in range(PARTITIONS) for arg in ("-t", f"{topic}:{p}:-1")]
    latest = kcat_ok(kcat("-Q", "-b", tidegate.bootstrap, *query)).decode()
    assert sorted(re.findall(r"\[(\d+)\]\s+offset (-?\d+)", latest)) == [(str(p), str(n)) for p in range(PARTITIONS)], latest
    query = [arg for p in range(PARTITIONS) for arg in ("-t", f"{topic}:{p}:{first_t0 - 1000}")]
    by_time = kcat_ok(kcat("-Q", "-b", tidegate.bootstrap, *query)).decode()
    assert sorted(re.findall(r"\[(\d+)\]\s+offset (-?\d+)", by_time)) == [(str(p), "0") for p in range(PARTITIONS)], by_time

    out = kcat_ok(kcat("-C", "-b", tidegate.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", FORMAT))
    check_records(parse(out), windows, {p: 0 for p in range(PARTITIONS)}, {p: n for p in range(PARTITIONS)},
                  "kcat -C")


@GROUP_TIDEGATE
def test_kcat_group_commits_and_resumes(tidegate):
    """kcat -G consumes everything and commits on exit; the commits read back; a second kcat -G
    of the group gets exactly the records produced since."""
    topic = unique_topic("kcat-group")
    group = f"{topic}-group"
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    first, second = 40, 70
    windows = {}
    kcat_produce_range(tidegate.bootstrap, topic, windows, 0, first)

    def group_consume():
        return parse(kcat_ok(kcat("-b", tidegate.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                                  "-X", "session.timeout.ms=6000", "-e", "-q", "-f", FORMAT, topic)))

    check_records(group_consume(), windows, {p: 0 for p in range(PARTITIONS)}, {p: first for p in range(PARTITIONS)},
                  "first kcat -G")
    assert committed_offsets(tidegate.bootstrap, group, topic, PARTITIONS) == {p: first for p in range(PARTITIONS)}

    kcat_produce_range(tidegate.bootstrap, topic, windows, first, second)
    check_records(group_consume(), windows, {p: first for p in range(PARTITIONS)},
                  {p: second for p in range(PARTITIONS)}, "second kcat -G")
    assert committed_offsets(tidegate.bootstrap, group, topic, PARTITIONS) == {p: second for p in range(PARTITIONS)}


CK_SCRIPT = Path(__file__).with_name("ck_roundtrip.py")
REQUIREMENTS = {"venv-ck-old": "requirements-ck-old.txt", "venv-ck-deb": "requirements-ck-deb.txt",
                "venv": "requirements.txt"}
# The venv whose confluent-kafka is compiled against Debian's librdkafka-dev: it must run on
# the library of Debian's librdkafka1 package; the others on the librdkafka their wheel bundles.
SYSTEM_LIBRDKAFKA_VENV = "venv-ck-deb"


def pinned_confluent_kafka(requirements):
    pins = re.findall(r"^confluent-kafka==(\S+)", (Path(__file__).parent / requirements).read_text(), re.M)
    assert len(pins) == 1, f"{requirements}: no single confluent-kafka pin: {pins}"
    return pins[0]


def debian_librdkafka():
    """Debian's librdkafka1 package: its upstream version and the shared objects it installs."""
    res = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", "librdkafka1"],
                         capture_output=True, text=True)
    status, _, version = res.stdout.partition(" ")
    if res.returncode != 0 or status != "installed":
        pytest.fail(f"Debian's librdkafka1 is not installed ({res.stdout or res.stderr}): run `scripts/deps system`",
                    pytrace=False)
    upstream = version.split(":")[-1].rsplit("-", 1)[0]  # [epoch:]upstream[-debian revision]
    files = subprocess.run(["dpkg-query", "-L", "librdkafka1"], capture_output=True, text=True, check=True)
    libs = {os.path.realpath(f) for f in files.stdout.split() if re.search(r"/librdkafka\.so[.\d]*$", f)}
    return upstream, libs


@GROUP_TIDEGATE
@pytest.mark.parametrize("venv", ["venv-ck-old", SYSTEM_LIBRDKAFKA_VENV, "venv"])
def test_confluent_kafka_version(tidegate, backend, venv):
    """ck_roundtrip.py under confluent-kafka 2.0.2, 1.9.2 built against Debian's librdkafka-dev,
    and the current release: admin calls, idempotent produce, consume from the start, a group
    that commits and resumes. The client must be the pinned release, running on the librdkafka
    meant: Debian's for the source build, the bundled one for the wheels."""
    topic = unique_topic(f"ck-{venv}")
    res = run([str(python_of(venv)), str(CK_SCRIPT), tidegate.bootstrap, topic, f"{topic}-group", "200"],
              timeout=180)
    lines = res.stdout.splitlines()
    assert lines and lines[0].startswith("CLIENT "), describe(res)
    client = json.loads(lines[0].removeprefix("CLIENT "))
    assert client["confluent_kafka"] == pinned_confluent_kafka(REQUIREMENTS[venv]), client
    loaded = {os.path.realpath(f) for f in client["loaded"]}
    if venv == SYSTEM_LIBRDKAFKA_VENV:
        version, system_libs = debian_librdkafka()
        assert client["librdkafka"] == version, client
        assert loaded and loaded <= system_libs, f"{client}: not Debian's librdkafka1 ({sorted(system_libs)})"
    else:
        venv_dir = os.path.realpath(python_of(venv).parents[1])
        assert loaded and all(f.startswith(venv_dir + os.sep) for f in loaded), \
            f"{client}: not the librdkafka bundled in {venv_dir}"
    assert res.returncode == 0, describe(res)
    assert "OK 200" in lines, describe(res)


def test_created_topic_config_is_described(tidegate):
    """A config given to CreateTopics is what DescribeConfigs reports for the topic, as Kafka
    does, on both backends (SMQ keeps them in the filer)."""
    topic = unique_topic("created-config")
    admin = AdminClient({"bootstrap.servers": tidegate.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "86400000"})])[topic].result(30)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["retention.ms"].value == "86400000", {k: v.value for k, v in configs.items()}
