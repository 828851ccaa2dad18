"""Consumer-group edge behaviour checked against Kafka's, with real clients, on both backends:
static members that restart, a member that stops polling past max.poll.interval.ms, and
cooperative-sticky incremental rebalances with members joining and leaving one by one.

Java members are tests/java's GroupMember (groups.Member): every record checked byte for
byte, each poll's records committed before the next poll, one stdout line per rebalance
callback. The tests wait on those lines with bounded deadlines, never on a timer. Records are
committed up to the end before any member goes away, so every test expects every record
consumed exactly once across all the member processes it ran, and nothing redelivered.
"""

import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaError, TopicPartition

from groups import Group, expected_records, produce_range
from harness import committed_offsets, create_topic, unique_topic

PARTITIONS = 12
RECORD_BYTES = 100
PER_PARTITION = 20                     # records per partition per produce phase
PHASE = PARTITIONS * PER_PARTITION
HEARTBEAT_MS = 500
JOIN_TIMEOUT = 45                      # JVM start, FindCoordinator, join, sync: a deadline, not a wait
CONSUME_TIMEOUT = 45
BASE_TIMESTAMP_MS = 1_700_000_000_000  # RoundTrip.BASE_TIMESTAMP_MS

# A short first-rebalance delay (Kafka's group.initial.rebalance.delay.ms, 3 s by default).
EDGE_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "300"]}], indirect=True)


@pytest.fixture
def groups(tmp_path):
    """Factory of Groups of Java members; every member still running at the end is killed."""
    made = []

    def make(bootstrap, group_id, topic, *common_args):
        g = Group(tmp_path, bootstrap, group_id, topic, PARTITIONS, RECORD_BYTES,
                  [f"heartbeat.interval.ms={HEARTBEAT_MS}"] + list(common_args))
        made.append(g)
        return g

    yield make
    for g in made:
        g.kill_all()


def new_topic(tidegate, prefix):
    topic = unique_topic(prefix)
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    return topic, f"{topic}-group"


def phase(tidegate, topic, n):
    """Produces phase n (records n*PHASE .. (n+1)*PHASE-1); returns everything up to it."""
    produce_range(tidegate.bootstrap, topic, PARTITIONS, n * PHASE, (n + 1) * PHASE, RECORD_BYTES)
    return expected_records(PARTITIONS, 0, (n + 1) * PHASE)


