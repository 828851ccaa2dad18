"""perf/soak's body: SeaweedFS's health under tidegate's load over minutes (issue 14 item 4).

Idempotent producers (acks=all, the Java and librdkafka default) come and go, each a new
producer id writing to a few partitions for its short life, while consumer groups read and
commit every second, through one gateway on SMQ. Every --sample seconds it records, from
/proc and over HTTP:
  weed_rss_mb       `weed server`'s resident memory (master, volume, filer and broker: one process)
  tidegate_rss_mb   the gateway's
  filer_ms          how long the filer takes to list a directory (HTTP, as tools do)
  tidegate_files    entries the gateway keeps in the filer's .meta (producer state, committed
                    offsets), the last count of a thread that walks that tree every 30 s
and counts delivery errors by Kafka error, commit errors, and weed's lost balancer locks
("Lost lock", "lock renewal failed" in weed.log). At the end it checks the targets: weed's
RSS within 20 % of its level after warm-up (the first fifth of the run), no lost lock, no
KAFKA_STORAGE_ERROR. Output: a table on stdout, samples.csv and summary.json in --out.

The servers (weed and the gateway) and the load generator run on CPUs apart
(--server-cpus, --client-cpus; by default the upper and the lower half of the machine): the
generator's 150 clients can take every core there is, and a SeaweedFS starved of CPU loses
its locks and answers slowly whatever its gateway asks of it.

  perf/soak                      2,000,000 records, 100 producers, 50 groups, 10 minutes
  perf/soak --smoke              half a minute of a hundredth of it: proves the harness works
  perf/soak --gateway go-gateway the same load through SeaweedFS's own Kafka gateway, to tell
                                 SeaweedFS's own behaviour from what tidegate asks of it
"""
import argparse
import collections
import csv
import datetime
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from harness import (CACHE, REPO, Server, cpu_list, filer_list, free_port, log, rss_mb, seaweedfs,
                     stop_seaweedfs, taskset)

LOCK_LOST = re.compile(r"Lost lock|lock renewal failed")
PARTITIONS = 4
COUNT_EVERY_S = 30  # between two counts of the gateway's files in the filer


def parse_args(argv):
    p = argparse.ArgumentParser(prog="perf/soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--producers", type=int, default=100, help="producers alive at once (100)")
    p.add_argument("--groups", type=int, default=50, help="consumer groups, one member each (50)")
    p.add_argument("--topics", type=int, default=10, help=f"topics of {PARTITIONS} partitions (10)")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--producer-life", type=float, default=30.0,
                   help="seconds a producer lives before a new one (a new producer id) takes its place")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples (5)")
    p.add_argument("--gateway", choices=["tidegate", "go-gateway"], default="tidegate")
    p.add_argument("--tidegate-args", default="", help="more tidegate flags, as one string")
    p.add_argument("--smq-dir", type=Path, default=CACHE / "perf-seaweedfs")
    p.add_argument("--smq-port-offset", type=int, default=800)
    halves = halves_of_the_machine()
    p.add_argument("--server-cpus", default=halves[1],
                   help=f"CPU list for weed and the gateway (taskset; default {halves[1] or 'all'})")
    p.add_argument("--client-cpus", default=halves[0],
                   help=f"CPU list for the load generator (default {halves[0] or 'all'})")
    p.add_argument("--out", type=Path)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args(argv)
    if a.smoke:
        a.records, a.producers, a.groups, a.topics = 10_000, 10, 5, 2
        a.minutes, a.producer_life, a.sample = 0.5, 10.0, 2.0
    a.out = a.out or REPO / "perf" / "out" / f"soak-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return a


