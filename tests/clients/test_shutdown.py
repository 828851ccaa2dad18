"""SIGTERM to tidegate under an idempotent (acks=all) producer and a consumer-group member:
tidegate answers every request it had read, exits 0 and says so in one `shut down:` line.

On SeaweedMQ, started again on the same ports, it takes the clients' retries: every
acknowledged record is where it was acknowledged, none is stored twice or lost, and the group
member sees every record (at least once across the restart) and ends with its offsets
committed at the end of every partition. On the memory backend (which keeps nothing across a
restart) every record acknowledged before the exit sits at the offset its order gives it.

At the client level, "every request sent before the signal is answered": librdkafka's protocol
debug lines show each request sent and each response received, and no request that had been
waiting for its answer for a while at the signal (a long-polling Fetch on every shard, at
least) was left unanswered when the connection closed; no request timed out, no record failed,
and the clients saw only errors they retry.
"""

import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

from confluent_kafka import Consumer, KafkaError, Producer

from groups import seaweedfs_ports, wait_flushed
from harness import (committed_offsets, create_topic, free_port_pair, log_tail, read_from_start,
                     start_tidegate, stop, unique_topic)

PARTITIONS = 4
SHARDS = 2
RECORDS = 20_000
LEAD_IN = 400
# tidegate must be gone well within --shutdown-timeout-ms (30 s; past it, it exits 1).
SHUTDOWN_BOUND_S = 30
# The group member's Fetches ask for more bytes than the whole run produces, so each one waits
# its full time: at the signal one is parked on each shard, and shutdown must answer them at
# once, not when their wait ends.
FETCH_WAIT_MS = 5000
FETCH_MIN_BYTES = 1 << 20
# A request sent this long before the signal was read by tidegate (it reads as bytes arrive),
# so it must be answered. Requests sent closer to the signal may arrive after tidegate
# stopped reading: the client sends those again to the restarted gateway.
READ_MARGIN_S = 1.0
# Errors a client meets while the gateway restarts and retries by itself: the connection
# closing and being refused, the coordinator moving (NOT_COORDINATOR is retriable()). Anything
# else (a timed-out request above all) is a failure.
RESTART_ERRORS = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}


class Requests(logging.Handler):
    """librdkafka's `debug: protocol` lines (forwarded to Python when the client polls): the
    requests each client sent and the ones answered, by connection and correlation id, with
    the time the line reached Python (no earlier than the send). Also keeps every warning or
    error librdkafka logged, and writes every line to `path` (monotonic time first)."""

    LINE = re.compile(r"(\S+): (Sent|Received) (\w+?)(?:Request|Response) \(.*CorrId (\d+)")

    def __init__(self, path):
        super().__init__(logging.DEBUG)
        self.path = path
        self.file = open(path, "w", buffering=1)
        self.sent = {}        # (client, broker, connection, corr id) -> (time seen, API name)
        self.answered = {}    # the same keys -> time the response was seen
        self.warnings = []
        # librdkafka numbers requests from 1 on each connection to a broker, and one thread
        # per broker logs them in order: a correlation id not above the last one sent to that
        # broker starts a new connection.
        self.last_sent = {}   # (client, broker) -> (connection, corr id)

    def logger(self, client):
        log = logging.getLogger(f"tidegate-shutdown.{client}.{id(self)}")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(self)
        return log

    def emit(self, record):
        # Called under self.lock (logging.Handler.handle), from the thread that polls.
        text, now = record.getMessage(), time.monotonic()
        client = record.name.split(".")[1]
        self.file.write(f"{now:.6f} {client} {text}\n")
        if record.levelno >= logging.WARNING:
            self.warnings.append(f"{client}: {text}")
        m = self.LINE.search(text)
        # Not the bootstrap connections: librdkafka (KIP-899) closes those itself once Metadata
        # names the brokers, dropping what it still waits for there (seen: a FindCoordinator).
        if m is None or m.group(1).endswith("/bootstrap"):
            return
        broker, corr_id = (client, m.group(1)), int(m.group(4))
        connection, last = self.last_sent.get(broker, (0, 0))
        if m.group(2) == "Sent":
            if corr_id <= last:
                connection += 1
            self.last_sent[broker] = (connection, corr_id)
            self.sent[broker + (connection, corr_id)] = (now, m.group(3))
        else:
            self.answered[broker + (connection, corr_id)] = now

    def waiting(self, since, at):
        """Requests sent before `since` and unanswered at `at` (answered later, or never)."""
        with self.lock:
            return sorted((t, key, api) for key, (t, api) in self.sent.items()
                          if t < since and self.answered.get(key, at) >= at)

    def parked_fetches(self, client, older_than, at):
        """The brokers `client` had a Fetch waiting on at `at`, sent over `older_than` s before."""
        return {key[1] for _, key, api in self.waiting(at - older_than, at)
                if api == "Fetch" and key[0] == client}


