"""Consumer groups through tidegate with real clients: Java consumers (tests/java GroupMember,
one JVM per member) and librdkafka, on both backends.

Every Java member checks each record byte for byte (key, value, headers, timestamp) against
ProduceRange's sequence, commits what each poll returned before polling again, and reports
assignments, records and commits on stdout; the tests wait on those lines, never on a timer.
Records are produced only once the members share the partitions, so "exactly once across
the group" is a real statement about the group and not about one fast member.
"""

import struct
import time

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, Consumer, ConsumerGroupState, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import AdminClient

from groups import (Group, expected_records, filer_committed_offset, produce_range, relaunch_tidegate,
                    restart_seaweedfs, seaweedfs_ports, wait_flushed)
from harness import create_topic, start_go_gateway, stop, unique_topic

PARTITIONS = 12
RECORD_BYTES = 100
PER_PARTITION = 100
PHASE = PARTITIONS * PER_PARTITION          # records per produce phase: 100 per partition
SESSION_MS = 6000                           # tidegate's default --group-min-session-timeout-ms
HEARTBEAT_MS = 500
REBALANCE_DELAY_MS = 300
MEMBER_ARGS = [f"session.timeout.ms={SESSION_MS}", f"heartbeat.interval.ms={HEARTBEAT_MS}"]
JOIN_TIMEOUT = 60      # JVM start, FindCoordinator, join and sync; a deadline, not a wait
CONSUME_TIMEOUT = 60
BASE_TIMESTAMP_MS = 1_700_000_000_000      # RoundTrip.BASE_TIMESTAMP_MS

# The first rebalance of an empty group waits --group-initial-rebalance-delay-ms (Kafka's
# 3 s default) for more members: shortened so each test spends its time on the group itself.
GROUP_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", str(REBALANCE_DELAY_MS)]}],
    indirect=True)


@pytest.fixture
def groups(tmp_path):
    """Factory of Groups of Java members; every member still running at the end is killed."""
    made = []

    def make(bootstrap, group_id, topic, *common_args):
        g = Group(tmp_path, bootstrap, group_id, topic, PARTITIONS, RECORD_BYTES, MEMBER_ARGS + list(common_args))
        made.append(g)
        return g

    yield make
    for g in made:
        g.kill_all()


def new_topic(tidegate, prefix):
    topic = unique_topic(prefix)
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    return topic, f"{topic}-group"


def assert_exactly_once(group, members, expected):
    """Every record in `expected` consumed exactly once across `members`, nothing else
    consumed, every record consumed by a member that owned its partition at the time."""
    counts = {}
    for m in members:
        for key in m.records:
            counts[key] = counts.get(key, 0) + 1
        assert not m.unowned, f"{m.name} got records of partitions it was not assigned: {m.unowned[:10]}\n" \
                              f"{group.describe()}"
    missing = sorted(expected - counts.keys())
    extra = sorted(counts.keys() - expected)
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert not missing and not extra and not twice, (
        f"{len(missing)} records never consumed (first {missing[:10]}), {len(extra)} unexpected "
        f"(first {extra[:10]}), {len(twice)} consumed more than once (first {twice[:10]})\n{group.describe()}")