def phase_meanwhile(tidegate, topic, n):
    """phase() in a background thread, so the producer's JVM starts while the group changes;
    .result() gives what phase() returns (or raises what it raised)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(phase, tidegate, topic, n)
    pool.shutdown(wait=False)  # the thread ends with its task
    return future


def group_commits(g):
    """{partition: highest offset any member of g committed}."""
    out = {}
    for m in g.members:
        for p, o in m.commits.items():
            out[p] = max(o, out.get(p, 0))
    return out


def consume_and_commit(g, everything, what):
    """Waits until every record of `everything` was consumed and committed by the group."""
    upto = max(o for _, o in everything) + 1
    g.wait_until(g.consumed(everything), CONSUME_TIMEOUT, f"{what}: all {len(everything)} records consumed")
    g.wait_until(lambda: group_commits(g) == {p: upto for p in range(PARTITIONS)}, CONSUME_TIMEOUT,
                 f"{what}: committed up to offset {upto} on every partition")


def assert_exactly_once(g, expected):
    """Every record of `expected` consumed exactly once across all of g's member processes,
    nothing else, and each by a member that owned its partition at the time."""
    counts = {}
    for m in g.members:
        for key in m.records:
            counts[key] = counts.get(key, 0) + 1
        assert not m.unowned, f"{m.name} got records of partitions it did not own: {m.unowned[:10]}\n{g.describe()}"
    missing, extra = sorted(expected - counts.keys()), sorted(counts.keys() - expected)
    twice = sorted(k for k, n in counts.items() if n > 1)
    assert not missing and not extra and not twice, (
        f"{len(missing)} records never consumed (first {missing[:10]}), {len(extra)} unexpected (first "
        f"{extra[:10]}), {len(twice)} consumed more than once (first {twice[:10]})\n{g.describe()}")


def events_since(m, since):
    return [(kind, gen, sorted(changed)) for t, kind, gen, changed, _ in m.events if t >= since]


# ---- 1. static membership: a restarted member gets its assignment back, nobody rebalances ------

STATIC_SESSION_MS = 30000
# Static tests start all their first members at once and need them in one generation (a
# fresh group): Kafka's default group.initial.rebalance.delay.ms leaves time for every JVM.
STATIC_TIDEGATE = pytest.mark.parametrize(
    "tidegate", [{"shards": 2, "extra_args": ["--group-initial-rebalance-delay-ms", "3000"]}], indirect=True)


# A static member that took part in a generation after its first presents other
# subscription bytes once restarted (the consumer protocol's metadata carries its owned
# partitions and generation): the rejoined-group case checks that this alone does not
# rebalance the group, as in Kafka, which rebalances only when the selected protocol changes.
def static_history(history):
    return pytest.param(history, id="rejoined-group" if history else "fresh-group")


@STATIC_TIDEGATE
@pytest.mark.parametrize("history", [static_history(False), static_history(True)])
def test_static_members_restart_without_rebalance(tidegate, groups, history):
    """Three static members (group.instance.id, 30 s sessions). Each in turn goes away without
    leaving (a and c: close(), which a static member ends without LeaveGroup; b: SIGKILL) and a
    new process with the same group.instance.id starts: it is given the generation and the
    partitions the old process had, well within the session timeout, and the other members'
    rebalance listeners are not called at all. Restarting all three restarts the leader too
    (JoinGroup's skip_assignment path). fresh-group: the three joined the group's first
    generation together; rejoined-group: a and b formed it, c joined later (a second
    generation, as any group that ever rebalanced has)."""
    topic, group_id = new_topic(tidegate, "edge-static")
    g = groups(tidegate.bootstrap, group_id, topic, f"session.timeout.ms={STATIC_SESSION_MS}")
    start = lambda n: g.start(n, f"group.instance.id=inst-{n}")
    if history:
        current = {n: start(n) for n in ("a", "b")}
        g.wait_stable(list(current.values()), JOIN_TIMEOUT)
        current["c"] = start("c")
        g.wait_stable(list(current.values()), JOIN_TIMEOUT, min_generation=current["a"].generation)
    else:
        current = {n: start(n) for n in ("a", "b", "c")}
        g.wait_stable(list(current.values()), JOIN_TIMEOUT)
        assert current["a"].generation == 1, f"setup: the members did not join in one generation\n{g.describe()}"
    generation = current["a"].generation
    everything = phase(tidegate, topic, 0)
    consume_and_commit(g, everything, "phase 0")

    for step, (name, how) in enumerate([("a", "stop"), ("b", "kill"), ("c", "stop")], start=1):
        old = current[name]
        others = [m for n, m in current.items() if n != name]
        owned = old.owned
        gone_at = time.monotonic()
        old.stop() if how == "stop" else old.kill()
        # auto.offset.reset=none: the new process must start from the group's commits.
        new = current[name] = g.start(f"{name}{step}", f"group.instance.id=inst-{name}", "auto.offset.reset=none")
        produced = phase_meanwhile(tidegate, topic, step)
        got_at = g.wait_until(lambda: new.generation is not None, JOIN_TIMEOUT,
                              f"restarted {name} (after {how}) to be assigned")
        everything = produced.result()
        assert got_at - gone_at < STATIC_SESSION_MS / 2000, \
            f"restarted static member {name} waited {got_at - gone_at:.1f}s for its assignment\n{g.describe()}"
        assert (new.generation, new.owned) == (generation, owned), (
            f"static member {name} restarted after {how}: generation {new.generation} partitions "
            f"{sorted(new.owned)}, expected its old generation {generation} and partitions {sorted(owned)}\n"
            f"{g.describe()}")
        # The others keep consuming through it all; nothing reaches their rebalance listeners.
        consume_and_commit(g, everything, f"phase {step}, after restarting {name}")
        for m in others:
            assert not events_since(m, gone_at) and m.generation == generation, \
                f"{m.name} saw a rebalance when static member {name} restarted: " \
                f"{events_since(m, gone_at)}\n{g.describe()}"

    for m in current.values():
        m.stop()
    assert_exactly_once(g, everything)
    assert committed_offsets(tidegate.bootstrap, group_id, topic, PARTITIONS) == \
        {p: 4 * PER_PARTITION for p in range(PARTITIONS)}


def rdk_record_ok(m):
    """What ProduceRange wrote at m's partition and offset (key, timestamp, headers, and the
    value's readable prefix and length; the Java members check every byte)."""
    p, i = m.partition(), m.offset() * PARTITIONS + m.partition()
    value = m.value() or b""
    return (m.key() == f"key-{p}-{i}".encode()
            and m.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TIMESTAMP_MS + i * 3 + p)
            and m.headers() == [("tg-index", struct.pack(">q", i)), ("tg-partition", f"partition-{p}".encode())]
            and len(value) == RECORD_BYTES and value.startswith(f"record {i} partition {p} ".encode()))