class Clients:
    """The idempotent producer (records `record-{i}` to partition i % PARTITIONS, a steady
    stream) and the group member (subscribed all along, auto commit on), each on a thread of
    its own, both logging their requests to `requests`."""

    def __init__(self, bootstrap, topic, log_path):
        self.topic, self.group_id = topic, f"{topic}-group"
        self.requests = Requests(log_path)
        self.acked, self.failed = {}, []  # (partition, offset) -> value; delivery errors
        self.errors = []                  # (time, client, error) from error_cb and consume()
        self.cond = threading.Condition()  # guards what the member reports, notified as it does
        self.seen = []                     # (partition, offset, value) in the order consumed
        self.committed = {}                # partition -> offset the member committed last
        self.commit_errors = []            # commits lost to the restart: those records come again
        self.lead_in_acked = 0
        self.quarter_acked = threading.Event()
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
            "error_cb": self._error("producer"),
            "debug": "protocol", "logger": self.requests.logger("producer")})
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": self.group_id,
            "auto.offset.reset": "earliest", "enable.auto.commit": True,
            "auto.commit.interval.ms": 500, "on_commit": self._committed,
            "fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": FETCH_MIN_BYTES,
            "error_cb": self._error("consumer"),
            "debug": "protocol", "logger": self.requests.logger("consumer")})
        self.writer = threading.Thread(target=self._produce_all, daemon=True, name="producer")
        self.reader = threading.Thread(target=self._consume_all, daemon=True, name="group-member")
        self.reader.start()

    def _error(self, client):
        return lambda error: self.errors.append((time.monotonic(), client, error))

    def _committed(self, error, partitions):
        with self.cond:
            if error is not None:
                self.commit_errors.append(error)
                return
            for tp in partitions:
                if tp.error is not None:
                    self.commit_errors.append(tp.error)
                elif tp.offset >= 0:  # librdkafka lists the partitions it had nothing to commit for
                    self.committed[tp.partition] = tp.offset
            self.cond.notify_all()

    def _delivered(self, error, message):
        if error is not None:
            self.failed.append(error)
        else:
            self.acked[(message.partition(), message.offset())] = message.value()
            if len(self.acked) >= RECORDS // 4 + self.lead_in_acked:
                self.quarter_acked.set()

    def lead_in(self):
        for i in range(LEAD_IN):
            self.producer.produce(self.topic, value=f"lead-{i}".encode(), partition=i % PARTITIONS,
                                  on_delivery=self._delivered)
        assert self.producer.flush(60) == 0, "lead-in not acknowledged"
        self.lead_in_acked = len(self.acked)

    def _produce_all(self):
        for i in range(RECORDS):
            if self.stop_producing.is_set():
                return
            self.producer.produce(self.topic, value=f"record-{i}".encode(), partition=i % PARTITIONS,
                                  on_delivery=self._delivered)
            self.producer.poll(0)
            if i % 100 == 0:
                time.sleep(0.02)  # a steady stream for a few seconds, so the signal lands mid-run
        while self.producer.flush(1) and not self.stop_producing.is_set():
            pass

    def _consume_all(self):
        self.consumer.subscribe([self.topic])
        try:
            while not self.stop_consuming.is_set():
                messages = self.consumer.consume(num_messages=500, timeout=0.1)
                with self.cond:
                    for m in messages:
                        if m.error() is not None:
                            self.errors.append((time.monotonic(), "consumer", m.error()))
                        else:
                            self.seen.append((m.partition(), m.offset(), m.value()))
                    self.cond.notify_all()
        finally:
            self.consumer.close()  # commits what it consumed (auto commit), leaves the group

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0 and self.reader.is_alive(), (
                    f"the group member did not {what} within {timeout}s: {len(self.seen)} records "
                    f"seen, committed {self.committed}, errors {self.errors[-5:]}")
                self.cond.wait(left)

    def wait_seen(self, positions, timeout, what):
        self._wait(lambda: positions <= {(p, o) for p, o, _ in self.seen}, timeout, f"see {what}")

    def wait_committed(self, ends, timeout):
        """Until the member's own commits reach `ends` (partition -> end offset): a rebalance
        puts it back at its last commit, so having seen a record is not having consumed it."""
        self._wait(lambda: self.committed == ends, timeout, f"commit the ends, {ends}")

    def close_member(self):
        self.stop_consuming.set()
        self.reader.join(30)
        assert not self.reader.is_alive(), "the group member did not close"

    def stop(self):
        """Whatever happened: both threads finish (they are daemons: never wait on them)."""
        self.stop_producing.set()
        self.stop_consuming.set()

    def assert_requests_answered(self, signalled, until=float("inf")):
        """Every request sent well before the signal was answered; no request timed out, and
        the clients met only errors they retry (those seen before monotonic time `until`)."""
        requests = self.requests
        # Not vacuous: librdkafka's debug lines still read as this test expects.
        apis = {api for _, api in requests.sent.values()}
        assert {"Produce", "Fetch", "Heartbeat"} <= apis, f"requests in librdkafka's debug log: {apis}"
        unanswered = requests.waiting(signalled - READ_MARGIN_S, float("inf"))
        assert not unanswered, (
            f"{len(unanswered)} requests sent over {READ_MARGIN_S}s before SIGTERM got no answer, "
            f"first (seen at, (client, broker, connection, corr id), API): "
            f"{[(round(t - signalled, 3), k, a) for t, k, a in unanswered[:5]]}; signal at "
            f"{signalled:.6f} in {requests.path}")
        timeouts = [w for w in requests.warnings if "timed out" in w.lower()]
        assert not timeouts, f"requests timed out: {timeouts[:5]}"
        unexpected = [(c, e) for t, c, e in self.errors if t < until and
                      (e.fatal() or not (e.retriable() or e.code() in RESTART_ERRORS))]
        assert not unexpected, f"errors the clients do not retry: {unexpected[:5]}"

    def summary(self, signalled, shut_down):
        parked = self.requests.waiting(signalled - READ_MARGIN_S, signalled)
        again = Counter((p, o) for p, o, _ in self.seen)
        return (f"{shut_down.split('shut down:')[1].strip()}; requests waiting at the signal "
                f"for over {READ_MARGIN_S}s, then answered: {Counter(a for _, _, a in parked)}; "
                f"{len(self.acked)} records acknowledged, {len(self.seen)} consumed, "
                f"{sum(n > 1 for n in again.values())} more than once; commits failed: "
                f"{Counter(str(e.code()) for e in self.commit_errors)}; client errors: "
                f"{Counter(str(e.code()) for _, _, e in self.errors)}")