def committed_offsets(bootstrap, group_id, topic, partitions=PARTITIONS):
    """{partition: committed offset} as librdkafka's committed() (OffsetFetch) reads them."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got}


def assignment_shape_ok(assignor, owned):
    """The shape each assignor gives one topic's partitions among len(owned) members."""
    n = len(owned)
    if sorted(map(len, owned)) != [PARTITIONS // n] * n:
        return False
    if assignor == "range":            # contiguous runs
        return all(max(s) - min(s) + 1 == len(s) for s in owned)
    if assignor == "roundrobin":       # every n-th partition
        return all(len({p % n for p in s}) == 1 for s in owned)
    return True                        # cooperative-sticky: balanced, stickiness checked apart


# ---- 1. three members, twelve partitions ---------------------------------------------------

@GROUP_TIDEGATE
def test_three_members_share_twelve_partitions(tidegate, groups):
    topic, group_id = new_topic(tidegate, "grp-three")
    g = groups(tidegate.bootstrap, group_id, topic)
    members = [g.start(name) for name in ("a", "b", "c")]
    g.wait_stable(members, JOIN_TIMEOUT)
    stable_owned = {m.name: m.owned for m in members}

    # What the group coordinator says about the group (DescribeGroups, ListGroups) is what
    # the members were told in SyncGroup.
    admin = AdminClient({"bootstrap.servers": tidegate.bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result()
    assert group_id in [gl.group_id for gl in listed.valid], listed.valid
    desc = admin.describe_consumer_groups([group_id], request_timeout=30)[group_id].result()
    assert desc.state == ConsumerGroupState.STABLE, desc.state
    assert desc.partition_assignor == "range", desc.partition_assignor  # the client's first choice
    described = {md.client_id: {tp.partition for tp in md.assignment.topic_partitions} for md in desc.members}
    assert described == {m.name: set(m.owned) for m in members}, (described, g.describe())

    expected = expected_records(PARTITIONS, 0, PHASE)
    produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PHASE, RECORD_BYTES)
    g.wait_until(g.consumed(expected), CONSUME_TIMEOUT, f"all {PHASE} records consumed")
    for m in members:
        m.stop()
    assert_exactly_once(g, members, expected)
    # Each member got the records of exactly the partitions it was assigned.
    for m in members:
        assert {p for p, _ in m.records} == stable_owned[m.name], g.describe()
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == {p: PER_PARTITION for p in range(PARTITIONS)}


# ---- 2. a member killed: its partitions move on after its session expires -------------------

@GROUP_TIDEGATE
def test_killed_member_partitions_reassigned_within_session_timeout(tidegate, groups):
    topic, group_id = new_topic(tidegate, "grp-kill")
    g = groups(tidegate.bootstrap, group_id, topic)
    a, b, victim = members = [g.start(name) for name in ("a", "b", "victim")]
    g.wait_stable(members, JOIN_TIMEOUT)
    first = expected_records(PARTITIONS, 0, PHASE)
    produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PHASE, RECORD_BYTES)
    g.wait_until(g.consumed(first), CONSUME_TIMEOUT, "first phase consumed")
    g.wait_until(lambda: all(m.commits.get(p) == PER_PARTITION for m in members for p in m.owned),
                 CONSUME_TIMEOUT, "first phase committed")

    generation = victim.generation
    orphaned = set(victim.owned)
    victim_commits = dict(victim.commits)
    killed_at = time.monotonic()
    victim.kill()  # no LeaveGroup: the coordinator can only notice the missed heartbeats
    # Records for every partition while the orphaned ones have no consumer.
    produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE, 2 * PHASE, RECORD_BYTES)

    # Kafka's bound: the session expires SESSION_MS after the last heartbeat; the survivors
    # learn of the rebalance on their next heartbeat and rejoin; then join and sync.
    bound = (SESSION_MS + 2 * HEARTBEAT_MS) / 1000 + 5
    reassigned_at = g.wait_until(g.stable([a, b], min_generation=generation), bound + 30,
                                 f"a and b to take over {sorted(orphaned)}")
    took = reassigned_at - killed_at
    assert took <= bound, f"reassignment took {took:.1f}s, bound {bound:.1f}s (session {SESSION_MS} ms)\n" \
                          f"{g.describe()}"
    everything = first | expected_records(PARTITIONS, PHASE, 2 * PHASE)
    g.wait_until(g.consumed(everything), CONSUME_TIMEOUT, "second phase consumed by the survivors")
    for m in (a, b):
        m.stop()

    # Nothing skipped; redelivered only what the victim had consumed past its last commit
    # (the commit it printed: one it made after printing would only narrow that range).
    assert not everything - g.seen.keys(), g.describe()
    for (p, o), n in g.seen.items():
        if n > 1:
            assert p in orphaned and o >= victim_commits.get(p, 0), \
                f"record {p}@{o} consumed {n} times, not a redelivery past the victim's commit\n{g.describe()}"
    for m in (a, b):
        assert not m.unowned, g.describe()
    print(f"partitions {sorted(orphaned)} reassigned {took:.1f}s after SIGKILL (session.timeout.ms {SESSION_MS})")