class RdkStatic:
    """A librdkafka (confluent-kafka) static member: commits each batch synchronously and
    records every rebalance callback."""

    def __init__(self, bootstrap, group_id, topic, name, instance, reset):
        self.name, self.owned, self.records = name, set(), []
        self.events = []  # (monotonic time, "assign"|"revoke"|"lost", partitions)
        self.errors, self.notes = [], []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group_id, "client.id": name,
            "group.instance.id": instance, "session.timeout.ms": STATIC_SESSION_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS, "enable.auto.commit": False,
            "auto.offset.reset": reset, "error_cb": self._error,
        })
        self.consumer.subscribe([topic], on_assign=self._cb("assign"), on_revoke=self._cb("revoke"),
                                on_lost=self._cb("lost"))

    def _cb(self, kind):
        def callback(_consumer, tps):
            self.events.append((time.monotonic(), kind, sorted(tp.partition for tp in tps)))
            self.owned = {tp.partition for tp in tps} if kind == "assign" else set()
        return callback

    def _error(self, err, where="error_cb"):
        failed = err.fatal() or err.code() == KafkaError._AUTO_OFFSET_RESET
        (self.errors if failed else self.notes).append(f"{where}: {err}")

    def poll(self):
        offsets = {}
        for m in self.consumer.consume(num_messages=500, timeout=0.05):
            if m.error() is not None:
                self._error(m.error(), "consume")
                continue
            if not rdk_record_ok(m):
                self.errors.append(f"record {m.partition()}@{m.offset()} is not what was produced there")
            if m.partition() not in self.owned:
                self.errors.append(f"record {m.partition()}@{m.offset()} of a partition not assigned")
            self.records.append((m.partition(), m.offset()))
            offsets[m.partition()] = TopicPartition(m.topic(), m.partition(), m.offset() + 1)
        if offsets:
            self.consumer.commit(offsets=list(offsets.values()), asynchronous=False)

    def close(self):
        if self.consumer is not None:
            self.consumer.close()  # a static member does not leave the group on close
            self.consumer = None