def halves_of_the_machine():
    """(client CPUs, server CPUs): the lower and the upper half of the CPUs this process may
    use, as taskset lists; (None, None) on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return ",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:]))


def start_gateway(a, smq):
    port = free_port()
    log_path = a.out / f"{a.gateway}.log"
    if a.gateway == "go-gateway":
        server = Server("go-gateway", taskset(a.server_cpus) + [str(CACHE / "bin" / "go-gateway"), "-listen",
                                                                f"127.0.0.1:{port}", "-master", smq["MASTER"]],
                        log_path)
        server.wait_line(r"^go-gateway ready", 120)
        return server, f"127.0.0.1:{port}"
    binary = os.environ.get("TIDEGATE_BIN") or REPO / "target" / "release" / "tidegate"
    # --cpus too: glommio pins the shard's thread itself, over taskset's mask.
    cpus = ["--cpus", a.server_cpus] if a.server_cpus else []
    server = Server("tidegate", taskset(a.server_cpus) + [
        str(binary), "--backend", "smq", "--smq-broker", smq["BROKER"],
        "--smq-filer", f"127.0.0.1:{smq['FILER_GRPC_PORT']}", "--listen", "127.0.0.1",
        "--port", str(port), "--broker-port-base", "0", "--shards", "1", *cpus, *a.tidegate_args.split()], log_path)
    ready = server.wait_line(r"^tidegate ready bootstrap=(\S+)", 120)
    return server, ready.group(1)


class Load:
    """The producers and consumer groups, and what they met."""

    def __init__(self, a, bootstrap, topics):
        self.a, self.bootstrap, self.topics = a, bootstrap, topics
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.produced = 0
        self.acked = 0
        self.consumed = 0
        self.commits = 0
        self.producer_lives = 0
        self.delivery_errors = collections.Counter()
        self.commit_errors = collections.Counter()
        self.left = a.records
        self.rate = a.records / (a.minutes * 60)  # records/s over all producers
        self.threads = []

    def take(self, n):
        with self.lock:
            n = min(n, self.left)
            self.left -= n
            return n

    def delivered(self, error, _message):
        with self.lock:
            if error is None:
                self.acked += 1
            else:
                self.delivery_errors[error.name()] += 1

    def producer_slot(self, slot):
        rng = random.Random(slot)
        per_producer = self.rate / self.a.producers
        while not self.stop.is_set() and self.left > 0:
            producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                                 "acks": "all", "linger.ms": 5, "message.timeout.ms": 120_000})
            with self.lock:
                self.producer_lives += 1
            # A producer writes to one topic's partitions, as most services do.
            topic = rng.choice(self.topics)
            born = time.monotonic()
            sent = 0
            while not self.stop.is_set() and time.monotonic() - born < self.a.producer_life:
                due = int((time.monotonic() - born) * per_producer) + 1 - sent
                for _ in range(self.take(max(due, 0))):
                    value = rng.randbytes(rng.randint(100, 1000))
                    producer.produce(topic, value=value, key=str(sent).encode(), on_delivery=self.delivered)
                    sent += 1
                    with self.lock:
                        self.produced += 1
                producer.poll(0.05)
                if self.left == 0:
                    break
            producer.flush(120)

    def group_member(self, index):
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"soak-group-{index}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([self.topics[index % len(self.topics)]])
        last_commit = time.monotonic()
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.2)
                if message is not None and message.error() is None:
                    with self.lock:
                        self.consumed += 1
                if time.monotonic() - last_commit >= 1.0:
                    last_commit = time.monotonic()
                    try:
                        consumer.commit(asynchronous=False)
                        with self.lock:
                            self.commits += 1
                    except KafkaException as e:
                        code = e.args[0].name() if e.args else "unknown"
                        if e.args and e.args[0].code() == KafkaError._NO_OFFSET:
                            continue  # nothing consumed since the last commit
                        with self.lock:
                            self.commit_errors[code] += 1
        finally:
            consumer.close()

    def start(self):
        for slot in range(self.a.producers):
            self.threads.append(threading.Thread(target=self.producer_slot, args=(slot,), daemon=True))
        for index in range(self.a.groups):
            self.threads.append(threading.Thread(target=self.group_member, args=(index,), daemon=True))
        for thread in self.threads:
            thread.start()

    def finish(self, timeout):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in self.threads)


def filer_ms(filer, path):
    """How long the filer takes to list `path`, in ms; None if it fails."""
    started = time.monotonic()
    try:
        filer_list(filer, path, timeout=30)
    except OSError:
        return None
    return (time.monotonic() - started) * 1000


def count_entries(filer, path, depth=4):
    """Files under `path`, `depth` directories down at most (tidegate's .meta tree is shallow)."""
    try:
        entries = filer_list(filer, path, limit=10000, timeout=30)
    except OSError:
        return 0
    total = 0
    for entry in entries:
        is_dir = entry.get("Mode", 0) & 0o20000000000
        if is_dir and depth > 0:
            total += count_entries(filer, entry["FullPath"], depth - 1)
        elif not is_dir:
            total += 1
    return total


class EntryCounter:
    """Counts the files under a filer path every COUNT_EVERY_S on a thread of its own: a count
    walks the whole tree, which takes minutes once the filer is slow and holds thousands, and
    must not hold up the samples of weed's RSS and filer latency, nor load the filer it
    measures much. `latest` is the last count."""

    def __init__(self, filer, path):
        self.filer, self.path = filer, path
        self.latest = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.latest = count_entries(self.filer, self.path)
            self.stop.wait(COUNT_EVERY_S)  # the counting period, not a wait for readiness


def lock_losses(weed_log, since):
    try:
        with open(weed_log, "rb") as f:
            f.seek(since)
            return sum(1 for line in f if LOCK_LOST.search(line.decode(errors="replace")))
    except OSError:
        return 0


def main(argv):
    a = parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    smq, started_seaweedfs = seaweedfs(a.smq_dir, a.smq_port_offset)
    try:
        return soak(a, smq)
    finally:
        if started_seaweedfs:
            stop_seaweedfs(a.smq_dir)


def soak(a, smq):
    weed_log = a.smq_dir / "weed.log"
    weed_log_start = weed_log.stat().st_size if weed_log.exists() else 0
    if a.server_cpus:
        subprocess.run(["taskset", "-a", "-p", "-c", a.server_cpus, str(smq["pid"])], capture_output=True,
                       check=True)
    server, bootstrap = start_gateway(a, smq)
    if a.client_cpus:
        # Inherited by every thread started from here on: the clients' and librdkafka's.
        os.sched_setaffinity(0, cpu_list(a.client_cpus))
    run = f"{datetime.datetime.now():%H%M%S}"
    topics = [f"soak-{run}-{i}" for i in range(a.topics)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        future.result(60)
    load = Load(a, bootstrap, topics)
    samples = []
    log(f"soak through {a.gateway}: {a.records:,} records, {a.producers} producers, {a.groups} groups, "
        f"{a.minutes:g} min; samples every {a.sample:g} s in {a.out}")
    started = time.monotonic()
    files = EntryCounter(smq["FILER"], "/topics/kafka/.meta")
    load.start()
    try:
        while time.monotonic() - started < a.minutes * 60:
            time.sleep(a.sample)  # the sampling period itself, not a wait for readiness
            if not server.alive():
                raise RuntimeError(f"{a.gateway} exited:\n{server.log_tail()}")
            sample = {"t_s": round(time.monotonic() - started, 1), "weed_rss_mb": rss_mb(smq["pid"]),
                      "tidegate_rss_mb": rss_mb(server.pid), "filer_ms": filer_ms(smq["FILER"], "/topics/kafka"),
                      "tidegate_files": files.latest,
                      "acked": load.acked, "consumed": load.consumed, "commits": load.commits}
            samples.append(sample)
            log(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in sample.items()))
    finally:
        files.stop.set()
        stuck = load.finish(150)
        server.stop()
    summary = summarise(a, samples, load, lock_losses(weed_log, weed_log_start), stuck)
    write(a, samples, summary)
    return 0


def summarise(a, samples, load, locks_lost, stuck):
    warm = [s for s in samples if s["t_s"] >= a.minutes * 60 / 5] or samples
    rss = [s["weed_rss_mb"] for s in warm if s["weed_rss_mb"] is not None]
    filer = sorted(s["filer_ms"] for s in samples if s["filer_ms"] is not None)
    baseline = rss[0] if rss else None
    drift = max(abs(r - baseline) / baseline for r in rss) if rss else None
    storage_errors = load.delivery_errors.get("KAFKA_STORAGE_ERROR", 0)
    return {
        "gateway": a.gateway, "records": a.records, "producers": a.producers, "groups": a.groups,
        "minutes": a.minutes, "server_cpus": a.server_cpus or "all", "client_cpus": a.client_cpus or "all",
        "produced": load.produced, "acked": load.acked, "consumed": load.consumed, "commits": load.commits,
        "producer_lives": load.producer_lives, "delivery_errors": dict(load.delivery_errors),
        "commit_errors": dict(load.commit_errors), "threads_stuck": stuck,
        "weed_rss_mb_after_warmup": baseline, "weed_rss_mb_max": max(rss) if rss else None,
        "weed_rss_drift": drift, "filer_ms_p50": statistics.median(filer) if filer else None,
        "filer_ms_max": filer[-1] if filer else None, "balancer_locks_lost": locks_lost,
        "tidegate_files_first": next((s["tidegate_files"] for s in samples if s["tidegate_files"] is not None), None),
        "tidegate_files_end": samples[-1]["tidegate_files"] if samples else None,
        "targets": {"weed RSS within 20 % after warm-up": drift is not None and drift <= 0.20,
                    "no lost balancer lock": locks_lost == 0,
                    "no KAFKA_STORAGE_ERROR": storage_errors == 0},
    }


def write(a, samples, summary):
    with open(a.out / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]) if samples else ["t_s"])
        writer.writeheader()
        writer.writerows(samples)
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows = [(k, v) for k, v in summary.items() if k != "targets"]
    rows += [(f"target: {k}", "met" if v else "NOT MET") for k, v in summary["targets"].items()]
    print(f"| soak ({' '.join(sys.argv[1:]) or 'defaults'}) | |\n| --- | --- |")
    for key, value in rows:
        print(f"| {key} | {f'{value:.3f}' if isinstance(value, float) else value} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