# ---- 3. each assignor --------------------------------------------------------------------

@GROUP_TIDEGATE
@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_assignor(tidegate, groups, assignor):
    """Two members, a third joins, one leaves (LeaveGroup): each time every partition has one
    owner, in the assignor's shape, and cooperative-sticky moves only what it must."""
    topic, group_id = new_topic(tidegate, f"grp-{assignor}")
    g = groups(tidegate.bootstrap, group_id, topic, f"--assignor={assignor}")
    a, b = g.start("a"), g.start("b")
    g.wait_stable([a, b], JOIN_TIMEOUT)
    assert assignment_shape_ok(assignor, [a.owned, b.owned]), g.describe()
    produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PHASE // 2, RECORD_BYTES)
    g.wait_until(g.consumed(expected_records(PARTITIONS, 0, PHASE // 2)), CONSUME_TIMEOUT, "phase 1")

    before, generation = {m.name: m.owned for m in (a, b)}, a.generation
    joined_at = time.monotonic()
    c = g.start("c")
    g.wait_stable([a, b, c], JOIN_TIMEOUT, min_generation=generation)
    assert assignment_shape_ok(assignor, [a.owned, b.owned, c.owned]), g.describe()
    if assignor == "cooperative-sticky":
        for m in (a, b):
            assert m.owned <= before[m.name], f"{m.name} gained partitions when c joined\n{g.describe()}"
            assert m.revoked(joined_at) == before[m.name] - m.owned, \
                f"{m.name} revoked more than it handed to c\n{g.describe()}"
    produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE // 2, PHASE, RECORD_BYTES)
    g.wait_until(g.consumed(expected_records(PARTITIONS, 0, PHASE)), CONSUME_TIMEOUT, "phase 2")

    before, generation = {m.name: m.owned for m in (a, c)}, a.generation
    left_at = time.monotonic()
    b.stop()  # LeaveGroup: no waiting for b's session to expire
    settled = g.wait_stable([a, c], JOIN_TIMEOUT, min_generation=generation)
    assert settled - left_at < SESSION_MS / 1000, \
        f"rebalance after LeaveGroup took {settled - left_at:.1f}s, as long as a session expiry\n{g.describe()}"
    assert assignment_shape_ok(assignor, [a.owned, c.owned]), g.describe()
    if assignor == "cooperative-sticky":
        for m in (a, c):
            assert m.owned >= before[m.name] and not m.revoked(left_at), \
                f"{m.name} lost partitions when b left\n{g.describe()}"
    produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE, 3 * PHASE // 2, RECORD_BYTES)
    everything = expected_records(PARTITIONS, 0, 3 * PHASE // 2)
    g.wait_until(g.consumed(everything), CONSUME_TIMEOUT, "phase 3")
    for m in (a, c):
        m.stop()
    assert_exactly_once(g, [a, b, c], everything)


# ---- 4. commit, stop everything, restart, resume from the commits (Java) ----------------------

def smq_restart_ready(backend, request, tidegate, topic, last_offset):
    """SMQ only: the broker must have flushed the topic past its first flush window, or a
    reload reads the partitions as empty (proto/README.md, "Partition unloading": an SMQ bug
    that test_smq_restart.py tracks). Returns the SeaweedFS, or None on memory."""
    if backend is None:
        return None
    seaweedfs = request.getfixturevalue("seaweedfs")
    wait_flushed(seaweedfs_ports(seaweedfs)["FILER"], topic, PARTITIONS, last_offset)
    return seaweedfs


def produce_first_phase(tidegate, backend, request, topic):
    """PHASE records; on SMQ in two flush windows (see smq_restart_ready): the first record
    of each partition, flushed, then the rest."""
    produce_range(tidegate.bootstrap, topic, PARTITIONS, 0, PARTITIONS, RECORD_BYTES)
    smq_restart_ready(backend, request, tidegate, topic, None)
    produce_range(tidegate.bootstrap, topic, PARTITIONS, PARTITIONS, PHASE, RECORD_BYTES)


@GROUP_TIDEGATE
def test_resume_from_commits_after_restart(tidegate, backend, request, tmp_path, groups):
    """memory: the backend keeps nothing across a restart, so only the consumers stop and
    start again. smq: tidegate and SeaweedFS (master, filer, broker) are restarted too."""
    topic, group_id = new_topic(tidegate, "grp-resume")
    g = groups(tidegate.bootstrap, group_id, topic)
    members = [g.start(name) for name in ("a", "b", "c")]
    g.wait_stable(members, JOIN_TIMEOUT)
    produce_first_phase(tidegate, backend, request, topic)
    first = expected_records(PARTITIONS, 0, PHASE)
    g.wait_until(g.consumed(first), CONSUME_TIMEOUT, "first phase consumed")
    for m in members:
        m.stop()
    assert_exactly_once(g, members, first)
    want = {p: PER_PARTITION for p in range(PARTITIONS)}
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == want, "committed before the restart"

    seaweedfs = smq_restart_ready(backend, request, tidegate, topic, PER_PARTITION - 1)
    if seaweedfs is not None:
        relaunch_tidegate(request, tidegate, tmp_path / "tidegate-restarted.log",
                          between=lambda: restart_seaweedfs(seaweedfs))
        got = committed_offsets(tidegate.bootstrap, group_id, topic)
        assert got == want, f"committed offsets after restarting tidegate and SeaweedFS: {got}"

    produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE, 2 * PHASE, RECORD_BYTES)
    # auto.offset.reset=none: a partition without a committed offset is an error, not a
    # silent restart from the beginning or the end.
    g2 = groups(tidegate.bootstrap, group_id, topic, "auto.offset.reset=none")
    resumed = [g2.start(name) for name in ("d", "e", "f")]
    second = expected_records(PARTITIONS, PHASE, 2 * PHASE)
    g2.wait_until(g2.consumed(second), JOIN_TIMEOUT + CONSUME_TIMEOUT, "second phase consumed after the restart")
    g2.wait_stable(resumed, JOIN_TIMEOUT)
    for m in resumed:
        m.stop()
    assert_exactly_once(g2, resumed, second)
    want = {p: 2 * PER_PARTITION for p in range(PARTITIONS)}
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == want


# ---- 5. the same with librdkafka ---------------------------------------------------------------

def rdk_record_ok(m):
    """The record ProduceRange wrote at m's partition and offset (value: its readable prefix
    and length; the Java members check the rest of the bytes)."""
    p, i = m.partition(), m.offset() * PARTITIONS + m.partition()
    value = m.value() or b""
    return (m.key() == f"key-{p}-{i}".encode()
            and m.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TIMESTAMP_MS + i * 3 + p)
            and m.headers() == [("tg-index", struct.pack(">q", i)), ("tg-partition", f"partition-{p}".encode())]
            and len(value) == RECORD_BYTES and value.startswith(f"record {i} partition {p} ".encode()))


class RdkMember:
    """A confluent-kafka consumer in a group: commits each batch synchronously."""

    def __init__(self, bootstrap, group_id, topic, name, reset):
        self.name, self.owned, self.records = name, set(), []
        self.errors = []  # failures: fail the test at once
        self.notes = []   # errors librdkafka retries by itself: shown if the test times out
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group_id, "client.id": name,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
            "enable.auto.commit": False, "auto.offset.reset": reset,
            "error_cb": self._error,
        })
        # librdkafka's default assignors (range, roundrobin) are eager: on_assign gives the
        # whole assignment, on_revoke takes all of it.
        self.consumer.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)

    def _assigned(self, _consumer, tps):
        self.owned = {tp.partition for tp in tps}

    def _revoked(self, _consumer, _tps):
        self.owned = set()

    def _error(self, err, where="error_cb"):
        # _AUTO_OFFSET_RESET with auto.offset.reset=error: no committed offset to resume from.
        failed = err.fatal() or err.code() == KafkaError._AUTO_OFFSET_RESET
        (self.errors if failed else self.notes).append(f"{where}: {err}")

    def poll(self):
        msgs = self.consumer.consume(num_messages=500, timeout=0.05)
        offsets = {}
        for m in msgs:
            if m.error() is not None:
                self._error(m.error(), "consume")
                continue
            if not rdk_record_ok(m):
                self.errors.append(f"record {m.partition()}@{m.offset()} is not what was produced there")
            self.records.append((m.partition(), m.offset()))
            offsets[m.partition()] = TopicPartition(m.topic(), m.partition(), m.offset() + 1)
        if offsets:
            try:
                self.consumer.commit(offsets=list(offsets.values()), asynchronous=False)
            except KafkaException as e:
                self.errors.append(f"commit: {e}")

    def close(self):
        self.consumer.close()