def sigterm_mid_run(tidegate, clients):
    """Starts the producer; once it is a quarter through and the member has a Fetch parked on
    every shard (read by tidegate long ago), SIGTERM. tidegate must exit 0 soon, with its
    `shut down:` line. Returns the signal's monotonic time, and that line."""
    clients.writer.start()
    assert clients.quarter_acked.wait(60), "producer made no progress before the signal"
    deadline = time.monotonic() + 3 * FETCH_WAIT_MS / 1000
    while len(clients.requests.parked_fetches("consumer", READ_MARGIN_S, time.monotonic())) < SHARDS:
        assert time.monotonic() < deadline, "the group member has no Fetch waiting on each shard"
        time.sleep(0.02)  # a Fetch ages with time, no event says so: look again
    signalled = time.monotonic()
    os.kill(tidegate.proc.pid, signal.SIGTERM)
    try:
        status = tidegate.proc.wait(timeout=SHUTDOWN_BOUND_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"tidegate still running {SHUTDOWN_BOUND_S}s after SIGTERM\n"
                             f"{log_tail(tidegate.log_path)}") from None
    took = time.monotonic() - signalled
    assert status == 0, f"tidegate exited {status} on SIGTERM\n{log_tail(tidegate.log_path)}"
    assert took < FETCH_WAIT_MS / 2000, (
        f"shutdown took {took:.1f}s, over half the member's {FETCH_WAIT_MS} ms long poll: was it "
        f"waited out? Requests in {clients.requests.path}\n{log_tail(tidegate.log_path)}")
    log = tidegate.log_path.read_text(errors="replace").splitlines()
    shut_down = [line for line in log if "shut down:" in line]
    assert len(shut_down) == 1 and re.search(r"connections=\d+ requests=\d+", shut_down[0]), \
        f"no `shut down:` line with connections= and requests=\n{log_tail(tidegate.log_path)}"
    return signalled, shut_down[0]