def drive(members, predicate, timeout, what):
    """Polls every live member in turn (librdkafka runs rebalances inside poll) until predicate()."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for m in members:
            if m.consumer is not None:
                m.poll()
            assert not m.errors, f"while waiting for {what}, {m.name}: {m.errors[:5]}"
        assert time.monotonic() < deadline, (
            f"timed out after {timeout}s waiting for {what}; " + "; ".join(
                f"{m.name} owns {sorted(m.owned)}, {len(m.records)} records, events {m.events[-4:]}, "
                f"errors retried: {m.notes[-5:]}" for m in members))


@STATIC_TIDEGATE
def test_librdkafka_static_members_restart_without_rebalance(tidegate):
    """The same with librdkafka, which joins with JoinGroup v5 (no skip_assignment field):
    two static members, each closed and recreated with its group.instance.id in turn (so the
    leader too); the new consumer gets the old partitions, the other sees no callback.
    r1 forms the group alone, r2 joins in a second generation (librdkafka's range metadata
    holds no owned partitions, so unlike the Java client's it is the same after a restart)."""
    history = True
    topic, group_id = new_topic(tidegate, "edge-rdk-static")
    make = lambda n: RdkStatic(tidegate.bootstrap, group_id, topic, n, f"inst-{n}", "earliest")
    members = {"r1": make("r1")}
    if history:
        drive(list(members.values()), lambda: len(members["r1"].owned) == PARTITIONS, JOIN_TIMEOUT,
              "r1 to own every partition alone")
    members["r2"] = make("r2")
    everyone = list(members.values())
    try:
        def shared():
            owned = [m.owned for m in members.values()]
            return all(owned) and sum(map(len, owned)) == PARTITIONS == len(set().union(*owned))
        drive(everyone, shared, JOIN_TIMEOUT, "r1 and r2 to share the partitions")
        if not history:
            assigns = [e for m in everyone for e in m.events if e[1] == "assign"]
            assert len(assigns) == 2, f"setup: the members did not join in one generation: {assigns}"
        seen = lambda: {k for m in everyone for k in m.records}
        everything = phase(tidegate, topic, 0)
        drive(everyone, lambda: everything <= seen(), CONSUME_TIMEOUT, "phase 0 consumed")

        for step, name in enumerate(("r1", "r2"), start=1):
            old, other = members[name], next(m for n, m in members.items() if n != name)
            owned = set(old.owned)
            gone_at = time.monotonic()
            old.close()
            new = members[name] = RdkStatic(tidegate.bootstrap, group_id, topic, f"{name}-{step}",
                                            f"inst-{name}", "error")
            everyone.append(new)
            drive([new, other], lambda: new.events, JOIN_TIMEOUT, f"restarted {name} to be assigned")
            took = new.events[0][0] - gone_at
            assert new.events[0][1:] == ("assign", sorted(owned)) and took < STATIC_SESSION_MS / 2000, (
                f"restarted static member {name}: first callback {new.events[0][1:]} after {took:.1f}s, "
                f"expected assign {sorted(owned)} (its old partitions) at once; errors retried: {new.notes[-5:]}")
            everything = phase(tidegate, topic, step)
            drive([new, other], lambda: everything <= seen(), CONSUME_TIMEOUT,
                  f"phase {step} consumed after restarting {name}")
            later = [e for e in other.events if e[0] >= gone_at]
            assert not later, f"{other.name} saw a rebalance when static member {name} restarted: {later}"
    finally:
        for m in everyone:
            m.close()
    got = [k for m in everyone for k in m.records]
    assert sorted(got) == sorted(everything), (
        f"{len(got)} records consumed for {len(everything)}: missing {sorted(everything - set(got))[:10]}, "
        f"duplicates {len(got) - len(set(got))}")
    assert committed_offsets(tidegate.bootstrap, group_id, topic, PARTITIONS) == \
        {p: 3 * PER_PARTITION for p in range(PARTITIONS)}


# ---- 2. max.poll.interval.ms: a member that stops polling is removed -----------------------------

POLL_INTERVAL_MS = 3000
POLL_SESSION_MS = 20000   # far longer: the removal is not a session expiry


@EDGE_TIDEGATE
def test_member_exceeding_max_poll_interval_is_removed(tidegate, groups):
    """a, b and x; x (max.poll.interval.ms 3000, session 20 s) stops calling poll() with all it
    consumed committed. Its heartbeats go on, but its client leaves the group once the poll
    interval is exceeded, and a and b take its partitions over, long before x's session could
    expire, and consume from x's commits. x polls again later and rejoins as a new member."""
    topic, group_id = new_topic(tidegate, "edge-poll")
    g = groups(tidegate.bootstrap, group_id, topic, f"session.timeout.ms={POLL_SESSION_MS}")
    a, b = g.start("a", "max.poll.interval.ms=30000"), g.start("b", "max.poll.interval.ms=30000")
    x = g.start("x", f"max.poll.interval.ms={POLL_INTERVAL_MS}")
    g.wait_stable([a, b, x], JOIN_TIMEOUT)
    everything = phase(tidegate, topic, 0)
    consume_and_commit(g, everything, "phase 0")

    generation, orphaned = x.generation, x.owned
    asked_at = time.monotonic()
    x.send("stall")
    stalled_at = g.wait_until(lambda: x.said("STALLED", asked_at), 10, "x to stop polling")
    x_records = len(x.records)
    everything = phase(tidegate, topic, 1)  # records for x's partitions too, while nobody reads them
    moved_at = g.wait_until(g.stable([a, b], min_generation=generation), JOIN_TIMEOUT,
                            f"a and b to take over x's partitions {sorted(orphaned)}")
    took = moved_at - stalled_at
    bound = POLL_INTERVAL_MS / 1000 + 8
    assert took < bound, f"x's partitions moved {took:.1f}s after it stopped polling (bound {bound:.0f}s, " \
                         f"session {POLL_SESSION_MS} ms)\n{g.describe()}"
    consume_and_commit(g, everything, "phase 1 without x")
    assert not events_since(x, stalled_at) and len(x.records) == x_records, \
        f"x did something while it was not polling\n{g.describe()}"

    resumed_at = time.monotonic()
    x.send("resume")
    g.wait_until(lambda: x.said("RESUMED", resumed_at), 10, "x to poll again")
    g.wait_stable([a, b, x], JOIN_TIMEOUT, "x to rejoin", min_generation=a.generation)
    everything = phase(tidegate, topic, 2)
    consume_and_commit(g, everything, "phase 2 with x back")
    for m in (a, b, x):
        m.stop()
    assert_exactly_once(g, everything)
    print(f"x's partitions {sorted(orphaned)} moved {took:.1f}s after it stopped polling "
          f"(max.poll.interval.ms {POLL_INTERVAL_MS})")


STALL_REBALANCE_MS = 4000


@EDGE_TIDEGATE
def test_stalled_static_member_removed_at_rebalance_timeout(tidegate, groups):
    """The coordinator's side of max.poll.interval.ms: a static member's client does not
    leave when its poll interval is exceeded (it only stops heartbeating), so only the
    coordinator can remove it. x (static, session 30 s) stops polling; d joins; a and b rejoin
    at once, x never does, and the join phase ends at the rebalance timeout (JoinGroup's
    rebalance_timeout_ms = max.poll.interval.ms, 4 s for every member) without x: a, b and d
    share every partition long before x's session expires. x polls again and rejoins."""
    topic, group_id = new_topic(tidegate, "edge-rebalance-timeout")
    g = groups(tidegate.bootstrap, group_id, topic, f"session.timeout.ms={STATIC_SESSION_MS}",
               f"max.poll.interval.ms={STALL_REBALANCE_MS}")
    a, b = g.start("a"), g.start("b")
    x = g.start("x", "group.instance.id=inst-x")
    g.wait_stable([a, b, x], JOIN_TIMEOUT)
    everything = phase(tidegate, topic, 0)
    consume_and_commit(g, everything, "phase 0")

    generation = x.generation
    asked_at = time.monotonic()
    x.send("stall")
    stalled_at = g.wait_until(lambda: x.said("STALLED", asked_at), 10, "x to stop polling")
    d = g.start("d")
    g.wait_stable([a, b, d], JOIN_TIMEOUT + STALL_REBALANCE_MS / 1000, "a, b and d to share x's partitions",
                  min_generation=generation)
    took = time.monotonic() - stalled_at
    assert took < STATIC_SESSION_MS / 1000 - 5, \
        f"x was removed only {took:.1f}s after it stopped polling: the session, not the rebalance timeout\n" \
        f"{g.describe()}"
    everything = phase(tidegate, topic, 1)
    consume_and_commit(g, everything, "phase 1 without x")

    resumed_at = time.monotonic()
    x.send("resume")
    g.wait_until(lambda: x.said("RESUMED", resumed_at), 10, "x to poll again")
    g.wait_stable([a, b, d, x], JOIN_TIMEOUT, "x to rejoin", min_generation=a.generation)
    everything = phase(tidegate, topic, 2)
    consume_and_commit(g, everything, "phase 2 with x back")
    for m in (a, b, d, x):
        m.stop()
    assert_exactly_once(g, everything)
    print(f"x removed {took:.1f}s after it stopped polling (rebalance timeout {STALL_REBALANCE_MS} ms)")


# ---- 3. cooperative-sticky: members join and leave one after another ------------------------------

COOP_SESSION_MS = 6000


def disjoint_per_generation(members):
    """Partitions that two members were both told they own in one generation (their
    ASSIGNED lines' now= lists), as {generation: [(m1, m2, partitions)]}."""
    by_gen = {}
    for m in members:
        for _, kind, gen, _, now in m.events:
            if kind == "ASSIGNED":
                by_gen.setdefault(gen, []).append((m.name, now))
    clashes = {}
    for gen, owners in by_gen.items():
        for i, (n1, s1) in enumerate(owners):
            for n2, s2 in owners[i + 1:]:
                if s1 & s2:
                    clashes.setdefault(gen, []).append((n1, n2, sorted(s1 & s2)))
    return clashes


@EDGE_TIDEGATE
def test_cooperative_sticky_members_join_and_leave(tidegate, groups):
    """a alone; b, c and d join one after another; then b leaves (LeaveGroup), d is killed
    (its session expires) and c leaves. After each step: every partition has exactly one
    owner, the split is balanced, the members that stay keep what they had except what moved
    (on a join they only give partitions up, and only those are revoked; on a leave they
    only gain, nothing revoked), no two members own a partition in the same generation, and
    the records produced at each step are consumed once, from the commits."""
    topic, group_id = new_topic(tidegate, "edge-coop")
    g = groups(tidegate.bootstrap, group_id, topic, "--assignor=cooperative-sticky",
               f"session.timeout.ms={COOP_SESSION_MS}")
    live = [g.start("a")]
    g.wait_stable(live, JOIN_TIMEOUT)
    everything = phase(tidegate, topic, 0)
    consume_and_commit(g, everything, "phase 0")

    steps = [("join", "b"), ("join", "c"), ("join", "d"), ("stop", "b"), ("kill", "d"), ("stop", "c")]
    for n, (how, name) in enumerate(steps, start=1):
        before = {m.name: m.owned for m in live}
        generation = live[0].generation
        since = time.monotonic()
        if how == "join":
            live.append(g.start(name))
            stayers = live[:-1]
        else:
            leaving = next(m for m in live if m.name == name)
            live.remove(leaving)
            leaving.stop() if how == "stop" else leaving.kill()
            stayers = live
        timeout = JOIN_TIMEOUT + (COOP_SESSION_MS / 1000 if how == "kill" else 0)
        g.wait_stable(live, timeout, f"step {n} ({how} {name}): {[m.name for m in live]} to share every partition",
                      min_generation=generation)
        sizes = sorted(len(m.owned) for m in live)
        assert sizes[-1] - sizes[0] <= 1, f"step {n} ({how} {name}): unbalanced {sizes}\n{g.describe()}"
        for m in stayers:
            kept, had = m.owned, before[m.name]
            if how == "join":
                assert kept <= had, f"step {n}: {m.name} gained partitions when {name} joined\n{g.describe()}"
            else:
                assert kept >= had, f"step {n}: {m.name} lost partitions when {name} left\n{g.describe()}"
            assert m.revoked(since) == had - kept, (
                f"step {n} ({how} {name}): {m.name} had {sorted(had)}, kept {sorted(kept)}, but "
                f"{sorted(m.revoked(since))} were revoked\n{g.describe()}")
        # Produced once the group is stable: a commit made while a rebalance is in progress
        # fails with REBALANCE_IN_PROGRESS (as with Kafka), which GroupMember reports.
        everything = phase(tidegate, topic, n)
        consume_and_commit(g, everything, f"phase {n} after {how} {name}")

    for m in live:
        m.stop()
    clashes = disjoint_per_generation(g.members)
    assert not clashes, f"partitions with two owners in one generation: {clashes}\n{g.describe()}"
    assert_exactly_once(g, everything)
    assert committed_offsets(tidegate.bootstrap, group_id, topic, PARTITIONS) == \
        {p: (len(steps) + 1) * PER_PARTITION for p in range(PARTITIONS)}