def drive(members, predicate, timeout, what):
    """Polls every member in turn (librdkafka serves rebalances inside poll) until
    predicate() holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for m in members:
            m.poll()
            assert not m.errors, f"while waiting for {what}, {m.name}: {m.errors[:5]}"
        assert time.monotonic() < deadline, (
            f"timed out after {timeout}s waiting for {what}; " +
            "; ".join(f"{m.name} owns {sorted(m.owned)}, {len(m.records)} records, "
                      f"errors retried: {m.notes[-5:]}" for m in members))


def rdk_round(bootstrap, group_id, topic, names, reset, produce, expected):
    members = [RdkMember(bootstrap, group_id, topic, n, reset) for n in names]
    try:
        def shared():
            owned = [m.owned for m in members]
            return all(owned) and sum(map(len, owned)) == PARTITIONS == len(set().union(*owned))
        drive(members, shared, JOIN_TIMEOUT, "both members assigned")
        produce()
        seen = lambda: {k for m in members for k in m.records}
        drive(members, lambda: expected <= seen(), CONSUME_TIMEOUT, "all records consumed")
    finally:
        for m in members:
            m.close()
    got = [k for m in members for k in m.records]
    assert sorted(got) == sorted(expected), (
        f"{len(got)} records consumed for {len(expected)} expected: missing {sorted(expected - set(got))[:10]}, "
        f"unexpected {sorted(set(got) - expected)[:10]}, duplicates {len(got) - len(set(got))}")


@GROUP_TIDEGATE
def test_librdkafka_group_resumes_from_commits(tidegate, backend, request, tmp_path):
    """Two librdkafka members consume and commit, close; tidegate restarts (smq; memory keeps
    nothing across a restart); two new members resume exactly where the commits say."""
    topic, group_id = new_topic(tidegate, "grp-rdk")
    first = expected_records(PARTITIONS, 0, PHASE)
    rdk_round(tidegate.bootstrap, group_id, topic, ["r1", "r2"], "earliest",
              lambda: produce_first_phase(tidegate, backend, request, topic), first)
    want = {p: PER_PARTITION for p in range(PARTITIONS)}
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == want

    if smq_restart_ready(backend, request, tidegate, topic, PER_PARTITION - 1) is not None:
        relaunch_tidegate(request, tidegate, tmp_path / "tidegate-restarted.log")
        got = committed_offsets(tidegate.bootstrap, group_id, topic)
        assert got == want, f"committed offsets after restarting tidegate: {got}"

    # auto.offset.reset=error: no committed offset is a consume error, not a fresh start.
    rdk_round(tidegate.bootstrap, group_id, topic, ["r3", "r4"], "error",
              lambda: produce_range(tidegate.bootstrap, topic, PARTITIONS, PHASE, 2 * PHASE, RECORD_BYTES),
              expected_records(PARTITIONS, PHASE, 2 * PHASE))
    assert committed_offsets(tidegate.bootstrap, group_id, topic) == {p: 2 * PER_PARTITION for p in range(PARTITIONS)}


# ---- 6. committed offsets shared with SeaweedFS's Go gateway (smq only) -----------------------

def commit_as_member(bootstrap, group_id, topic, partitions, commits):
    """Joins the group alone (subscribe), waits for every partition, commits `commits`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False, "session.timeout.ms": SESSION_MS})
    assigned = []
    consumer.subscribe([topic], on_assign=lambda _c, tps: assigned.extend(tps))
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT
        while len(assigned) < partitions:
            consumer.poll(0.1)
            assert time.monotonic() < deadline, f"no assignment through {bootstrap}: {assigned}"
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits.items()], asynchronous=False)
    finally:
        consumer.close()