def test_sigterm_on_seaweedmq_loses_nothing(seaweedfs, tmp_path):
    """The issue's test (module docstring): SIGTERM mid-run, exit 0, the same ports again."""
    bootstrap_port, broker_port = free_port_pair(SHARDS)

    def start(n):
        return start_tidegate(tmp_path / f"tidegate-{n}.log", shards=SHARDS, smq=seaweedfs,
                              port=bootstrap_port, broker_port_base=broker_port)

    tidegate = start(1)
    topic = unique_topic("shutdown")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    clients = Clients(tidegate.bootstrap, topic, tmp_path / "clients.log")
    try:
        # SMQ must flush a first file before the run (proto/README.md, "Partition unloading":
        # otherwise the partitions read as empty once the publish streams end at shutdown).
        clients.lead_in()
        wait_flushed(seaweedfs_ports(seaweedfs)["FILER"], topic, PARTITIONS, None)
        # The member has joined and consumes before the signal, so the group is live then.
        clients.wait_seen(set(clients.acked), 60, "the lead-in")
        signalled, shut_down = sigterm_mid_run(tidegate, clients)

        tidegate = start(2)
        clients.writer.join(120)
        assert not clients.writer.is_alive(), f"producer still running; errors {clients.errors[-5:]}"
        assert not clients.failed, f"{len(clients.failed)} records failed, first: {clients.failed[0]}"
        acked = clients.acked
        assert len(acked) == LEAD_IN + RECORDS

        messages = read_from_start(tidegate.bootstrap, topic, PARTITIONS, len(acked), timeout=30)
        stored, next_offset = {}, {p: 0 for p in range(PARTITIONS)}
        for message in messages:
            # Offsets grow but may skip (test_smq_restart.py: SMQ burns an offset it refuses
            # while unloading a partition); no offset may hold two records.
            assert message.offset() >= next_offset[message.partition()], "offsets increase"
            next_offset[message.partition()] = message.offset() + 1
            stored[(message.partition(), message.offset())] = message.value()
        clients.wait_seen(set(stored), 60, "every stored record")
        clients.wait_committed(next_offset, 60)
        clients.close_member()
        # As tidegate has them, after the member left.
        commits = committed_offsets(tidegate.bootstrap, clients.group_id, topic, PARTITIONS)
    finally:
        clients.stop()
        stop(tidegate.proc)

    for position, value in acked.items():
        assert stored.get(position) == value, f"acknowledged {value!r} at {position}, found {stored.get(position)!r}"
    values = Counter(stored.values())
    twice = [v for v, n in values.items() if n > 1]
    assert not twice, f"{len(twice)} records stored twice, first {twice[:5]}"
    expected = [f"lead-{i}" for i in range(LEAD_IN)] + [f"record-{i}" for i in range(RECORDS)]
    missing = [v for v in expected if v.encode() not in values]
    assert not missing, f"{len(missing)} records lost, first {missing[:5]}"

    moved = [(p, o, v) for p, o, v in clients.seen if stored.get((p, o)) != v]
    assert not moved, f"the group member read {len(moved)} records not stored there, first {moved[:5]}"
    assert commits == next_offset, f"committed {commits}, partitions end at {next_offset}"
    clients.assert_requests_answered(signalled)
    print(clients.summary(signalled, shut_down))