@pytest.mark.parametrize("backend", ["smq"], indirect=True)
def test_go_gateway_reads_offsets_committed_through_tidegate(tidegate, seaweedfs, tmp_path):
    """A group commits through tidegate; SeaweedFS's own Kafka gateway, started afterwards on
    the same SeaweedFS, answers OffsetFetch with the same offsets (they live in the filer at
    /topics/kafka/.meta/consumer_offsets/<group>/<topic>/<partition>/offset)."""
    partitions = 4
    topic = unique_topic("grp-go")
    group_id = f"{topic}-group"
    create_topic(tidegate.bootstrap, topic, partitions)
    produce_range(tidegate.bootstrap, topic, partitions, 0, 40, RECORD_BYTES)
    commits = {p: 3 + 2 * p for p in range(partitions)}  # distinct, below each partition's 10 records

    commit_as_member(tidegate.bootstrap, group_id, topic, partitions, commits)
    assert committed_offsets(tidegate.bootstrap, group_id, topic, partitions) == commits

    filer = seaweedfs_ports(seaweedfs)["FILER"]
    in_filer = {p: filer_committed_offset(filer, group_id, topic, p) for p in range(partitions)}
    go_gateway, go_bootstrap = start_go_gateway(seaweedfs.master, tmp_path / "go-gateway.log")
    try:
        got = committed_offsets(go_bootstrap, group_id, topic, partitions)
    finally:
        stop(go_gateway)
    assert got == commits, f"the Go gateway read {got}; the filer holds {in_filer}"


@pytest.mark.parametrize("backend", ["smq"], indirect=True)
def test_tidegate_reads_offsets_committed_through_go_gateway(tidegate, seaweedfs, tmp_path):
    """The other way round: offsets committed through the Go gateway are tidegate's too."""
    partitions = 4
    topic = unique_topic("grp-fromgo")
    group_id = f"{topic}-group"
    create_topic(tidegate.bootstrap, topic, partitions)
    produce_range(tidegate.bootstrap, topic, partitions, 0, 40, RECORD_BYTES)
    commits = {p: 2 + 3 * p for p in range(partitions)}

    go_gateway, go_bootstrap = start_go_gateway(seaweedfs.master, tmp_path / "go-gateway.log")
    try:
        # As a group member: the Go gateway acknowledges a "simple" commit (assign, no
        # generation) but does not store it.
        commit_as_member(go_bootstrap, group_id, topic, partitions, commits)
        through_go = committed_offsets(go_bootstrap, group_id, topic, partitions)
    finally:
        stop(go_gateway)
    if through_go != commits:
        pytest.skip(f"the Go gateway does not read back its own commit ({through_go}): nothing to compare")
    filer = seaweedfs_ports(seaweedfs)["FILER"]
    in_filer = {p: filer_committed_offset(filer, group_id, topic, p) for p in range(partitions)}
    got = committed_offsets(tidegate.bootstrap, group_id, topic, partitions)
    assert got == commits, f"tidegate read {got}; the filer holds {in_filer}"