def test_sigterm_on_memory_keeps_every_acknowledged_record_in_place(tmp_path):
    """The same run on the memory backend, up to the exit: tidegate answers what it read and
    exits 0; each record acknowledged sits at the offset its order gives it (the memory backend
    never skips one). Records are not kept across a restart, so the producer's unsent ones are
    purged; tidegate is started again only so that the member can leave its group (without a
    coordinator, close() waits out the session timeout)."""
    bootstrap_port, broker_port = free_port_pair(SHARDS)

    def start(n):
        return start_tidegate(tmp_path / f"tidegate-{n}.log", shards=SHARDS,
                              auto_create_topics=False, port=bootstrap_port,
                              broker_port_base=broker_port)

    tidegate = start(1)
    topic = unique_topic("shutdown-mem")
    create_topic(tidegate.bootstrap, topic, PARTITIONS)
    clients = Clients(tidegate.bootstrap, topic, tmp_path / "clients.log")
    try:
        clients.lead_in()
        clients.wait_seen(set(clients.acked), 60, "the lead-in")
        signalled, shut_down = sigterm_mid_run(tidegate, clients)

        clients.stop_producing.set()
        clients.writer.join(30)
        assert not clients.writer.is_alive(), "producer still running"
        assert not clients.failed, f"{len(clients.failed)} records failed, first: {clients.failed[0]}"
        # What tidegate did not read waits in the client, to be sent again: dropped here.
        clients.producer.purge()
        clients.producer.flush(10)
        restarted = time.monotonic()
        tidegate = start(2)
        clients.close_member()
    finally:
        clients.stop()
        stop(tidegate.proc)

    not_purged = [e for e in clients.failed if e.code() not in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)]
    assert not not_purged, f"purged records failed otherwise: {not_purged[:5]}"
    acked = clients.acked
    # Idempotent: per partition, the records land in the order sent, from offset 0.
    sent = [[f"lead-{i}" for i in range(p, LEAD_IN, PARTITIONS)] +
            [f"record-{i}" for i in range(p, RECORDS, PARTITIONS)] for p in range(PARTITIONS)]
    for (p, o), value in acked.items():
        assert sent[p][o].encode() == value, f"acknowledged {value!r} at {(p, o)}, sent {sent[p][o]!r} there"
    assert len(acked) >= LEAD_IN + RECORDS // 4, "acknowledged before the signal, at least"
    for p in range(PARTITIONS):
        offsets = sorted(o for q, o in acked if q == p)
        assert offsets == list(range(len(offsets))), f"partition {p}: acknowledged offsets skip"
    moved = [(p, o, v) for p, o, v in clients.seen if acked.get((p, o)) != v]
    assert not moved, f"the group member read {len(moved)} records not acknowledged there, first {moved[:5]}"
    # The restarted tidegate knows no topic: what the member meets then is not judged.
    clients.assert_requests_answered(signalled, until=restarted)
    print(clients.summary(signalled, shut_down))
